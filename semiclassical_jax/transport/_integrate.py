"""Chunked k-integration: sum_i w_i f(x, k_i) for every x, with bounded memory.

The k-points are padded to a whole number of chunks (padding repeats the first point with weight
0), then ``lax.scan`` walks over the chunks; inside a chunk the integrand is vmapped over k and
over the positions x. Peak memory is set by chunk_size x n_x points, not by the grid size. The
chunk body is rematerialised (``jax.checkpoint``) so reverse-mode gradients stay bounded too
(unless there is only one chunk).

Alongside the sum, the scan reduces each point's :class:`PointCheck` into :class:`Diagnostics`:
the model's energy scale (max over all points of max_n |eps_n|), the largest non-Hermiticity and
the smallest relevant gap, each with the (x, k) indices where it occurs (and, for a scan of L
Fermi levels, the first level at which that gap is relevant), so that the callers test the gap
against the scale of the whole integral, not of one point; in a magnetic field also the smallest
phase-space factor D = 1 + B . Omega (PHYSICS.md section 5), where and in which band.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from .._types import Array, Float


class PointCheck(NamedTuple):
    """What an integrand reports about its point: max_n |eps_n|, the relative non-Hermiticity of
    H, the smallest gap of a pair the integrand divides by at some level (inf if none), that pair
    (n, m), the first level (an index into the L levels) at which it is relevant (-1: the gap is
    between two hybridised bands of a manifold, MSCT in a magnetic field), and the smallest
    phase-space factor min_n D_n = 1 + B . Omega_n in a magnetic field (inf without one) with
    its band n."""

    scale: Float[Array, ""]
    non_hermiticity: Float[Array, ""]
    gap: Float[Array, ""]
    pair: Array
    level: Array
    factor: Float[Array, ""]
    factor_band: Array


class Diagnostics(NamedTuple):
    """The reduction of every :class:`PointCheck` of a k-integral (leading sweep axes allowed).

    ``finite``: every integrand value finite. ``scale``: max over points of max_n |eps_n|.
    ``non_hermiticity`` / ``gap``: max / min over points, at ``non_hermitian_at`` / ``gap_at`` =
    (x index, k index) of the grid; ``pair``: the bands (n, m) of the smallest gap; ``level``: the
    first level (index into the L levels) at which that pair is relevant. ``factor``: min over
    points of the phase-space factor D (inf without a magnetic field), at ``factor_at`` in band
    ``factor_band``.
    """

    finite: Array
    scale: Float[Array, ""]
    non_hermiticity: Float[Array, ""]
    non_hermitian_at: Array
    gap: Float[Array, ""]
    gap_at: Array
    pair: Array
    level: Array
    factor: Float[Array, ""]
    factor_at: Array
    factor_band: Array


def _chunk_diagnostics(values: Array, check: PointCheck, offset: Array) -> Diagnostics:
    """The :class:`Diagnostics` of one chunk; ``check`` fields (n_x, chunk), k index + ``offset``."""
    chunk = check.gap.shape[1]

    def where(flat_index):
        return jnp.stack([flat_index // chunk, flat_index % chunk + offset])

    worst = jnp.argmax(check.non_hermiticity.reshape(-1))
    closest = jnp.argmin(check.gap.reshape(-1))
    weakest = jnp.argmin(check.factor.reshape(-1))
    return Diagnostics(
        jnp.all(jnp.isfinite(values)),
        jnp.max(check.scale),
        check.non_hermiticity.reshape(-1)[worst],
        where(worst),
        check.gap.reshape(-1)[closest],
        where(closest),
        check.pair.reshape(-1, 2)[closest],
        check.level.reshape(-1)[closest],
        check.factor.reshape(-1)[weakest],
        where(weakest),
        check.factor_band.reshape(-1)[weakest],
    )


def _merge(old: Diagnostics, new: Diagnostics) -> Diagnostics:
    """Both chunks' reduction; on ties the earlier point wins."""
    worse = new.non_hermiticity > old.non_hermiticity
    closer = new.gap < old.gap
    weaker = new.factor < old.factor
    return Diagnostics(
        old.finite & new.finite,
        jnp.maximum(old.scale, new.scale),
        jnp.where(worse, new.non_hermiticity, old.non_hermiticity),
        jnp.where(worse, new.non_hermitian_at, old.non_hermitian_at),
        jnp.where(closer, new.gap, old.gap),
        jnp.where(closer, new.gap_at, old.gap_at),
        jnp.where(closer, new.pair, old.pair),
        jnp.where(closer, new.level, old.level),
        jnp.where(weaker, new.factor, old.factor),
        jnp.where(weaker, new.factor_at, old.factor_at),
        jnp.where(weaker, new.factor_band, old.factor_band),
    )


# Points evaluated together per chunk (k-points x positions) when the caller gives no chunk_size.
DEFAULT_CHUNK_POINTS = 2**14


