"""The ``semiclassical-jax`` command.

* ``semiclassical-jax run [CONFIG.toml] [--out DIR]``: the main job, a set of sweeps from a TOML
  configuration (schema: :mod:`semiclassical_jax._config`), or the embedded default (the moire
  Dirac model: valley Hall current vs field, J(x) across the moire cell, sigma_xy(mu)). Each sweep
  writes ``<name>.npz`` (labelled data + metadata, :class:`~semiclassical_jax.SweepResult`) and
  ``<name>.png``; the run writes ``config.toml`` (what ran) and ``summary.md``.
* ``semiclassical-jax default-config``: print the embedded default configuration.
* ``semiclassical-jax chern``: Chern numbers of the built-in models (link method and curvature
  integral) and the half-quantised valley Chern number of a massive Dirac cone, as a table.
"""

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import geometry, models
from .geometry._topology import torus_grid
from ._config import ConfigError, build_plans, default_config_text, load_config
from ._files import write_atomically
from ._sweep import run_sweep


def _valley_chern(model: models.MassiveDirac, n_nodes: int = 400) -> float:
    """(1/2 pi) int d^2k Omega^{kx ky}_lower over the whole plane, by Gauss-Legendre in
    k = s t / (1 - t) (the curvature is isotropic for tilt = 0)."""
    t, w = np.polynomial.legendre.leggauss(n_nodes)
    t, w = 0.5 * (t + 1), 0.5 * w
    scale = abs(float(model.mass)) / float(model.velocity)
    k = scale * t / (1 - t)
    jacobian = scale / (1 - t) ** 2
    points = jnp.stack([jnp.asarray(k), jnp.zeros_like(jnp.asarray(k))], axis=-1)
    omega = jax.vmap(geometry.berry_curvature, in_axes=(None, None, 0))(model, None, points)[
        :, 0, 2, 3
    ]
    # (1/2 pi) int 2 pi k dk Omega(k)
    return float(jnp.sum(w * jacobian * k * omega))


