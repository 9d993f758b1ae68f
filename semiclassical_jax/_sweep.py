"""Sweeps: one compiled transport calculation over named axes of values (the package's main job).

``sweep(model, grid, axes, quantity=...)`` evaluates a current or conductivity on the Cartesian
product of its ``axes`` (field, mu, temperature, tau, magnetic field and any scalar model or
texture parameter).
Everything numeric is traced, so the whole sweep is one XLA compilation: the product is cut into
batches of sweep points, each batch is vmapped (and its k-integral chunked, PHYSICS.md section 3),
and batches are sharded over devices with ``jax.shard_map`` along the sweep axis. Python only walks
over batches, which is where the progress bar and ETA come from. Returns a labelled
:class:`~semiclassical_jax.SweepResult`.

Fermi-level axes. The ``mu`` and ``temperature`` axes are not batched like the others: every
sweep point of the other axes evaluates all their levels (the product of the two axes) in one pass
over the k-grid, computing each k-point's geometry once (the transport cores take arrays of
levels). A 101-level ``mu`` axis costs about one k-integral, not 101.

Sharding: with several visible devices (GPUs, or CPU devices from
``XLA_FLAGS=--xla_force_host_platform_device_count=N``) each batch is split evenly over them; every
sweep point is computed whole on one device, so the result does not depend on the device count.
A sweep with fewer (batched) points than devices splits each point's k-grid over the devices
instead (``transport`` cores with ``devices``; the sum then differs from one device's by rounding).
Several processes (hosts): call :func:`semiclassical_jax.distributed.initialize` first in each;
``jax.devices()`` then spans all of them, the results are gathered (replicated) onto every device,
so every process gets the whole :class:`~semiclassical_jax.SweepResult`, and only process 0 prints
progress (and writes, in ``SweepResult.save``).
"""

import dataclasses
import hashlib
import math
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._guards import (
    Guards,
    check_concrete_model,
    check_model,
    check_output_shape,
    check_partition,
    device_tuple,
    fail,
    integer,
    magnetic_field,
    model_value_checks,
    one_of,
)
from ._pytree import get_path, replace_path
from ._version import package_version
from ._results import SweepResult, describe, unit_attrs
from ._types import Array, ArrayLike, FieldLike, Float, PositionLike, RealScalarLike
from .distributed import is_main_process
from .geometry._kernel import depends_on_position
from .grids import KGrid
from .grids._grid import check_memory
from .models import AbstractModel
from .transport._cores import (
    THEORIES,
    Manifolds,
    ManifoldsLike,
    Theory,
    check_diagnostics,
    check_grid,
    check_grid_values,
    current_core,
    diagnostics_failed,
    gap_closed,
    response_core,
)

Quantity = Literal["current", "current_map", "hall_conductivity", "drude_conductivity"]
QUANTITIES = ("current", "current_map", "hall_conductivity", "drude_conductivity")
CURRENTS = ("current", "current_map")
ARGUMENT_AXES = ("mu", "temperature", "tau")
# Axes evaluated together in one pass over the k-grid (the cores take arrays of levels).
LEVEL_AXES = ("mu", "temperature")
COMPONENT_NAMES = ("x", "y", "z")
# Magnetic-field axes (PHYSICS.md section 5): its magnitude along magnetic_field_direction, or
# its components (B_z alone in 2D, where B is the scalar B_z).
MAGNETIC = "magnetic_field"
# Integrand evaluations (sweep points x positions x k-points) in flight at once, by default.
DEFAULT_POINTS_IN_FLIGHT = 2**15
# Bytes per integrand evaluation in flight, for N bands in d dimensions: about
# EVALUATION_BYTES (2d)^2 (N^2 + EVALUATION_OFFSET), complex entries of the kernel's N x N blocks
# for pairs of the 2d phase-space directions, plus per-point constants (textures, occupations).
# XLA's memory analysis of compiled batches (current, current_map, hall_conductivity; N = 2-16,
# d = 2-3) measured 0.2-3.6 kB for N = 2 and 7.5-37 kB for N = 8-16: this is 2-5x above them.
EVALUATION_BYTES = 16
EVALUATION_OFFSET = 32
# Bytes per further Fermi level of one evaluation: its occupations, pair masks and value
# (about n_bands^2 + d^3 entries, 8 bytes or less each), an upper estimate like the above.
LEVEL_BYTES = 8
# The integrand in B (transport/_magnetic.py) nests forward-mode derivatives over k. With the
# direct Jones-Zener series (three levels, until 2026-12-04) XLA's memory analysis of compiled B
# sweeps measured 4.7 kB per evaluation for a 2D two-band model (massive Dirac) and 22 kB for a 3D
# one (WeylLattice) on CPU, 0.5x and 1.1x of the estimate above; it is multiplied by d + 1 for
# them (5.8x and 3.7x above those measurements; the series summed by parts nests two levels and
# needs less, so the factor stays an upper estimate).


def evaluation_bytes(n_bands: int, d: int, n_levels: int = 1, magnetic: bool = False) -> int:
    """The bytes one integrand evaluation (at ``n_levels`` Fermi levels; ``magnetic``: the SSCT
    integrand in B) holds (an upper estimate, see EVALUATION_BYTES and LEVEL_BYTES)."""
    per_level = LEVEL_BYTES * (n_bands**2 + 4 * n_bands + d**3)
    base = EVALUATION_BYTES * (2 * d) ** 2 * (n_bands**2 + EVALUATION_OFFSET)
    return (base + (n_levels - 1) * per_level) * (d + 1 if magnetic else 1)