def default_chunk_size(n_points: int, n_positions: int, chunk_points: int) -> int:
    """k-points per chunk: at most ``chunk_points`` // n_x, as few chunks as that allows, split evenly
    (10^4 points at most 8192 per chunk: two chunks of 5000, not 8192 and 1808 + 6384 padding)."""
    largest = max(1, chunk_points // max(n_positions, 1))
    n_chunks = -(-n_points // largest)
    return -(-n_points // n_chunks)


def _no_diagnostics() -> Diagnostics:
    """The reduction of no points: the identity of :func:`_merge`."""
    origin = jnp.zeros(2, int)
    return Diagnostics(
        jnp.array(True),
        jnp.array(0.0),
        jnp.array(0.0),
        origin,
        jnp.array(jnp.inf),
        origin,
        origin,
        jnp.zeros((), int),
        jnp.array(jnp.inf),
        origin,
        jnp.zeros((), int),
    )


def _chunked(n_points: int, chunk_size: int, n_chunks: int, points: Array, weights: Array):
    """``points`` (n, d) and ``weights`` (n,) padded to ``n_chunks`` chunks of ``chunk_size``
    (padding: the first point, weight 0), as (n_chunks, chunk, d) and (n_chunks, chunk)."""
    padding = n_chunks * chunk_size - n_points
    points = jnp.concatenate([points, jnp.broadcast_to(points[:1], (padding, points.shape[1]))])
    weights = jnp.concatenate([weights, jnp.zeros(padding, weights.dtype)])
    return points.reshape(n_chunks, chunk_size, -1), weights.reshape(n_chunks, chunk_size)


def _scan_chunks(
    integrand: Callable[[Array, Array], tuple[Array, PointCheck]],
    positions: Float[Array, "nx d"],
    chunks: tuple[Array, Array, Array],
) -> tuple[Array, Diagnostics]:
    """(sum over the chunks, their :class:`Diagnostics`): ``chunks`` = (points (n_chunks, chunk,
    d), weights (n_chunks, chunk), the chunks' indices in the whole grid (n_chunks,))."""
    points = chunks[0]
    chunk_size = points.shape[1]
    per_k = jax.vmap(integrand, in_axes=(None, 0))
    per_xk = jax.vmap(per_k, in_axes=(0, None))
    shape = jax.eval_shape(per_xk, positions, points[0])[0]

    def body(carry, chunk):
        total, diagnostics = carry
        chunk_points, chunk_weights, index = chunk
        values, check = per_xk(positions, chunk_points)  # (n_x, chunk, ...)
        weighted = jnp.tensordot(values, chunk_weights, axes=((1,), (0,)))
        new = _chunk_diagnostics(values, check, index * chunk_size)
        return (total + weighted, _merge(diagnostics, new)), None

    if points.shape[0] > 1:
        # Reverse mode then stores one chunk's residuals at a time and recomputes each chunk's
        # forward pass; with one chunk that recomputation would save no memory, only cost time.
        body = jax.checkpoint(body)
    initial = (jnp.zeros(shape.shape[:1] + shape.shape[2:], shape.dtype), _no_diagnostics())
    (total, diagnostics), _ = jax.lax.scan(body, initial, chunks)
    return total, diagnostics


def _sharded(
    integrand: Callable[[Array, Array], tuple[Array, PointCheck]],
    positions: Float[Array, "nx d"],
    chunks: tuple[Array, Array, Array],
    devices: tuple[Any, ...],
) -> tuple[Array, Diagnostics]:
    """:func:`_scan_chunks` with the chunks split evenly over ``devices`` (``jax.shard_map``; the
    devices may belong to several processes): each device sums its share, ``psum`` adds the
    shares and every device merges the gathered :class:`Diagnostics` in device order (the chunks
    are dealt out in order, so ties go to the earliest point as on one device). Every device,
    hence every process, ends with the whole sum."""
    n = len(devices)

    def local(positions, points, weights, index):
        total, diagnostics = _scan_chunks(integrand, positions, (points, weights, index))
        gathered = jax.tree_util.tree_map(lambda a: jax.lax.all_gather(a, "k"), diagnostics)
        shares = [jax.tree_util.tree_map(lambda a, i=i: a[i], gathered) for i in range(n)]
        return jax.lax.psum(total, "k"), functools.reduce(_merge, shares)

    split = jax.shard_map(
        local,
        mesh=Mesh(np.array(devices), ("k",)),
        in_specs=(PartitionSpec(), PartitionSpec("k"), PartitionSpec("k"), PartitionSpec("k")),
        out_specs=(PartitionSpec(), PartitionSpec()),
        check_vma=False,
    )
    return split(positions, *chunks)


def integrate(
    integrand: Callable[[Array, Array], tuple[Array, PointCheck]],
    positions: Float[Array, "nx d"],
    points: Float[Array, "nk d"],
    weights: Float[Array, " nk"],
    chunk_size: int,
    devices: tuple[Any, ...] = (),
) -> tuple[Array, Diagnostics]:
    """(sum_i w_i value(x, k_i) for each x, :class:`Diagnostics`), ``integrand`` -> (value, check).

    Output shape (n_x, *value), e.g. (n_x, L, d) for a current at L Fermi levels. With two or
    more ``devices`` the chunks are split evenly over them (:func:`_sharded`) and the result is
    replicated on all of them; the sum then differs from one device's only by the order of the
    additions (rounding)."""
    n_points = points.shape[0]
    n_shares = max(len(devices), 1)
    n_chunks = n_shares * -(-n_points // (chunk_size * n_shares))
    chunks = (*_chunked(n_points, chunk_size, n_chunks, points, weights), jnp.arange(n_chunks))
    if n_shares > 1:
        return _sharded(integrand, positions, chunks, tuple(devices))
    return _scan_chunks(integrand, positions, chunks)
