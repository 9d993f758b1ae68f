"""The ``semiclassical-jax`` command.

* ``semiclassical-jax run [CONFIG.toml] [--out DIR] [--overwrite]``: the main job, a set of
  sweeps from a TOML configuration (schema: :mod:`semiclassical_jax._config`), or the embedded
  default (the moire Dirac model: valley Hall current vs field, J(x) across the moire cell,
  sigma_xy(mu)). Each sweep writes ``<name>.npz`` (labelled data + metadata,
  :class:`~semiclassical_jax.SweepResult`) and ``<name>.png``; the run writes ``config.toml``
  (what ran), ``summary.md`` and ``run.json`` (versions, times, files).
* ``semiclassical-jax default-config``: print the embedded default configuration.
* ``semiclassical-jax chern [--out DIR] [--overwrite]``: Chern numbers of the built-in models
  (link method and curvature integral) and the half-quantised valley Chern number of a massive
  Dirac cone, as a table.

Output folders (``_results.results_folder``): a run writes into a temporary sibling folder that
replaces ``--out`` only when every file is written, so a failed or interrupted run leaves ``--out``
as it was. A non-empty ``--out`` is refused unless ``--overwrite`` is given (and then only if it
holds an earlier run's ``run.json``); ``<out>.lock`` keeps two runs out of one folder.

Several processes (``run --distributed``, :mod:`semiclassical_jax.distributed`): launch the same
command once per process (``srun``, ``mpirun``, or by hand with ``--coordinator``,
``--num-processes``, ``--process-id``); every process computes its share of each sweep and gets
the whole result, process 0 alone prints and writes ``--out`` (and decides for all whether it can;
if it cannot, every process exits with status 2).

Exit status: 0 done; 1 the run failed (a sweep raised; nothing is written); 2 bad input (the
arguments, the configuration, the output folder, a size beyond the machine's memory); 130
interrupted. Every error is one line on stderr naming the problem.
"""

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import distributed, geometry, models, units
from ._config import ConfigError, build_plans, default_config_text, load_config
from ._files import write_atomically
from ._results import ResultsFolderError, check_results_folder, results_folder
from ._sweep import evaluation_bytes, run_sweep
from .geometry._topology import torus_grid
from .grids._grid import check_memory

# Bad input: exit status 2, one line on stderr.
BAD_INPUT = (ConfigError, ResultsFolderError)


class RunFailed(Exception):
    """A sweep failed while running (exit status 1); the message names the sweep."""


def _valley_chern(model: models.MassiveDirac, n_nodes: int = 400) -> float:
    """(1/2 pi) int d^2k Omega^{kx ky}_lower over the whole plane, by Gauss-Legendre in
    k = s t / (1 - t) (the curvature is isotropic for tilt = 0)."""
    t, w = np.polynomial.legendre.leggauss(n_nodes)
    t, w = 0.5 * (t + 1), 0.5 * w
    scale = abs(float(model.mass)) / float(model.velocity)
    k = scale * t / (1 - t)
    jacobian = scale / (1 - t) ** 2
    points = jnp.stack([jnp.asarray(k), jnp.zeros_like(jnp.asarray(k))], axis=-1)
    curvature = eqx.filter_jit(jax.vmap(geometry.berry_curvature, in_axes=(None, None, 0)))
    omega = curvature(model, None, points)[:, 0, 2, 3]
    # (1/2 pi) int 2 pi k dk Omega(k)
    return float(jnp.sum(w * jacobian * k * omega))


def _minimum_gap(model, manifold: tuple[int, ...], n_k: int) -> float:
    return float(_grid_gap(model, manifold, n_k))


@eqx.filter_jit
def _grid_gap(model, manifold: tuple[int, ...], n_k: int) -> jax.Array:
    """The manifold's smallest gap to its neighbouring bands on the n_k x n_k grid."""
    grid = torus_grid(jnp.asarray(model.lattice), n_k).reshape(-1, 2)
    energies = jax.vmap(lambda k: geometry.eigensystem(model, None, k)[0])(grid)
    above = energies[:, max(manifold) + 1] if max(manifold) + 1 < model.n_bands else jnp.inf
    below = energies[:, min(manifold) - 1] if min(manifold) > 0 else -jnp.inf
    return jnp.min(
        jnp.minimum(above - energies[:, max(manifold)], energies[:, min(manifold)] - below)
    )


