"""Shape-typed aliases used in annotations across the package (jaxtyping)."""

from typing import Callable, Union

from jaxtyping import Array, ArrayLike, Complex, Float, Int

# A real scalar that may be a Python number or a 0-d array (traced or not).
RealScalarLike = Union[float, int, Float[ArrayLike, ""]]
# A model parameter: a real scalar, or a texture, i.e. a callable x -> real scalar.
ParameterLike = Union[RealScalarLike, Callable[[Float[Array, " d"]], Float[Array, ""]]]

Position = Float[Array, " d"]
Wavevector = Float[Array, " d"]
Hamiltonian = Complex[Array, "n n"]

__all__ = [
    "Array",
    "ArrayLike",
    "Complex",
    "Float",
    "Int",
    "RealScalarLike",
    "ParameterLike",
    "Position",
    "Wavevector",
    "Hamiltonian",
]
