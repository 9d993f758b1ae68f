"""``evolve`` on a batch of wavepackets: one call, one compilation (PHYSICS.md section 2).

A batch is a leading axis of size B on any of x0, k0 (B, d), chi0 (B, N), t0, t1 (B,) and a
uniform field (B, d), recognised by its shape (one axis more than a single run takes), and on the
model when ``batched_model=True`` (every array leaf of the model carries the leading axis, as
``jax.vmap`` or ``eqx.filter_vmap`` of a model constructor returns it). Arguments without the axis
are common to all members.

Steps: :func:`find_batch` finds the batch and its size; :func:`prepare_batch` runs the static
checks and the value checks of member 0 exactly as for a single run (errors name the argument and
value), then the value checks of every member that can be made before the solve (finite inputs,
t1 > t0, |chi0| = 1, saveat times inside [t0, t1]; errors name the members); :func:`solve_batch`
runs every member's checked solve through :func:`map_batch` (grouped by an estimate of its step
count, :func:`step_estimates`, in chunks, over devices), with the stages of an explicit
Runge-Kutta solver unrolled (:class:`UnrolledRungeKutta`: the same method, faster per step under
vmap). Failed runs are flagged per member (``Trajectory.success``). A bad argument that only
shows inside the compiled solve (e.g. H not Hermitian at one member's start) is not raised there
(an error raised on one device would leave the others waiting in the sharded computation): that
member is not integrated, and after the batch :func:`_report_arguments` raises its single-run
error, naming the members.
"""

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._eigh import eigh
from .._guards import fail, is_concrete
from .._pytree import leaf_name
from .._types import Array, Float
from ._arguments import (
    CHI0_ATOL,
    Setup,
    check_arguments,
    check_magnetic,
    checked_inputs,
    input_checks,
)
from ._batch import BatchPlan, batch_plan, map_batch, report_members
from ._core import Trajectory, solve
from ._exponential import InteractionPictureSolver
from ._fields import AbstractField, UniformField
from ._unrolled import unrolled

# The arguments that may carry a batch axis, and their number of axes in a single run.
MEMBER_NDIM = {"x0": 1, "k0": 1, "chi0": 1, "t0": 0, "t1": 0, "field": 1}


class Batch(NamedTuple):
    """A batch of ``size`` members: ``values`` the batchable arguments as given (arrays as jax
    arrays), ``batched`` the names that carry the batch axis ("model" among them for a batched
    model), ``model`` the (possibly batched) model."""

    size: int
    values: dict[str, Any]
    batched: tuple[str, ...]
    model: Any


def _model_size(model: Any) -> int:
    """The leading axis shared by every array leaf of a batched model."""
    leaves = jax.tree_util.tree_flatten_with_path(eqx.filter(model, eqx.is_array))[0]
    sizes = {leaf_name(path): (leaf.shape[0] if leaf.ndim else None) for path, leaf in leaves}
    if not sizes or None in sizes.values() or len(set(sizes.values())) != 1:
        fail(
            "batched_model=True needs a model whose array parameters all carry the same leading "
            "batch axis (e.g. from jax.vmap or eqx.filter_vmap of the model's constructor); got "
            f"leading sizes {sizes or 'none (no array parameters)'}"
        )
    return next(iter(sizes.values()))


def _is_array_argument(name: str, value: Any) -> bool:
    if value is None:
        return False
    return not (name == "field" and (isinstance(value, AbstractField) or callable(value)))


def find_batch(model: Any, values: dict[str, Any], batched_model: bool) -> Batch | None:
    """The :class:`Batch` of ``evolve``'s arguments, or None for a single run.

    ``values``: x0, k0, chi0, t0, t1 and field as given. An array argument is batched when it has
    one axis more than a single run takes (:data:`MEMBER_NDIM`); all batch axes must agree.
    """
    sizes = {"model": _model_size(model)} if batched_model else {}
    values = dict(values)
    for name, value in values.items():
        if _is_array_argument(name, value):
            try:
                values[name] = jnp.asarray(value)
            except TypeError:
                continue  # not an array: the single-run checks name it
            if values[name].ndim == MEMBER_NDIM[name] + 1:
                sizes[name] = values[name].shape[0]
    if not sizes:
        return None
    if len(set(sizes.values())) != 1:
        fail(f"the batched arguments disagree on the batch size (leading axis): {sizes}")
    return Batch(next(iter(sizes.values())), values, tuple(sizes), model)