def geometry_table(n_k: int = 48) -> list[dict]:
    """Rows of the demo table: model, parameters, manifold, C (link), C (integral), min gap."""
    rows = []
    lattice_cases = (
        [("QWZ", f"m = {m:+g}", models.QWZ(m), (0,)) for m in (-3.0, -1.0, 1.0, 3.0)]
        + [
            (
                "Haldane",
                f"t1 = 1, t2 = 0.15, phi = pi/2, M = {mass:g}",
                models.Haldane(1.0, 0.15, math.pi / 2, mass),
                (0,),
            )
            for mass in (0.2, 0.95)
        ]
        + [
            ("KaneMele", "t = 1, soc = 0.06 (spin-degenerate)", models.KaneMele(1.0, 0.06), (0, 1)),
            (
                "KaneMele",
                "t = 1, soc = 0.06, rashba = 0.05, M = 0.1",
                models.KaneMele(1.0, 0.06, 0.05, 0.1),
                (0, 1),
            ),
        ]
    )
    for name, parameters, model, manifold in lattice_cases:
        rows.append(
            {
                "model": name,
                "parameters": parameters,
                "manifold": list(manifold),
                "chern_link": float(geometry.chern_number(model, manifold, n_k)),
                "chern_integral": float(
                    geometry.chern_number(model, manifold, n_k, method="integral")
                ),
                "min_gap": _minimum_gap(model, manifold, n_k),
            }
        )
    for valley in (1, -1):
        model = models.MassiveDirac(1.0, 0.1, valley=valley)
        rows.append(
            {
                "model": "MassiveDirac",
                "parameters": f"v = 1, Delta = 0.1, valley = {valley:+d}",
                "manifold": [0],
                "chern_link": None,
                "chern_integral": _valley_chern(model),
                "min_gap": 0.2,
            }
        )
    return rows


