"""Phase-space points per second for the Hall (Berry-curvature) integral and MSCT, 10^4 to 10^7 k-points.

    python benchmarks/transport.py [--sizes 1e4,1e5,1e6,1e7] [--skip-pythtb] [--write]
        [--wannierberri-python PYTHON] [--timeout 900]

Issue 4's benchmark (not a timed test). One Haldane model, Haldane(t1 = 1, t2 = 0.15, phi = pi/2,
mass = 0.2) (Chern number C = -1), mu = 0 in the gap, T = 0.01, float64, one position x (so
phase-space points = k-points). Rows:

- ``sj.hall_conductivity`` on ``grids.brillouin_zone(model, n)``: the Berry-curvature integral;
- ``sj.current(theory="msct")`` in a field E = (0, 1e-3), tau = 10, with the default one-band
  manifolds and with ``manifolds=[[0, 1]]`` (the non-adiabatic path: the field hybridises both
  bands, and d_k E_i comes from forward-mode autodiff of the hybridised energies);
- ``sj.current(theory="ssct")`` at the ``--ssct-sizes``;
- a NumPy batched reference written independently of the package (H(k) and analytic dH/dk from the
  hopping list, batched ``np.linalg.eigh``, sum over states), chunked, on the same grid;
- PythTB 1.x (``wf_array.solve_on_grid`` + ``berry_flux``: a per-k Python loop and the lattice
  link-variable Chern number) at ``--pythtb-sizes``;
- WannierBerri (``System_R.from_pythtb`` + the ``AHC`` calculator, serial) at
  ``--wannierberri-sizes`` when ``--wannierberri-python`` (default: this interpreter) can import it.

Every (method, size) runs in a fresh subprocess (this script with ``--one METHOD N_SIDE``), so the
peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``: imports + grid + run) belongs to that row alone;
this checks issue 4's "10^7 k-points in under 4 GiB on the CPU". JAX rows: the first call compiles
(compile time = JAX's trace + lowering + XLA compile events during it), then the steady-state call
is timed with ``block_until_ready`` (best of 3 up to 2e5 points, else one call). Every row prints
2 pi sigma_xy, which must be +1 (sigma_xy = -C / 2 pi); for the currents sigma_xy = J_x / E_y.
``--write`` appends the output to benchmarks/RESULTS.md under "Transport (issue 4)".
"""

import argparse
import contextlib
import io
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import cpu_name

T1, T2, PHI, MASS = 1.0, 0.15, np.pi / 2, 0.2
MU, TEMPERATURE, TAU, FIELD = 0.0, 0.01, 10.0, 1e-3
LATTICE = np.array([[1.0, 0.0], [0.5, np.sqrt(3) / 2]])
SITES = np.array([[1 / 3, 1 / 3], [2 / 3, 2 / 3]])  # reduced orbital positions (A, B)
HEADING = "## Transport (issue 4)"
JAX_METHODS = {
    "hall": "sj.hall_conductivity (Berry-curvature integral)",
    "msct": "sj.current MSCT, one-band manifolds",
    "msct_manifold": "sj.current MSCT, manifolds=[[0, 1]] (non-adiabatic)",
    "ssct": "sj.current SSCT",
}
LABELS = {
    **JAX_METHODS,
    "numpy": "NumPy batched reference (np.linalg.eigh, chunks of 2^16)",
    "pythtb": "PythTB wf_array + berry_flux (per-k loop)",
    "wannierberri": "WannierBerri AHC (from_pythtb, serial)",
}
INTRO = (
    "Phase-space points per second for the Hall (Berry-curvature) integral and MSCT on Brillouin-zone\n"
    "grids of 10^4 to 10^7 k-points, against a NumPy batched reference, PythTB and WannierBerri on the\n"
    "same Haldane model; each row is a fresh process, so its peak RSS is its own. Issue 4's bar: 10^7\n"
    "k-points in under 4 GiB on the CPU. Every row must give 2 pi sigma_xy = +1 (C = -1)."
)
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


# ---------------------------------------------------------------------------------------------
# shared helpers (this module's top level imports only numpy, so the WannierBerri worker can run in
# a separate environment without jax)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is KiB on Linux