def _minimum_gap(model, manifold: tuple[int, ...], n_k: int) -> float:
    grid = torus_grid(jnp.asarray(model.lattice), n_k).reshape(-1, 2)
    energies = jax.vmap(lambda k: geometry.eigensystem(model, None, k)[0])(grid)
    above = energies[:, max(manifold) + 1] if max(manifold) + 1 < model.n_bands else jnp.inf
    below = energies[:, min(manifold) - 1] if min(manifold) > 0 else -jnp.inf
    return float(
        jnp.min(jnp.minimum(above - energies[:, max(manifold)], energies[:, min(manifold)] - below))
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


def _chern(args: argparse.Namespace) -> int:
    if args.n_k < 4:
        print(f"semiclassical-jax chern: --n-k must be >= 4, got {args.n_k}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    rows = geometry_table(args.n_k)
    table = _markdown(rows, args.n_k)
    print("Berry curvature and Chern numbers of the built-in models (lower bands / manifolds)\n")
    print(table)
    print(
        "\nSign convention (PHYSICS.md): C = (1/2 pi) int Tr F^{kx ky} d^2k; a massive Dirac valley "
        "carries valley sign(Delta) / 2."
    )
    if args.out is not None:
        os.makedirs(args.out, exist_ok=True)
        _write_atomically(os.path.join(args.out, "geometry_table.md"), table + "\n")
        _write_atomically(
            os.path.join(args.out, "geometry_table.json"), json.dumps(rows, indent=2) + "\n"
        )
        print(f"\nwrote {os.path.join(args.out, 'geometry_table.md')} and geometry_table.json")
    print(f"\ndone in {time.perf_counter() - start:.1f} s on {jax.devices()[0].platform}")
    return 0


def _headline(result) -> str:
    """One physics number per sweep for the summary table."""
    swept = [d for d in result.dims if d not in ("position", "component", "field_component")]
    if result.name == "current" and swept == ["field_strength"]:
        e = result.coord("field_strength")
        ratios = ", ".join(
            f"{2 * math.pi * result.values[0, c] / e[0]:+.5f}"
            for c in range(result.values.shape[1])
        )
        return f"2 pi J / E at E = {e[0]:.3g}: ({ratios}) e^2/h"
    if result.name in ("hall_conductivity", "drude_conductivity") and len(swept) == 1:
        s = 2 * math.pi * result.values[..., 0, 1]
        return f"2 pi sigma_xy from {s.min():+.5f} to {s.max():+.5f} e^2/h"
    if result.name == "current_map":
        magnitude = np.linalg.norm(result.values, axis=-1)
        return f"|J(x)| from {magnitude.min():.4g} to {magnitude.max():.4g}"
    return f"values from {np.min(result.values):.4g} to {np.max(result.values):.4g}"


def _save_figure(result, path: str) -> None:
    from .plotting import plot_result

    figure = plot_result(result)
    write_atomically(
        path, lambda stream: figure.savefig(stream, format="png", dpi=110), binary=True
    )


def _run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    if args.config is None:
        text, source = (
            default_config_text(),
            "the embedded default (semiclassical-jax default-config)",
        )
    else:
        try:
            with open(args.config, encoding="utf-8") as stream:
                text = stream.read()
        except OSError as error:
            print(
                f"semiclassical-jax run: cannot read {args.config}: {error.strerror}",
                file=sys.stderr,
            )
            return 2
        source = args.config
    try:
        plans = build_plans(load_config(text))
    except ConfigError as error:
        print(f"semiclassical-jax run: bad config {source}: {error}", file=sys.stderr)
        print("nothing was run or written", file=sys.stderr)
        return 2
    devices = jax.devices()
    print(f"semiclassical-jax run: {len(plans)} sweep(s) from {source}")
    print(
        f"devices: {len(devices)} x {devices[0].platform} ({devices[0].device_kind}); output: {args.out}"
    )
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for name, plan, table in plans:
        sweep_start = time.perf_counter()
        try:
            result = run_sweep(plan, progress=f"{name}", attrs={"name": name, "config": table})
        except ValueError as error:
            print(f"semiclassical-jax run: sweep {name!r} failed: {error}", file=sys.stderr)
            return 1
        data = result.save(os.path.join(args.out, f"{name}.npz"))
        files = [os.path.basename(data)]
        if not args.no_plots:
            _save_figure(result, os.path.join(args.out, f"{name}.png"))
            files.append(f"{name}.png")
        n_points = int(
            np.prod(
                [
                    len(result.coord(d))
                    for d in result.dims
                    if d not in ("component", "field_component")
                ]
            )
        )
        rows.append(
            (
                name,
                result.name,
                n_points,
                time.perf_counter() - sweep_start,
                ", ".join(files),
                _headline(result),
            )
        )
    summary = [
        "| sweep | quantity | points | seconds | files | result |",
        "|---|---|---|---|---|---|",
        *(f"| {n} | {q} | {p} | {s:.1f} | {f} | {h} |" for n, q, p, s, f, h in rows),
    ]
    _write_atomically(os.path.join(args.out, "config.toml"), text)
    _write_atomically(os.path.join(args.out, "summary.md"), "\n".join(summary) + "\n")
    print("\n" + "\n".join(summary))
    print(
        f"\ndone in {time.perf_counter() - start:.1f} s; wrote {args.out}/ (data: .npz, read with "
        "semiclassical_jax.SweepResult.load; plots: .png; config.toml; summary.md)"
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
        "axes (field, mu, temperature, tau, model parameters), sharded over all visible devices, with "
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
        help="output folder (default: ./semiclassical-jax-out)",
    )
    run.add_argument("--no-plots", action="store_true", help="write data only, no PNG figures")
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
        "--out", default=None, help="also write the table (Markdown and JSON) into this folder"
    )
    chern.set_defaults(handler=_chern)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