def _markdown(rows: list[dict], n_k: int) -> str:
    lines = [
        f"| model | parameters | manifold | C (link, {n_k}x{n_k}) | C (curvature integral) | min gap |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        link = "-" if row["chern_link"] is None else f"{row['chern_link']:+.6f}"
        lines.append(
            f"| {row['model']} | {row['parameters']} | {tuple(row['manifold'])} | {link} | "
            f"{row['chern_integral']:+.6f} | {row['min_gap']:.4f} |"
        )
    return "\n".join(lines)


def _write_atomically(path: str, text: str) -> None:
    write_atomically(path, lambda stream: stream.write(text))


def _check_chern_size(n_k: int) -> None:
    """--n-k >= 4, and n_k^2 k-points of the 4-band Kane-Mele model fit in memory (the curvature
    integral holds the kernel's output at every point: ``evaluation_bytes(4, 2)`` each)."""
    if n_k < 4:
        raise ConfigError(f"--n-k must be >= 4, got {n_k}")
    per_point = evaluation_bytes(4, 2)
    try:
        check_memory(
            n_k**2 * per_point, f"--n-k {n_k}: {n_k**2:.3g} k-points (4 bands, {per_point} B each)"
        )
    except ValueError as error:
        raise ConfigError(str(error)) from error


def _chern(args: argparse.Namespace) -> int:
    _check_chern_size(args.n_k)
    start = time.perf_counter()
    record = {"command": "semiclassical-jax chern", "n_k": args.n_k}
    folder = (
        contextlib.nullcontext()
        if args.out is None
        else results_folder(args.out, args.overwrite, record)
    )
    with folder as staging:
        try:
            rows = geometry_table(args.n_k)
        except Exception as error:  # noqa: BLE001 - any failure ends the run
            raise RunFailed(f"the table failed: {_one_line(error)}") from error
        table = _markdown(rows, args.n_k)
        print(
            "Berry curvature and Chern numbers of the built-in models (lower bands / manifolds)\n"
        )
        print(table)
        print(
            "\nSign convention (PHYSICS.md): C = (1/2 pi) int Tr F^{kx ky} d^2k; a massive Dirac "
            "valley carries valley sign(Delta) / 2."
        )
        if staging is not None:
            _write_atomically(os.path.join(staging, "geometry_table.md"), table + "\n")
            _write_atomically(
                os.path.join(staging, "geometry_table.json"), json.dumps(rows, indent=2) + "\n"
            )
    if args.out is not None:
        print(f"\nwrote {os.path.join(args.out, 'geometry_table.md')} and geometry_table.json")
    print(f"\ndone in {time.perf_counter() - start:.1f} s on {jax.devices()[0].platform}")
    return 0


def _headline(result) -> str:
    """One physics number per sweep for the summary table: a 2D conductivity (or J / E) in e^2/h,
    a 3D one in S/cm (when the result records its units), a current map's range."""
    swept = [d for d in result.dims if d not in ("position", "component", "field_component")]
    d = len(result.coord("component"))
    system = result.attrs.get("unit_system", {})
    si_3d = d == 3 and "energy_ev" in system
    scale, unit, what, form = 2 * math.pi, "e^2/h", "2 pi ", "+.5f"
    if si_3d:
        natural = units.UnitSystem(system["energy_ev"], system["length_nm"])
        scale, unit = units.si_factor("conductivity", natural, 3)
        what, form = "", "+.5g"
    if result.name == "current" and swept == ["field_strength"]:
        e = result.coord("field_strength")
        ratios = ", ".join(f"{scale * result.values[0, c] / e[0]:{form}}" for c in range(d))
        return f"{what}J / E at E = {e[0]:.3g}: ({ratios}) {unit}"
    if result.name in ("hall_conductivity", "drude_conductivity") and len(swept) == 1:
        s = scale * result.values[..., 0, 1]
        return f"{what}sigma_xy from {s.min():{form}} to {s.max():{form}} {unit}"
    if result.name == "current_map":
        magnitude = np.linalg.norm(result.values, axis=-1)
        return f"|J(x)| from {magnitude.min():.4g} to {magnitude.max():.4g}"
    return f"values from {np.min(result.values):.4g} to {np.max(result.values):.4g}"


def _unit(result) -> str:
    """The unit of a result's values for the summary: "e^2/hbar = 0.0002434 S", and which units
    were assumed; "natural units" for a result that records none."""
    attrs = result.attrs
    if "si_factor" not in attrs:
        return "natural units"
    text = f"{attrs['unit']} = {attrs['si_factor']:.4g} {attrs['si_unit']}"
    source = attrs.get("unit_system", {}).get("source", "")
    return text + (f" ({source.split(' (')[0]})" if "assumed" in source else "")


def _save_figure(result, path: str) -> None:
    from .plotting import plot_result

    figure = plot_result(result)
    write_atomically(
        path, lambda stream: figure.savefig(stream, format="png", dpi=110), binary=True
    )


def _read_config(path: str | None) -> tuple[str, str]:
    """(TOML text, where it came from): the file ``path`` (UTF-8), or the embedded default."""
    if path is None:
        return default_config_text(), "the embedded default (semiclassical-jax default-config)"
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read(), path
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
            f"{error.start}); TOML files are UTF-8"
        ) from error


def _points(result) -> int:
    """Sweep points x positions of a result (its size without the component axes)."""
    return int(
        np.prod(
            [len(result.coord(d)) for d in result.dims if d not in ("component", "field_component")]
        )
    )


def _provenance(name: str, table: dict, config: dict, text: str, source: str) -> dict:
    """What a sweep's file records of the run: the sweep's table, the model and grid tables it
    used (its own or the top-level ones) and the whole config text, so it can be rerun."""
    return {
        "name": name,
        "config": table,
        "model_table": table.get("model", config.get("model")),
        "grid_arguments": table.get("grid", config.get("grid")),
        "config_source": source,
        "config_text": text,
    }


