"""Chunked k-integration: sum_i w_i f(x, k_i) for every x, with bounded memory.

The k-points are padded to a whole number of chunks (padding repeats the first point with weight
0), then ``lax.scan`` walks over the chunks; inside a chunk the integrand is vmapped over k and
over the positions x. Peak memory is set by chunk_size x n_x points, not by the grid size. The
chunk body is rematerialised (``jax.checkpoint``) so reverse-mode gradients stay bounded too
(unless there is only one chunk).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from .._types import Array, Float

# Points evaluated together per chunk (k-points x positions) when the caller gives no chunk_size.
DEFAULT_CHUNK_POINTS = 2**14


def default_chunk_size(n_points: int, n_positions: int, chunk_points: int) -> int:
    """k-points per chunk: at most ``chunk_points`` // n_x, as few chunks as that allows, split evenly
    (10^4 points at most 8192 per chunk: two chunks of 5000, not 8192 and 1808 + 6384 padding)."""
    largest = max(1, chunk_points // max(n_positions, 1))
    n_chunks = -(-n_points // largest)
    return -(-n_points // n_chunks)


def integrate(
    integrand: Callable[[Array, Array], Array],
    positions: Float[Array, "nx d"],
    points: Float[Array, "nk d"],
    weights: Float[Array, " nk"],
    chunk_size: int,
) -> tuple[Array, Array]:
    """(sum_i w_i integrand(x, k_i) for each x, all-finite flag). Output shape (n_x, *integrand)."""
    n_points = points.shape[0]
    n_chunks = -(-n_points // chunk_size)
    padding = n_chunks * chunk_size - n_points
    points = jnp.concatenate([points, jnp.broadcast_to(points[:1], (padding, points.shape[1]))])
    weights = jnp.concatenate([weights, jnp.zeros(padding, weights.dtype)])
    points = points.reshape(n_chunks, chunk_size, -1)
    weights = weights.reshape(n_chunks, chunk_size)

    per_k = jax.vmap(integrand, in_axes=(None, 0))
    per_xk = jax.vmap(per_k, in_axes=(0, None))
    shape = jax.eval_shape(per_xk, positions, points[0])

    def body(carry, chunk):
        total, finite = carry
        chunk_points, chunk_weights = chunk
        values = per_xk(positions, chunk_points)  # (n_x, chunk, ...)
        weighted = jnp.tensordot(values, chunk_weights, axes=((1,), (0,)))
        return (total + weighted, finite & jnp.all(jnp.isfinite(values))), None

    if n_chunks > 1:
        # Reverse mode then stores one chunk's residuals at a time and recomputes each chunk's
        # forward pass; with one chunk that recomputation would save no memory, only cost time.
        body = jax.checkpoint(body)
    initial = (jnp.zeros(shape.shape[:1] + shape.shape[2:], shape.dtype), jnp.array(True))
    (total, finite), _ = jax.lax.scan(body, initial, (points, weights))
    return total, finite
