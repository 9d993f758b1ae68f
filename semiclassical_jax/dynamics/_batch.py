"""Running one function over a batch: grouped by cost, in chunks, over devices (``evolve`` batches).

An adaptive solve under ``jax.vmap`` steps in lock step: every member of a vmapped group takes as
many steps as the slowest one. :func:`map_batch` therefore

1. sorts the members by a cost estimate (stable: equal costs keep their order), so that members
   of similar cost share a chunk;
2. deals the sorted members out to the devices round-robin (device j takes sorted members j,
   j + n, j + 2n, ...: equal loads), padding with copies of the most costly member to a whole
   number of chunks per device;
3. on each device, ``lax.map`` walks over chunks of ``chunk`` members and ``vmap`` runs a chunk
   together (memory set by the chunk, not by the batch);
4. with several devices the dealt batch is split over them with ``jax.shard_map`` and the results
   are replicated on all of them (every process then holds the whole batch);
5. returns every output in the members' original order (padding dropped).

The result does not depend on the order, the chunk or the devices: each member's computation is
its own (vmap batches arithmetic, it does not mix members).
"""

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .._guards import Guards, device_tuple, fail, integer, is_concrete

# Members vmapped together per chunk when the caller gives no chunk_size. On a CPU a chunk of
# ~10^2 amortises the per-step overhead of the solver loop (benchmarks/trajectories.py); a GPU
# runs every lane of a chunk in parallel, so there a chunk is as large as memory comfortably allows.
DEFAULT_CHUNK = {"cpu": 128}
DEFAULT_CHUNK_ACCELERATOR = 2**16


class BatchPlan(NamedTuple):
    """How a batch of ``size`` members is run: ``devices`` (one or more), ``per_device`` members
    on each after padding, in chunks of ``chunk`` members (``per_device`` a multiple of it)."""

    size: int
    chunk: int
    per_device: int
    devices: tuple[Any, ...]


def batch_plan(size: int, chunk_size: int | None, devices: Sequence[Any] | None) -> BatchPlan:
    """The :class:`BatchPlan` of a batch of ``size`` members.

    ``devices``: None for ``jax.devices()``. ``chunk_size``: the most members vmapped together
    (None: :data:`DEFAULT_CHUNK` for the devices' platform); a device's share is split into as
    few chunks as that allows, all of one size (padding at most one member per chunk).
    """
    devices = tuple(jax.devices()) if devices is None else device_tuple(devices)
    if chunk_size is None:
        chunk_size = DEFAULT_CHUNK.get(devices[0].platform, DEFAULT_CHUNK_ACCELERATOR)
    else:
        chunk_size = integer(chunk_size, "chunk_size")
    share = -(-size // len(devices))
    n_chunks = -(-share // chunk_size)
    chunk = -(-share // n_chunks)
    return BatchPlan(size, chunk, chunk * n_chunks, devices)


def _dealt(key: Any, plan: BatchPlan) -> tuple[Any, Any]:
    """(members in dealt order (n_devices * per_device,), where each member's result lands).

    Sorted by ``key`` (stable), padded with the last sorted member, dealt round-robin: device j
    holds sorted positions j, j + n, ... in its block of ``per_device``.
    """
    n = len(plan.devices)
    order = jnp.argsort(jnp.asarray(key), stable=True)
    padding = n * plan.per_device - plan.size
    padded = jnp.concatenate([order, jnp.full((padding,), order[-1], order.dtype)])
    dealt = padded.reshape(plan.per_device, n).T.reshape(-1)
    rank = jnp.argsort(order)  # each member's sorted position
    return dealt, (rank % n) * plan.per_device + rank // n


def map_batch(
    function: Callable[[Any, Any], Any], shared: Any, members: Any, key: Any, plan: BatchPlan
) -> Any:
    """``function(shared, member)`` for every member of the batch ``members`` (a pytree whose
    array leaves carry the leading batch axis of ``plan.size``; its other leaves are common to
    all members), stacked in the members' order.

    ``shared``: what every member sees (a pytree; its arrays are replicated). ``key``: (size,)
    the cost estimate the members are grouped by. Steps: module docstring.
    """
    dealt, position = _dealt(key, plan)
    batched, member_static = eqx.partition(members, eqx.is_array)
    batched = jax.tree_util.tree_map(lambda leaf: leaf[dealt], batched)
    dynamic, static = eqx.partition(shared, eqx.is_array)

    def one(inner, member):
        return function(inner, eqx.combine(member, member_static))

    def local(dynamic, batched):
        inner = eqx.combine(dynamic, static)
        chunks = jax.tree_util.tree_map(
            lambda leaf: leaf.reshape(-1, plan.chunk, *leaf.shape[1:]), batched
        )
        out = jax.lax.map(jax.vmap(lambda member: one(inner, member)), chunks)
        return jax.tree_util.tree_map(lambda leaf: leaf.reshape(-1, *leaf.shape[2:]), out)

    if len(plan.devices) == 1:
        out = local(dynamic, batched)
        return jax.tree_util.tree_map(lambda leaf: leaf[position], out)
    mesh = Mesh(np.array(plan.devices), ("batch",))
    split = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(PartitionSpec(), PartitionSpec("batch")),
        out_specs=PartitionSpec("batch"),
        check_vma=False,  # the solver's loops carry values that do not vary over the mesh
    )
    out = jax.tree_util.tree_map(lambda leaf: leaf[position], split(dynamic, batched))
    replicated = NamedSharding(mesh, PartitionSpec())
    return jax.tree_util.tree_map(
        lambda leaf: jax.lax.with_sharding_constraint(leaf, replicated), out
    )


def report_members(
    failed: Any,
    value: Any,
    message: str,
    prefix: Callable[[np.ndarray, int], str],
    raise_single: Callable[[int], None],
) -> Any:
    """``value``, or one error for the members flagged in ``failed`` (bool (n,)).

    Traced ``failed``: equinox's run-time error with the static ``message``. Concrete: the
    single-run error that ``raise_single(i)`` raises for the first failed member i (same type),
    prefixed with ``prefix(failed, i)`` (which members failed); ``message`` if it raises none.
    """
    if not is_concrete(failed):
        guards = Guards()
        guards.add(failed, message)
        return guards(value)
    failed = np.asarray(failed)
    if not failed.any():
        return value
    index = int(np.flatnonzero(failed)[0])
    head = prefix(failed, index)
    try:
        raise_single(index)
    except (ValueError, RuntimeError) as error:
        raise type(error)(head + str(error)) from None
    fail(head + message, RuntimeError)  # pragma: no cover (the batch and single checks agree)
