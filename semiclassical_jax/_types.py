"""Shape-typed aliases used in annotations across the package (jaxtyping)."""

from typing import Callable, Union

from jaxtyping import Array, ArrayLike, Bool, Complex, Float, Int, PyTree

# A real scalar that may be a Python number or a 0-d array (traced or not).
RealScalarLike = Union[float, int, Float[ArrayLike, ""]]
# A model parameter: a real scalar, or a texture, i.e. a callable x -> real scalar.
ParameterLike = Union[RealScalarLike, Callable[[Float[Array, " d"]], Float[Array, ""]]]

# A phase-space point: position x and crystal momentum k, Cartesian, shape (d,).
Position = Float[Array, " d"]
Wavevector = Float[Array, " d"]
PositionLike = Float[ArrayLike, " d"]
WavevectorLike = Float[ArrayLike, " d"]
# A uniform electric field E (d,), energy / length in natural units.
FieldLike = Float[ArrayLike, " d"]
Hamiltonian = Complex[Array, "n n"]

__all__ = [
    "Array",
    "ArrayLike",
    "Bool",
    "Complex",
    "FieldLike",
    "Float",
    "Hamiltonian",
    "Int",
    "ParameterLike",
    "Position",
    "PositionLike",
    "PyTree",
    "RealScalarLike",
    "Wavevector",
    "WavevectorLike",
]
