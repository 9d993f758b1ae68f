"""Magnetoconductance of a Weyl semimetal: a B sweep, its memory, and its gradient (issue 18, item 6).

    python benchmarks/magnetotransport.py [--n-k 1000000] [--n-b 64] [--b-max 0.002]
        [--chunk-size N] [--batch-size N] [--no-perpendicular] [--no-continuum]
        [--no-gradient] [--write]

Not a timed test: it prints a markdown table and the command that produced it; ``--write`` appends
the output to benchmarks/RESULTS.md under "Magnetotransport (issue 18)". One process, float64; JAX
picks its default device (a GPU where jax has one), and the same command runs unmodified there.

Model: ``WeylLattice(k0 = pi/2)``, a pair of Weyl nodes at k = (0, 0, -+pi/2) with velocity 1 in
every direction: near them H ~ qx sx + qy sy +- qz sz - (qx^2 + qy^2) / 2 sz + O(q^3) (the
lattice bends the cones). mu = 0.3, T = 0.02, tau = 5 (natural units, lattice constant 1), the
SSCT current in a uniform B (``theory="ssct"``, PHYSICS.md section 5: moment energy, D factor,
chiral-anomaly term, Lorentz force to O(B^2)). k-grid: about ``--n-k`` points in two spherical
shells, one per node, |q| in kF -+ 12 T / v, 4 m x m x 2 m points each (Gauss-Legendre in |q|
and cos theta, midpoints in phi): they resolve the thermal window (the B^2 terms hold up to f0''')
that a Brillouin-zone grid of 10^6 points (spacing 0.06 > T) would not. B = linspace(-b_max,
b_max, n_b) along z; b_max = 0.002 keeps |B . Omega| <= 0.28 on the innermost shell point
(|q| = kF - 12 T = 0.06, Omega = 1 / (2 q^2) = 139): at b_max = 0.01 it is 1.4, D = 1 + B . Omega
crosses zero on the grid and the expansion in B fails there (seen on a GPU at 10^6 points: six of
64 B values gave sigma_zz from -3.2 to 9.1 instead of 0.015; the current now refuses D <= 0,
naming magnetic_field). Rows (``sj.sweep`` over ``magnetic_field_strength``, one compilation each):

- ``E || B || z``, E = (0, 0, 1e-4): sigma_zz(B) = J_z / E_z (the current at E = 0 vanishes by
  the mirror k_z -> -k_z of the model and the grid: 1e-13 of J in a check). Fit (least
  squares) sigma = sigma_0 + a B + c B^2 + d B^3 + e B^4: a T-breaking lattice model may have a
  term linear in B (both nodes alike, by the mirror), the continuum has none;
- ``E perp B`` (E along x, B along z): the ordinary (Lorentz) and Berry-phase magnetoresistance,
  no anomaly term (``--no-perpendicular`` skips it);
- ``continuum pair`` (``--no-continuum`` skips it): H = qx sx + qy sy +- qz sz about the same nodes
  (a FunctionModel, the lattice model's linearisation) on the same grid, E || B: its sigma_0 and c
  against the closed forms 2 tau <mu^2> / (6 pi^2 v) and 2 tau v^3 <1/mu^2> / (30 pi^2)
  (tests/test_magnetotransport.py; <.>: the -f0' average), a check that the grid resolves what
  the lattice rows measure;
- gradient: d sigma_zz / dB of the lattice model at B = B[3 n_b / 4] by ``jax.jacfwd`` through
  ``sj.current`` (forward mode through the integrand's own nested forward-mode derivatives),
  against a central difference (h = 1e-3 b_max) of the same function and the derivative of the
  sweep's fit; and sigma_zz there against the sweep's value.

Times: each call once, compile separated by JAX's monitoring events (trace + lowering + XLA
compile); "per (B, k) point" = (wall - compile) / (n_b x n_k). Memory: the process's peak RSS
(``ru_maxrss``) and, on a GPU, the device's ``peak_bytes_in_use`` (both peaks since the process
began, so a row includes the rows before it). Chunks: the sweep's defaults bound the integrand
evaluations in flight (batch x chunk; ``--chunk-size`` / ``--batch-size`` set them); on a GPU the
defaults here are chunk 2^15 and batch 8.
"""

import argparse
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np
from _machine import cpu_name

