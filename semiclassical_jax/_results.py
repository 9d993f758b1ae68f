"""Labelled sweep results and their files.

A :class:`SweepResult` is a NumPy array with named dimensions, coordinates, units and the
configuration that produced it (the xarray data model, without the dependency; ``to_xarray()``
converts when xarray is installed). ``save`` writes one ``.npz`` file whose ``metadata`` entry is
JSON (name, dims, units, attrs); the write goes to a temporary file in the same folder that is
renamed into place only when complete, so an interrupted run never leaves a file that looks like a
result. ``load`` reads it back.
"""

import dataclasses
import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._guards import fail
from ._files import write_atomically

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
        """Write the result to ``path`` (``.npz``; the suffix is added if missing), atomically."""
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
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
        """Read a result written by :meth:`save`."""
        with np.load(os.fspath(path), allow_pickle=False) as data:
            if "metadata" not in data.files:
                fail(f"{os.fspath(path)} is not a semiclassical_jax result file (no metadata)")
            metadata = json.loads(str(data["metadata"]))
            if metadata.get("format") != FORMAT:
                fail(f"{os.fspath(path)}: unknown format {metadata.get('format')!r}")
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

    def __repr__(self) -> str:
        axes = ", ".join(f"{dim}: {size}" for dim, size in zip(self.dims, self.values.shape))
        unit = self.units.get(self.name, "")
        return f"SweepResult({self.name} [{unit}], {{{axes}}})"


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
