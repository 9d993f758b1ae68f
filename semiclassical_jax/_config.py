"""The TOML run configuration of ``semiclassical-jax run``: parsing and validation.

Schema (every key is checked; an error names the key and the value):

    [model]                      type = one of MODELS; the rest are its parameters. A parameter is a
                                 number or a texture table {texture = one of TEXTURES, ...its fields}.
    [grid]                       type = "disk" | "box" | "brillouin_zone" | "adaptive"; the rest are
                                 the keyword arguments of semiclassical_jax.grids.<type>. Value lists
                                 (breaks) use the VALUES syntax below.
    [[sweep]]                    one table per sweep, run in order; each writes <name>.npz and .png.
      name                       required; letters, digits, '_' and '-'
      quantity                   "current" (default) | "current_map" | "hall_conductivity" | "drude_conductivity"
      theory                     "msct" (default) | "ssct" | "nonabelian_hall"
      manifolds                  list of lists of band indices (a partition); default: one band each
      mu, temperature, tau       numbers (fixed values of what is not swept)
      field, field_direction, x  vectors of length d
      xs                         positions for current_map: [[x, y], ...], or {line = {start, stop, num}},
                                 or {cell = {a1, a2, n, origin}} (an n x n grid over a unit cell)
      axes                       table {axis = VALUES}: mu, temperature, tau, field_strength,
                                 field_x, field_y, or a model parameter path such as "mass.amplitude"
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
from ._sweep import QUANTITIES, SweepPlan, prepare_sweep

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
    "x",
    "xs",
    "axes",
    "chunk_size",
    "batch_size",
    "model",
    "grid",
)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")


class ConfigError(ValueError):
    """A bad run configuration; the message names the key."""


def default_config_text() -> str:
    """The embedded default configuration (TOML text)."""
    return resources.files("semiclassical_jax").joinpath("default.toml").read_text()


def _fail(key: str, message: str) -> None:
    raise ConfigError(f"{key}: {message}")


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(key, f"must be a number, got {value!r} ({type(value).__name__})")
    if not np.isfinite(value):
        _fail(key, f"must be finite, got {value!r}")
    return float(value)


def _integer(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(key, f"must be an integer, got {value!r} ({type(value).__name__})")
    return value


def _vector(value: Any, key: str, length: int | None = None) -> list[float]:
    if not isinstance(value, list):
        _fail(key, f"must be a list of numbers, got {value!r} ({type(value).__name__})")
    numbers = [_number(item, f"{key}[{i}]") for i, item in enumerate(value)]
    if length is not None and len(numbers) != length:
        _fail(key, f"must have {length} entries (the model's dimension), got {len(numbers)}")
    return numbers


def _values(spec: Any, key: str) -> np.ndarray:
    """VALUES: a number, a list of numbers, or {linspace / geomspace = [start, stop, num]}."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return np.array([_number(spec, key)])
    if isinstance(spec, list):
        if not spec:
            _fail(key, "must not be empty")
        return np.array(_vector(spec, key))
    if isinstance(spec, Mapping):
        parts = []
        for name, arguments in spec.items():
            if name not in ("linspace", "geomspace"):
                _fail(f"{key}.{name}", "unknown key (allowed: linspace, geomspace)")
            if not isinstance(arguments, list) or len(arguments) != 3:
                _fail(f"{key}.{name}", f"must be [start, stop, num], got {arguments!r}")
            start, stop, num = arguments
            start, stop = _number(start, f"{key}.{name}[0]"), _number(stop, f"{key}.{name}[1]")
            num = _integer(num, f"{key}.{name}[2]")
            if num < 1:
                _fail(f"{key}.{name}[2]", f"num must be >= 1, got {num}")
            if name == "geomspace" and (start <= 0 or stop <= 0):
                _fail(
                    f"{key}.{name}", f"geomspace needs positive start and stop, got {start}, {stop}"
                )
            parts.append(getattr(np, name)(start, stop, num))
        if not parts:
            _fail(key, "must give linspace and/or geomspace")
        return np.unique(np.concatenate(parts))
    _fail(key, f"must be a number, a list of numbers or a linspace/geomspace table, got {spec!r}")


