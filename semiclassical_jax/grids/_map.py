"""Chunked evaluation of a per-point function over many k-points (or phase-space points)."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .._guards import fail, integer
from .._types import Array


# Points per chunk of map_points: on a 2-core CPU the two-band Berry curvature ran fastest at
# 2^15 (2^13 and 2^17 slower; benchmarks/berry_curvature.py); a GPU may want larger chunks.
DEFAULT_MAP_CHUNK = 2**15


def map_points(fn: Callable[[Any], Any], points: Any, *, chunk_size: int | None = None) -> Any:
    """``jax.vmap(fn)(points)``, evaluated ``chunk_size`` points at a time.

    ``points``: an array (n, ...) or a pytree of arrays sharing the leading axis n (e.g. ``(xs, ks)``).
    The points are padded to whole chunks (repeating the first point) and ``lax.map`` walks over the
    chunks, vmapping ``fn`` inside each. Same values as the plain vmap, but each chunk's intermediates
    stay cache-sized and peak memory is set by the chunk: on CPU the generic Berry curvature of a
    Haldane grid runs ~1.3-1.5x faster at 10^5-10^6 points (benchmarks/RESULTS.md). Differentiable
    in forward and reverse mode; usable under jit (``chunk_size`` is static).
    """
    leaves = jax.tree_util.tree_leaves(points)
    if not leaves:
        fail("points must hold at least one array (got an empty pytree)")
    leaves = [jnp.asarray(leaf) for leaf in leaves]
    sizes = {leaf.shape[0] if leaf.ndim else None for leaf in leaves}
    if len(sizes) != 1 or None in sizes or 0 in sizes:
        shapes = [leaf.shape for leaf in leaves]
        fail(f"points must share a non-empty leading axis (one row per point), got shapes {shapes}")
    n_points = sizes.pop()
    chunk = DEFAULT_MAP_CHUNK if chunk_size is None else integer(chunk_size, "chunk_size")
    chunk = min(chunk, n_points)
    n_chunks = -(-n_points // chunk)
    padding = n_chunks * chunk - n_points

    def to_chunks(leaf: Array) -> Array:
        padded = jnp.concatenate([leaf, jnp.broadcast_to(leaf[:1], (padding, *leaf.shape[1:]))])
        return padded.reshape(n_chunks, chunk, *leaf.shape[1:])

    treedef = jax.tree_util.tree_structure(points)
    chunks = jax.tree_util.tree_unflatten(treedef, [to_chunks(leaf) for leaf in leaves])
    values = jax.lax.map(jax.vmap(fn), chunks)
    return jax.tree_util.tree_map(
        lambda v: v.reshape(n_chunks * chunk, *v.shape[2:])[:n_points], values
    )
