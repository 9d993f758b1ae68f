"""Figures of sweep results (matplotlib, object-oriented API: no pyplot state, no display needed).

:func:`plot_result` picks a figure from the result's dimensions:

* a current against ``field_strength``: J components against E, and 2 pi J / E in units of e^2/h
  (its E -> 0 limit is the linear conductivity; a half-quantised valley Hall effect reads 1/2);
* a current or conductivity against one other axis: each component (conductivities in e^2/h);
* a current map on a 2D set of positions: colour maps of J_x(x), J_y(x) with the current as arrows;
  on positions along a line: J against the distance along it;
* otherwise: the first swept axis on the abscissa, the other swept axes at their first value.

Axis labels carry the natural units of the package (PHYSICS.md: hbar = e = k_B = 1), named with
the model's energy and length units when the result records them (``attrs["unit_system"]``:
"mu [eV]", "J [e eV/(hbar nm) = 2.434e+05 A/m]"), with their SI values; a 3D conductivity is
plotted in S/cm. Where the units are the default rather than the model's, the figure says so.
"""

import math
import os
from typing import Any

import numpy as np

from . import units
from ._guards import fail
from ._results import SweepResult

# Axis labels; {energy}, {length} are the unit names ("energy", "length" when not recorded) and
# {field}, {temperature}, {time}, {magnetic} their SI values (empty when not recorded); B is in
# hbar / (e L0^2) (PHYSICS.md section 5): 658.2 T for L0 = 1 nm.
LABELS = {
    "field_strength": "field strength E  [{energy}/(e {length}){field}]",
    "field_x": "E_x  [{energy}/(e {length}){field}]",
    "field_y": "E_y  [{energy}/(e {length}){field}]",
    "field_z": "E_z  [{energy}/(e {length}){field}]",
    "magnetic_field_strength": "magnetic field B  [hbar/(e {length}^2){magnetic}]",
    "magnetic_field_x": "B_x  [hbar/(e {length}^2){magnetic}]",
    "magnetic_field_y": "B_y  [hbar/(e {length}^2){magnetic}]",
    "magnetic_field_z": "B_z  [hbar/(e {length}^2){magnetic}]",
    "mu": "chemical potential mu  [{energy}]",
    "temperature": "temperature T  [{energy}/k_B{temperature}]",
    "tau": "relaxation time tau  [hbar/{energy}{time}]",
}
"""Axis labels of the swept quantities, with placeholders for their units."""


def _figure(n_panels: int) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2 * n_panels, 4.0), layout="constrained")
    return figure, [figure.add_subplot(1, n_panels, i + 1) for i in range(n_panels)]


def _system(result: SweepResult) -> units.UnitSystem | None:
    """The unit system a result records (``attrs["unit_system"]``), or None."""
    system = result.attrs.get("unit_system")
    if isinstance(system, dict) and "energy_ev" in system:
        return units.UnitSystem(system["energy_ev"], system["length_nm"])
    return None


def _names(result: SweepResult) -> dict[str, str]:
    """The fields of LABELS' templates for ``result``."""
    system = _system(result)
    if system is None:
        return dict.fromkeys(("field", "temperature", "time", "magnetic"), "") | {
            "energy": "energy",
            "length": "length",
        }
    return {
        "energy": system.energy_name,
        "length": system.length_name,
        "field": f" = {units.electric_field(1.0, system):.4g} V/m",
        "temperature": f" = {system.temperature_k:.6g} K",
        "time": f" = {system.time_fs:.4g} fs",
        "magnetic": f" = {units.HBAR_EV_S / (system.length_nm * 1e-9) ** 2:.4g} T",
    }


def _label(result: SweepResult, dim: str) -> str:
    if dim in LABELS:
        return LABELS[dim].format(**_names(result))
    return f"{dim}  [{result.units.get(dim, 'model units')}]"


