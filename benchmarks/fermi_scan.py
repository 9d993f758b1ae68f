"""A Fermi-level scan in one pass: the anomalous Hall conductivity of bcc Fe at 101 levels vs one.

    python benchmarks/fermi_scan.py [--n 24] [--levels 101] [--window 0.5] [--repeats 3]
        [--variants tb,positions] [--grid centred|gamma] [--wannierberri-python PYTHON] [--write]

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
tight-binding approximation (H(R) and the Wannier centres only), ``positions`` the full Berry
connection with r(R) (issue 17, item 2).

``--grid gamma`` uses the Gamma-centred grid k = m_i / n b_i (an explicit ``KGrid``) instead of
``brillouin_zone``'s cell centres: WannierBerri's grid, for the comparison rows. With
``--wannierberri-python PYTHON`` (an interpreter that imports wannierberri and numba), WannierBerri's
``AHC`` calculator (serial: ``parallel=False``, one process; ``external_terms`` True / False for
the two variants; ``Efermi`` the same levels) runs on the same file and grid in a subprocess, after
a warm-up on a 6^3 grid (numba compilation); its rows give its time and its sigma_xy(E_F) with the
relative difference from ours. Issue 17's bar: our scan with position terms is faster than
WannierBerri's.
"""

import argparse
import json
import subprocess
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

    model = sj.models.TightBinding.from_wannier90(FE).without_position_terms()
    return "Fe, tight-binding approximation (no position terms)", model


def _positions():
    import semiclassical_jax as sj

    return "Fe, with position terms r(R)", sj.models.TightBinding.from_wannier90(FE)


VARIANTS = {"tb": _tight_binding, "positions": _positions}
EXTERNAL_TERMS = {"tb": False, "positions": True}


def _grid(model, n: int, kind: str):
    import jax.numpy as jnp

    import semiclassical_jax as sj

    if kind == "centred":
        return sj.grids.brillouin_zone(model, n)
    reciprocal = np.asarray(model.reciprocal_lattice)
    m = np.arange(n) / n
    reduced = np.stack(np.meshgrid(m, m, m, indexing="ij"), axis=-1).reshape(-1, 3)
    weight = abs(np.linalg.det(reciprocal)) / (n**3 * (2 * np.pi) ** 3)
    return sj.grids.KGrid(jnp.asarray(reduced @ reciprocal), jnp.full(n**3, weight))


def _wannierberri_worker(n: int, levels: list[float], external: bool) -> None:
    """Runs in the WannierBerri interpreter: prints one JSON line (times, sigma_xy at the levels)."""
    import contextlib
    import gzip
    import io
    import os
    import tempfile

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import wannierberri as wberri

        folder = tempfile.mkdtemp()  # WannierBerri writes result files to the cwd
        os.chdir(folder)
        path = Path(folder) / "Fe_tb.dat"
        path.write_bytes(gzip.decompress(FE.read_bytes()))
        system = wberri.system.System_tb(str(path), berry=True)

        def run(nk: int, efermi: np.ndarray) -> np.ndarray:
            grid = wberri.Grid(system, NKdiv=[1, 1, 1], NKFFT=[nk] * 3, use_symmetry=False)
            calculator = wberri.calculators.static.AHC(
                Efermi=efermi,
                constant_factor=-1.0,  # O_z = -int [dk] Omega_z f = sigma_xy in e^2/(hbar Angstrom)
                smoother=None,
                kwargs_formula={"external_terms": external},
            )
            result = wberri.run(
                system,
                grid=grid,
                calculators={"ahc": calculator},
                parallel=False,
                use_irred_kpt=False,
                symmetrize=False,
                print_progress_step_time=1e9,
                print_progress_step_percent=100,
            )
            return np.asarray(result.results["ahc"].data)[:, 2]

        run(6, np.array(levels[:1]))  # warm-up: numba compilation
        times, values = [], []
        for efermi in (np.array([FERMI]), np.array(levels)):
            start = time.perf_counter()
            values.append(run(n, efermi).tolist())
            times.append(time.perf_counter() - start)
    print(json.dumps({"times": times, "values": values, "version": wberri.__version__}))


def _wannierberri_rows(name: str, args: argparse.Namespace, levels, ours: float) -> list[str]:
    command = [
        args.wannierberri_python,
        __file__,
        "--worker",
        json.dumps({"n": args.n, "levels": list(levels), "external": EXTERNAL_TERMS[name]}),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    (one,), scan = result["values"]
    label = f"WannierBerri {result['version']} AHC, external_terms={EXTERNAL_TERMS[name]}"
    difference = abs(one - ours) / abs(ours)
    return [
        f"| {label}: one level | - | {result['times'][0]:.2f} | 1 | {S_PER_CM * one:.2f} "
        f"(rel. diff. from ours {difference:.1e}) |",
        f"| {label}: {len(scan)} levels | - | {result['times'][1]:.2f} | "
        f"{result['times'][1] / result['times'][0]:.2f} | - |",
    ]


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
    grid = _grid(model, args.n, args.grid)
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
    peer = [] if args.wannierberri_python is None else _wannierberri_rows(name, args, levels, value)
    return peer + [
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
    parser.add_argument("--grid", choices=["centred", "gamma"], default="centred")
    parser.add_argument("--wannierberri-python", default=None)
    parser.add_argument("--write", action="store_true", help="append to benchmarks/RESULTS.md")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        _wannierberri_worker(**json.loads(args.worker))
        return
    import jax

    lines = [
        f"`python benchmarks/fermi_scan.py --n {args.n} --levels {args.levels} "
        f"--window {args.window} --repeats {args.repeats} --variants {args.variants} "
        f"--grid {args.grid}"
        + ("" if args.wannierberri_python is None else " --wannierberri-python PYTHON")
        + "`",
        f"({cpu_name()}, {jax.device_count()} {jax.default_backend()} device(s), jax "
        f"{jax.__version__}, float64; {args.n}^3 k-points ({args.grid} grid), T = 0, mu = E_F + "
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