def _bonds() -> list[tuple[complex, int, int, list[int]]]:
    """Haldane hoppings (amplitude, i, j, R) in PythTB's layout: H_ij(R) = amplitude, plus h.c."""
    plus, minus = T2 * np.exp(1j * PHI), T2 * np.exp(-1j * PHI)
    return [
        (T1, 0, 1, [0, 0]),
        (T1, 1, 0, [1, 0]),
        (T1, 1, 0, [0, 1]),
        (plus, 0, 0, [1, 0]),
        (plus, 1, 1, [1, -1]),
        (plus, 1, 1, [0, 1]),
        (minus, 1, 1, [1, 0]),
        (minus, 0, 0, [1, -1]),
        (minus, 0, 0, [0, 1]),
    ]


def _numpy_hamiltonian(ks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """H(k) (n, 2, 2) and dH/dk (n, 2, 2, 2) [point, direction, i, j], orbital positions included."""
    h = np.zeros((ks.shape[0], 2, 2), complex)
    dh = np.zeros((ks.shape[0], 2, 2, 2), complex)
    h[:, 0, 0], h[:, 1, 1] = MASS, -MASS
    for amplitude, i, j, r in _bonds():
        separation = (np.asarray(r) + SITES[j] - SITES[i]) @ LATTICE
        term = amplitude * np.exp(1j * (ks @ separation))
        h[:, i, j] += term
        h[:, j, i] += term.conj()
        for a in range(2):
            dh[:, a, i, j] += 1j * separation[a] * term
            dh[:, a, j, i] += np.conj(1j * separation[a] * term)
    return h, dh


def _numpy_grid(n_side: int) -> tuple[np.ndarray, np.ndarray]:
    """The Monkhorst-Pack grid of grids.brillouin_zone, rebuilt in NumPy: cell centres, equal weights."""
    reciprocal = 2 * np.pi * np.linalg.inv(LATTICE).T
    fractions = (np.arange(n_side) + 0.5) / n_side
    reduced = np.stack(np.meshgrid(fractions, fractions, indexing="ij"), -1).reshape(-1, 2)
    weight = abs(np.linalg.det(reciprocal)) / (n_side**2 * (2 * np.pi) ** 2)
    return reduced @ reciprocal, np.full(n_side**2, weight)


def _fermi(energy: np.ndarray) -> np.ndarray:
    return 0.5 * (1 - np.tanh((energy - MU) / (2 * TEMPERATURE)))


def _numpy_hall(ks: np.ndarray, weights: np.ndarray, chunk: int = 2**16) -> float:
    """sigma_xy = -sum_n int f0(eps_n) Omega_n, Omega_0 = -2 Im (dH_x)_01 (dH_y)_10 / (eps_0 - eps_1)^2."""
    total = 0.0
    for start in range(0, ks.shape[0], chunk):
        h, dh = _numpy_hamiltonian(ks[start : start + chunk])
        energies, states = np.linalg.eigh(h)
        lower, upper = states[:, :, 0], states[:, :, 1]
        x01 = np.einsum("ki,kij,kj->k", lower.conj(), dh[:, 0], upper)
        y10 = np.einsum("ki,kij,kj->k", upper.conj(), dh[:, 1], lower)
        omega = -2 * np.imag(x01 * y10) / (energies[:, 0] - energies[:, 1]) ** 2  # lower band
        occupation = _fermi(energies[:, 0]) - _fermi(energies[:, 1])  # Omega_1 = -Omega_0
        total -= np.dot(weights[start : start + chunk], occupation * omega)
    return float(total)


def _pythtb_model():
    import pythtb

    model = pythtb.tb_model(2, 2, LATTICE.tolist(), SITES.tolist())
    model.set_onsite([MASS, -MASS])
    for amplitude, i, j, r in _bonds():
        model.set_hop(amplitude, i, j, r)
    return model


# ---------------------------------------------------------------------------------------------
# workers: one (method, size) per fresh process; each prints one "RESULT {json}" line


def _jax_worker(method: str, n_side: int) -> dict:
    compile_seconds = dict.fromkeys(COMPILE_EVENTS, 0.0)

    def listener(event: str, duration: float, **_: object) -> None:
        if event in compile_seconds:
            compile_seconds[event] += duration

    import jax

    jax.monitoring.register_event_duration_secs_listener(listener)
    import jax.numpy as jnp

    import semiclassical_jax as sj

    rss_import = _peak_rss_mib()
    model = sj.models.Haldane(T1, T2, PHI, MASS)
    grid = sj.grids.brillouin_zone(model, n_side)
    field = jnp.array([0.0, FIELD])
    if method == "hall":

        def call():
            return sj.hall_conductivity(model, grid, mu=MU, temperature=TEMPERATURE)

        def hall(result):
            return 2 * np.pi * float(result[0, 1])
    else:
        theory = "ssct" if method == "ssct" else "msct"
        manifolds = [[0, 1]] if method == "msct_manifold" else None

        def call():
            return sj.current(
                model,
                grid,
                field=field,
                mu=MU,
                temperature=TEMPERATURE,
                tau=TAU,
                theory=theory,
                manifolds=manifolds,
            )

        def hall(result):
            return 2 * np.pi * float(result[0]) / FIELD

    start = time.perf_counter()
    jax.block_until_ready(call())
    first = time.perf_counter() - start
    compiled = sum(compile_seconds.values())
    compile_seconds.update(dict.fromkeys(COMPILE_EVENTS, 0.0))
    best = math.inf
    for _ in range(3 if n_side**2 <= 200_000 else 1):
        start = time.perf_counter()
        result = jax.block_until_ready(call())
        best = min(best, time.perf_counter() - start)
    recompiled = compile_seconds[COMPILE_EVENTS[-1]] > 0  # before hall(): indexing compiles too
    return {
        "compile_s": compiled,
        "first_call_s": first,
        "run_s": best,
        "hall": hall(np.asarray(result)),
        "recompiled": recompiled,
        "rss_import_mib": rss_import,
        "versions": {"jax": jax.__version__, "device": str(jax.devices()[0].platform)},
    }


def _numpy_worker(n_side: int) -> dict:
    rss_import = _peak_rss_mib()
    ks, weights = _numpy_grid(n_side)
    _numpy_hall(ks[:1024], weights[:1024])  # warm-up
    start = time.perf_counter()
    value = _numpy_hall(ks, weights)
    return {
        "run_s": time.perf_counter() - start,
        "hall": 2 * np.pi * value,
        "rss_import_mib": rss_import,
        "versions": {"numpy": np.__version__},
    }


def _pythtb_worker(n_side: int) -> dict:
    import pythtb

    rss_import = _peak_rss_mib()
    model = _pythtb_model()
    start = time.perf_counter()
    array = pythtb.wf_array(model, [n_side, n_side])
    array.solve_on_grid([0.0, 0.0])
    flux = array.berry_flux([0], individual_phases=True)
    run = time.perf_counter() - start
    chern = float(np.sum(flux)) / (2 * np.pi)  # PythTB's lower-band Chern number
    return {
        "run_s": run,
        "hall": -chern,
        "rss_import_mib": rss_import,
        "versions": {"pythtb": pythtb.__version__},
    }


def _wannierberri_worker(n_side: int) -> dict:
    with contextlib.redirect_stdout(io.StringIO()):
        import wannierberri as wberri

        try:
            import pyfftw  # noqa: F401

            fft = "pyfftw"
        except ImportError:
            fft = "numpy (no pyfftw)"

        rss_import = _peak_rss_mib()
        system = wberri.system.System_R.from_pythtb(_pythtb_model())
        divisions = next(d for d in range(1, n_side + 1) if n_side % d == 0 and n_side // d <= 200)

        def run(div: int, fft: int) -> float:
            grid = wberri.Grid(system, NKdiv=[div, div, 1], NKFFT=[fft, fft, 1], use_symmetry=False)
            # constant_factor = -1: O_z = -int [dk] Omega_z f = sigma_xy in e^2/hbar (the c = 1 axis
            # integrates to 1); WannierBerri's default factor_ahc carries the minus sign and SI units
            calculator = wberri.calculators.static.AHC(
                Efermi=np.array([MU]),
                constant_factor=-1.0,
                smoother=None,
                kwargs_formula={"external_terms": False},
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
            return float(np.ravel(result.results["ahc"].data)[2])

        with tempfile.TemporaryDirectory() as folder:  # WannierBerri writes result files to the cwd
            os.chdir(folder)
            run(1, 10)  # warm-up: numba compilation, imports
            start = time.perf_counter()
            sigma = run(divisions, n_side // divisions)
            elapsed = time.perf_counter() - start
    return {
        "run_s": elapsed,
        "hall": 2 * np.pi * sigma,
        "rss_import_mib": rss_import,
        "versions": {"wannierberri": wberri.__version__},
        "grid": f"NKdiv {divisions} x NKFFT {n_side // divisions}",
        "fft": fft,
    }


def _worker(method: str, n_side: int) -> None:
    if method in JAX_METHODS:
        result = _jax_worker(method, n_side)
    elif method == "numpy":
        result = _numpy_worker(n_side)
    elif method == "pythtb":
        result = _pythtb_worker(n_side)
    elif method == "wannierberri":
        result = _wannierberri_worker(n_side)
    else:
        raise ValueError(f"unknown method {method!r}")
    result["peak_rss_mib"] = _peak_rss_mib()
    print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------------
# driver


def _spawn(python: str, method: str, n_side: int, timeout: float) -> dict:
    command = [python, str(Path(__file__).resolve()), "--one", method, str(n_side)]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"killed after the {timeout:.0f} s timeout"}
    except OSError as error:
        return {"error": f"could not start {python}: {error}"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail[:160]}"}
    result = json.loads(lines[-1][len("RESULT ") :])
    result["wall_s"] = time.perf_counter() - start
    return result


def _sizes(text: str) -> list[int]:
    """'1e4,1e5' -> grid sides n with n^2 ~ each size."""
    return [round(math.sqrt(float(s))) for s in text.split(",") if s.strip()]


def _check_reference_hamiltonian() -> float:
    import jax.numpy as jnp

    import semiclassical_jax as sj

    model = sj.models.Haldane(T1, T2, PHI, MASS)
    ks = np.random.default_rng(0).uniform(-5, 5, (8, 2))
    package = np.stack([np.asarray(model(jnp.zeros(2), jnp.asarray(k))) for k in ks])
    return float(np.max(np.abs(_numpy_hamiltonian(ks)[0] - package)))


def _format(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e4,1e5,1e6,1e7", help="k-points, comma separated")
    parser.add_argument("--numpy-sizes", default=None, help="default: --sizes")
    parser.add_argument("--ssct-sizes", default="1e6")
    parser.add_argument("--pythtb-sizes", default="1e4")
    parser.add_argument("--wannierberri-sizes", default="1e4,1e5")
    parser.add_argument(
        "--wannierberri-python",
        default=sys.executable,
        help="interpreter with wannierberri, numba and pythtb (e.g. a separate venv)",
    )
    parser.add_argument("--skip-pythtb", action="store_true")
    parser.add_argument("--skip-wannierberri", action="store_true")
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds per (method, size) process"
    )
    parser.add_argument("--write", action="store_true", help="append to benchmarks/RESULTS.md")
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "N_SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _worker(args.one[0], int(args.one[1]))
        return

    import jax

    sizes = _sizes(args.sizes)
    plan = [(method, n) for n in sizes for method in ("hall", "msct", "msct_manifold")]
    plan += [("ssct", n) for n in _sizes(args.ssct_sizes)]
    plan += [("numpy", n) for n in _sizes(args.numpy_sizes or args.sizes)]
    if not args.skip_pythtb:
        plan += [("pythtb", n) for n in _sizes(args.pythtb_sizes)]
    if not args.skip_wannierberri:
        plan += [("wannierberri", n) for n in _sizes(args.wannierberri_sizes)]
    rows = []
    for method, n in plan:
        python = args.wannierberri_python if method == "wannierberri" else sys.executable
        result = _spawn(python, method, n, args.timeout)
        rows.append((method, n, result))
        status = result.get("error") or f"{result['wall_s']:.1f} s"
        print(f"[{method} {n**2:,}: {status}]", file=sys.stderr, flush=True)

    versions = {}
    for _, _, result in rows:
        versions.update(result.get("versions", {}))
    lines = [
        f"Hall integral and MSCT throughput, Haldane(1, 0.15, pi/2, 0.2), mu = 0, T = 0.01, float64, "
        f"{cpu_name()}, {os.cpu_count()} cores, {jax.devices()[0].platform} ({jax.device_count()} device), "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "device")
        + f", {time.strftime('%Y-%m-%d')}",
        "",
        "| method | k-points | compile (s) | steady state (s) | k-points / s | peak RSS (MiB) | 2 pi sigma_xy |",
        "|---|---|---|---|---|---|---|",
    ]
    notes = []
    missing = [
        r["error"]
        for m, _, r in rows
        if m == "wannierberri" and "No module named" in r.get("error", "")
    ]
    if missing:  # one note instead of a row per size
        rows = [row for row in rows if row[0] != "wannierberri"]
        notes.append(
            f"WannierBerri was tried with {args.wannierberri_python} and is absent: {missing[0]} "
            "(install wannierberri, numba and pythtb in a separate venv, pass --wannierberri-python)"
        )
    for method, n, result in rows:
        if method == "wannierberri" and "error" not in result:
            notes.append(
                f"WannierBerri at {n**2:,}: {result['grid']}, FFT by {result['fft']}, serial"
            )
        if "error" in result:
            lines.append(f"| {LABELS[method]} | {n**2:,} | - | - | - | - | {result['error']} |")
            continue
        if result.get("recompiled"):
            notes.append(f"{LABELS[method]} at {n**2:,}: the timed call recompiled")
        lines.append(
            f"| {LABELS[method]} | {n**2:,} | {_format(result.get('compile_s'), '.2f')} | {result['run_s']:.3g} "
            f"| {n**2 / result['run_s']:,.3g} | {result['peak_rss_mib']:,.0f} | {result['hall']:.6f} |"
        )
    lines.append("")
    imports = [
        r["rss_import_mib"] for m, _, r in rows if m in JAX_METHODS and "rss_import_mib" in r
    ]
    if imports:
        lines.append(
            f"Peak RSS: ru_maxrss of a fresh process per row (imports + grid + run); importing jax and "
            f"semiclassical_jax alone: {min(imports):,.0f} MiB."
        )
    largest = max(sizes)
    for method in ("msct", "msct_manifold"):
        result = next((r for m, n, r in rows if m == method and n == largest), None)
        if result is None:
            continue
        if "error" in result:
            lines.append(
                f"Issue 4 memory bar, {LABELS[method]} at {largest**2:,}: no result ({result['error']})."
            )
        elif largest**2 < 9_900_000:
            lines.append(
                f"Peak RSS of {LABELS[method]} at {largest**2:,} k-points: "
                f"{result['peak_rss_mib']:,.0f} MiB (issue 4's 4 GiB bar is at 10^7; not run)."
            )
        else:
            verdict = "yes" if result["peak_rss_mib"] < 4096 else "NO"
            lines.append(
                f"Issue 4 memory bar (10^7 k-points under 4 GiB), {LABELS[method]} at "
                f"{largest**2:,} k-points: peak RSS {result['peak_rss_mib']:,.0f} MiB -> below 4 GiB: "
                f"{verdict}."
            )
    lines.append(
        f"NumPy reference H(k) vs sj.models.Haldane at 8 random k: max |dH| = "
        f"{_check_reference_hamiltonian():.1e}. PythTB's 2 pi sigma_xy is -C from berry_flux (lattice "
        "link variables on an n x n mesh that repeats its end points); WannierBerri's grid contains Gamma."
    )
    lines.extend(f"Note: {note}." for note in notes)
    lines.append("")
    lines.append("command: python " + " ".join(sys.argv))
    output = "\n".join(lines)
    print(output)
    if args.write:
        path = Path(__file__).resolve().parent / "RESULTS.md"
        text = path.read_text()
        headings = [line for line in text.splitlines() if line.startswith("## ")]
        block = "\n" + output + "\n"
        if not headings or headings[-1] != HEADING:
            block = f"\n{HEADING}\n\n{INTRO}\n" + block
        path.write_text(text.rstrip("\n") + "\n" + block)


if __name__ == "__main__":
    main()