UNITS = {
    "mu": "energy",
    "temperature": "energy (k_B = 1)",
    "tau": "hbar / energy",
    "field_strength": "energy / (e length)",
    "field_x": "energy / (e length)",
    "field_y": "energy / (e length)",
    "field_z": "energy / (e length)",
    "magnetic_field_strength": "hbar / (e length^2)",
    "magnetic_field_x": "hbar / (e length^2)",
    "magnetic_field_y": "hbar / (e length^2)",
    "magnetic_field_z": "hbar / (e length^2)",
    "current": "e energy / (hbar length^(d-1))",
    "current_map": "e energy / (hbar length^(d-1))",
    "hall_conductivity": "e^2 / hbar (e^2/h = 1/(2 pi))",
    "drude_conductivity": "e^2 / hbar",
    "position": "index",
    "position_xy": "length",
    "component": "",
    "field_component": "",
}


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """A validated sweep, ready to run: everything :func:`run_sweep` needs, nothing computed yet.

    Made by :func:`prepare_sweep` (and, for a run configuration, by ``_config.build_plans``).

    Fields:
        quantity: one of :data:`QUANTITIES`; theory, manifolds: as for ``current`` (checked).
        names: the axis names in sweep order; coords: their values, name -> (n_axis,) float array.
        operands: the traced inputs of every sweep point: ``model``, ``points`` (n_k, d),
            ``weights`` (n_k,), ``positions`` (n_x, d), ``direction`` (d,) (unit vector of a
            ``field_strength`` axis, else zeros), ``field`` (d,), the fixed ``mu``,
            ``temperature``, ``tau`` (0-d; None where that argument is an axis), and
            ``magnetic_field`` (c,) with ``magnetic_direction`` (c,) (unit vector of a
            ``magnetic_field_strength`` axis, else zeros), c = 1 (B_z) in 2D, 3 in 3D; both None
            for a sweep without a magnetic field.
        chunk: k-points per integration chunk; batch: sweep points of the non-level axes per
            device per compiled call (each with all levels of the ``mu`` / ``temperature`` axes).
        devices: the devices the sweep axis is sharded over.
        split: ``"sweep"``: each device computes whole sweep points (a share of each batch);
            ``"k"`` (fewer sweep points than devices): every device computes all points of a
            batch on its share of the k-grid, and the shares are added.
    """

    quantity: str
    names: tuple[str, ...]
    coords: dict[str, np.ndarray]
    operands: dict[str, Any]
    theory: str
    manifolds: Manifolds
    chunk: int
    batch: int
    devices: tuple[Any, ...]
    split: Literal["sweep", "k"] = "sweep"


# ---------------------------------------------------------------------------------------------
# checks: each raises ValueError (TypeError for the wrong kind of object) naming the argument


def _is_parameter(name: str) -> bool:
    """Whether axis ``name`` is a model parameter path (not a transport argument or a field)."""
    return name not in ARGUMENT_AXES and not name.startswith(("field_", MAGNETIC))


def magnetic_axis_names(d: int) -> tuple[str, ...]:
    """The magnetic-field axes of a ``d``-dimensional model: the magnitude along
    ``magnetic_field_direction`` and the components (only B_z in 2D)."""
    components = ("z",) if d == 2 else COMPONENT_NAMES if d == 3 else ()
    return (f"{MAGNETIC}_strength", *(f"{MAGNETIC}_{c}" for c in components))