def _keywords(cls: Any, table: Mapping[str, Any], key: str, skip: tuple[str, ...] = ()) -> set[str]:
    allowed = [p for p in inspect.signature(cls).parameters if p not in skip]
    for name in table:
        if name not in allowed:
            _fail(
                f"{key}.{name}",
                f"unknown parameter of {cls.__name__} (allowed: {', '.join(allowed)})",
            )
    return set(allowed)


def _parameter(value: Any, key: str) -> Any:
    if isinstance(value, Mapping):
        table = dict(value)
        name = table.pop("texture", None)
        if name not in TEXTURES:
            _fail(f"{key}.texture", f"must be one of {TEXTURES}, got {name!r}")
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
            _fail(key, str(error))
    return _number(value, key)


def _typed_table(table: Any, key: str, allowed: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """A table with a ``type`` key from ``allowed``: (the type, the other keys)."""
    if not isinstance(table, Mapping):
        _fail(key, f"must be a table, got {table!r}")
    table = dict(table)
    name = table.pop("type", None)
    if name not in allowed:
        _fail(f"{key}.type", f"must be one of {allowed}, got {name!r}")
    return name, table


def build_model(table: Any, key: str = "model") -> Any:
    name, table = _typed_table(table, key, MODELS)
    cls = getattr(models, name)
    _keywords(cls, table, key)
    arguments = {field: _parameter(value, f"{key}.{field}") for field, value in table.items()}
    try:
        return cls(**arguments)
    except (TypeError, ValueError) as error:
        _fail(key, str(error))


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
        elif field in (
            "n",
            "n_radial",
            "n_angle",
            "dim",
            "n_start",
            "order",
            "max_level",
            "max_points",
        ):
            arguments[field] = _integer(value, f"{key}.{field}")
        else:
            arguments[field] = _number(value, f"{key}.{field}")
    try:
        if name in ("brillouin_zone", "adaptive"):
            return function(model, **arguments)
        return function(**arguments)
    except (TypeError, ValueError, AttributeError) as error:
        _fail(key, str(error))


def _positions(spec: Any, key: str, d: int) -> np.ndarray:
    if isinstance(spec, list):
        if not spec:
            _fail(key, "must not be empty")
        return np.array([_vector(row, f"{key}[{i}]", d) for i, row in enumerate(spec)])
    if isinstance(spec, Mapping) and len(spec) == 1:
        ((kind, table),) = spec.items()
        if kind == "line" and isinstance(table, Mapping):
            for name in table:
                if name not in ("start", "stop", "num"):
                    _fail(f"{key}.line.{name}", "unknown key (allowed: start, stop, num)")
            start = np.array(_vector(table.get("start"), f"{key}.line.start", d))
            stop = np.array(_vector(table.get("stop"), f"{key}.line.stop", d))
            num = _integer(table.get("num"), f"{key}.line.num")
            if num < 1:
                _fail(f"{key}.line.num", f"must be >= 1, got {num}")
            return start + np.linspace(0.0, 1.0, num)[:, None] * (stop - start)
        if kind == "cell" and isinstance(table, Mapping) and d == 2:
            for name in table:
                if name not in ("a1", "a2", "n", "origin"):
                    _fail(f"{key}.cell.{name}", "unknown key (allowed: a1, a2, n, origin)")
            a1 = np.array(_vector(table.get("a1"), f"{key}.cell.a1", 2))
            a2 = np.array(_vector(table.get("a2"), f"{key}.cell.a2", 2))
            origin = np.array(_vector(table.get("origin", [0.0, 0.0]), f"{key}.cell.origin", 2))
            n = _integer(table.get("n"), f"{key}.cell.n")
            if n < 1:
                _fail(f"{key}.cell.n", f"must be >= 1, got {n}")
            f = np.arange(n) / n
            f1, f2 = np.meshgrid(f, f, indexing="ij")
            return origin + f1.reshape(-1, 1) * a1 + f2.reshape(-1, 1) * a2
    _fail(
        key,
        f"must be a list of positions, {{line = {{start, stop, num}}}} or {{cell = {{a1, a2, n}}}}, got {spec!r}",
    )


def _sweep_plan(table: Any, index: int, model: Any, grid_table: Any) -> tuple[str, SweepPlan, dict]:
    key = f"sweep[{index}]"
    if not isinstance(table, Mapping):
        _fail(key, f"must be a table, got {table!r}")
    for name in table:
        if name not in SWEEP_KEYS:
            _fail(f"{key}.{name}", f"unknown key (allowed: {', '.join(SWEEP_KEYS)})")
    name = table.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        _fail(f"{key}.name", f"required: letters, digits, '_' or '-', got {name!r}")
    key = f"sweep[{index}] ({name})"
    if "model" in table:
        model = build_model(table["model"], f"{key}.model")
    grid = build_grid(table.get("grid", grid_table), model, f"{key}.grid")
    d = int(model.dim)
    quantity = table.get("quantity", "current")
    if quantity not in QUANTITIES:
        _fail(f"{key}.quantity", f"must be one of {QUANTITIES}, got {quantity!r}")
    arguments: dict[str, Any] = {"quantity": quantity, "theory": table.get("theory", "msct")}
    if not isinstance(arguments["theory"], str):
        _fail(f"{key}.theory", f"must be a string, got {arguments['theory']!r}")
    for scalar in ("mu", "temperature", "tau"):
        if scalar in table:
            arguments[scalar] = _number(table[scalar], f"{key}.{scalar}")
    for vector in ("field", "field_direction", "x"):
        if vector in table:
            arguments[vector] = _vector(table[vector], f"{key}.{vector}", d)
    for count in ("chunk_size", "batch_size"):
        if count in table:
            arguments[count] = _integer(table[count], f"{key}.{count}")
    if "manifolds" in table:
        manifolds = table["manifolds"]
        if not isinstance(manifolds, list) or not all(isinstance(m, list) for m in manifolds):
            _fail(f"{key}.manifolds", f"must be a list of lists of band indices, got {manifolds!r}")
        arguments["manifolds"] = [[_integer(b, f"{key}.manifolds") for b in m] for m in manifolds]
    if "xs" in table:
        arguments["xs"] = _positions(table["xs"], f"{key}.xs", d)
    axes_table = table.get("axes", {})
    if not isinstance(axes_table, Mapping):
        _fail(f"{key}.axes", f"must be a table {{axis = values}}, got {axes_table!r}")
    axes = {axis: _values(spec, f"{key}.axes.{axis}") for axis, spec in axes_table.items()}
    try:
        plan = prepare_sweep(model, grid, axes, **arguments)
    except (TypeError, ValueError) as error:
        _fail(key, str(error))
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
            _fail(name, f"unknown top-level key (allowed: {', '.join(TOP_KEYS)})")
    if "model" not in config:
        _fail("model", "required: a [model] table")
    model = build_model(config["model"])
    sweeps = config.get("sweep")
    if not isinstance(sweeps, list) or not sweeps:
        _fail("sweep", "required: at least one [[sweep]] table")
    grid_table = config.get("grid")
    plans = []
    for index, table in enumerate(sweeps):
        if grid_table is None and not (isinstance(table, Mapping) and "grid" in table):
            _fail(f"sweep[{index}].grid", "required: a [grid] table (top level or in this sweep)")
        plans.append(_sweep_plan(table, index, model, grid_table))
    names = [name for name, _, _ in plans]
    for name in names:
        if names.count(name) > 1:
            _fail(
                "sweep",
                f"two sweeps are named {name!r}; names must be unique (they name the files)",
            )
    return plans
