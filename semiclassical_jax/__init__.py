"""semiclassical_jax: differentiable semiclassical dynamics and transport in multiband crystals.

Importing the package turns on float64 (see :mod:`semiclassical_jax._precision` for float32).
Conventions, equations and limits: PHYSICS.md (natural units hbar = e = k_B = 1, carrier charge -1,
phase-space order lambda = (x, k)).
"""

from ._precision import _set_default_precision
from ._version import package_version as _package_version

_set_default_precision()

from . import distributed as distributed  # noqa: E402
from . import dynamics as dynamics  # noqa: E402
from . import geometry as geometry  # noqa: E402
from . import grids as grids  # noqa: E402
from . import models as models  # noqa: E402
from . import plotting as plotting  # noqa: E402
from . import textures as textures  # noqa: E402
from . import transport as transport  # noqa: E402
from . import units as units  # noqa: E402
from ._guards import check_partition as check_partition  # noqa: E402
from ._eigh import eigh as eigh  # noqa: E402
from ._precision import set_precision as set_precision  # noqa: E402
from ._results import SweepResult as SweepResult  # noqa: E402
from ._sweep import sweep as sweep  # noqa: E402
from .dynamics import FieldFunction as FieldFunction  # noqa: E402
from .dynamics import InteractionPictureSolver as InteractionPictureSolver  # noqa: E402
from .dynamics import ScalarPotential as ScalarPotential  # noqa: E402
from .dynamics import Trajectory as Trajectory  # noqa: E402
from .dynamics import UniformField as UniformField  # noqa: E402
from .dynamics import evolve as evolve  # noqa: E402
from ._fit import FitResult as FitResult  # noqa: E402
from ._fit import fit as fit  # noqa: E402
from .geometry import BandGeometry as BandGeometry  # noqa: E402
from .geometry import band_force as band_force  # noqa: E402
from .geometry import band_geometry as band_geometry  # noqa: E402
from .geometry import band_velocity as band_velocity  # noqa: E402
from .geometry import berry_connection as berry_connection  # noqa: E402
from .geometry import berry_curvature as berry_curvature  # noqa: E402
from .geometry import chern_number as chern_number  # noqa: E402
from .geometry import eigensystem as eigensystem  # noqa: E402
from .geometry import landau_levels as landau_levels  # noqa: E402
from .geometry import manifold_berry_curvature as manifold_berry_curvature  # noqa: E402
from .geometry import manifold_orbital_moment as manifold_orbital_moment  # noqa: E402
from .geometry import nonabelian_curvature as nonabelian_curvature  # noqa: E402
from .geometry import orbital_moment as orbital_moment  # noqa: E402
from .geometry import projector_derivative as projector_derivative  # noqa: E402
from .geometry import weyl_chirality as weyl_chirality  # noqa: E402
from .transport import berry_curvature_dipole as berry_curvature_dipole  # noqa: E402
from .transport import current as current  # noqa: E402
from .transport import current_map as current_map  # noqa: E402
from .transport import drude_conductivity as drude_conductivity  # noqa: E402
from .transport import fermi_dirac as fermi_dirac  # noqa: E402
from .transport import hall_conductivity as hall_conductivity  # noqa: E402
from .transport import nonlinear_hall_current as nonlinear_hall_current  # noqa: E402
from .transport import orbital_magnetisation as orbital_magnetisation  # noqa: E402

__version__: str = _package_version()

__all__ = [
    "distributed",
    "dynamics",
    "geometry",
    "band_force",
    "band_geometry",
    "band_velocity",
    "BandGeometry",
    "berry_connection",
    "berry_curvature",
    "berry_curvature_dipole",
    "check_partition",
    "chern_number",
    "current",
    "current_map",
    "drude_conductivity",
    "eigensystem",
    "eigh",
    "evolve",
    "fermi_dirac",
    "FieldFunction",
    "fit",
    "FitResult",
    "grids",
    "hall_conductivity",
    "landau_levels",
    "InteractionPictureSolver",
    "manifold_berry_curvature",
    "manifold_orbital_moment",
    "models",
    "nonabelian_curvature",
    "orbital_moment",
    "nonlinear_hall_current",
    "orbital_magnetisation",
    "plotting",
    "projector_derivative",
    "ScalarPotential",
    "set_precision",
    "sweep",
    "SweepResult",
    "textures",
    "Trajectory",
    "transport",
    "UniformField",
    "units",
    "weyl_chirality",
]