HEADING = "## Magnetotransport (issue 18)"
K0, MU, TEMPERATURE, TAU, FIELD = math.pi / 2, 0.3, 0.02, 5.0, 1e-4
WIDTH = 12 * TEMPERATURE  # the shells' half-width in |q| (v = 1): -f0' < 1e-5 of its peak outside
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
COMPILE_SECONDS = dict.fromkeys(COMPILE_EVENTS, 0.0)


def _listener(event: str, duration: float, **_: object) -> None:
    if event in COMPILE_SECONDS:
        COMPILE_SECONDS[event] += duration


def _compile_seconds() -> float:
    return sum(COMPILE_SECONDS.values())


def _memory() -> tuple[float, float | None]:
    """(peak host RSS, peak device bytes in use) in MiB; the device's is None where it has no
    memory statistics (CPU)."""
    import jax

    host = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return host, None if peak is None else peak / 2**20


def _shells(n_k: int):
    """A KGrid of about n_k points: two spherical shells |q| in kF -+ WIDTH about the nodes
    (0, 0, -+k0), 4 m x m x 2 m points each (Gauss-Legendre in |q| and cos theta, midpoints in
    phi; the B^2 terms hold up to the third derivative of f0, hence the radial nodes), weights
    d^3k / (2 pi)^3."""
    import jax.numpy as jnp

    from semiclassical_jax.grids import KGrid

    m = max(2, round((n_k / 16) ** (1 / 3)))
    xr, wr = np.polynomial.legendre.leggauss(4 * m)
    q, wq = MU + WIDTH * xr, WIDTH * wr * (MU + WIDTH * xr) ** 2  # kF = mu / v, v = 1
    xc, wc = np.polynomial.legendre.leggauss(m)
    phi = 2 * np.pi * (np.arange(2 * m) + 0.5) / (2 * m)
    qq, cc, pp = np.meshgrid(q, xc, phi, indexing="ij")
    weights = wq[:, None, None] * wc[None, :, None] * np.full(2 * m, 2 * np.pi / (2 * m))
    sin = np.sqrt(1 - cc**2)
    offsets = np.stack([qq * sin * np.cos(pp), qq * sin * np.sin(pp), qq * cc], -1).reshape(-1, 3)
    points = np.concatenate([offsets + [0.0, 0.0, -K0], offsets + [0.0, 0.0, K0]])
    weights = np.tile(weights.reshape(-1), 2) / (2 * np.pi) ** 3
    return KGrid(jnp.asarray(points), jnp.asarray(weights))


def _thermal(function) -> float:
    """int de (-f0'(e - mu)) function(e) over the shells' window, mu -+ 12 T (numpy trapezoid)."""
    e = np.linspace(MU - WIDTH, MU + WIDTH, 200001)
    slope = 1 / (4 * TEMPERATURE * np.cosh((e - MU) / (2 * TEMPERATURE)) ** 2)
    return float(np.trapezoid(slope * function(e), e))