def _member(batch: Batch, index: int) -> tuple[Any, dict[str, Any]]:
    """(model, values) of member ``index`` of the batch."""
    model = batch.model
    if "model" in batch.batched:
        model = jax.tree_util.tree_map(lambda a: a[index] if eqx.is_array(a) else a, model)
    values = {
        name: value[index] if name in batch.batched else value
        for name, value in batch.values.items()
    }
    return model, values


def _members_text(bad: np.ndarray) -> str:
    """The members where ``bad`` (B,) is True, as text: 'member 3' or 'members [3, 17, ...] (5 of
    2000)'."""
    where = np.flatnonzero(bad)
    if where.size == 1:
        return f"member {int(where[0])}"
    shown = ", ".join(str(int(i)) for i in where[:10]) + (", ..." if where.size > 10 else "")
    return f"members [{shown}] ({where.size} of {bad.size})"


def _check_members(batch: Batch, ts: Any, count: int | None) -> None:
    """The per-member value checks of the batched arguments that need no model (concrete values
    only; traced ones are checked inside the solve): finite, t1 > t0, |chi0| = 1, saveat times in
    [t0, t1] and finite batched model parameters. Errors name the members."""
    for name in batch.batched:
        value = batch.values.get(name)  # a jax array (find_batch)
        if name != "model" and is_concrete(value):
            bad = ~np.all(np.isfinite(np.asarray(value).reshape(batch.size, -1)), axis=1)
            if bad.any():
                fail(f"{name} must be finite: not at {_members_text(bad)}")
    if "model" in batch.batched and is_concrete(batch.model):
        parameters = eqx.filter(batch.model, eqx.is_inexact_array)
        for path, leaf in jax.tree_util.tree_flatten_with_path(parameters)[0]:
            bad = ~np.all(np.isfinite(np.asarray(leaf).reshape(batch.size, -1)), axis=1)
            if bad.any():
                fail(f"model parameter '{leaf_name(path)}' is not finite at {_members_text(bad)}")
    _check_member_times(batch, ts, count)
    chi0 = batch.values["chi0"]
    if "chi0" in batch.batched and is_concrete(chi0):
        norms = np.linalg.norm(np.asarray(chi0), axis=1)
        bad = ~(np.abs(norms - 1.0) <= CHI0_ATOL)
        if bad.any():
            fail(f"chi0 must be normalised (to {CHI0_ATOL:g}): not at {_members_text(bad)}")


def _check_member_times(batch: Batch, ts: Any, count: int | None) -> None:
    """t1 > t0 for every member, and explicit saveat times inside every member's [t0, t1]."""
    t0, t1 = batch.values["t0"], batch.values["t1"]
    if not ({"t0", "t1"} & set(batch.batched)) or not is_concrete(t0, t1, ts):
        return
    t0 = np.broadcast_to(np.asarray(t0, dtype=float), (batch.size,))
    t1 = np.broadcast_to(np.asarray(t1, dtype=float), (batch.size,))
    bad = ~(t1 > t0)
    if bad.any():
        fail(f"t1 must be later than t0: not at {_members_text(bad)}")
    if ts is not None and count is None:
        times = np.asarray(ts)
        bad = (times.min() < t0) | (times.max() > t1)
        if bad.any():
            fail(f"saveat times must lie in [t0, t1] of every member: not at {_members_text(bad)}")