def _value_unit(result: SweepResult, fallback: str) -> str:
    """The unit of the values: "e eV/(hbar nm) = 2.434e+05 A/m" when recorded, else ``fallback``."""
    if "si_factor" not in result.attrs:
        return fallback
    unit, factor, si = result.attrs["unit"], result.attrs["si_factor"], result.attrs["si_unit"]
    return unit if unit == si else f"{unit} = {factor:.4g} {si}"


def _conductance_label(result: SweepResult, what: str) -> str:
    """The label of 2 pi x a 2D conductivity: in e^2/h (with its SI value when recorded)."""
    d = len(result.coord("component"))
    if d != 2:
        return f"{what}  [e^2/(h length^{d - 2})]"
    si = f" = {units.conductivity(1.0, to='S') / (2 * math.pi):.4g} S" if _system(result) else ""
    return f"{what}  [e^2/h{si}]"


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
    figure_axes[0].set_ylabel(
        f"current density J  [{_value_unit(result, 'e energy / (hbar length^(d-1))')}]"
    )
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
        figure_axes[1].set_ylabel(_conductance_label(result, "2 pi J / E"))
        figure_axes[1].axhline(0.5, color="grey", linestyle=":", linewidth=1)
        figure_axes[1].legend()


def _conductivity_lines(result: SweepResult, axis: str, axes: Any) -> None:
    """Each sigma_ab against ``axis``: in e^2/h in 2D, in S/cm in 3D (when the units are known)."""
    coordinate = result.coord(axis)
    names = result.coord("component")
    what = result.name.replace("_", " ")
    if len(names) == 3 and "si_factor" in result.attrs:
        scale, label = result.attrs["si_factor"], f"{what}  [{result.attrs['si_unit']}]"
    else:
        scale, label = 2 * math.pi, _conductance_label(result, what)
    for a, row in enumerate(names):
        for b, column in enumerate(names):
            axes.plot(coordinate, scale * result.values[:, a, b], label=f"sigma_{row}{column}")
    axes.set_xlabel(_label(result, axis))
    axes.set_ylabel(label)
    axes.legend()


def _current_map(result: SweepResult, figure: Any, figure_axes: list[Any]) -> None:
    positions = result.coord("position_xy")
    values = result.values  # (n_x, d)
    length = _names(result)["length"]
    unit = _value_unit(result, "e energy / (hbar length^(d-1))")
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
            axes.set_xlabel(f"x_1  [{length}]")
            axes.set_ylabel(f"x_2  [{length}]")
            axes.set_title(f"J_{name}(x)")
            figure.colorbar(image, ax=axes, label=f"J  [{unit}]")
    else:
        distance = np.linalg.norm(positions - positions[0], axis=1)
        for c, name in enumerate(result.coord("component")):
            figure_axes[0].plot(distance, values[:, c], marker="o", markersize=3, label=f"J_{name}")
        figure_axes[0].set_xlabel(f"distance along the positions  [{length}]")
        figure_axes[0].set_ylabel(f"J  [{unit}]")
        figure_axes[0].legend()


def plot_result(result: SweepResult, path: str | os.PathLike | None = None) -> Any:
    """A matplotlib ``Figure`` of ``result`` (see the module docstring); saved to ``path`` if given.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax.plotting import plot_result
        >>> coords = {"mu": np.linspace(0.0, 0.2, 3), "component": np.arange(2)}
        >>> r = sj.SweepResult("hall_conductivity", np.zeros((3, 2)), ("mu", "component"), coords)
        >>> type(plot_result(r)).__name__
        'Figure'
    """
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
    source = result.attrs.get("unit_system", {}).get("source", "")
    if "assumed" in source:  # "energy eV, length nm assumed (the default: ...)"
        title += f"  [units: {source.split(' (')[0]}]"
    figure.suptitle(title)
    if path is not None:
        figure.savefig(os.fspath(path), dpi=110)
    return figure


__all__ = ["LABELS", "plot_result"]
