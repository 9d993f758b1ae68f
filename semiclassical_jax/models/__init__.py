"""Models: local Hamiltonians H(x, k) as equinox Modules (PHYSICS.md conventions)."""

from ._base import AbstractLatticeModel as AbstractLatticeModel
from ._base import AbstractModel as AbstractModel
from ._dirac import DiracWithRemoteBand as DiracWithRemoteBand
from ._dirac import MassiveDirac as MassiveDirac
from ._function import FunctionModel as FunctionModel
from ._lattice import QWZ as QWZ
from ._lattice import Haldane as Haldane
from ._lattice import KaneMele as KaneMele
from ._tight_binding import TightBinding as TightBinding
from ._weyl import WeylLattice as WeylLattice

__all__ = [
    "AbstractLatticeModel",
    "AbstractModel",
    "DiracWithRemoteBand",
    "FunctionModel",
    "Haldane",
    "KaneMele",
    "MassiveDirac",
    "QWZ",
    "TightBinding",
    "WeylLattice",
]
