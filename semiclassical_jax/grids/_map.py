"""Chunked evaluation of a per-point function over many k-points (or phase-space points)."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .._guards import fail, integer
from .._types import Array, ArrayLike, PyTree


# Points per chunk of map_points: the chunk that ran fastest for the two-band Berry curvature on a
# CPU (benchmarks/berry_curvature.py); a GPU may want larger chunks.
DEFAULT_MAP_CHUNK = 2**15
"""Points per chunk of :func:`map_points` by default."""


def map_points(
    fn: Callable[[Any], PyTree[Array]],
    points: PyTree[ArrayLike],
    *,
    chunk_size: int | None = None,
) -> PyTree[Array]:
    """``jax.vmap(fn)(points)``, evaluated ``chunk_size`` points at a time.

    ``points``: an array (n, ...) or a pytree of arrays sharing the leading axis n (e.g.
    ``(xs, ks)``); ``fn`` maps one point (the leaves without their leading axis) to a pytree of
    arrays, and the result stacks them along a new leading axis n. Computed by JAX's chunked map,
    ``jax.lax.map(fn, points, batch_size=chunk_size)``: a scan over whole chunks, each vmapped,
    and one vmap over the remaining points. Same values as the plain vmap, but each chunk's
    intermediates stay cache-sized and peak memory is set by the chunk, which is why it can run
    faster than one vmap over a large grid (benchmarks/RESULTS.md). Default chunk:
    :data:`DEFAULT_MAP_CHUNK`. Differentiable in forward and reverse mode; usable under jit
    (``chunk_size`` is static).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> out = grids.map_points(lambda k: k @ k, np.arange(10.0).reshape(5, 2), chunk_size=2)
        >>> print(np.asarray(out))
        [  1.  13.  41.  85. 145.]
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
    points = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(points), leaves)
    return jax.lax.map(fn, points, batch_size=min(chunk, n_points))
