"""Small dense linear algebra in pure jnp (no LAPACK custom call inside long loops)."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from ._types import Array, Float

# Up to this size, sums over a band index are written as products and unrolled additions, which XLA
# fuses with their neighbours (tiny batched dot_generals and reductions are separate, slow XLA CPU
# kernels under vmap); above it, einsum / matmul / reductions.
UNROLLED_MAX = 8


def solve_small(matrix: Float[Array, "n n"], rhs: Float[Array, " n"]) -> Float[Array, " n"]:
    """Solve matrix @ y = rhs by Gauss-Jordan elimination with partial pivoting, unrolled for small n.

    For the 2d x 2d phase-space systems (n <= 6). Pure jnp: batched under vmap without the LAPACK
    getrf/getrs custom calls, whose CPU batch splitting can dead-lock inside lax.scan (jaxlib 0.10.2).
    """
    n = matrix.shape[0]
    augmented = jnp.concatenate([matrix, rhs[:, None]], axis=1)
    rows = jnp.arange(n)
    for column in range(n):
        candidates = jnp.where(rows >= column, jnp.abs(augmented[:, column]), -1.0)
        pivot = jnp.argmax(candidates)
        swapped = jnp.where(rows[:, None] == column, augmented[pivot][None, :], augmented)
        augmented = jnp.where(rows[:, None] == pivot, augmented[column][None, :], swapped)
        factors = augmented[:, column] / augmented[column, column]
        factors = jnp.where(rows == column, 0.0, factors)
        augmented = augmented - factors[:, None] * augmented[column][None, :]
    return augmented[:, n] / jnp.diagonal(augmented[:, :n])


def implicit_solve(matrix: Float[Array, "n n"], rhs: Float[Array, " n"]) -> Float[Array, " n"]:
    """matrix @ y = rhs (small, real) with the implicit-function derivative.

    The value is :func:`solve_small`'s pivoted elimination; derivatives do not differentiate it:
    dy = matrix^-1 (drhs - dmatrix y), and reverse mode pulls back with one solve of matrix^T
    (``lax.custom_linear_solve``), so no pivoting is differentiated. Forward mode
    (diffrax.ForwardMode, jax.jacfwd) works too.
    """
    # the matrix-vector product as a broadcast-sum: tiny dots are slow on XLA CPU
    return jax.lax.custom_linear_solve(
        lambda v: jnp.sum(matrix * v[None, :], axis=1),
        rhs,
        solve=lambda _, b: solve_small(matrix, b),
        transpose_solve=lambda _, b: solve_small(matrix.T, b),
    )


def levi_civita(n: int) -> np.ndarray:
    """The rank-n Levi-Civita symbol as an (n,) * n array."""
    symbol = np.zeros((n,) * n)
    for permutation in itertools.permutations(range(n)):
        inversions = sum(p > q for i, p in enumerate(permutation) for q in permutation[i + 1 :])
        symbol[permutation] = (-1.0) ** inversions
    return symbol


def matmul_small(a: Array, b: Array) -> Array:
    """a @ b (broadcast over leading axes). For an inner dimension <= 8 written as products and
    unrolled sums, which XLA fuses with their neighbours: under vmap, tiny batched dot_generals are
    separate, slow XLA CPU kernels (they dominated the JVP of the geometry at N = 2)."""
    m = a.shape[-1]
    if m > UNROLLED_MAX:
        return jnp.matmul(a, b)
    return unrolled_sum([a[..., :, i, None] * b[..., i, None, :] for i in range(m)])


def unrolled_sum(terms: list[Array]) -> Array:
    """Sum of a short list of arrays, written as additions (see UNROLLED_MAX)."""
    return functools.reduce(jnp.add, terms)


def unrolled_max(terms: list[Array]) -> Array:
    """Elementwise maximum of a short list of arrays (see UNROLLED_MAX)."""
    return functools.reduce(jnp.maximum, terms)
