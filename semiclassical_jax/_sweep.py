"""Sweeps: one compiled transport calculation over named axes of values (the package's main job).

``sweep(model, grid, axes, quantity=...)`` evaluates a current or conductivity on the Cartesian
product of its ``axes`` (field, mu, temperature, tau and any scalar model or texture parameter).
Everything numeric is traced, so the whole sweep is one XLA compilation: the product is cut into
batches of sweep points, each batch is vmapped (and its k-integral chunked, PHYSICS.md section 3),
and batches are sharded over devices with ``jax.shard_map`` along the sweep axis. Python only walks
over batches, which is where the progress bar and ETA come from. Returns a labelled
:class:`~semiclassical_jax.SweepResult`.

Sharding: with several visible devices (GPUs, or CPU devices from
``XLA_FLAGS=--xla_force_host_platform_device_count=N``) each batch is split evenly over them; every
sweep point is computed whole on one device, so the result does not depend on the device count.
On several hosts call ``jax.distributed.initialize()`` first; ``devices=jax.devices()`` then spans
all of them.
"""

import dataclasses
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from ._guards import (
    check_finite_parameters,
    check_model,
    check_output_shape,
    check_partition,
    is_concrete,
)
from ._results import SweepResult
from .transport._cores import THEORIES, check_grid, current_core, response_core

QUANTITIES = ("current", "current_map", "hall_conductivity", "drude_conductivity")
ARGUMENT_AXES = ("mu", "temperature", "tau")
COMPONENT_NAMES = ("x", "y", "z")
# Integrand evaluations (sweep points x positions x k-points) in flight at once, by default.
DEFAULT_POINTS_IN_FLIGHT = 2**15

UNITS = {
    "mu": "energy",
    "temperature": "energy (k_B = 1)",
    "tau": "hbar / energy",
    "field_strength": "energy / (e length)",
    "field_x": "energy / (e length)",
    "field_y": "energy / (e length)",
    "field_z": "energy / (e length)",
    "current": "e energy / (hbar length^(d-1))",
    "current_map": "e energy / (hbar length^(d-1))",
    "hall_conductivity": "e^2 / hbar (e^2/h = 1/(2 pi))",
    "drude_conductivity": "e^2 / hbar",
    "position": "index",
    "position_xy": "length",
    "component": "",
    "field_component": "",
}


def _fail(message: str) -> None:
    raise ValueError(message)


