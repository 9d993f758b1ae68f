"""A Fermi-level scan in one pass: the anomalous Hall conductivity of bcc Fe at 101 levels vs one.

    python benchmarks/fermi_scan.py [--n 24] [--levels 101] [--window 0.5] [--repeats 3]
        [--variants tb] [--write]

Issue 17, item 3. bcc Fe from the shared Wannier90 file (18 spinor Wannier functions, SOC; the
README of /work/shared/data/wannier90 says where it comes from), ``grids.brillouin_zone(model, n)``
(n^3 k-points), T = 0, sigma_xy = ``sj.hall_conductivity(...)[..., 0, 1]``. Rows per model variant:

- one level, mu = E_F = 17.6255 eV;
- a scan of ``--levels`` levels, mu = E_F + linspace(-window, window, levels) eV, one call
  (``mu`` an array: each k-point's eigensystem and curvature computed once for all levels).

Each is called once to compile (the "first call" column: trace + compile + one run), then timed
``--repeats`` times with ``block_until_ready``; the best is reported. The bar: the scan costs at
most 2x one level. The scan's value at E_F must equal the one-level call (printed: the relative
difference), and sigma_xy(E_F) is printed in S/cm (e^2 / (hbar Angstrom) = 24341 S/cm).

Model variants: ``VARIANTS`` maps a name to a function returning (label, model). ``tb`` is the
tight-binding model (H(R) only); a variant with the Wannier position terms r(R) (issue 17, item 2)
and a WannierBerri row for comparison are to be added next to it.
"""

import argparse
import time
from pathlib import Path

import numpy as np
from _machine import cpu_name

FE = Path("/work/shared/data/wannier90/Fe_tb.dat.gz")
FERMI = 17.6255  # eV, the Fermi level of the Fe calculation (README of the data folder)
S_PER_CM = (
    24341.0  # e^2 / (hbar Angstrom) in S/cm: natural 3D conductivity with lengths in Angstrom
)
HEADING = "## Fermi-level scans in one pass (issue 17, item 3)"


def _tight_binding():
    import semiclassical_jax as sj

    return "Fe, tight-binding H(R) (no position terms)", sj.models.TightBinding.from_wannier90(FE)


VARIANTS = {"tb": _tight_binding}


def _timed(call, repeats: int) -> tuple[float, float, np.ndarray]:
    """(first call in s, best of ``repeats`` later calls in s, the result)."""
    start = time.perf_counter()
    result = call().block_until_ready()
    first = time.perf_counter() - start
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        call().block_until_ready()
        best = min(best, time.perf_counter() - start)
    return first, best, np.asarray(result)


def _variant_rows(name: str, args: argparse.Namespace) -> list[str]:
    import semiclassical_jax as sj

    label, model = VARIANTS[name]()
    grid = sj.grids.brillouin_zone(model, args.n)
    offsets = np.linspace(-args.window, args.window, args.levels)
    levels = FERMI + offsets
    at_fermi = int(np.argmin(np.abs(offsets)))

    def one():
        return sj.hall_conductivity(model, grid, mu=FERMI, temperature=0.0)

    def scan():
        return sj.hall_conductivity(model, grid, mu=levels, temperature=0.0)

    first_one, best_one, sigma = _timed(one, args.repeats)
    first_scan, best_scan, sigmas = _timed(scan, args.repeats)
    value, scanned = sigma[0, 1], sigmas[at_fermi, 0, 1]
    agreement = abs(scanned - value) / abs(value)
    return [
        f"| {label}: one level | {first_one:.2f} | {best_one:.2f} | 1 | {S_PER_CM * value:.2f} |",
        f"| {label}: {args.levels} levels | {first_scan:.2f} | {best_scan:.2f} | "
        f"{best_scan / best_one:.2f} | {S_PER_CM * scanned:.2f} (rel. diff. {agreement:.1e}) |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=24, help="k-points per direction (n^3 in all)")
    parser.add_argument("--levels", type=int, default=101)
    parser.add_argument("--window", type=float, default=0.5, help="half-width of the scan, eV")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--write", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    import jax

    lines = [
        f"`python benchmarks/fermi_scan.py --n {args.n} --levels {args.levels} "
        f"--window {args.window} --repeats {args.repeats} --variants {args.variants}`",
        f"({cpu_name()}, {jax.device_count()} {jax.default_backend()} device(s), jax "
        f"{jax.__version__}, float64; {args.n}^3 k-points, T = 0, mu = E_F + "
        f"linspace(-{args.window}, {args.window}, {args.levels}) eV, E_F = {FERMI} eV)",
        "",
        "| row | first call (s) | best of later calls (s) | / one level | sigma_xy(E_F) (S/cm) |",
        "|---|---|---|---|---|",
    ]
    for name in args.variants.split(","):
        lines += _variant_rows(name, args)
    text = "\n".join(lines)
    print(text)
    if args.write:
        path = Path(__file__).with_name("RESULTS.md")
        with path.open("a") as results:
            results.write(f"\n{HEADING}\n\n{text}\n")


if __name__ == "__main__":
    main()
