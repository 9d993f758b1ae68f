"""The model abstraction: a local Hamiltonian H(x, k) as an equinox Module.

A model is a pytree. Its numeric fields are the parameters (differentiable, vmappable); its
static fields (``dim``, ``n_bands``, ...) fix shapes. Any scalar parameter may instead be a
texture, a callable of the position x (see :mod:`semiclassical_jax.textures`), which is how
spatial structure enters (PHYSICS.md section 4).
"""

import abc
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._types import Array, Complex, Float, ParameterLike


def as_parameter(value: Any) -> Any:
    """Converter for parameter fields: numbers become float arrays, textures stay callables."""
    if callable(value):
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"a model parameter must be a real number or a texture, got {value!r}")
    array = jnp.asarray(value)
    if jnp.iscomplexobj(array):
        return array
    return array.astype(jnp.result_type(float))


def evaluate(parameter: ParameterLike, x: Float[Array, " d"]) -> Array:
    """A parameter's value at position x: call it if it is a texture, else return it."""
    if callable(parameter):
        return jnp.asarray(parameter(x))
    return jnp.asarray(parameter)


class AbstractModel(eqx.Module):
    """A local Hamiltonian H(x, k), PHYSICS.md conventions.

    Subclasses set the class variables / static fields ``dim`` (spatial dimension d) and
    ``n_bands`` (N) and implement ``__call__(x, k) -> (N, N)`` complex Hermitian, with x and k
    Cartesian arrays of shape (d,) in natural units (hbar = e = 1).
    """

    dim: eqx.AbstractVar[int]
    n_bands: eqx.AbstractVar[int]

    @abc.abstractmethod
    def __call__(self, x: Float[Array, " d"], k: Float[Array, " d"]) -> Complex[Array, "n n"]:
        """The local Hamiltonian H^c(x, k) of paper Eq. 22."""


class AbstractLatticeModel(AbstractModel):
    """A lattice model in PHYSICS.md's orbital-position convention (convention II).

    ``lattice``: (d, d), rows are the primitive vectors a_i (Cartesian).
    ``orbital_positions``: (N, d), orbital centres tau_j in reduced coordinates (units of a_i).
    H_ij(k) = sum_R t_ij(R) exp(i k.(R + tau_j - tau_i)), so that H(k + G) = V^dagger H(k) V with
    V = diag(exp(i G.tau)); :func:`semiclassical_jax.chern_number` uses this to close the torus.
    """

    lattice: eqx.AbstractVar[Array]
    orbital_positions: eqx.AbstractVar[Array]

    @property
    def reciprocal_lattice(self) -> Float[Array, "d d"]:
        """(d, d), rows are b_i with a_i . b_j = 2 pi delta_ij."""
        return 2 * jnp.pi * jnp.linalg.inv(jnp.asarray(self.lattice)).T


def hopping_phase(
    k: Float[Array, " d"],
    lattice: Float[Array, "d d"],
    orbital_positions: Float[Array, "n d"],
    vectors: Float[Array, "r d"],
) -> Complex[Array, "r n n"]:
    """exp(i k.(R + tau_j - tau_i)) for every lattice vector R (reduced) and orbital pair (i, j)."""
    separation = (
        vectors[:, None, None, :]
        + orbital_positions[None, None, :, :]
        - orbital_positions[None, :, None, :]
    )  # (r, i, j, d) reduced
    return jnp.exp(1j * (separation @ lattice) @ k)

