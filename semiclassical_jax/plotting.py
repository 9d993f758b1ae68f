"""Figures of sweep results (matplotlib, object-oriented API: no pyplot state, no display needed).

:func:`plot_result` picks a figure from the result's dimensions:

* a current against ``field_strength``: J components against E, and 2 pi J / E in units of e^2/h
  (its E -> 0 limit is the linear conductivity; a half-quantised valley Hall effect reads 1/2);
* a current or conductivity against one other axis: each component (conductivities in e^2/h);
* a current map on a 2D set of positions: colour maps of J_x(x), J_y(x) with the current as arrows;
  on positions along a line: J against the distance along it;
* otherwise: the first swept axis on the abscissa, the other swept axes at their first value.

Axis labels carry the natural units of the package (PHYSICS.md: hbar = e = k_B = 1).
"""

import math
import os
from typing import Any

import numpy as np

from ._guards import fail
from ._results import SweepResult

LABELS = {
    "field_strength": "field strength E  [energy / (e length)]",
    "field_x": "E_x  [energy / (e length)]",
    "field_y": "E_y  [energy / (e length)]",
    "mu": "chemical potential mu  [energy]",
    "temperature": "temperature T  [energy]",
    "tau": "relaxation time tau  [hbar / energy]",
}


def _figure(n_panels: int) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2 * n_panels, 4.0), layout="constrained")
    return figure, [figure.add_subplot(1, n_panels, i + 1) for i in range(n_panels)]


def _label(result: SweepResult, dim: str) -> str:
    return LABELS.get(dim, f"{dim}  [{result.units.get(dim, 'model units')}]")


def _swept(result: SweepResult) -> list[str]:
    own = {"position", "component", "field_component"}
    return [dim for dim in result.dims if dim not in own]


def _first_values(result: SweepResult, keep: list[str]) -> SweepResult:
    extra = {dim: 0 for dim in _swept(result) if dim not in keep}
    return result.isel(**extra) if extra else result


def _current_lines(result: SweepResult, axis: str, figure_axes: list[Any]) -> None:
    coordinate = result.coord(axis)
    values = result.values  # (n, d)
    for c, name in enumerate(result.coord("component")):
        figure_axes[0].plot(coordinate, values[:, c], marker="o", markersize=3, label=f"J_{name}")
    figure_axes[0].set_xlabel(_label(result, axis))
    figure_axes[0].set_ylabel("current density J  [e energy / (hbar length)]")
    figure_axes[0].legend()
    if axis == "field_strength":
        for c, name in enumerate(result.coord("component")):
            figure_axes[1].plot(
                coordinate,
                2 * math.pi * values[:, c] / coordinate,
                marker="o",
                markersize=3,
                label=f"2 pi J_{name} / E",
            )
        figure_axes[1].set_xscale("log")
        figure_axes[1].set_xlabel(_label(result, axis))
        figure_axes[1].set_ylabel("2 pi J / E  [e^2 / h]")
        figure_axes[1].axhline(0.5, color="grey", linestyle=":", linewidth=1)
        figure_axes[1].legend()


def _conductivity_lines(result: SweepResult, axis: str, axes: Any) -> None:
    coordinate = result.coord(axis)
    names = result.coord("component")
    for a, row in enumerate(names):
        for b, column in enumerate(names):
            axes.plot(
                coordinate, 2 * math.pi * result.values[:, a, b], label=f"sigma_{row}{column}"
            )
    axes.set_xlabel(_label(result, axis))
    axes.set_ylabel(f"{result.name.replace('_', ' ')}  [e^2 / h]")
    axes.legend()


def _current_map(result: SweepResult, figure: Any, figure_axes: list[Any]) -> None:
    positions = result.coord("position_xy")
    values = result.values  # (n_x, d)
    centred = positions - positions.mean(axis=0)
    rank = (
        np.linalg.matrix_rank(centred, tol=1e-9 * max(1.0, np.abs(positions).max()))
        if len(positions) > 2
        else 1
    )
    if positions.shape[1] == 2 and rank == 2:
        for c, name in enumerate(result.coord("component")):
            axes = figure_axes[c]
            image = axes.tripcolor(
                positions[:, 0], positions[:, 1], values[:, c], shading="gouraud", cmap="RdBu_r"
            )
            axes.quiver(
                positions[:, 0], positions[:, 1], values[:, 0], values[:, 1], color="k", alpha=0.6
            )
            axes.set_aspect("equal")
            axes.set_xlabel("x_1  [length]")
            axes.set_ylabel("x_2  [length]")
            axes.set_title(f"J_{name}(x)")
            figure.colorbar(image, ax=axes, label="J  [e energy / (hbar length)]")
    else:
        distance = np.linalg.norm(positions - positions[0], axis=1)
        for c, name in enumerate(result.coord("component")):
            figure_axes[0].plot(distance, values[:, c], marker="o", markersize=3, label=f"J_{name}")
        figure_axes[0].set_xlabel("distance along the positions  [length]")
        figure_axes[0].set_ylabel("J  [e energy / (hbar length)]")
        figure_axes[0].legend()


def plot_result(result: SweepResult, path: str | os.PathLike | None = None) -> Any:
    """A matplotlib ``Figure`` of ``result`` (see the module docstring); saved to ``path`` if given."""
    swept = _swept(result)
    if result.name == "current_map" and not swept:
        figure, axes = _figure(2)
        _current_map(result, figure, axes)
    elif swept:
        axis = swept[0]
        view = _first_values(result, [axis])
        if result.name == "current_map":
            view = view.isel(position=0)
        if view.values.ndim == 3:  # conductivity (n, d, d)
            figure, axes = _figure(1)
            _conductivity_lines(view, axis, axes[0])
        else:
            figure, axes = _figure(2 if axis == "field_strength" else 1)
            _current_lines(view, axis, axes)
    else:
        fail(f"nothing to plot: {result!r} has no swept axis")
    fixed = [f"{dim} = {result.coord(dim)[0]:g}" for dim in swept[1:]]
    title = result.attrs.get("name", result.name) + (f"  ({', '.join(fixed)})" if fixed else "")
    figure.suptitle(title)
    if path is not None:
        figure.savefig(os.fspath(path), dpi=110)
    return figure


__all__ = ["LABELS", "plot_result"]
