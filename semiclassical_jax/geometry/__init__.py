"""Band geometry at a phase-space point, from autodiff (PHYSICS.md section 1), and band topology.

Layers: :mod:`._kernel` (the per-point kernel and :class:`BandGeometry`), :mod:`._public` (the
checked public functions), :mod:`._topology` (Chern numbers of 2D zones and of 2D slices of 3D
ones), :mod:`._weyl` (Weyl-point chirality), :mod:`._landau` (Landau levels
from Onsager quantisation), :mod:`._symplectic` (the linear system of the equations of motion).
"""

from ._kernel import BandGeometry as BandGeometry
from ._public import band_force as band_force
from ._public import band_geometry as band_geometry
from ._public import band_velocity as band_velocity
from ._public import berry_connection as berry_connection
from ._public import berry_curvature as berry_curvature
from ._public import eigensystem as eigensystem
from ._landau import landau_levels as landau_levels
from ._public import manifold_berry_curvature as manifold_berry_curvature
from ._public import manifold_orbital_moment as manifold_orbital_moment
from ._public import nonabelian_curvature as nonabelian_curvature
from ._public import orbital_moment as orbital_moment
from ._public import projector_derivative as projector_derivative
from ._symplectic import symplectic_solve as symplectic_solve
from ._topology import chern_number as chern_number
from ._weyl import weyl_chirality as weyl_chirality

__all__ = [
    "BandGeometry",
    "band_force",
    "band_geometry",
    "band_velocity",
    "berry_connection",
    "berry_curvature",
    "chern_number",
    "eigensystem",
    "landau_levels",
    "manifold_berry_curvature",
    "manifold_orbital_moment",
    "nonabelian_curvature",
    "orbital_moment",
    "projector_derivative",
    "symplectic_solve",
    "weyl_chirality",
]