def _fit(b: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """(sigma_0, a, c, d, e) of the least-squares fit sigma = sigma_0 + a B + c B^2 + d B^3 + e B^4
    (the highest orders dropped when there are fewer B values)."""
    design = np.stack([b**n for n in range(min(5, len(b)))], axis=-1)
    coefficients = np.linalg.lstsq(design, sigma, rcond=None)[0]
    return np.concatenate([coefficients, np.zeros(5 - len(coefficients))])


def _continuum_pair(p, x, k):
    """H = v (qx sx + qy sy - sign(kz) qz sz), q = k - (0, 0, sign(kz) k0): the linearisation of
    WeylLattice(pi/2) about its two nodes (one per half of the grid)."""
    import jax.numpy as jnp

    side = jnp.sign(k[2])
    q = k - jnp.array([0.0, 0.0, side * K0])
    dz = -side * q[2]
    return p * jnp.array([[dz, q[0] - 1j * q[1]], [q[0] + 1j * q[1], -dz]])


def _sweep_row(model, grid, bs, args, field_axis: int) -> tuple[dict, np.ndarray]:
    """One B sweep with E along ``field_axis`` (2: E || B, 0: E perp B): timings, memory and
    sigma_aa(B) = J_a / E_a."""
    import semiclassical_jax as sj

    field = np.zeros(3)
    field[field_axis] = FIELD
    before = _compile_seconds()
    start = time.perf_counter()
    result = sj.sweep(
        model,
        grid,
        {"magnetic_field_strength": bs},
        magnetic_field_direction=[0.0, 0.0, 1.0],
        field=field,
        mu=MU,
        temperature=TEMPERATURE,
        tau=TAU,
        theory="ssct",
        chunk_size=args.chunk_size,
        batch_size=args.batch_size,
    )
    wall = time.perf_counter() - start
    compile_ = _compile_seconds() - before
    host, device = _memory()
    row = {
        "wall": wall,
        "compile": compile_,
        "host": host,
        "device": device,
        "chunk": result.attrs["chunk_size"],
        "batch": result.attrs["batch_size"],
    }
    return row, result.values[:, field_axis] / FIELD


def _gradient_row(model, grid, b: float, args) -> dict:
    """d sigma_zz / dB at B = (0, 0, b): jax.jacfwd through sj.current against a central
    difference of the same (jitted) function."""
    import jax
    import jax.numpy as jnp

    import semiclassical_jax as sj

    def sigma(strength):
        current = sj.current(
            model,
            grid,
            field=jnp.array([0.0, 0.0, FIELD]),
            mu=MU,
            temperature=TEMPERATURE,
            tau=TAU,
            theory="ssct",
            magnetic_field=jnp.array([0.0, 0.0, 1.0]) * strength,
            chunk_size=args.chunk_size,
        )
        return current[2] / FIELD

    value = jax.jit(sigma)
    derivative = jax.jit(jax.jacfwd(lambda s: (lambda v: (v, v))(sigma(s)), has_aux=True))
    before, start = _compile_seconds(), time.perf_counter()
    slope, at_b = jax.block_until_ready(derivative(jnp.asarray(b)))
    gradient_wall, gradient_compile = time.perf_counter() - start, _compile_seconds() - before
    h = 1e-3 * args.b_max
    before, start = _compile_seconds(), time.perf_counter()
    plus, minus = (float(value(jnp.asarray(b + s * h))) for s in (1.0, -1.0))
    difference_wall, difference_compile = time.perf_counter() - start, _compile_seconds() - before
    host, device = _memory()
    return {
        "b": b,
        "slope": float(slope),
        "value": float(at_b),
        "difference": (plus - minus) / (2 * h),
        "wall": gradient_wall,
        "compile": gradient_compile,
        "difference_wall": difference_wall,
        "difference_compile": difference_compile,
        "host": host,
        "device": device,
    }


def _device_text(device: float | None) -> str:
    return "-" if device is None else f"{device:.0f}"


def _sweep_table(grid, bs, rows) -> tuple[list[str], dict]:
    n_k, n_b = int(grid.points.shape[0]), len(bs)
    lines = [
        "| row | B values x k-points | chunk x batch | compile (s) | run (s) | per (B, k) point "
        "(us) | peak RSS (MiB) | peak device (MiB) | sigma_0 | a (linear) | c (quadratic) "
        "| (sigma(b_max) + sigma(-b_max)) / 2 sigma_0 - 1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    fits = {}
    for name, (row, sigma) in rows.items():
        fits[name] = fit = _fit(bs, sigma)
        run = row["wall"] - row["compile"]
        even = (sigma[0] + sigma[-1]) / (2 * fit[0]) - 1
        lines.append(
            f"| {name} | {n_b} x {n_k} | {row['chunk']} x {row['batch']} | {row['compile']:.1f} "
            f"| {run:.1f} | {1e6 * run / (n_b * n_k):.3g} | {row['host']:.0f} | "
            f"{_device_text(row['device'])} | {fit[0]:.6g} | {fit[1]:+.4g} | {fit[2]:+.4g} | "
            f"{even:+.3e} |"
        )
    return lines, fits


def _gradient_table(gradient: dict, bs: np.ndarray, sigma: np.ndarray, fit: np.ndarray) -> list:
    b = gradient["b"]
    from_fit = sum(n * fit[n] * b ** (n - 1) for n in range(1, 5))
    relative = abs(gradient["slope"] - gradient["difference"]) / abs(gradient["difference"])
    sweep_value = sigma[int(np.argmin(np.abs(bs - b)))]
    return [
        "",
        "| d sigma_zz / dB at B | jacfwd | central difference | rel. diff. | from the sweep's fit "
        "| jacfwd compile (s) | jacfwd run (s) | difference: compile, 2 runs (s) | peak RSS "
        "(MiB) | peak device (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {b:.4g} | {gradient['slope']:.8g} | {gradient['difference']:.8g} | {relative:.1e} | "
        f"{from_fit:.6g} | {gradient['compile']:.1f} | {gradient['wall'] - gradient['compile']:.1f}"
        f" | {gradient['difference_compile']:.1f}, "
        f"{gradient['difference_wall'] - gradient['difference_compile']:.1f} | "
        f"{gradient['host']:.0f} | {_device_text(gradient['device'])} |",
        "",
        f"sigma_zz at B = {b:.4g}: sj.current {gradient['value']:.12g}, the sweep "
        f"{sweep_value:.12g} (rel. diff. {abs(gradient['value'] - sweep_value) / abs(sweep_value):.1e}).",
    ]


def _table(grid, bs, rows, gradient) -> str:
    lines, fits = _sweep_table(grid, bs, rows)
    sigma_0 = 2 * _thermal(lambda e: TAU * e**2 / (6 * np.pi**2))
    coefficient = 2 * _thermal(lambda e: TAU / (30 * np.pi**2 * e**2))
    lines += [
        "",
        f"Closed forms of the continuum pair (v = 1): sigma_0 = 2 tau <mu^2> / (6 pi^2) = "
        f"{sigma_0:.6g}, a = 0, c = 2 tau <1/mu^2> / (30 pi^2) = {coefficient:.5g}.",
    ]
    if CONTINUUM in fits:
        fit = fits[CONTINUUM]
        lines[-1] += (
            f" The continuum row: sigma_0 off by {fit[0] / sigma_0 - 1:+.1e}, c by "
            f"{fit[2] / coefficient - 1:+.1e} (relative)."
        )
    if gradient is not None:
        lines += _gradient_table(gradient, bs, rows[PARALLEL][1], fits[PARALLEL])
    return "\n".join(lines)


PARALLEL, PERPENDICULAR = "E || B || z", "E perp B (E || x, B || z)"
CONTINUUM = "continuum pair, E || B || z"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-k", type=int, default=1_000_000, help="k-points (about)")
    parser.add_argument("--n-b", type=int, default=64, help="B values of the sweep")
    parser.add_argument("--b-max", type=float, default=0.002, help="largest |B| (hbar / e a^2)")
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--no-perpendicular", action="store_true", help="skip the E perp B row")
    parser.add_argument("--no-continuum", action="store_true", help="skip the continuum row")
    parser.add_argument("--no-gradient", action="store_true", help="skip the gradient row")
    parser.add_argument("--write", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    import jax

    jax.monitoring.register_event_duration_secs_listener(_listener)
    import semiclassical_jax as sj

    if jax.default_backend() == "gpu":
        args.chunk_size = args.chunk_size or 2**15
        args.batch_size = args.batch_size or 8
    model = sj.models.WeylLattice(K0)
    grid = _shells(args.n_k)
    bs = np.linspace(-args.b_max, args.b_max, args.n_b)
    rows = {PARALLEL: _sweep_row(model, grid, bs, args, 2)}
    if not args.no_perpendicular:
        rows[PERPENDICULAR] = _sweep_row(model, grid, bs, args, 0)
    if not args.no_continuum:
        continuum = sj.models.FunctionModel(_continuum_pair, 1.0, dim=3, n_bands=2)
        rows[CONTINUUM] = _sweep_row(continuum, grid, bs, args, 2)
    gradient = None
    if not args.no_gradient:
        gradient = _gradient_row(model, grid, float(bs[(3 * args.n_b) // 4]), args)
    device = jax.devices()[0]
    header = (
        f"WeylLattice(k0 = pi/2), mu = {MU}, T = {TEMPERATURE}, tau = {TAU}, E = {FIELD}, "
        f"B = linspace(-{args.b_max}, {args.b_max}, {args.n_b}) along z; {cpu_name()}, "
        f"{getattr(device, 'device_kind', device.platform)} ({jax.default_backend()}), jax "
        f"{jax.__version__}, float64, {time.strftime('%Y-%m-%d')}"
    )
    command = "python benchmarks/magnetotransport.py " + " ".join(sys.argv[1:])
    text = f"{header}\n\n{_table(grid, bs, rows, gradient)}\n\ncommand: {command.strip()}"
    print(text)
    if args.write:
        with Path(__file__).with_name("RESULTS.md").open("a") as results:
            results.write(f"\n{HEADING}\n\n{text}\n")


if __name__ == "__main__":
    main()