def _axis_values(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:
        array = array[None]
    if array.ndim != 1 or array.size == 0:
        fail(f"axes[{name!r}] must be a non-empty 1D list of numbers, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        fail(f"axes[{name!r}] must be finite, got {array}")
    return array


def _check_parameter(model: AbstractModel, name: str) -> None:
    """``name`` is a dotted path (``"mass"``, ``"mass.amplitude"``) to a real scalar of the model."""
    try:
        leaf = get_path(model, name)
    except AttributeError:
        fail(
            f"axes: unknown axis {name!r}: not one of field_strength, field_x/_y/_z, "
            f"{MAGNETIC}_strength, {MAGNETIC}_x/_y/_z, {', '.join(ARGUMENT_AXES)}, "
            f"nor a parameter of {type(model).__name__}"
        )
    if not (eqx.is_inexact_array(leaf) and jnp.shape(leaf) == () and not jnp.iscomplexobj(leaf)):
        fail(
            f"axes[{name!r}]: model parameter {name!r} of {type(model).__name__} is not a real scalar "
            f"(got {type(leaf).__name__}); sweep a texture's own parameters, e.g. '{name}.amplitude'"
        )


def _check_parameter_values(model: AbstractModel, coords: Mapping[str, np.ndarray]) -> None:
    """Every value of a model-parameter axis passes the model's own value checks (e.g. a texture's
    period must be non-zero, ``_guards.model_value_checks``), named with the axis and value."""
    for name, values in coords.items():
        if not _is_parameter(name):
            continue
        for value in values:
            try:
                model_value_checks(Guards(), replace_path(model, name, jnp.asarray(value)))
            except ValueError as error:
                fail(f"axes[{name!r}] = {value:g}: {error}")


def _check_kind(
    model: AbstractModel, axes: Any, quantity: Any, theory: Any, manifolds: ManifoldsLike
) -> Manifolds:
    """What is computed: the model, quantity, theory, the axes mapping and the manifolds."""
    check_model(model)
    one_of(quantity, "quantity", QUANTITIES)
    one_of(theory, "theory", THEORIES)
    if not isinstance(axes, Mapping):
        fail(f"axes must be a mapping from axis name to values, got {type(axes).__name__}")
    manifolds = check_partition(manifolds, int(model.n_bands))
    if theory == "ssct" and any(len(m) > 1 for m in manifolds):
        fail(f"theory='ssct' treats every band as its own manifold, got manifolds={manifolds}")
    return manifolds


def _check_axes(
    model: AbstractModel, axes: Mapping[str, Any], quantity: str
) -> tuple[tuple[str, ...], dict[str, np.ndarray], list[str]]:
    """(axis names, their values, the field axes): every axis a known, finite, 1D list."""
    d = int(model.dim)
    names = tuple(axes)
    coords = {name: _axis_values(name, axes[name]) for name in names}
    field_axes = [name for name in names if name.startswith("field_")]
    allowed = ("field_strength", *(f"field_{c}" for c in COMPONENT_NAMES[:d]))
    allowed += magnetic_axis_names(d)
    for name in names:
        if name.startswith(("field_", MAGNETIC)) and name not in allowed:
            fail(f"axes: unknown axis {name!r} for a model of dim = {d} (field axes: {allowed})")
    if field_axes and quantity not in CURRENTS:
        fail(f"axes {field_axes}: quantity {quantity!r} is a linear response and takes no field")
    for name in names:
        if _is_parameter(name):
            _check_parameter(model, name)
    return names, coords, field_axes


def _fixed_value(
    name: str, given: Any, required: bool, coords: Mapping[str, np.ndarray], quantity: str
) -> np.ndarray | None:
    """The values of argument ``name``: its axis, or the fixed scalar ``given`` as shape (1,)."""
    if name in coords:
        if given is not None:
            fail(f"{name} is both an axis and a fixed argument; give it once")
        return coords[name]
    if given is None:
        if required:
            fail(f"{name} is required for quantity {quantity!r} (give {name}= or an axis {name!r})")
        return None
    array = np.asarray(given, dtype=float)
    if array.shape != ():
        fail(f"{name} must be a scalar, got shape {array.shape}")
    if not np.isfinite(array):
        fail(f"{name} must be finite, got {given!r}")
    return array[None]


def _check_arguments(
    coords: Mapping[str, np.ndarray],
    quantity: str,
    theory: str,
    mu: Any,
    temperature: Any,
    tau: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The values of mu, temperature and tau (axis or fixed), with T and tau in range."""
    is_current = quantity in CURRENTS
    zero_temperature_ok = quantity == "hall_conductivity" or (
        is_current and theory == "nonabelian_hall"
    )
    needs_tau = quantity == "drude_conductivity" or (is_current and theory != "nonabelian_hall")
    mu_values = _fixed_value("mu", mu, True, coords, quantity)
    temperature_values = _fixed_value("temperature", temperature, True, coords, quantity)
    tau_values = _fixed_value("tau", tau, needs_tau, coords, quantity)
    if zero_temperature_ok and np.any(temperature_values < 0):
        fail(
            f"temperature must be >= 0 (T = 0 is the step occupation), got {temperature_values.min()}"
        )
    if not zero_temperature_ok and np.any(temperature_values <= 0):
        fail(f"temperature must be > 0 for quantity {quantity!r}, got {temperature_values.min()}")
    if tau_values is not None and needs_tau and np.any(tau_values <= 0):
        fail(f"tau must be > 0 (a relaxation time), got {tau_values.min()}")
    return mu_values, temperature_values, tau_values


def _check_field(
    coords: Mapping[str, np.ndarray],
    field_axes: Sequence[str],
    quantity: str,
    field: Any,
    field_direction: Any,
    d: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(fixed field (d,), unit direction of a field_strength axis (d,)); zeros where unused."""
    base_field = np.zeros(d)
    direction = np.zeros(d)
    if quantity not in CURRENTS:
        if field is not None or field_direction is not None:
            fail(f"quantity {quantity!r} is a linear response: drop field / field_direction")
        return base_field, direction
    if "field_strength" in coords:
        if field is not None:
            fail("give field_direction with a 'field_strength' axis, not field")
        if field_direction is None:
            fail("a 'field_strength' axis needs field_direction (a (d,) vector)")
        direction = np.asarray(field_direction, dtype=float)
        if direction.shape != (d,) or not np.all(np.isfinite(direction)) or not np.any(direction):
            fail(
                f"field_direction must be a finite, non-zero ({d},) vector, got {field_direction!r}"
            )
        direction = direction / np.linalg.norm(direction)
    elif field is not None:
        base_field = np.asarray(field, dtype=float)
        if base_field.shape != (d,) or not np.all(np.isfinite(base_field)):
            fail(f"field must be a finite ({d},) vector, got {field!r}")
    elif not field_axes:
        fail(f"quantity {quantity!r} needs field= (a ({d},) vector) or a field axis")
    return base_field, direction


def _magnetic_direction(value: Any, d: int) -> np.ndarray:
    """The unit direction (c,) of a ``magnetic_field_strength`` axis: a finite, non-zero (3,)
    vector in 3D; in 2D B is B_z, and the direction (default +z) a non-zero number (its sign)."""
    if d == 2 and value is None:
        return np.ones(1)
    if value is None:
        fail(f"a '{MAGNETIC}_strength' axis needs {MAGNETIC}_direction (a (3,) vector)")
    direction = np.asarray(value, dtype=float)
    wanted = ((), (1,)) if d == 2 else ((3,),)
    if direction.shape not in wanted or not np.all(np.isfinite(direction)) or not np.any(direction):
        shape = "number (the sign of B_z)" if d == 2 else "(3,) vector"
        fail(f"{MAGNETIC}_direction must be a finite, non-zero {shape}, got {value!r}")
    direction = direction.reshape(-1)
    return direction / np.linalg.norm(direction)


def _check_magnetic(
    coords: Mapping[str, np.ndarray],
    quantity: str,
    theory: str,
    value: Any,
    direction: Any,
    d: int,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(fixed B (c,), unit direction of a magnetic_field_strength axis (c,), zeros if none), or
    (None, None) when the sweep has no magnetic field. B is (B_z,) in 2D, (3,) in 3D
    (PHYSICS.md section 5); the SSCT and MSCT currents take it (:mod:`.transport._magnetic`,
    :mod:`.transport._magnetic_msct`)."""
    axes = [name for name in coords if name.startswith(MAGNETIC)]
    if not axes and value is None:
        if direction is not None:
            fail(f"{MAGNETIC}_direction is for a '{MAGNETIC}_strength' axis; there is none")
        return None, None
    given = f"axes {axes}" if axes else MAGNETIC
    if quantity not in CURRENTS:
        fail(f"{given}: quantity {quantity!r} takes no magnetic field (only the currents do)")
    if theory not in ("ssct", "msct"):
        raise NotImplementedError(
            f"{given}: the current in a magnetic field is implemented for theory='ssct' and "
            f"'msct', got theory={theory!r} (Eq. 53 in B needs the non-Abelian wavepacket)"
        )
    if d not in (2, 3):
        fail(f"{given}: a magnetic field needs a 2D or 3D model (got dim = {d})")
    unit = np.zeros(1 if d == 2 else 3)
    if f"{MAGNETIC}_strength" in coords:
        if value is not None:
            fail(f"give {MAGNETIC}_direction with a '{MAGNETIC}_strength' axis, not {MAGNETIC}")
        return np.zeros_like(unit), _magnetic_direction(direction, d)
    if direction is not None:
        fail(f"{MAGNETIC}_direction is for a '{MAGNETIC}_strength' axis; there is none")
    if value is None:
        return unit, unit
    if callable(value):
        fail(f"{MAGNETIC} must be numbers in a sweep (a uniform B), got a callable")
    base = np.asarray(magnetic_field(value, d), dtype=float)
    if not np.all(np.isfinite(base)):
        fail(f"{MAGNETIC} must be finite, got {value!r}")
    return base, unit


def _check_uniform(model: AbstractModel, position: np.ndarray, point: Array) -> None:
    """The current in B is for uniform models (H independent of x): raise before running."""
    if depends_on_position(model, jnp.asarray(position), point):
        fail(
            f"{MAGNETIC}: the SSCT current in B needs a uniform model (H independent of x), and so "
            f"does the MSCT current in B; {type(model).__name__} depends on position"
        )


def _check_positions(quantity: str, x: Any, xs: Any, d: int) -> np.ndarray:
    """The positions (n_x, d): ``xs`` for a current map, else ``x`` (default: the origin) as (1, d)."""
    if quantity == "current_map":
        if xs is None:
            fail("quantity 'current_map' needs xs (n_x, d) positions")
        if x is not None:
            fail("give xs (positions) for 'current_map', not x")
        positions = np.asarray(xs, dtype=float)
        if positions.ndim != 2 or positions.shape[1] != d or positions.shape[0] == 0:
            fail(f"xs must have shape (n_x, {d}), got {positions.shape}")
    else:
        if xs is not None:
            fail(f"xs is only for quantity 'current_map' (got quantity {quantity!r}); use x")
        positions = np.zeros((1, d)) if x is None else np.asarray(x, dtype=float)[None]
        if positions.shape != (1, d):
            fail(f"x must have shape ({d},), got {np.shape(x)}")
    if not np.all(np.isfinite(positions)):
        fail("positions (x / xs) must be finite")
    return positions


def _check_sizes(
    n_total: int,
    n_points: int,
    n_positions: int,
    batch_size: Any,
    chunk_size: Any,
    devices: Sequence[Any] | None,
    points_in_flight: int = DEFAULT_POINTS_IN_FLIGHT,
) -> tuple[tuple[Any, ...], int, int, Literal["sweep", "k"]]:
    """(devices, sweep points per device per call, k-points per chunk, split).

    ``n_total``: the sweep points that are batched (those of the non-level axes). With at least
    as many of them as devices each device takes whole points (split ``"sweep"``), else every
    device takes its share of every point's k-points (``"k"``). The defaults keep about
    ``points_in_flight`` integrand evaluations (sweep points x positions x k-points) in flight
    per device: a batch is that bound over one sweep point's evaluations on a device (k-points x
    positions), at least 2 and at most a device's share of the sweep; the chunk then cuts the
    k-integral so that batch x positions x chunk stays within the bound.
    """
    devices = tuple(jax.devices()) if devices is None else device_tuple(devices)
    split = "k" if n_total < len(devices) else "sweep"
    if split == "k":
        n_points = -(-n_points // len(devices))
        per_device = n_total
    else:
        per_device = -(-n_total // len(devices))
    work = n_points * n_positions
    if batch_size is None:
        batch = max(
            1, min(per_device, points_in_flight // max(1, min(work, points_in_flight // 2)))
        )
    else:  # a batch larger than a device's share of the sweep would only compute padding
        batch = min(integer(batch_size, "batch_size"), per_device)
    if chunk_size is None:
        chunk = max(1, min(n_points, points_in_flight // (n_positions * batch)))
    else:
        chunk = min(integer(chunk_size, "chunk_size"), n_points)
    return devices, batch, chunk, split


def _check_working_set(
    model: AbstractModel,
    n_total: int,
    n_axes: int,
    shapes: tuple[int, int, int, int, int],
    devices,
    split: str = "sweep",
    magnetic: bool = False,
) -> None:
    """Refuse a sweep whose memory exceeds the machine, before anything is allocated.

    ``shapes``: (k-points, positions, batch, chunk, Fermi levels per pass). Per device: batch x
    positions x chunk evaluations in flight, :func:`evaluation_bytes` each (``magnetic``: the
    integrand in B), and the grid; on the host: the sweep points (padded to whole calls) and the
    results, float64.
    """
    n_points, n_positions, batch, chunk, n_levels = shapes
    n, d = int(model.n_bands), int(model.dim)
    in_flight = batch * n_positions * chunk
    per_evaluation = evaluation_bytes(n, d, n_levels, magnetic)
    check_memory(
        in_flight * per_evaluation + 8 * (d + 1) * n_points,
        f"sweep: batch {batch} x {n_positions} position(s) x chunk {chunk} k-points = "
        f"{in_flight:.3g} integrand evaluations in flight (about {per_evaluation} B each)",
        devices,
    )
    per_call = batch * (len(devices) if split == "sweep" else 1) * n_levels
    host = 8 * -(-n_total // per_call) * per_call * (n_axes + n_positions * d * d) * 2
    check_memory(host, f"sweep: {n_total:.3g} sweep points (inputs and results)")


def _fixed_operands(
    coords: Mapping[str, np.ndarray],
    values: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    base_field: np.ndarray,
) -> dict[str, Array | None]:
    """The fixed mu, temperature, tau as 0-d arrays (None where swept; tau 0 if unused), field (d,)."""
    mu_values, temperature_values, tau_values = values
    tau_values = np.zeros(1) if tau_values is None else tau_values
    fixed: dict[str, Array | None] = {}
    for key, value in (("mu", mu_values), ("temperature", temperature_values), ("tau", tau_values)):
        fixed[key] = None if key in coords else jnp.asarray(value).reshape(())
    fixed["field"] = jnp.asarray(base_field)
    return fixed


def prepare_sweep(
    model: AbstractModel,
    grid: KGrid,
    axes: Mapping[str, ArrayLike],
    *,
    quantity: Quantity = "current",
    field: FieldLike | None = None,
    field_direction: FieldLike | None = None,
    mu: RealScalarLike | None = None,
    temperature: RealScalarLike | None = None,
    tau: RealScalarLike | None = None,
    theory: Theory = "msct",
    manifolds: ManifoldsLike = None,
    x: PositionLike | None = None,
    xs: Float[ArrayLike, "nx d"] | None = None,
    chunk_size: int | None = None,
    batch_size: int | None = None,
    devices: Sequence[Any] | None = None,
    magnetic_field: FieldLike | None = None,
    magnetic_field_direction: FieldLike | None = None,
) -> SweepPlan:
    """Validate a sweep's arguments without running it (see :func:`sweep`); raises ValueError.

    Returns the :class:`SweepPlan` that :func:`run_sweep` runs.
    """
    manifolds = _check_kind(model, axes, quantity, theory, manifolds)
    d = int(model.dim)
    points, weights = check_grid(grid, d)
    check_grid_values(Guards(), points, weights)
    names, coords, field_axes = _check_axes(model, axes, quantity)
    _check_parameter_values(model, coords)
    values = _check_arguments(coords, quantity, theory, mu, temperature, tau)
    base_field, direction = _check_field(coords, field_axes, quantity, field, field_direction, d)
    magnetic = _check_magnetic(
        coords, quantity, theory, magnetic_field, magnetic_field_direction, d
    )
    positions = _check_positions(quantity, x, xs, d)
    check_output_shape(model, jnp.asarray(positions[0]), points[0])
    check_concrete_model(model)
    if magnetic[0] is not None:
        _check_uniform(model, positions[0], points[0])
    n_total = math.prod(len(v) for v in coords.values())
    n_levels = math.prod(len(coords[name]) for name in names if name in LEVEL_AXES)
    # the memory of an evaluation grows with the levels it carries (and in B): fewer in flight
    n, in_b = int(model.n_bands), magnetic[0] is not None
    ratio = evaluation_bytes(n, d, n_levels, in_b) / evaluation_bytes(n, d)
    devices, batch, chunk, split = _check_sizes(
        n_total // n_levels,
        points.shape[0],
        positions.shape[0],
        batch_size,
        chunk_size,
        devices,
        max(2, int(DEFAULT_POINTS_IN_FLIGHT / ratio)),
    )
    shapes = (points.shape[0], positions.shape[0], batch, chunk, n_levels)
    _check_working_set(model, n_total, len(names), shapes, devices, split, in_b)
    operands = {
        "model": model,
        "points": points,
        "weights": weights,
        "positions": jnp.asarray(positions),
        "direction": jnp.asarray(direction),
        **_fixed_operands(coords, values, base_field),
        # None (no magnetic field: the plain integrands) or B (c,) and a strength axis' direction
        "magnetic_field": None if magnetic[0] is None else jnp.asarray(magnetic[0]),
        "magnetic_direction": None if magnetic[1] is None else jnp.asarray(magnetic[1]),
    }
    return SweepPlan(
        quantity, names, coords, operands, theory, manifolds, chunk, batch, devices, split
    )


# ---------------------------------------------------------------------------------------------
# running


def _outer_names(plan: SweepPlan) -> tuple[str, ...]:
    """The axes batched as sweep points: all but the level axes (mu, temperature)."""
    return tuple(name for name in plan.names if name not in LEVEL_AXES)


def _level_names(plan: SweepPlan) -> tuple[str, ...]:
    """The level axes (mu, temperature) of the sweep, in sweep order."""
    return tuple(name for name in plan.names if name in LEVEL_AXES)


def _levels(plan: SweepPlan) -> tuple[np.ndarray, np.ndarray]:
    """(mu, temperature), each (L,): every sweep point's levels, the product of the level axes in
    sweep order (C order; a fixed value where that argument is not swept)."""
    names = _level_names(plan)
    mesh = np.meshgrid(*(plan.coords[name] for name in names), indexing="ij")
    values = {name: m.reshape(-1) for name, m in zip(names, mesh)}
    size = mesh[0].size if names else 1
    mu, temperature = (
        values[key] if key in values else np.full(size, float(plan.operands[key]))
        for key in LEVEL_AXES
    )
    return mu, temperature


def _swept_vector(base: Array, direction: Array, swept: Mapping[str, Array], prefix: str) -> Array:
    """A sweep point's field E (d,) or magnetic field B (c,): ``base``, or a ``<prefix>_strength``
    axis' value times ``direction``, with ``<prefix>_x/_y/_z`` axes setting single components
    (a (1,) B is B_z)."""
    vector = base
    if f"{prefix}_strength" in swept:
        vector = swept[f"{prefix}_strength"] * direction
    names = ("z",) if base.shape[0] == 1 else COMPONENT_NAMES[: base.shape[0]]
    for axis, component in enumerate(names):
        if f"{prefix}_{component}" in swept:
            vector = vector.at[axis].set(swept[f"{prefix}_{component}"])
    return vector


def _evaluate(
    plan: SweepPlan, operands: dict[str, Any], values: Float[Array, " n_axes"]
) -> tuple[Array, Array]:
    """The quantity at one sweep point, at all its levels (L, ...), and the k-sum's diagnostics.

    ``values`` holds the point's values of the non-level axes in the order of ``plan.names``;
    model-parameter axes replace that parameter of the model, the others the transport arguments;
    ``operands["levels"]`` = (mu, temperature), each (L,), go to the core as arrays (the same cores
    as :func:`~semiclassical_jax.current` and friends, one pass over k for all levels).
    """
    model = operands["model"]
    swept = {name: values[i] for i, name in enumerate(_outer_names(plan))}
    for name, value in swept.items():
        if _is_parameter(name):
            model = replace_path(model, name, value)
    argument = dict(zip(LEVEL_AXES, operands["levels"]))
    argument["tau"] = swept.get("tau", operands["tau"])
    points, weights, positions = operands["points"], operands["weights"], operands["positions"]
    devices = plan.devices if plan.split == "k" else ()
    if plan.quantity in CURRENTS:
        field = _swept_vector(operands["field"], operands["direction"], swept, "field")
        magnetic = operands["magnetic_field"]
        if magnetic is not None:
            magnetic = _swept_vector(magnetic, operands["magnetic_direction"], swept, MAGNETIC)
        result, diagnostics = current_core(
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
            devices,
            magnetic,
        )
        # (n_x, L, d) -> (L, n_x, d) for a map, (L, d) at one position
        return (jnp.moveaxis(result, 0, 1) if plan.quantity == "current_map" else result[0]), (
            diagnostics
        )
    kind = "hall" if plan.quantity == "hall_conductivity" else "drude"
    result, diagnostics = response_core(
        model,
        positions,
        points,
        weights,
        argument["mu"],
        argument["temperature"],
        argument["tau"],
        kind,
        plan.chunk,
        devices,
    )
    return result[0], diagnostics


def _batch_operands(plan: SweepPlan) -> dict[str, Any]:
    """What every sweep point of a batch shares: ``plan.operands`` and ``"levels"``, the (mu,
    temperature) arrays of :func:`_levels` (:func:`_evaluate`'s operands)."""
    return {**plan.operands, "levels": tuple(jnp.asarray(a) for a in _levels(plan))}


def _compiled_batch(plan: SweepPlan) -> Callable[[Array], tuple[Array, Array]]:
    """jit(vmap over a batch of sweep points), shard_map-ped over plan.devices when there are
    several and the split is ``"sweep"`` (for ``"k"`` the cores split each k-sum). With several
    devices the outputs are replicated on all of them (gathered by XLA), so that every process
    reads the whole batch."""
    dynamic, static = eqx.partition(_batch_operands(plan), eqx.is_array)

    def run(dynamic_operands, values):
        operands = eqx.combine(dynamic_operands, static)
        return jax.vmap(lambda v: _evaluate(plan, operands, v))(values)

    if len(plan.devices) == 1:
        compiled = jax.jit(run)
        return lambda values: compiled(dynamic, values)
    mesh = Mesh(np.array(plan.devices), ("sweep",))
    if plan.split == "sweep":
        run = jax.shard_map(
            run,
            mesh=mesh,
            in_specs=(PartitionSpec(), PartitionSpec("sweep")),
            out_specs=(PartitionSpec("sweep"), PartitionSpec("sweep")),
            check_vma=False,
        )
    compiled = jax.jit(run, out_shardings=NamedSharding(mesh, PartitionSpec()))
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


def _flat_points(plan: SweepPlan) -> np.ndarray:
    """The batched sweep points (n_outer, n_outer_axes), the Cartesian product of the non-level
    axes (C order)."""
    names = _outer_names(plan)
    if not names:
        return np.zeros((1, 0))
    mesh = np.meshgrid(*(plan.coords[name] for name in names), indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=-1)


def _run_batches(plan: SweepPlan, flat: np.ndarray, progress: bool | str) -> tuple[np.ndarray, Any]:
    """(values, diagnostics) at every sweep point: one compiled call per batch on all devices."""
    n_total = flat.shape[0]
    per_call = plan.batch * (len(plan.devices) if plan.split == "sweep" else 1)
    n_calls = -(-n_total // per_call)
    padded = np.concatenate([flat, np.repeat(flat[-1:], n_calls * per_call - n_total, axis=0)])
    compiled = _compiled_batch(plan)
    label = progress if isinstance(progress, str) else f"sweep {plan.quantity}"
    bar = _Progress(label, n_calls, sys.stderr) if progress and is_main_process() else None
    outputs, checks = [], []
    for call in range(n_calls):
        values = jnp.asarray(padded[call * per_call : (call + 1) * per_call])
        result, diagnostics = compiled(values)
        outputs.append(np.asarray(result))
        checks.append(jax.tree_util.tree_map(np.asarray, diagnostics))
        if bar is not None:
            bar.update(call + 1)
    diagnostics = jax.tree_util.tree_map(lambda *a: np.concatenate(a)[:n_total], *checks)
    return np.concatenate(outputs)[:n_total], diagnostics


def _check_finite(plan: SweepPlan, flat: np.ndarray, diagnostics: Any) -> None:
    """Raise naming the first sweep point whose k-integral failed a value check (the model not
    Hermitian, a gap the quantity divides by closed on a grid point, a value not finite): the same
    checks and messages as the public functions (transport._cores.check_diagnostics).

    ``flat``: the batched points (n_outer, n_outer_axes); a closed gap also names the first level
    (mu, temperature) at which it is relevant."""
    bad = diagnostics_failed(diagnostics)
    if not np.any(bad):
        return
    first = int(np.argmax(bad))
    point = jax.tree_util.tree_map(lambda a: a[first], diagnostics)
    named = {name: flat[first, i] for i, name in enumerate(_outer_names(plan))}
    if gap_closed(point) and int(point.level) >= 0:  # -1: hybridised bands (MSCT in B) touch
        level = dict(zip(LEVEL_AXES, (a[int(point.level)] for a in _levels(plan))))
        named.update({name: level[name] for name in _level_names(plan)})
    where = (
        ", ".join(f"{name}={named[name]:g}" for name in plan.names if name in named)
        or "the only point"
    )
    operands = plan.operands
    check_diagnostics(
        Guards(), point, f"{plan.quantity} at {where}", operands["points"], operands["positions"]
    )


# ---------------------------------------------------------------------------------------------
# labelling


def _dims_and_coords(plan: SweepPlan) -> tuple[list[str], dict[str, np.ndarray]]:
    """The result's dims (axes, [position], component, [field_component]) and coordinates."""
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
    return dims, coords


def _grid_record(points: Array, weights: Array) -> dict[str, Any]:
    """The k-grid of a sweep: its size, extent, total weight and a SHA-256 of points and weights
    (float64 bytes), enough to tell whether another grid is the same one."""
    points, weights = np.asarray(points, dtype=float), np.asarray(weights, dtype=float)
    digest = hashlib.sha256(points.tobytes() + weights.tobytes()).hexdigest()
    return {
        "points": int(points.shape[0]),
        "dim": int(points.shape[1]),
        "k_max": float(np.max(np.linalg.norm(points, axis=1))),
        "weight_sum": float(np.sum(weights)),
        "sha256": digest,
    }


def _versions() -> dict[str, str]:
    return {
        "semiclassical_jax": package_version(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "equinox": eqx.__version__,
        "python": platform.python_version(),
    }


def _metadata(plan: SweepPlan, start: float, attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run's arguments and circumstances (JSON-serialisable), then the caller's ``attrs``:
    the model's every parameter (:func:`~semiclassical_jax._results.describe`), the grid
    (:func:`_grid_record`), the versions of the package and its dependencies and the units of the
    values (:func:`~semiclassical_jax._results.unit_attrs`)."""
    fixed = {
        key: (None if plan.operands[key] is None else np.asarray(plan.operands[key]).tolist())
        for key in (*ARGUMENT_AXES, "field")
    }
    if "field_strength" in plan.coords:
        fixed["field_direction"] = np.asarray(plan.operands["direction"]).tolist()
    for key in (MAGNETIC, "magnetic_direction"):
        value = plan.operands[key]
        if value is not None and (key == MAGNETIC or f"{MAGNETIC}_strength" in plan.coords):
            name = key if key == MAGNETIC else f"{MAGNETIC}_direction"
            fixed[name] = np.asarray(value).tolist()
    return {
        "quantity": plan.quantity,
        "theory": plan.theory if plan.quantity in CURRENTS else None,
        "manifolds": [list(m) for m in plan.manifolds],
        "fixed": fixed,
        "x": np.asarray(plan.operands["positions"][0]).tolist()
        if plan.quantity != "current_map"
        else None,
        "model": describe(plan.operands["model"]),
        "grid": _grid_record(plan.operands["points"], plan.operands["weights"]),
        "grid_points": int(plan.operands["points"].shape[0]),
        "chunk_size": plan.chunk,
        "batch_size": plan.batch,
        "devices": [str(device) for device in plan.devices],
        "split": plan.split,
        "processes": jax.process_count(),
        "seconds": time.perf_counter() - start,
        "jax_version": jax.__version__,
        "versions": _versions(),
        **unit_attrs(plan.quantity, plan.operands["model"], int(plan.operands["points"].shape[1])),
        **(dict(attrs) if attrs else {}),
    }


def _in_sweep_order(plan: SweepPlan, values: np.ndarray) -> np.ndarray:
    """(n_outer, L, ...) values as (*axes, ...): the non-level and level axes unflattened, then
    put back into the order of ``plan.names``."""
    arranged = (*_outer_names(plan), *_level_names(plan))
    shape = tuple(len(plan.coords[name]) for name in arranged)
    values = values.reshape(shape + values.shape[2:])
    order = [arranged.index(name) for name in plan.names]
    return values.transpose(order + list(range(len(order), values.ndim)))


def run_sweep(
    plan: SweepPlan, *, progress: bool | str = False, attrs: Mapping[str, Any] | None = None
) -> SweepResult:
    """Run a validated plan (from :func:`prepare_sweep`) and label its result.

    Raises ValueError naming the first sweep point whose result is not finite.
    """
    start = time.perf_counter()
    flat = _flat_points(plan)
    values, diagnostics = _run_batches(plan, flat, progress)
    _check_finite(plan, flat, diagnostics)
    dims, coords = _dims_and_coords(plan)
    values = _in_sweep_order(plan, values)
    units = {name: UNITS.get(name, "model units") for name in coords}
    units[plan.quantity] = UNITS[plan.quantity]
    metadata = _metadata(plan, start, attrs)
    return SweepResult(plan.quantity, values, tuple(dims), coords, units, metadata)


def sweep(
    model: AbstractModel,
    grid: KGrid,
    axes: Mapping[str, ArrayLike],
    *,
    quantity: Quantity = "current",
    field: FieldLike | None = None,
    field_direction: FieldLike | None = None,
    mu: RealScalarLike | None = None,
    temperature: RealScalarLike | None = None,
    tau: RealScalarLike | None = None,
    theory: Theory = "msct",
    manifolds: ManifoldsLike = None,
    x: PositionLike | None = None,
    xs: Float[ArrayLike, "nx d"] | None = None,
    chunk_size: int | None = None,
    batch_size: int | None = None,
    devices: Sequence[Any] | None = None,
    progress: bool | str = False,
    attrs: Mapping[str, Any] | None = None,
    magnetic_field: FieldLike | None = None,
    magnetic_field_direction: FieldLike | None = None,
) -> SweepResult:
    """A transport quantity on the Cartesian product of named axes, as one compiled calculation.

    Arguments:
        model, grid: as for :func:`~semiclassical_jax.current` (a model, a ``KGrid``).
        axes: ``{name: values}``, swept in this order. Names: ``"mu"``, ``"temperature"``,
            ``"tau"``; ``"field_strength"`` (magnitude along ``field_direction``) or ``"field_x"``,
            ``"field_y"`` (, ``"field_z"``) (components, the others from ``field``);
            ``"magnetic_field_strength"`` (magnitude of B along ``magnetic_field_direction``) or
            ``"magnetic_field_x"``, ``"_y"``, ``"_z"`` (components, the others from
            ``magnetic_field``; only ``"magnetic_field_z"`` in 2D); any real scalar model
            parameter by attribute path (``"mass"``, ``"velocity"``, or a texture's
            ``"mass.amplitude"``).
        quantity: ``"current"`` (d,), ``"current_map"`` (n_x, d) at ``xs``, ``"hall_conductivity"``
            or ``"drude_conductivity"`` (d, d); ``theory`` / ``manifolds`` as for ``current``.
        field, field_direction, mu, temperature, tau, x, xs: fixed values of what is not swept.
        chunk_size: k-points per integration chunk; batch_size: sweep points per device per call
            (defaults keep about 2^15 integrand evaluations in flight: bounded memory).
        devices: devices to shard the sweep axis over (default: all of ``jax.devices()``, those
            of every process after :func:`semiclassical_jax.distributed.initialize`; every
            process gets the whole result).
        progress: print a progress bar with ETA per batch to stderr (a string is used as its label).
        magnetic_field, magnetic_field_direction: a fixed uniform B (a scalar B_z in 2D, (3,) in
            3D; units hbar / (e length^2)) and the direction of a ``"magnetic_field_strength"``
            axis ((3,) in 3D; in 2D optional, +z by default). A sweep with B or a B axis computes
            the current in B of :func:`~semiclassical_jax.current` (``theory="ssct"`` or
            ``"msct"``, a uniform model, a ``"current"`` or ``"current_map"`` quantity;
            PHYSICS.md section 5): B is traced like the other axes, so a B axis is one
            compilation.

    Returns a :class:`~semiclassical_jax.SweepResult` with dims ``(*axes, ["position"], "component",
    ["field_component"])``, coordinates, units (natural units, PHYSICS.md) and the arguments in
    ``attrs``. Arguments are validated before anything runs; a non-finite result raises and names
    the sweep point.

    ``mu`` and ``temperature`` axes are Fermi-level scans: for each point of the other axes all
    their levels are evaluated in one pass over the k-grid (each k-point's geometry computed once),
    so a long ``mu`` axis costs little more than one value.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> disk = grids.disk(2.0, 8, 8, breaks=[0.4])
        >>> result = sj.sweep(
        ...     models.MassiveDirac(1.0, 0.3), disk, {"mass": np.array([0.3, 0.6])},
        ...     field=[0.01, 0.0], mu=0.0, temperature=0.02, tau=10.0, theory="ssct",
        ... )
        >>> # mu in the gap: J_y = sigma_yx E_x, sigma_yx = (1 - Delta / sqrt(Delta^2 + v^2 R^2)) / 4 pi
        >>> #   on the disk of radius R = 2: 0.0678 and 0.0567
        >>> print(result.dims, np.round(result.values, 6) + 0.0)
        ('mass', 'component') [[0.       0.000678]
         [0.       0.000567]]
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
        magnetic_field=magnetic_field,
        magnetic_field_direction=magnetic_field_direction,
    )
    return run_sweep(plan, progress=progress, attrs=attrs)
