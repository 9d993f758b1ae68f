"""Labelled sweep results and their files.

A :class:`SweepResult` is a NumPy array with named dimensions, coordinates, units and the
configuration that produced it (the xarray data model, without the dependency; ``to_xarray()``
converts when xarray is installed). ``save`` writes one ``.npz`` file whose ``metadata`` entry is
JSON (name, dims, units, attrs); the write goes to a temporary file in the same folder that is
renamed into place only when complete, so an interrupted run never leaves a file that looks like a
result. ``load`` reads it back.

Units: a sweep records, in ``attrs``, the natural unit of its values in physical terms
(``"unit"``, e.g. ``"e^2/(hbar Angstrom)"``), the SI unit and factor (``"si_unit"``,
``"si_factor"``) and the model's unit system (``"unit_system"``; :func:`unit_attrs`);
:meth:`SweepResult.to_si` converts. Files written before units were recorded load as before.

:func:`results_folder` gives a run's output folder the same property: the run writes into a
temporary sibling folder, which replaces the output folder only once the run is complete (see its
docstring for the lock and the rules for an existing folder).
"""

import contextlib
import dataclasses
import datetime
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import numpy as np

from . import units
from ._version import package_version
from ._files import current_umask, write_atomically
from ._guards import fail
from .distributed import is_main_process

FORMAT = "semiclassical_jax.SweepResult/1"


