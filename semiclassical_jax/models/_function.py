"""A model from any pure function fn(params, x, k)."""

from typing import Any, Callable

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._guards import fail, integer
from .._types import Array, Complex, Float
from ._base import AbstractModel


class FunctionModel(AbstractModel):
    """Wrap a pure JAX function ``fn(params, x, k) -> (N, N)`` as a model.

    ``params`` is any pytree (its arrays are the differentiable parameters; may be None);
    ``dim`` and ``n_bands`` fix shapes. For a lattice model also give ``lattice`` ((d, d), rows
    a_i) and, if ``fn`` uses PHYSICS.md's orbital-position convention with tau != 0,
    ``orbital_positions`` ((N, d), reduced): :func:`chern_number` needs them to close the BZ.

    Example (the QWZ model written by hand)::

        def qwz(p, x, k):
            dz = p["m"] + jnp.cos(k[0]) + jnp.cos(k[1])
            off = jnp.sin(k[0]) - 1j * jnp.sin(k[1])
            return jnp.array([[dz, off], [jnp.conj(off), -dz]])

        model = FunctionModel(qwz, {"m": 1.0}, dim=2, n_bands=2, lattice=jnp.eye(2))

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> import jax.numpy as jnp
        >>> fn = lambda p, x, k: jnp.array([[p, k[0]], [k[0], -p]])
        >>> model = models.FunctionModel(fn, 0.3, dim=1, n_bands=2)
        >>> print(np.round(sj.eigensystem(model, None, [0.4])[0], 6))
        [-0.5  0.5]
    """

    fn: Callable[[Any, Array, Array], Array] = eqx.field(static=True)
    params: Any
    dim: int = eqx.field(static=True)
    n_bands: int = eqx.field(static=True)
    lattice: Float[Array, "d d"] | None = None
    orbital_positions: Float[Array, "n d"] | None = None

    def __init__(
        self,
        fn: Callable[[Any, Array, Array], Array],
        params: Any,
        dim: int,
        n_bands: int,
        lattice: Any = None,
        orbital_positions: Any = None,
    ):
        if not callable(fn):
            fail(f"fn must be a callable fn(params, x, k), got {type(fn).__name__}", TypeError)
        self.fn = fn
        self.params = params
        self.dim = integer(dim, "dim", minimum=1, maximum=4)
        self.n_bands = integer(n_bands, "n_bands")
        if lattice is not None:
            lattice = np.asarray(lattice, dtype=float)
            if lattice.shape != (self.dim, self.dim):
                fail(f"lattice must have shape ({self.dim}, {self.dim}), got {lattice.shape}")
            lattice = jnp.asarray(lattice)
            if orbital_positions is None:
                orbital_positions = np.zeros((self.n_bands, self.dim))
        if orbital_positions is not None:
            orbital_positions = np.asarray(orbital_positions, dtype=float)
            if orbital_positions.shape != (self.n_bands, self.dim):
                fail(
                    f"orbital_positions must have shape ({self.n_bands}, {self.dim}), got {orbital_positions.shape}"
                )
            orbital_positions = jnp.asarray(orbital_positions)
        self.lattice = lattice
        self.orbital_positions = orbital_positions

    def __call__(self, x: Float[Array, " d"], k: Float[Array, " d"]) -> Complex[Array, "n n"]:
        h = jnp.asarray(self.fn(self.params, x, k))
        return h.astype(jnp.result_type(h.dtype, 1j))
