"""The TOML run configuration of ``semiclassical-jax run``: parsing and validation.

Schema (every key is checked; an error names the key and the value):

    [model]                      type = one of MODELS; the rest are its parameters. A parameter is a
                                 number or a texture table {texture = one of TEXTURES, ...its fields}.
    [grid]                       type = "disk" | "box" | "brillouin_zone" | "adaptive"; the rest are
                                 the keyword arguments of semiclassical_jax.grids.<type>. Value lists
                                 (breaks) use the VALUES syntax below.
    [[sweep]]                    one table per sweep, run in order; each writes <name>.npz and .png.
      name                       required; 1 to 100 letters, digits, '_' and '-' (it names files)
      quantity                   "current" (default) | "current_map" | "hall_conductivity" | "drude_conductivity"
      theory                     "msct" (default) | "ssct" | "nonabelian_hall"
      manifolds                  list of lists of band indices (a partition); default: one band each
      mu, temperature, tau       numbers (fixed values of what is not swept)
      field, field_direction, x  vectors of length d
      magnetic_field             uniform B (theory "ssct" or "msct"): a number B_z in 2D, [Bx, By, Bz] in 3D
      magnetic_field_direction   direction of a magnetic_field_strength axis: [x, y, z] in 3D
                                 (in 2D optional: B is along z; a number gives its sign)
      xs                         positions for current_map: [[x, y], ...], or {line = {start, stop, num}},
                                 or {cell = {a1, a2, n, origin}} (an n x n grid over a unit cell)
      axes                       table {axis = VALUES}: mu, temperature, tau, field_strength,
                                 field_x, field_y, magnetic_field_strength, magnetic_field_x/_y/_z
                                 (only _z in 2D), or a model parameter path such as "mass.amplitude"
      chunk_size, batch_size     positive integers (memory / batching; optional)
      model, grid                optional tables that replace the top-level ones for this sweep
    VALUES                       a number, a list of numbers, or a table with any of
                                 linspace / geomspace = [start, stop, num] (merged, sorted).
"""

import inspect
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any

import numpy as np

from . import grids, models, textures
from ._guards import fail, integer
from ._sweep import QUANTITIES, SweepPlan, prepare_sweep
from .grids._grid import check_memory

MODELS = ("MassiveDirac", "DiracWithRemoteBand", "QWZ", "Haldane", "KaneMele")
TEXTURES = ("HexagonalMoire", "CosineModulation", "DomainWall")
GRIDS = ("disk", "box", "brillouin_zone", "adaptive")
TOP_KEYS = ("model", "grid", "sweep")
SWEEP_KEYS = (
    "name",
    "quantity",
    "theory",
    "manifolds",
    "mu",
    "temperature",
    "tau",
    "field",
    "field_direction",
    "magnetic_field",
    "magnetic_field_direction",
    "x",
    "xs",
    "axes",
    "chunk_size",
    "batch_size",
    "model",
    "grid",
)
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,100}")
# The integer keyword arguments of the grids, with their least value.
GRID_INTEGERS = {
    "n": 1,
    "n_radial": 1,
    "n_angle": 1,
    "dim": 1,
    "n_start": 1,
    "order": 1,
    "max_level": 0,
    "max_points": 1,
}


class ConfigError(ValueError):
    """A bad run configuration; the message names the key."""


def default_config_text() -> str:
    """The embedded default configuration (TOML text)."""
    return resources.files("semiclassical_jax").joinpath("default.toml").read_text()


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(f"{key}: must be a number, got {value!r} ({type(value).__name__})", ConfigError)
    if not np.isfinite(value):
        fail(f"{key}: must be finite, got {value!r}", ConfigError)
    return float(value)


def _vector(value: Any, key: str, length: int | None = None) -> list[float]:
    if not isinstance(value, list):
        fail(
            f"{key}: must be a list of numbers, got {value!r} ({type(value).__name__})", ConfigError
        )
    numbers = [_number(item, f"{key}[{i}]") for i, item in enumerate(value)]
    if length is not None and len(numbers) != length:
        fail(
            f"{key}: must have {length} entries (the model's dimension), got {len(numbers)}",
            ConfigError,
        )
    return numbers