@dataclasses.dataclass(frozen=True, eq=False)
class SweepResult:
    """Values on a grid of named axes.

    ``values``: array of shape ``[len(coords[d]) for d in dims]``. ``dims``: names of its axes, the
    swept ones first, then the quantity's own (``"position"``, ``"component"``,
    ``"field_component"``). ``coords``: one 1D array per dimension (and extra labelled arrays, such
    as ``"position_xy"`` (n_x, d) for a current map). ``units``: unit of ``name`` and of each
    coordinate, in the package's natural units. ``attrs``: JSON-serialisable metadata (theory,
    fixed arguments, model, grid, the config that produced the result).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> coords = {"mu": np.linspace(0.0, 0.2, 3), "component": np.arange(2)}
        >>> r = sj.SweepResult("hall_conductivity", np.zeros((3, 2)), ("mu", "component"), coords)
        >>> r.shape, r.coord("mu").tolist()
        ((3, 2), [0.0, 0.1, 0.2])
        >>> r.isel(mu=1).shape
        (2,)
    """

    name: str
    values: np.ndarray
    dims: tuple[str, ...]
    coords: Mapping[str, np.ndarray]
    units: Mapping[str, str] = dataclasses.field(default_factory=dict)
    attrs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        values = np.asarray(self.values)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "dims", tuple(self.dims))
        object.__setattr__(
            self, "coords", {key: np.asarray(value) for key, value in self.coords.items()}
        )
        if values.ndim != len(self.dims):
            fail(f"values has {values.ndim} axes but dims names {len(self.dims)}: {self.dims}")
        for axis, dim in enumerate(self.dims):
            if dim not in self.coords:
                fail(f"dimension {dim!r} has no coordinate")
            if self.coords[dim].shape[:1] != (values.shape[axis],):
                fail(
                    f"coordinate {dim!r} has length {self.coords[dim].shape[:1]}, axis has {values.shape[axis]}"
                )

    @property
    def shape(self) -> tuple[int, ...]:
        return self.values.shape

    def coord(self, dim: str) -> np.ndarray:
        """The coordinate values of one dimension (or an extra labelled array)."""
        if dim not in self.coords:
            raise KeyError(f"no coordinate {dim!r}; have {sorted(self.coords)}")
        return self.coords[dim]

    def isel(self, **indices: int) -> "SweepResult":
        """Select one index along named dimensions, dropping them: ``result.isel(mu=0)``."""
        values, dims, coords = self.values, list(self.dims), dict(self.coords)
        for dim, index in indices.items():
            if dim not in dims:
                raise KeyError(f"no dimension {dim!r}; have {tuple(dims)}")
            axis = dims.index(dim)
            values = np.take(values, index, axis=axis)
            dims.pop(axis)
            coords.pop(dim)
        return dataclasses.replace(self, values=values, dims=tuple(dims), coords=coords)

    def to_si(self, to: str | None = None) -> "SweepResult":
        """The result in SI (default ``attrs["si_unit"]``: S or S/cm for a 2D or 3D conductivity,
        A/m or A/m^2 for a current density) or in unit ``to`` (see
        :func:`~semiclassical_jax.units.si_factor`: "e^2/h", "S/m", "A/cm^2", ...), from the unit
        system recorded in ``attrs["unit_system"]``. A result without one (a file written before
        units were recorded) raises ValueError saying how to convert its values by hand."""
        system = self.attrs.get("unit_system")
        if isinstance(system, Mapping) and "error" in system:
            fail(f"{self.name}: no SI values, the model's units are unknown: {system['error']}")
        if not isinstance(system, Mapping) or "quantity" not in system:
            fail(
                f"{self.name}: this result records no unit system (written before units were "
                "recorded, or not a current or conductivity); convert its values with "
                "semiclassical_jax.units.to_si(result.values, quantity, units, dim)"
            )
        natural = units.UnitSystem(system["energy_ev"], system["length_nm"])
        kind, dim = system["quantity"], system["dim"]
        factor, unit = units.si_factor(kind, natural, dim, to or self.attrs.get("si_unit"))
        current = self.attrs.get("unit")
        if current != system["natural"]:  # already converted: undo that first
            factor /= units.si_factor(kind, natural, dim, current)[0]
        attrs = {**self.attrs, "unit": unit, "si_unit": unit, "si_factor": 1.0}
        return dataclasses.replace(
            self,
            values=self.values * factor,
            units={**self.units, self.name: unit},
            attrs=attrs,
        )

    def to_xarray(self) -> Any:
        """An ``xarray.DataArray`` with the same dims, coords, units and attrs (needs xarray)."""
        try:
            import xarray
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError("to_xarray needs xarray (pip install xarray)") from error
        coords = {
            dim: (dim, self.coords[dim], {"units": self.units.get(dim, "")}) for dim in self.dims
        }
        attrs = {"units": self.units.get(self.name, ""), "metadata": json.dumps(self.attrs)}
        return xarray.DataArray(
            self.values, coords=coords, dims=self.dims, name=self.name, attrs=attrs
        )

    def save(self, path: str | os.PathLike) -> str:
        """Write the result to ``path`` (``.npz``; the suffix is added if missing), atomically.

        In a run of several processes (:mod:`semiclassical_jax.distributed`) only process 0
        writes; the others return the same path without touching the file system."""
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        if not is_main_process():
            return path
        metadata = {
            "format": FORMAT,
            "name": self.name,
            "dims": list(self.dims),
            "coords": sorted(self.coords),
            "units": dict(self.units),
            "attrs": _jsonable(self.attrs),
        }
        arrays = {"values": self.values, "metadata": np.array(json.dumps(metadata))}
        arrays.update({f"coord/{key}": value for key, value in self.coords.items()})
        return write_atomically(path, lambda stream: np.savez(stream, **arrays), binary=True)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SweepResult":
        """Read a result written by :meth:`save`.

        A file that is missing raises OSError; one that is truncated, corrupted or not a result
        file raises one ValueError naming the file.
        """
        path = os.fspath(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                metadata = json.loads(str(data["metadata"]))
                if metadata.get("format") != FORMAT:
                    fail(f"{path}: unknown format {metadata.get('format')!r}, not {FORMAT!r}")
                coords = {key: data[f"coord/{key}"] for key in metadata["coords"]}
                values = data["values"]
                return cls(
                    metadata["name"],
                    values,
                    tuple(metadata["dims"]),
                    coords,
                    metadata["units"],
                    metadata["attrs"],
                )
        except FileNotFoundError:
            raise
        except Exception as error:  # noqa: BLE001 - zip, zlib, json, key and shape errors alike
            if isinstance(error, ValueError) and str(error).startswith(f"{path}: unknown format"):
                raise
            fail(
                f"{path} is not a readable semiclassical_jax result file (truncated or corrupted?): "
                f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            )

    def __repr__(self) -> str:
        axes = ", ".join(f"{dim}: {size}" for dim, size in zip(self.dims, self.values.shape))
        unit = self.attrs.get("unit", self.units.get(self.name, ""))
        return f"SweepResult({self.name} [{unit}], {{{axes}}})"


# the physical quantity (units.QUANTITIES) of each sweep quantity
PHYSICAL_QUANTITY = {
    "current": "current_density",
    "current_map": "current_density",
    "hall_conductivity": "conductivity",
    "drude_conductivity": "conductivity",
}


def unit_attrs(name: str, model: Any, dim: int) -> dict[str, Any]:
    """The attrs that label result ``name`` (a sweep quantity) of a ``dim``-dimensional ``model``
    with units (:mod:`~semiclassical_jax.units`): ``unit``, its natural unit in physical terms
    ("e^2/hbar", "e^2/(hbar Angstrom)", "e eV/(hbar nm)"); ``si_unit`` and ``si_factor`` (values x
    si_factor are in si_unit: S, S/cm, A/m, A/m^2); ``unit_system``: the model's energy and length
    units (:func:`~semiclassical_jax.units.model_units`), where they came from, the physical
    quantity and ``dim``. Empty for a quantity without a unit; a model whose unit names are
    unknown gets only ``unit_system = {"error": ...}``, so the run it labels is not lost."""
    kind = PHYSICAL_QUANTITY.get(name)
    if kind is None:
        return {}
    try:
        system = units.model_units(model)
    except ValueError as error:
        return {"unit_system": {"error": str(error)}}
    natural = units.natural_unit(kind, system, dim)
    factor, si_unit = units.si_factor(kind, system, dim)
    return {
        "unit": natural,
        "si_unit": si_unit,
        "si_factor": factor,
        "unit_system": {
            "energy": system.energy_name,
            "length": system.length_name,
            "energy_ev": system.energy_ev,
            "length_nm": system.length_nm,
            "source": units.units_source(model),
            "quantity": kind,
            "dim": dim,
            "natural": natural,
        },
    }


def describe(value: Any) -> Any:
    """A model, texture or any pytree of numbers as plain JSON types, to rebuild it from a file.

    A dataclass (an ``eqx.Module``: models, textures) becomes ``{"type": class name, "module":
    its module, field: describe(value) ...}`` (every field, static ones included); a real array
    its number or nested list; a complex array ``{"real": ..., "imag": ...}``; a function
    ``{"function": "module.qualname"}``; lists, tuples and dicts element by element.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: describe(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"type": type(value).__name__, "module": type(value).__module__, **fields}
    if isinstance(value, Mapping):
        return {str(key): describe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [describe(item) for item in value]
    if isinstance(value, (np.generic, np.ndarray)) or hasattr(value, "__array__"):
        array = np.asarray(value)
        if np.iscomplexobj(array):
            return {"real": describe(array.real), "imag": describe(array.imag)}
        return array.item() if array.ndim == 0 else array.tolist()
    if callable(value):
        name = getattr(value, "__qualname__", type(value).__qualname__)
        return {"function": f"{getattr(value, '__module__', '?')}.{name}"}
    return _jsonable(value)


def _jsonable(value: Any) -> Any:
    """Metadata as plain JSON types (arrays become lists, other objects their repr)."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, (np.generic, np.ndarray)) or hasattr(value, "__array__"):
        array = np.asarray(value)
        return array.item() if array.ndim == 0 else array.tolist()
    return repr(value)


# ---------------------------------------------------------------------------------------------
# results folders

# Every results folder holds this file, written last: a folder with it is a complete run of
# semiclassical-jax, and only such a folder is replaced by ``overwrite=True``.
RUN_RECORD = "run.json"


class ResultsFolderError(ValueError):
    """The output folder cannot be used (a file, not empty, locked, not writable)."""


def _lock_holder(lock: str) -> str:
    """Who holds ``lock``, and what to do about it, for the error message."""
    try:
        with open(lock) as stream:
            record = json.load(stream)
        pid, host = int(record["pid"]), str(record["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"its lock file {lock} exists (unreadable); if no run uses it, remove it: rm {lock}"
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return (
                f"its lock file {lock} was left by pid {pid}, which is no longer running (an "
                f"interrupted run); if no other run uses it, remove it: rm {lock}"
            )
        except PermissionError:
            pass
    return f"another run (pid {pid} on {host}) is writing into it (lock file {lock})"


@contextlib.contextmanager
def _locked(target: str) -> Iterator[None]:
    """Hold ``<target>.lock`` (created with O_EXCL; it records pid and host) for the block."""
    lock = target + ".lock"
    try:
        handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        fail(f"{target}: {_lock_holder(lock)}", ResultsFolderError)
    except OSError as error:
        fail(f"{target}: cannot create {lock}: {error.strerror}", ResultsFolderError)
    try:
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}
        with os.fdopen(handle, "w") as stream:
            json.dump(record, stream)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(lock)


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def check_results_folder(path: str | os.PathLike, overwrite: bool = False) -> str:
    """The absolute output folder ``path`` if a run may write it, else ResultsFolderError.

    It may be absent or empty; a non-empty folder only with ``overwrite`` and only if it is an
    earlier run's (it holds RUN_RECORD, or ``summary.md`` of versions before RUN_RECORD). It must
    not be a file nor hold the working directory, and its nearest existing ancestor must take a
    new file (one is created and removed there).
    """
    target = os.path.realpath(os.fspath(path))
    parent = os.path.dirname(target)
    for ancestor in _ancestors(parent):
        if os.path.exists(ancestor) and not os.path.isdir(ancestor):
            fail(f"{path}: {ancestor} is a file, not a folder", ResultsFolderError)
    here = os.path.realpath(os.getcwd())
    if here == target or here.startswith(target + os.sep):
        fail(f"{path}: it holds the working directory; choose another folder", ResultsFolderError)
    if os.path.lexists(target) and not os.path.isdir(target):
        fail(f"{path} is a file, not a folder; choose a folder", ResultsFolderError)
    try:
        entries = os.listdir(target) if os.path.isdir(target) else []
    except OSError as error:
        fail(f"{path}: cannot list it: {error.strerror}", ResultsFolderError)
    ours = RUN_RECORD in entries or "summary.md" in entries
    if entries and not overwrite:
        fail(
            f"{path} is not empty ({len(entries)} entries); give --overwrite to replace it, "
            "or choose another folder",
            ResultsFolderError,
        )
    if entries and not ours:
        fail(
            f"{path} is not empty and is not a semiclassical-jax results folder (no {RUN_RECORD}); "
            "it is not replaced: remove it yourself or choose another folder",
            ResultsFolderError,
        )
    existing = next(a for a in _ancestors(parent) if os.path.isdir(a))
    try:  # a file created and removed again: the one test that holds for root and read-only mounts
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        fail(f"{path}: cannot write into {existing}: {error.strerror}", ResultsFolderError)
    return target


def _ancestors(folder: str) -> list[str]:
    """``folder`` and every folder above it, innermost first."""
    chain = [folder]
    while os.path.dirname(chain[-1]) != chain[-1]:
        chain.append(os.path.dirname(chain[-1]))
    return chain


def _swap_in(staging: str, target: str) -> None:
    """Move the complete ``staging`` folder to ``target``; an old ``target`` is removed after."""
    if not os.path.lexists(target):
        os.rename(staging, target)
        return
    old = tempfile.mkdtemp(dir=os.path.dirname(target), prefix=f".{os.path.basename(target)}.old-")
    os.rename(target, os.path.join(old, "run"))
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(os.path.join(old, "run"), target)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def results_folder(
    path: str | os.PathLike, overwrite: bool = False, record: Mapping[str, Any] | None = None
) -> Iterator[str]:
    """A run's output folder, written all at once: ``with results_folder(out) as staging: ...``.

    Checks ``path`` (:func:`check_results_folder`), takes the lock ``<path>.lock`` (O_EXCL, with
    pid and host; removed on exit; a lock left by a dead process is reported with the command that
    removes it, never taken over), and yields a new temporary folder ``.<name>.partial-*`` next to
    ``path``. When the block ends normally it writes RUN_RECORD there (``record``, the package and
    jax versions, start and end times, the files) and renames the folder to ``path``; an existing
    ``path`` is moved aside first and deleted only after the rename. If the block raises (or is
    interrupted) the temporary folder is deleted and ``path`` is left as it was.
    """
    target = check_results_folder(path, overwrite)
    parent = os.path.dirname(target)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as error:
        fail(f"{path}: cannot create {parent}: {error.strerror}", ResultsFolderError)
    with _locked(target):
        check_results_folder(path, overwrite)  # again, now that no other run can change it
        staging = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(target)}.partial-")
        try:
            os.chmod(staging, 0o777 & ~current_umask())
            started = _now()
            yield staging
            _write_run_record(staging, record, started)
            _swap_in(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _write_run_record(folder: str, record: Mapping[str, Any] | None, started: str) -> None:
    """RUN_RECORD in ``folder``: ``record``, versions, times and the files, as JSON."""
    files = sorted(name for name in os.listdir(folder) if not name.startswith("."))
    text = json.dumps(
        {
            **_jsonable(dict(record or {})),
            "status": "complete",
            "semiclassical_jax_version": package_version(),
            "jax_version": jax.__version__,
            "started": started,
            "finished": _now(),
            "files": files,
        },
        indent=2,
    )
    write_atomically(os.path.join(folder, RUN_RECORD), lambda stream: stream.write(text + "\n"))
