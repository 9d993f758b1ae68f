"""The ``semiclassical-jax`` command.

``semiclassical-jax run`` runs the main job. Until the sweep machinery lands it is the geometry
demo: Chern numbers (link method and curvature integral) of the built-in models and the
half-quantised valley Chern number of a massive Dirac cone, printed as a Markdown table.
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import geometry, models


def _valley_chern(model: models.MassiveDirac, n_nodes: int = 400) -> float:
    """(1/2 pi) int d^2k Omega^{kx ky}_lower over the whole plane, by Gauss-Legendre in
    k = s t / (1 - t) (the curvature is isotropic for tilt = 0)."""
    t, w = np.polynomial.legendre.leggauss(n_nodes)
    t, w = 0.5 * (t + 1), 0.5 * w
    scale = abs(float(model.mass)) / float(model.velocity)
    k = scale * t / (1 - t)
    jacobian = scale / (1 - t) ** 2
    points = jnp.stack([jnp.asarray(k), jnp.zeros_like(jnp.asarray(k))], axis=-1)
    omega = jax.vmap(geometry.berry_curvature, in_axes=(None, None, 0))(model, None, points)[:, 0, 2, 3]
    # (1/2 pi) int 2 pi k dk Omega(k)
    return float(jnp.sum(w * jacobian * k * omega))


def _minimum_gap(model, manifold: tuple[int, ...], n_k: int) -> float:
    grid = geometry._brillouin_grid(jnp.asarray(model.lattice), n_k).reshape(-1, 2)
    energies = jax.vmap(lambda k: geometry.eigensystem(model, None, k)[0])(grid)
    above = energies[:, max(manifold) + 1] if max(manifold) + 1 < model.n_bands else jnp.inf
    below = energies[:, min(manifold) - 1] if min(manifold) > 0 else -jnp.inf
    return float(jnp.min(jnp.minimum(above - energies[:, max(manifold)], energies[:, min(manifold)] - below)))


def geometry_table(n_k: int = 48) -> list[dict]:
    """Rows of the demo table: model, parameters, manifold, C (link), C (integral), min gap."""
    rows = []
    lattice_cases = [
        ("QWZ", f"m = {m:+g}", models.QWZ(m), (0,)) for m in (-3.0, -1.0, 1.0, 3.0)
    ] + [
        ("Haldane", f"t1 = 1, t2 = 0.15, phi = pi/2, M = {mass:g}", models.Haldane(1.0, 0.15, math.pi / 2, mass), (0,))
        for mass in (0.2, 0.95)
    ] + [
        ("KaneMele", "t = 1, soc = 0.06 (spin-degenerate)", models.KaneMele(1.0, 0.06), (0, 1)),
        ("KaneMele", "t = 1, soc = 0.06, rashba = 0.05, M = 0.1", models.KaneMele(1.0, 0.06, 0.05, 0.1), (0, 1)),
    ]
    for name, parameters, model, manifold in lattice_cases:
        rows.append(
            {
                "model": name,
                "parameters": parameters,
                "manifold": list(manifold),
                "chern_link": float(geometry.chern_number(model, manifold, n_k)),
                "chern_integral": float(geometry.chern_number(model, manifold, n_k, method="integral")),
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
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _run(args: argparse.Namespace) -> int:
    if args.n_k < 4:
        print(f"semiclassical-jax run: --n-k must be >= 4, got {args.n_k}", file=sys.stderr)
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
        _write_atomically(os.path.join(args.out, "geometry_table.json"), json.dumps(rows, indent=2) + "\n")
        print(f"\nwrote {os.path.join(args.out, 'geometry_table.md')} and geometry_table.json")
    print(f"\ndone in {time.perf_counter() - start:.1f} s on {jax.devices()[0].platform}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semiclassical-jax",
        description="Semiclassical wavepacket dynamics and transport in multiband crystals (JAX).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run the main job (now: the Berry-curvature / Chern-number table of the built-in models)",
        description="Compute Chern numbers of the built-in models by the Fukui-Hatsugai-Suzuki link "
        "method and by integrating the autodiff Berry curvature, and print them as a table.",
    )
    run.add_argument("--n-k", type=int, default=48, help="k-grid size per direction (default 48)")
    run.add_argument("--out", default=None, help="also write the table (Markdown and JSON) into this folder")
    run.set_defaults(handler=_run)
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
