"""Steady-state transport on the phase-space grid (PHYSICS.md section 3): SSCT, Eq. 53 and MSCT."""

from ._current import berry_curvature_dipole as berry_curvature_dipole
from ._current import current as current
from ._current import current_map as current_map
from ._current import drude_conductivity as drude_conductivity
from ._current import hall_conductivity as hall_conductivity
from ._current import nonlinear_hall_current as nonlinear_hall_current
from ._current import orbital_magnetisation as orbital_magnetisation
from ._distribution import fermi_dirac as fermi_dirac

__all__ = [
    "berry_curvature_dipole",
    "current",
    "current_map",
    "drude_conductivity",
    "fermi_dirac",
    "hall_conductivity",
    "nonlinear_hall_current",
    "orbital_magnetisation",
]
