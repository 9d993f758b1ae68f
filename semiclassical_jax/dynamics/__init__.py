"""Wavepacket dynamics: full-band, non-Abelian and Abelian equations of motion (PHYSICS.md section 2)."""

from ._evolve import Trajectory as Trajectory
from ._evolve import evolve as evolve
from ._exponential import InteractionPictureSolver as InteractionPictureSolver
from ._fields import AbstractField as AbstractField
from ._fields import FieldFunction as FieldFunction
from ._fields import ScalarPotential as ScalarPotential
from ._fields import UniformField as UniformField

__all__ = [
    "AbstractField",
    "FieldFunction",
    "InteractionPictureSolver",
    "ScalarPotential",
    "Trajectory",
    "UniformField",
    "evolve",
]