def _count(value: Any, key: str, item_bytes: int) -> int:
    """A count >= 1 of items of ``item_bytes`` each (float64 copies) that fits in memory."""
    count = integer(value, key, error=ConfigError)
    try:
        check_memory(count * item_bytes, f"{key} = {count}: {count:.3g} values")
    except ValueError as error:
        fail(str(error), ConfigError)
    return count


def _values(spec: Any, key: str) -> np.ndarray:
    """VALUES: a number, a list of numbers, or {linspace / geomspace = [start, stop, num]}."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return np.array([_number(spec, key)])
    if isinstance(spec, list):
        if not spec:
            fail(f"{key}: must not be empty", ConfigError)
        return np.array(_vector(spec, key))
    if isinstance(spec, Mapping):
        parts = []
        for name, arguments in spec.items():
            if name not in ("linspace", "geomspace"):
                fail(f"{key}.{name}: unknown key (allowed: linspace, geomspace)", ConfigError)
            if not isinstance(arguments, list) or len(arguments) != 3:
                fail(f"{key}.{name}: must be [start, stop, num], got {arguments!r}", ConfigError)
            start, stop, num = arguments
            start, stop = _number(start, f"{key}.{name}[0]"), _number(stop, f"{key}.{name}[1]")
            num = _count(num, f"{key}.{name}[2]", 8)
            if name == "geomspace" and (start <= 0 or stop <= 0):
                fail(
                    f"{key}.{name}: geomspace needs positive start and stop, got {start}, {stop}",
                    ConfigError,
                )
            parts.append(getattr(np, name)(start, stop, num))
        if not parts:
            fail(f"{key}: must give linspace and/or geomspace", ConfigError)
        return np.unique(np.concatenate(parts))
    fail(
        f"{key}: must be a number, a list of numbers or a linspace/geomspace table, got {spec!r}",
        ConfigError,
    )


def _keywords(cls: Any, table: Mapping[str, Any], key: str, skip: tuple[str, ...] = ()) -> set[str]:
    allowed = [p for p in inspect.signature(cls).parameters if p not in skip]
    for name in table:
        if name not in allowed:
            fail(
                f"{key}.{name}: unknown parameter of {cls.__name__} (allowed: {', '.join(allowed)})",
                ConfigError,
            )
    return set(allowed)


def _parameter(value: Any, key: str) -> Any:
    if isinstance(value, Mapping):
        table = dict(value)
        name = table.pop("texture", None)
        if name not in TEXTURES:
            fail(f"{key}.texture: must be one of {TEXTURES}, got {name!r}", ConfigError)
        cls = getattr(textures, name)
        _keywords(cls, table, key)
        arguments = {
            field: (
                _vector(v, f"{key}.{field}")
                if isinstance(v, list)
                else _number(v, f"{key}.{field}")
            )
            for field, v in table.items()
        }
        try:
            return cls(**arguments)
        except (TypeError, ValueError) as error:
            fail(f"{key}: {error}", ConfigError)
    return _number(value, key)


def _typed_table(table: Any, key: str, allowed: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """A table with a ``type`` key from ``allowed``: (the type, the other keys)."""
    if not isinstance(table, Mapping):
        fail(f"{key}: must be a table, got {table!r}", ConfigError)
    table = dict(table)
    name = table.pop("type", None)
    if name not in allowed:
        fail(f"{key}.type: must be one of {allowed}, got {name!r}", ConfigError)
    return name, table


def build_model(table: Any, key: str = "model") -> Any:
    name, table = _typed_table(table, key, MODELS)
    cls = getattr(models, name)
    _keywords(cls, table, key)
    arguments = {field: _parameter(value, f"{key}.{field}") for field, value in table.items()}
    try:
        return cls(**arguments)
    except (TypeError, ValueError) as error:
        fail(f"{key}: {error}", ConfigError)


def build_grid(table: Any, model: Any, key: str = "grid") -> Any:
    name, table = _typed_table(table, key, GRIDS)
    function = getattr(grids, name)
    _keywords(function, table, key, skip=("model", "indicator"))
    arguments = {}
    for field, value in table.items():
        if field == "breaks":
            arguments[field] = _values(value, f"{key}.{field}")
        elif field == "x":
            arguments[field] = _vector(value, f"{key}.{field}", int(model.dim))
        elif field in GRID_INTEGERS:
            minimum = GRID_INTEGERS[field]
            arguments[field] = integer(value, f"{key}.{field}", minimum=minimum, error=ConfigError)
        else:
            arguments[field] = _number(value, f"{key}.{field}")
    try:
        if name in ("brillouin_zone", "adaptive"):
            return function(model, **arguments)
        return function(**arguments)
    except (TypeError, ValueError, AttributeError) as error:
        fail(f"{key}: {error}", ConfigError)


def _positions(spec: Any, key: str, d: int) -> np.ndarray:
    if isinstance(spec, list):
        if not spec:
            fail(f"{key}: must not be empty", ConfigError)
        return np.array([_vector(row, f"{key}[{i}]", d) for i, row in enumerate(spec)])
    if isinstance(spec, Mapping) and len(spec) == 1:
        ((kind, table),) = spec.items()
        if kind == "line" and isinstance(table, Mapping):
            for name in table:
                if name not in ("start", "stop", "num"):
                    fail(f"{key}.line.{name}: unknown key (allowed: start, stop, num)", ConfigError)
            start = np.array(_vector(table.get("start"), f"{key}.line.start", d))
            stop = np.array(_vector(table.get("stop"), f"{key}.line.stop", d))
            num = _count(table.get("num"), f"{key}.line.num", 8 * 2 * d)
            return start + np.linspace(0.0, 1.0, num)[:, None] * (stop - start)
        if kind == "cell" and isinstance(table, Mapping) and d == 2:
            for name in table:
                if name not in ("a1", "a2", "n", "origin"):
                    fail(
                        f"{key}.cell.{name}: unknown key (allowed: a1, a2, n, origin)", ConfigError
                    )
            a1 = np.array(_vector(table.get("a1"), f"{key}.cell.a1", 2))
            a2 = np.array(_vector(table.get("a2"), f"{key}.cell.a2", 2))
            origin = np.array(_vector(table.get("origin", [0.0, 0.0]), f"{key}.cell.origin", 2))
            n = integer(table.get("n"), f"{key}.cell.n", error=ConfigError)
            _count(n * n, f"{key}.cell.n^2", 8 * 2 * 4)
            f = np.arange(n) / n
            f1, f2 = np.meshgrid(f, f, indexing="ij")
            return origin + f1.reshape(-1, 1) * a1 + f2.reshape(-1, 1) * a2
    fail(
        f"{key}: must be a list of positions, {{line = {{start, stop, num}}}} or {{cell = {{a1, a2, n}}}}, got {spec!r}",
        ConfigError,
    )


def _sweep_name(table: Any, index: int) -> str:
    """The name of sweep ``index`` once its table holds only known keys."""
    key = f"sweep[{index}]"
    if not isinstance(table, Mapping):
        fail(f"{key}: must be a table, got {table!r}", ConfigError)
    for name in table:
        if name not in SWEEP_KEYS:
            fail(f"{key}.{name}: unknown key (allowed: {', '.join(SWEEP_KEYS)})", ConfigError)
    name = table.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        shown = repr(name) if not isinstance(name, str) or len(name) <= 40 else f"{name[:40]!r}..."
        fail(
            f"{key}.name: required: 1 to 100 letters, digits, '_' or '-' (it names the files), "
            f"got {shown}",
            ConfigError,
        )
    return name


def _manifolds(value: Any, key: str) -> list[list[int]]:
    """A list of lists of band indices (their partition is checked by prepare_sweep)."""
    if not isinstance(value, list) or not all(isinstance(m, list) for m in value):
        fail(f"{key}: must be a list of lists of band indices, got {value!r}", ConfigError)
    return [[integer(b, key, minimum=0, error=ConfigError) for b in m] for m in value]


def _sweep_arguments(table: Mapping[str, Any], key: str, d: int) -> dict[str, Any]:
    """The keyword arguments of prepare_sweep in a sweep table (its axes apart), typed."""
    quantity = table.get("quantity", "current")
    if quantity not in QUANTITIES:
        fail(f"{key}.quantity: must be one of {QUANTITIES}, got {quantity!r}", ConfigError)
    arguments: dict[str, Any] = {"quantity": quantity, "theory": table.get("theory", "msct")}
    if not isinstance(arguments["theory"], str):
        fail(f"{key}.theory: must be a string, got {arguments['theory']!r}", ConfigError)
    for scalar in ("mu", "temperature", "tau"):
        if scalar in table:
            arguments[scalar] = _number(table[scalar], f"{key}.{scalar}")
    for vector in ("field", "field_direction", "x"):
        if vector in table:
            arguments[vector] = _vector(table[vector], f"{key}.{vector}", d)
    for axial in ("magnetic_field", "magnetic_field_direction"):
        if axial in table:  # an axial vector: the number B_z in 2D, 3 components in 3D
            name = f"{key}.{axial}"
            arguments[axial] = (
                _number(table[axial], name) if d == 2 else _vector(table[axial], name, 3)
            )
    for count in ("chunk_size", "batch_size"):
        if count in table:
            arguments[count] = integer(table[count], f"{key}.{count}", error=ConfigError)
    if "manifolds" in table:
        arguments["manifolds"] = _manifolds(table["manifolds"], f"{key}.manifolds")
    if "xs" in table:
        arguments["xs"] = _positions(table["xs"], f"{key}.xs", d)
    return arguments


def _sweep_axes(table: Mapping[str, Any], key: str) -> dict[str, np.ndarray]:
    """The sweep's axes: name -> values (the VALUES syntax)."""
    axes_table = table.get("axes", {})
    if not isinstance(axes_table, Mapping):
        fail(f"{key}.axes: must be a table {{axis = values}}, got {axes_table!r}", ConfigError)
    return {axis: _values(spec, f"{key}.axes.{axis}") for axis, spec in axes_table.items()}


