"""Small dense linear algebra in pure jnp (no LAPACK custom call inside long loops)."""

import jax.numpy as jnp

from ._types import Array, Float


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