def _checked_member(batch: Batch, index: int, saveat: Any, options: dict[str, Any]):
    """(setup, model, x0, k0, field, chi0, t0, t1, ts) of member ``index`` after the static checks
    and the value checks of a single run (eager for concrete values: errors name the argument and
    the value)."""
    model, values = _member(batch, index)
    setup, x0, k0, field, t0, t1, ts = check_arguments(
        model, values["x0"], values["k0"], field=values["field"], t0=values["t0"],
        t1=values["t1"], saveat=saveat, chi0=values["chi0"], **options,
    )  # fmt: skip
    x0, k0, chi0, t0, t1, ts = checked_inputs(
        model, field, x0, k0, values["chi0"], t0, t1, ts, setup
    )
    return setup, model, x0, k0, field, chi0, t0, t1, ts


def prepare_batch(
    batch: Batch, *, saveat: Any, magnetic_field: Any, **options: Any
) -> tuple[Setup, dict[str, Any], dict[str, Any], int | None]:
    """(setup, shared, members, count) of a batch after every check before the solve.

    ``options``: method, band, manifold and the solver options of ``evolve``. ``shared`` /
    ``members``: the arguments of :func:`solve_batch` common to / batched over the members;
    ``count``: n for ``saveat=n`` (each member saves at its own n times), else None.
    """
    model0, first = _member(batch, 0)
    setup, x0, k0, field, t0, t1, ts = check_arguments(
        model0, first["x0"], first["k0"], field=first["field"], t0=first["t0"], t1=first["t1"],
        saveat=saveat, chi0=first["chi0"], **options,
    )  # fmt: skip
    magnetic = check_magnetic(magnetic_field, model0)
    count = int(ts.shape[0]) if isinstance(saveat, (int, np.integer)) else None
    _check_members(batch, ts, count)
    _checked_member(batch, 0, saveat, options)  # member 0: every check of a single run, eager
    values = dict(batch.values, x0=x0, k0=k0, t0=t0, t1=t1, field=field, model=batch.model)
    for name in ("x0", "k0", "t0", "t1"):  # single-run conversions of the batched arrays
        if name in batch.batched:
            values[name] = jnp.asarray(batch.values[name], dtype=float)
    if "field" in batch.batched:
        values["field"] = UniformField(batch.values["field"])
    members = {name: values.pop(name) for name in batch.batched}
    shared = dict(values, magnetic=magnetic, ts=None if count else ts)
    return setup._replace(solver=unrolled(setup.solver)), shared, members, count


def _disarmed(failed, t0, t1, ts, x0, k0, chi0):
    """A member whose arguments failed a check runs from t0 = t1 = 0 (no step) at finite x0, k0,
    chi0: nothing inside the compiled batch raises (an error raised on one device would leave
    the others waiting in the sharded computation); the batch reports it afterwards."""
    zero = jnp.zeros_like(t0)
    t0, t1 = jnp.where(failed, zero, t0), jnp.where(failed, zero, t1)
    ts = None if ts is None else jnp.where(failed, jnp.zeros_like(ts), ts)
    x0, k0, chi0 = (jnp.where(failed, jnp.nan_to_num(a), a) for a in (x0, k0, chi0))
    return t0, t1, ts, x0, k0, chi0