def _run_sweeps(plans: list, folder: str, no_plots: bool, provenance) -> list[tuple]:
    """Run every plan, writing <name>.npz (and .png) into ``folder`` (None: nothing, in every
    process but 0 of a distributed run); the summary rows. ``provenance(name, table)``: the attrs
    of a sweep's file.

    Raises RunFailed naming the sweep when one fails (any exception but an interrupt).
    """
    rows = []
    for name, plan, table in plans:
        sweep_start = time.perf_counter()
        try:
            result = run_sweep(plan, progress=f"{name}", attrs=provenance(name, table))
            files = [f"{name}.npz"] + ([] if no_plots else [f"{name}.png"])
            if folder is not None:
                result.save(os.path.join(folder, f"{name}.npz"))
                if not no_plots:
                    _save_figure(result, os.path.join(folder, f"{name}.png"))
        except Exception as error:  # noqa: BLE001 - any failure of a sweep ends the run
            raise RunFailed(f"sweep {name!r} failed: {_one_line(error)}") from error
        seconds = time.perf_counter() - sweep_start
        files = ", ".join(files)
        row = (name, result.name, _points(result), seconds, files, _headline(result), _unit(result))
        rows.append(row)
    return rows


def _one_line(error: BaseException) -> str:
    """The error's type and the first line of its message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else '(no message)'}"


def _join(args: argparse.Namespace) -> None:
    """Join a run of several processes if asked (``--distributed`` or its explicit arguments),
    before JAX starts; a failure to join is bad input (exit status 2)."""
    explicit = (args.coordinator, args.num_processes, args.process_id)
    if not args.distributed and all(value is None for value in explicit):
        return
    try:
        distributed.initialize(*explicit)
    except (ValueError, RuntimeError) as error:
        raise ConfigError(f"--distributed: {error}") from error


def _by_main_process(action, out: str):
    """``action()`` in process 0 only (None elsewhere); every process learns whether it raised
    ResultsFolderError and then raises one too, so that all exit together with status 2."""
    error, value = None, None
    if distributed.is_main_process():
        try:
            value = action()
        except ResultsFolderError as raised:
            error = raised
    if not distributed.broadcast_from_main(error is None):
        raise error or ResultsFolderError(f"{out}: process 0 cannot write it (its error says why)")
    return value


def _run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    _join(args)
    main = distributed.is_main_process()
    _by_main_process(lambda: check_results_folder(args.out, args.overwrite), args.out)
    text, source = _read_config(args.config)
    try:
        config = load_config(text)
        plans = build_plans(config)
    except ConfigError as error:
        raise ConfigError(f"bad config {source}: {error}") from error
    devices = jax.devices()
    say = print if main else lambda *_: None
    say(f"semiclassical-jax run: {len(plans)} sweep(s) from {source}")
    say(
        f"devices: {len(devices)} x {devices[0].platform} ({devices[0].device_kind}) in "
        f"{jax.process_count()} process(es); output: {args.out}"
    )
    record = {
        "command": "semiclassical-jax run",
        "config": source,
        "sweeps": [n for n, *_ in plans],
        "processes": jax.process_count(),
    }
    with contextlib.ExitStack() as stack:
        staging = _by_main_process(
            lambda: stack.enter_context(results_folder(args.out, args.overwrite, record)), args.out
        )
        rows = _run_sweeps(
            plans,
            staging,
            args.no_plots,
            lambda name, table: _provenance(name, table, config, text, source),
        )
        summary = [
            "| sweep | quantity | points | seconds | files | result | unit of the values |",
            "|---|---|---|---|---|---|---|",
            *(f"| {n} | {q} | {p} | {s:.1f} | {f} | {h} | {u} |" for n, q, p, s, f, h, u in rows),
        ]
        if staging is not None:
            _write_atomically(os.path.join(staging, "config.toml"), text)
            _write_atomically(os.path.join(staging, "summary.md"), "\n".join(summary) + "\n")
    say("\n" + "\n".join(summary))
    say(
        f"\ndone in {time.perf_counter() - start:.1f} s; wrote {args.out}/ (data: .npz, read with "
        "semiclassical_jax.SweepResult.load; plots: .png; config.toml; summary.md; run.json)"
    )
    return 0


def _default_config(args: argparse.Namespace) -> int:
    print(default_config_text(), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semiclassical-jax",
        description="Semiclassical wavepacket dynamics and transport in multiband crystals (JAX).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run sweeps from a TOML config (default: the embedded moire Dirac job)",
        description="Run the sweeps of a TOML configuration: each is one compiled calculation over its "
        "axes (field, mu, temperature, tau, magnetic field, model parameters), sharded over all visible devices, with "
        "a progress bar and ETA. Each writes <name>.npz (labelled data and the config) and <name>.png. "
        "Without CONFIG it runs the embedded default: a massive Dirac cone with a sign-changing moire "
        "mass - the non-perturbative valley Hall current against field strength, J(x) across the moire "
        "cell and sigma_xy(mu). Schema: `semiclassical-jax default-config` prints an annotated example.",
    )
    run.add_argument(
        "config", nargs="?", default=None, help="TOML configuration (default: the embedded one)"
    )
    run.add_argument(
        "--out",
        default="semiclassical-jax-out",
        help="output folder (default: ./semiclassical-jax-out); it must be absent or empty unless "
        "--overwrite is given. The run writes into a temporary sibling folder that replaces it "
        "only when complete: a failed or interrupted run leaves it as it was",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run in --out (a folder holding run.json) once this run completes",
    )
    run.add_argument("--no-plots", action="store_true", help="write data only, no PNG figures")
    several = run.add_argument_group(
        "several processes",
        "launch the same command once per process; each computes a share of every sweep, "
        "process 0 writes --out (jax.distributed; README: 'Several processes or hosts')",
    )
    several.add_argument(
        "--distributed",
        action="store_true",
        help="join a run of several processes, detected from the cluster (SLURM srun, Open MPI)",
    )
    several.add_argument(
        "--coordinator", metavar="HOST:PORT", help="process 0's address (implies --distributed)"
    )
    several.add_argument("--num-processes", type=int, metavar="N", help="number of processes")
    several.add_argument("--process-id", type=int, metavar="I", help="this process, 0 .. N-1")
    run.set_defaults(handler=_run)
    default = commands.add_parser(
        "default-config",
        help="print the embedded default configuration (a template for your own)",
        description="Print the TOML configuration that `semiclassical-jax run` uses without arguments.",
    )
    default.set_defaults(handler=_default_config)
    chern = commands.add_parser(
        "chern",
        help="Chern numbers of the built-in models (a geometry check)",
        description="Compute Chern numbers of the built-in models by the Fukui-Hatsugai-Suzuki link "
        "method and by integrating the autodiff Berry curvature, and print them as a table.",
    )
    chern.add_argument("--n-k", type=int, default=48, help="k-grid size per direction (default 48)")
    chern.add_argument(
        "--out",
        default=None,
        help="also write the table (Markdown and JSON) into this folder (absent or empty unless "
        "--overwrite; written all at once, like run's --out)",
    )
    chern.add_argument("--overwrite", action="store_true", help="replace an earlier table in --out")
    chern.set_defaults(handler=_chern)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in ``argv`` (default: sys.argv); the exit status (module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    prefix = f"semiclassical-jax {args.command}"
    out = getattr(args, "out", None)
    unchanged = "nothing was written" + (f"; {out} is unchanged" if out else "")
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    try:
        return args.handler(args)
    except BAD_INPUT as error:
        print(
            f"{prefix}: {' '.join(str(error).split())}; nothing was run or written", file=sys.stderr
        )
        return 2
    except RunFailed as error:
        print(f"{prefix}: {error}; {unchanged}", file=sys.stderr)
        return 1
    except OSError as error:  # writing the results (disk full, permissions)
        print(f"{prefix}: cannot write: {_one_line(error)}; {unchanged}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{prefix}: interrupted; {unchanged}", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (a batch system's time limit, `kill`) as Ctrl-C: the partial folder and the lock
    are removed on the way out."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