def _axis_values(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:
        array = array[None]
    if array.ndim != 1 or array.size == 0:
        _fail(f"axes[{name!r}] must be a non-empty 1D list of numbers, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        _fail(f"axes[{name!r}] must be finite, got {array}")
    return array


def _parameter_path(model: Any, name: str) -> Callable[[Any], Any]:
    """Getter for a dotted model-parameter path (``"mass"``, ``"mass.amplitude"``), validated."""
    parts = name.split(".")

    def get(tree: Any) -> Any:
        for part in parts:
            tree = getattr(tree, part)
        return tree

    try:
        leaf = get(model)
    except AttributeError:
        _fail(
            f"axes: unknown axis {name!r}: not one of field_strength, field_x/_y/_z, "
            f"{', '.join(ARGUMENT_AXES)}, nor a parameter of {type(model).__name__}"
        )
    if not (eqx.is_inexact_array(leaf) and jnp.shape(leaf) == () and not jnp.iscomplexobj(leaf)):
        _fail(
            f"axes[{name!r}]: model parameter {name!r} of {type(model).__name__} is not a real scalar "
            f"(got {type(leaf).__name__}); sweep a texture's own parameters, e.g. '{name}.amplitude'"
        )
    return get


@dataclasses.dataclass(frozen=True)
class _Plan:
    """A validated sweep, ready to run (everything a run needs, nothing computed yet)."""

    quantity: str
    names: tuple[str, ...]
    coords: dict[str, np.ndarray]
    operands: dict[str, Any]  # model, points, weights, positions, direction, fixed values: traced
    theory: str
    manifolds: tuple[tuple[int, ...], ...]
    chunk: int
    batch: int
    devices: tuple[Any, ...]


def prepare_sweep(
    model: Any,
    grid: Any,
    axes: Mapping[str, Any],
    *,
    quantity: str = "current",
    field: Any = None,
    field_direction: Any = None,
    mu: Any = None,
    temperature: Any = None,
    tau: Any = None,
    theory: str = "msct",
    manifolds: Any = None,
    x: Any = None,
    xs: Any = None,
    chunk_size: int | None = None,
    batch_size: int | None = None,
    devices: Sequence[Any] | None = None,
) -> _Plan:
    """Validate a sweep's arguments without running it (see :func:`sweep`); raises ValueError."""
    check_model(model)
    d, n_bands = int(model.dim), int(model.n_bands)
    if quantity not in QUANTITIES:
        _fail(f"quantity must be one of {QUANTITIES}, got {quantity!r}")
    if theory not in THEORIES:
        _fail(f"theory must be one of {THEORIES}, got {theory!r}")
    if not isinstance(axes, Mapping):
        _fail(f"axes must be a mapping from axis name to values, got {type(axes).__name__}")
    manifolds = check_partition(manifolds, n_bands)
    if theory == "ssct" and any(len(m) > 1 for m in manifolds):
        _fail(f"theory='ssct' treats every band as its own manifold, got manifolds={manifolds}")
    points, weights = check_grid(grid, d)
    is_current = quantity in ("current", "current_map")

    names = tuple(axes)
    coords = {name: _axis_values(name, axes[name]) for name in names}
    field_axes = [name for name in names if name.startswith("field_")]
    for name in field_axes:
        if name != "field_strength" and name not in tuple(
            f"field_{c}" for c in COMPONENT_NAMES[:d]
        ):
            _fail(f"axes: unknown axis {name!r} for a model of dim = {d}")
    if field_axes and not is_current:
        _fail(f"axes {field_axes}: quantity {quantity!r} is a linear response and takes no field")
    for name in names:
        if name not in ARGUMENT_AXES and not name.startswith("field_"):
            _parameter_path(model, name)

    def value(name: str, given: Any, required: bool) -> np.ndarray | None:
        if name in coords:
            if given is not None:
                _fail(f"{name} is both an axis and a fixed argument; give it once")
            return coords[name]
        if given is None:
            if required:
                _fail(
                    f"{name} is required for quantity {quantity!r} (give {name}= or an axis {name!r})"
                )
            return None
        array = np.asarray(given, dtype=float)
        if array.shape != ():
            _fail(f"{name} must be a scalar, got shape {array.shape}")
        if not np.isfinite(array):
            _fail(f"{name} must be finite, got {given!r}")
        return array[None]

    zero_temperature_ok = quantity == "hall_conductivity" or (
        is_current and theory == "nonabelian_hall"
    )
    needs_tau = quantity == "drude_conductivity" or (is_current and theory != "nonabelian_hall")
    mu_values = value("mu", mu, True)
    temperature_values = value("temperature", temperature, True)
    tau_values = value("tau", tau, needs_tau)
    if zero_temperature_ok and np.any(temperature_values < 0):
        _fail(
            f"temperature must be >= 0 (T = 0 is the step occupation), got {temperature_values.min()}"
        )
    if not zero_temperature_ok and np.any(temperature_values <= 0):
        _fail(f"temperature must be > 0 for quantity {quantity!r}, got {temperature_values.min()}")
    if tau_values is not None and needs_tau and np.any(tau_values <= 0):
        _fail(f"tau must be > 0 (a relaxation time), got {tau_values.min()}")

    base_field = np.zeros(d)
    direction = np.zeros(d)
    if is_current:
        if "field_strength" in coords:
            if field is not None:
                _fail("give field_direction with a 'field_strength' axis, not field")
            if field_direction is None:
                _fail("a 'field_strength' axis needs field_direction (a (d,) vector)")
            direction = np.asarray(field_direction, dtype=float)
            if (
                direction.shape != (d,)
                or not np.all(np.isfinite(direction))
                or not np.any(direction)
            ):
                _fail(
                    f"field_direction must be a finite, non-zero ({d},) vector, got {field_direction!r}"
                )
            direction = direction / np.linalg.norm(direction)
        elif field is not None:
            base_field = np.asarray(field, dtype=float)
            if base_field.shape != (d,) or not np.all(np.isfinite(base_field)):
                _fail(f"field must be a finite ({d},) vector, got {field!r}")
        elif not field_axes:
            _fail(f"quantity {quantity!r} needs field= (a ({d},) vector) or a field axis")
    elif field is not None or field_direction is not None:
        _fail(f"quantity {quantity!r} is a linear response: drop field / field_direction")

    if quantity == "current_map":
        if xs is None:
            _fail("quantity 'current_map' needs xs (n_x, d) positions")
        if x is not None:
            _fail("give xs (positions) for 'current_map', not x")
        positions = np.asarray(xs, dtype=float)
        if positions.ndim != 2 or positions.shape[1] != d or positions.shape[0] == 0:
            _fail(f"xs must have shape (n_x, {d}), got {positions.shape}")
    else:
        if xs is not None:
            _fail(f"xs is only for quantity 'current_map' (got quantity {quantity!r}); use x")
        positions = np.zeros((1, d)) if x is None else np.asarray(x, dtype=float)[None]
        if positions.shape != (1, d):
            _fail(f"x must have shape ({d},), got {np.shape(x)}")
    if not np.all(np.isfinite(positions)):
        _fail("positions (x / xs) must be finite")
    check_output_shape(model, jnp.asarray(positions[0]), points[0])
    if is_concrete(model):
        check_finite_parameters(model)

    devices = tuple(jax.devices() if devices is None else devices)
    if len(devices) == 0:
        _fail("devices must name at least one device")
    n_total = math.prod(len(v) for v in coords.values())
    per_device = -(-n_total // len(devices))
    work = points.shape[0] * positions.shape[0]
    if batch_size is None:
        batch = max(
            1, min(per_device, DEFAULT_POINTS_IN_FLIGHT // min(work, DEFAULT_POINTS_IN_FLIGHT // 2))
        )
    else:
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1
        ):
            _fail(f"batch_size must be a positive integer, got {batch_size!r}")
        batch = int(batch_size)
    if chunk_size is None:
        chunk = max(
            1, min(points.shape[0], DEFAULT_POINTS_IN_FLIGHT // (positions.shape[0] * batch))
        )
    else:
        if (
            isinstance(chunk_size, bool)
            or not isinstance(chunk_size, (int, np.integer))
            or chunk_size < 1
        ):
            _fail(f"chunk_size must be a positive integer, got {chunk_size!r}")
        chunk = int(min(chunk_size, points.shape[0]))
    fixed = {
        "mu": mu_values if "mu" not in coords else None,
        "temperature": temperature_values if "temperature" not in coords else None,
        "tau": (tau_values if tau_values is not None else np.zeros(1))
        if "tau" not in coords
        else None,
        "field": base_field,
    }
    fixed = {
        key: (
            None
            if v is None
            else jnp.asarray(v).reshape(np.shape(v)[1:] if key != "field" else (d,))
        )
        for key, v in fixed.items()
    }
    operands = {
        "model": model,
        "points": points,
        "weights": weights,
        "positions": jnp.asarray(positions),
        "direction": jnp.asarray(direction),
        **fixed,
    }
    return _Plan(quantity, names, coords, operands, theory, manifolds, chunk, batch, devices)


def _evaluate(plan: _Plan, operands: dict[str, Any], values: Any) -> tuple[Any, Any]:
    """The quantity at one sweep point; ``values`` (n_axes,) in the order of ``plan.names``."""
    model = operands["model"]
    swept = {name: values[i] for i, name in enumerate(plan.names)}
    for name, value in swept.items():
        if name not in ARGUMENT_AXES and not name.startswith("field_"):
            model = eqx.tree_at(_parameter_path(model, name), model, value)
    argument = {key: swept.get(key, operands[key]) for key in ARGUMENT_AXES}
    points, weights, positions = operands["points"], operands["weights"], operands["positions"]
    if plan.quantity in ("current", "current_map"):
        field = operands["field"]
        if "field_strength" in swept:
            field = swept["field_strength"] * operands["direction"]
        for axis, component in enumerate(COMPONENT_NAMES[: field.shape[0]]):
            if f"field_{component}" in swept:
                field = field.at[axis].set(swept[f"field_{component}"])
        result, finite = current_core(
            model,
            positions,
            points,
            weights,
            field,
            argument["mu"],
            argument["temperature"],
            argument["tau"],
            plan.theory,
            plan.manifolds,
            plan.chunk,
        )
        return (result if plan.quantity == "current_map" else result[0]), finite
    kind = "hall" if plan.quantity == "hall_conductivity" else "drude"
    result, finite = response_core(
        model,
        positions,
        points,
        weights,
        argument["mu"],
        argument["temperature"],
        argument["tau"],
        kind,
        plan.chunk,
    )
    return result[0], finite


def _compiled_batch(plan: _Plan) -> Callable:
    """jit(vmap over a batch of sweep points), shard_map-ped over plan.devices when there are several."""
    dynamic, static = eqx.partition(plan.operands, eqx.is_array)

    def run(dynamic_operands, values):
        operands = eqx.combine(dynamic_operands, static)
        return jax.vmap(lambda v: _evaluate(plan, operands, v))(values)

    if len(plan.devices) > 1:
        mesh = Mesh(np.array(plan.devices), ("sweep",))
        run = jax.shard_map(
            run,
            mesh=mesh,
            in_specs=(PartitionSpec(), PartitionSpec("sweep")),
            out_specs=(PartitionSpec("sweep"), PartitionSpec("sweep")),
            check_vma=False,
        )
    compiled = jax.jit(run)
    return lambda values: compiled(dynamic, values)


class _Progress:
    """One line per batch: a bar, the fraction done, elapsed time and an ETA."""

    def __init__(self, label: str, total: int, stream: Any) -> None:
        self.label, self.total, self.stream = label, total, stream
        self.start = time.perf_counter()
        self.first_done: float | None = None

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if self.first_done is None:
            self.first_done = now
        elapsed = now - self.start
        if done > 1:
            eta = f"{(now - self.first_done) / (done - 1) * (self.total - done):.1f} s"
        else:
            eta = "?" if done < self.total else "0.0 s"
        width = 24
        filled = int(round(width * done / self.total))
        bar = "#" * filled + "." * (width - filled)
        print(
            f"{self.label} [{bar}] {done}/{self.total} batches {100 * done / self.total:5.1f}%  "
            f"elapsed {elapsed:.1f} s  ETA {eta}",
            file=self.stream,
            flush=True,
        )


def run_sweep(
    plan: _Plan, *, progress: bool | str = False, attrs: Mapping[str, Any] | None = None
) -> SweepResult:
    """Run a validated plan (from :func:`prepare_sweep`) and label its result."""
    start = time.perf_counter()
    shape = tuple(len(plan.coords[name]) for name in plan.names)
    if plan.names:
        mesh = np.meshgrid(*(plan.coords[name] for name in plan.names), indexing="ij")
        flat = np.stack([m.reshape(-1) for m in mesh], axis=-1)
    else:
        flat = np.zeros((1, 0))
    n_total = flat.shape[0]
    per_call = plan.batch * len(plan.devices)
    n_calls = -(-n_total // per_call)
    padded = np.concatenate([flat, np.repeat(flat[-1:], n_calls * per_call - n_total, axis=0)])
    compiled = _compiled_batch(plan)
    label = progress if isinstance(progress, str) else f"sweep {plan.quantity}"
    bar = _Progress(label, n_calls, sys.stderr) if progress else None
    outputs, flags = [], []
    for call in range(n_calls):
        values = jnp.asarray(padded[call * per_call : (call + 1) * per_call])
        result, finite = compiled(values)
        outputs.append(np.asarray(result))
        flags.append(np.asarray(finite))
        if bar is not None:
            bar.update(call + 1)
    values = np.concatenate(outputs)[:n_total]
    finite = np.concatenate(flags)[:n_total]
    if not np.all(finite):
        bad = int(np.argmin(finite))
        where = (
            ", ".join(f"{name}={flat[bad, i]:g}" for i, name in enumerate(plan.names))
            or "the only point"
        )
        _fail(
            f"{plan.quantity} is not finite at {where}: the model is not finite somewhere on the grid, "
            "or a gap between manifolds closes on a grid point"
        )
    d = plan.operands["points"].shape[1]
    components = np.array(COMPONENT_NAMES[:d])
    coords = {name: plan.coords[name] for name in plan.names}
    dims = list(plan.names)
    if plan.quantity == "current_map":
        dims.append("position")
        coords["position"] = np.arange(plan.operands["positions"].shape[0])
        coords["position_xy"] = np.asarray(plan.operands["positions"])
    dims.append("component")
    coords["component"] = components
    if plan.quantity in ("hall_conductivity", "drude_conductivity"):
        dims.append("field_component")
        coords["field_component"] = components
    values = values.reshape(shape + values.shape[1:])
    units = {name: UNITS.get(name, "model units") for name in coords}
    units[plan.quantity] = UNITS[plan.quantity]
    fixed = {
        key: (None if plan.operands[key] is None else np.asarray(plan.operands[key]).tolist())
        for key in (*ARGUMENT_AXES, "field")
    }
    if "field_strength" in plan.coords:
        fixed["field_direction"] = np.asarray(plan.operands["direction"]).tolist()
    metadata = {
        "quantity": plan.quantity,
        "theory": plan.theory if plan.quantity in ("current", "current_map") else None,
        "manifolds": [list(m) for m in plan.manifolds],
        "fixed": fixed,
        "x": np.asarray(plan.operands["positions"][0]).tolist()
        if plan.quantity != "current_map"
        else None,
        "model": repr(plan.operands["model"]),
        "grid_points": int(plan.operands["points"].shape[0]),
        "chunk_size": plan.chunk,
        "batch_size": plan.batch,
        "devices": [str(device) for device in plan.devices],
        "seconds": time.perf_counter() - start,
        "jax_version": jax.__version__,
        **(dict(attrs) if attrs else {}),
    }
    return SweepResult(plan.quantity, values, tuple(dims), coords, units, metadata)


def sweep(
    model: Any,
    grid: Any,
    axes: Mapping[str, Any],
    *,
    quantity: str = "current",
    field: Any = None,
    field_direction: Any = None,
    mu: Any = None,
    temperature: Any = None,
    tau: Any = None,
    theory: str = "msct",
    manifolds: Any = None,
    x: Any = None,
    xs: Any = None,
    chunk_size: int | None = None,
    batch_size: int | None = None,
    devices: Sequence[Any] | None = None,
    progress: bool | str = False,
    attrs: Mapping[str, Any] | None = None,
) -> SweepResult:
    """A transport quantity on the Cartesian product of named axes, as one compiled calculation.

    Arguments:
        model, grid: as for :func:`~semiclassical_jax.current` (a model, a ``KGrid``).
        axes: ``{name: values}``, swept in this order. Names: ``"mu"``, ``"temperature"``,
            ``"tau"``; ``"field_strength"`` (magnitude along ``field_direction``) or ``"field_x"``,
            ``"field_y"`` (, ``"field_z"``) (components, the others from ``field``); any real scalar
            model parameter by attribute path (``"mass"``, ``"velocity"``, or a texture's
            ``"mass.amplitude"``).
        quantity: ``"current"`` (d,), ``"current_map"`` (n_x, d) at ``xs``, ``"hall_conductivity"``
            or ``"drude_conductivity"`` (d, d); ``theory`` / ``manifolds`` as for ``current``.
        field, field_direction, mu, temperature, tau, x, xs: fixed values of what is not swept.
        chunk_size: k-points per integration chunk; batch_size: sweep points per device per call
            (defaults keep about 2^15 integrand evaluations in flight: bounded memory).
        devices: devices to shard the sweep axis over (default: all of ``jax.devices()``).
        progress: print a progress bar with ETA per batch to stderr (a string is used as its label).

    Returns a :class:`~semiclassical_jax.SweepResult` with dims ``(*axes, ["position"], "component",
    ["field_component"])``, coordinates, units (natural units, PHYSICS.md) and the arguments in
    ``attrs``. Arguments are validated before anything runs; a non-finite result raises and names
    the sweep point.
    """
    plan = prepare_sweep(
        model,
        grid,
        axes,
        quantity=quantity,
        field=field,
        field_direction=field_direction,
        mu=mu,
        temperature=temperature,
        tau=tau,
        theory=theory,
        manifolds=manifolds,
        x=x,
        xs=xs,
        chunk_size=chunk_size,
        batch_size=batch_size,
        devices=devices,
    )
    return run_sweep(plan, progress=progress, attrs=attrs)