def step_estimates(
    shared: dict[str, Any], members: dict[str, Any], setup: Setup, size: int
) -> Float[Array, " B"]:
    """A number proportional to each member's expected step count, the key the batch is grouped
    by: (t1 - t0) x the spread of the band energies that chi's phase rotates with at (x0, k0)
    (every band for method="full", the manifold's for "nonabelian"): an explicit solver must
    resolve exp(-i (eps_n - <H>) t), so its step shrinks as 1 / spread (PHYSICS.md section 2).
    The duration alone for the Abelian method (no phase; its steps follow x and k), for the
    interaction-picture solver (it removes the phase) and where x0, k0 and the model are common.
    A spread of zero (a one-band model, a degenerate start) counts as a thousandth of the largest.
    """
    t0 = members.get("t0", shared.get("t0"))
    t1 = members.get("t1", shared.get("t1"))
    duration = jnp.broadcast_to(t1 - t0, (size,))
    phase = setup.method != "abelian" and not isinstance(setup.solver, InteractionPictureSolver)
    if not phase or not {"model", "x0", "k0"} & set(members):
        return duration
    bands = None if setup.method == "full" else jnp.array(setup.manifold)
    batched, static = eqx.partition(members, eqx.is_array)

    def spread(member: dict[str, Any]) -> Array:
        v = {**shared, **eqx.combine(member, static)}
        h = jnp.asarray(v["model"](v["x0"], v["k0"]))
        energies = eigh(h)[0]
        energies = energies if bands is None else energies[bands]
        return jnp.max(energies) - jnp.min(energies)

    spreads = jnp.nan_to_num(jax.vmap(spread)(batched), nan=0.0, posinf=0.0)
    largest = jnp.max(spreads)
    spreads = jnp.where(largest > 0, jnp.maximum(spreads, 1e-3 * largest), 1.0)
    return duration * spreads


@eqx.filter_jit
def solve_batch(
    shared: dict[str, Any],
    members: dict[str, Any],
    setup: Setup,
    count: int | None,
    plan: BatchPlan,
) -> tuple[Trajectory, Any]:
    """(a :class:`Trajectory` with the batch axis in front of every field, (B,) whether each
    member's arguments failed a value check), in the members' order: every member's checks
    (:func:`input_checks`, not raised) and :func:`solve`, grouped by :func:`step_estimates`,
    chunked and sharded by :func:`map_batch`."""

    def run(shared: dict[str, Any], member: dict[str, Any]) -> tuple[Trajectory, Any]:
        v = {**shared, **member}
        ts = jnp.linspace(v["t0"], v["t1"], count) if count else v["ts"]
        guards, chi0 = input_checks(
            v["model"], v["field"], v["x0"], v["k0"], v["chi0"], v["t0"], v["t1"], ts, setup
        )
        failed = guards.failed()
        t0, t1, ts, x0, k0, chi0 = _disarmed(failed, v["t0"], v["t1"], ts, v["x0"], v["k0"], chi0)
        trajectory = solve(v["model"], v["field"], v["magnetic"], x0, k0, chi0, t0, t1, ts, setup)
        return trajectory, failed

    return map_batch(run, shared, members, step_estimates(shared, members, setup, plan.size), plan)


def _report_arguments(batch: Batch, failed: Any, trajectory: Trajectory, arguments: dict) -> Any:
    """``trajectory``, or the error of the members whose arguments failed a value check inside
    the compiled batch: eager, the single-run error of the first (argument and value), prefixed
    with the members; traced, equinox's run-time error with a static message."""
    options = {k: v for k, v in arguments.items() if k not in ("saveat", "magnetic_field")}

    def prefix(bad: np.ndarray, index: int) -> str:
        member = "" if bad.sum() == 1 else f"; member {index}"
        return f"evolve: bad arguments at {_members_text(bad)} of the batch{member}: "

    return report_members(
        failed,
        trajectory,
        "evolve: arguments of some members of the batch failed the value checks (e.g. H not "
        "finite or not Hermitian at (x0, k0), chi0 outside the manifold)",
        prefix,
        lambda index: _checked_member(batch, index, arguments["saveat"], options),
    )


def evolve_batch(
    batch: Batch, chunk_size: int | None, devices: Any, **arguments: Any
) -> tuple[Trajectory, Setup]:
    """(the batch's :class:`Trajectory`, its setup): :func:`prepare_batch`, then
    :func:`solve_batch` on the :func:`batch_plan` of ``chunk_size`` and ``devices``; members
    with bad arguments raise (:func:`_report_arguments`), failed runs are only flagged."""
    plan = batch_plan(batch.size, chunk_size, devices)
    setup, shared, members, count = prepare_batch(batch, **arguments)
    trajectory, failed = solve_batch(shared, members, setup, count, plan)
    return _report_arguments(batch, failed, trajectory, arguments), setup
