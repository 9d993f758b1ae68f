"""Trajectories per second: a batch of Landau-Zener sweeps, semiclassical_jax vs a scipy loop.

    python benchmarks/trajectories.py [--n-jax 1000] [--n-scipy 5] [--chunk 100] [--rtol 1e-9]

The problem (issue 3): MassiveDirac(v = 1, Delta = 0.1) at ky = 0, kx swept over [-10, 10] by a
field E along x, E spaced evenly in [0.01, 0.05] (t1 = 20 / E), full-band dynamics, float64,
rtol = atol = 1e-9. Rows: scipy ``solve_ivp(DOP853)`` in a Python loop; ``jax.vmap`` of ``evolve``
over the whole batch (lock-step adaptive stepping: every member takes the slowest one's steps);
``jax.lax.map`` over chunks of trajectories of similar duration (grouping by duration). Each row
also reports the worst deviation of the final upper-band population from exp(-pi Delta^2 / (v E)).
Timings exclude compilation (one warm-up call on a small batch of the same shape).
"""

import argparse
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import semiclassical_jax as sj
from semiclassical_jax import models

V, DELTA, K = 1.0, 0.1, 10.0


def fields(n: int) -> np.ndarray:
    return np.linspace(0.01, 0.05, n)


def landau_zener(e: np.ndarray) -> np.ndarray:
    return np.exp(-np.pi * DELTA**2 / (V * e))


def scipy_loop(es: np.ndarray, rtol: float) -> tuple[float, np.ndarray]:
    from scipy.integrate import solve_ivp

    def rhs(t, y, e):
        k = y[1]
        chi = y[2:4] + 1j * y[4:6]
        h = np.array([[DELTA, V * k], [V * k, -DELTA]], dtype=complex)
        dchi = -1j * h @ chi
        velocity = np.real(np.conj(chi) @ (np.array([[0, V], [V, 0]]) @ chi))
        return [velocity, e, *dchi.real, *dchi.imag]

    populations = []
    start = time.perf_counter()
    for e in es:
        _, u = np.linalg.eigh(np.array([[DELTA, -V * K], [-V * K, -DELTA]]))
        y0 = [0.0, -K, *u[:, 0].real, *u[:, 0].imag]
        sol = solve_ivp(rhs, (0.0, 2 * K / e), y0, method="DOP853", rtol=rtol, atol=rtol, args=(e,))
        chi = sol.y[2:4, -1] + 1j * sol.y[4:6, -1]
        _, u = np.linalg.eigh(np.array([[DELTA, V * K], [V * K, -DELTA]]))
        populations.append(abs(np.vdot(u[:, 1], chi)) ** 2)
    return time.perf_counter() - start, np.asarray(populations)


def _one(e, rtol):
    model = models.MassiveDirac(V, DELTA)
    trajectory = sj.evolve(
        model, None, jnp.array([-K, 0.0]), t1=2 * K / e, field=jnp.stack([-e, 0.0]), method="full",
        band=0, rtol=rtol, atol=rtol,
    )
    return trajectory.populations[-1, 1]


def jax_vmap(es: np.ndarray, rtol: float) -> tuple[float, np.ndarray]:
    run = jax.jit(jax.vmap(lambda e: _one(e, rtol)))
    run(jnp.asarray(es)).block_until_ready()  # compile (and warm) on the same shape
    start = time.perf_counter()
    out = run(jnp.asarray(es)).block_until_ready()
    return time.perf_counter() - start, np.asarray(out)


def jax_grouped(es: np.ndarray, rtol: float, chunk: int) -> tuple[float, np.ndarray]:
    ordered = np.sort(es)  # similar durations share a chunk
    run = jax.jit(lambda e: jax.lax.map(lambda x: _one(x, rtol), e, batch_size=chunk))
    run(jnp.asarray(ordered)).block_until_ready()
    start = time.perf_counter()
    out = run(jnp.asarray(ordered)).block_until_ready()
    return time.perf_counter() - start, np.asarray(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jax", type=int, default=1000)
    parser.add_argument("--n-scipy", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--rtol", type=float, default=1e-9)
    args = parser.parse_args()

    rows = []
    es = fields(args.n_scipy)
    seconds, populations = scipy_loop(es, args.rtol)
    rows.append(("scipy solve_ivp DOP853, Python loop", len(es), len(es) / seconds,
                 np.max(np.abs(populations - landau_zener(es)))))
    es = fields(args.n_jax)
    seconds, populations = jax_vmap(es, args.rtol)
    rows.append(("semiclassical_jax evolve, jax.vmap (Dopri8)", len(es), len(es) / seconds,
                 np.max(np.abs(populations - landau_zener(es)))))
    seconds, populations = jax_grouped(es, args.rtol, args.chunk)
    rows.append((f"semiclassical_jax evolve, lax.map chunks of {args.chunk} sorted by duration", len(es),
                 len(es) / seconds, np.max(np.abs(populations - landau_zener(np.sort(es))))))

    scipy_rate = rows[0][2]
    print(f"Landau-Zener trajectories, float64, rtol = atol = {args.rtol:g}, {platform.machine()}, "
          f"{jax.devices()[0].platform} ({jax.device_count()} device), jax {jax.__version__}\n")
    print("| method | trajectories | trajectories / s | speed-up vs scipy | max abs(P - P_LZ) |")
    print("|---|---|---|---|---|")
    for name, n, rate, error in rows:
        print(f"| {name} | {n:,} | {rate:.3g} | {rate / scipy_rate:.3g}x | {error:.1e} |")
    print(f"\ncommand: python {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