def _sweep_plan(table: Any, index: int, model: Any, grid_table: Any) -> tuple[str, SweepPlan, dict]:
    """(name, plan, table) of sweep ``index``; its own model / grid replace the top-level ones."""
    name = _sweep_name(table, index)
    key = f"sweep[{index}] ({name})"
    if "model" in table:
        model = build_model(table["model"], f"{key}.model")
    grid = build_grid(table.get("grid", grid_table), model, f"{key}.grid")
    arguments = _sweep_arguments(table, key, int(model.dim))
    axes = _sweep_axes(table, key)
    try:
        plan = prepare_sweep(model, grid, axes, **arguments)
    except (TypeError, ValueError, NotImplementedError) as error:
        fail(f"{key}: {error}", ConfigError)
    return name, plan, dict(table)


def load_config(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config is not valid TOML: {error}") from error


def build_plans(config: Mapping[str, Any]) -> list[tuple[str, SweepPlan, dict]]:
    """Validate a whole configuration into runnable plans; raises ConfigError naming the key."""
    for name in config:
        if name not in TOP_KEYS:
            fail(f"{name}: unknown top-level key (allowed: {', '.join(TOP_KEYS)})", ConfigError)
    if "model" not in config:
        fail("model: required: a [model] table", ConfigError)
    model = build_model(config["model"])
    sweeps = config.get("sweep")
    if not isinstance(sweeps, list) or not sweeps:
        fail("sweep: required: at least one [[sweep]] table", ConfigError)
    grid_table = config.get("grid")
    plans = []
    for index, table in enumerate(sweeps):
        if grid_table is None and not (isinstance(table, Mapping) and "grid" in table):
            fail(
                f"sweep[{index}].grid: required: a [grid] table (top level or in this sweep)",
                ConfigError,
            )
        plans.append(_sweep_plan(table, index, model, grid_table))
    names = [name for name, _, _ in plans]
    for name in names:
        if names.count(name) > 1:
            fail(
                f"sweep: two sweeps are named {name!r}; names must be unique (they name the files)",
                ConfigError,
            )
    return plans
