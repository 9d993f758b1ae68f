"""Trajectories per second: a batch of Landau-Zener sweeps, semiclassical_jax vs a scipy loop.

    python benchmarks/trajectories.py [--n-jax 10000] [--n-scipy 5] [--chunk 50] [--devices 2] [--rtol 1e-9]

The problem (issue 3): MassiveDirac(v = 1, Delta = 0.1) at ky = 0, kx swept over [-10, 10] by a
field E along x, E spaced evenly in [0.01, 0.05] (t1 = 20 / E), full-band dynamics, float64,
rtol = atol = 1e-9. Rows: scipy ``solve_ivp(DOP853)`` in a Python loop; ``jax.vmap`` of ``evolve``
over the whole batch (lock-step adaptive stepping: every member takes the slowest one's steps);
``jax.lax.map`` over chunks of trajectories of similar duration (grouping by duration); the same,
sharded over ``--devices`` CPU devices (XLA's forced host devices, one per core, each taking every
n-th trajectory of the sorted batch so the loads match). Each row also reports the worst deviation
of the final upper-band population from exp(-pi Delta^2 / (v E)). Timings exclude compilation
(ahead-of-time ``jit(...).lower(...).compile()``).
"""

import argparse
import os
import platform
import sys
import time

_DEVICES = 2
if "--devices" in sys.argv:  # must be fixed before jax starts
    _DEVICES = int(sys.argv[sys.argv.index("--devices") + 1])
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={_DEVICES}"
).strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import PartitionSpec  # noqa: E402

import semiclassical_jax as sj  # noqa: E402
from semiclassical_jax import models  # noqa: E402

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
        model,
        None,
        jnp.array([-K, 0.0]),
        t1=2 * K / e,
        field=jnp.stack([-e, 0.0]),
        method="full",
        band=0,
        rtol=rtol,
        atol=rtol,
    )
    return trajectory.populations[-1, 1]


def _timed(function, argument) -> tuple[float, np.ndarray]:
    compiled = jax.jit(function).lower(argument).compile()
    start = time.perf_counter()
    out = compiled(argument).block_until_ready()
    return time.perf_counter() - start, np.asarray(out)


def jax_vmap(es: np.ndarray, rtol: float) -> tuple[float, np.ndarray]:
    return _timed(jax.vmap(lambda e: _one(e, rtol)), jnp.asarray(es))


def _grouped(rtol: float, chunk: int):
    return lambda e: jax.lax.map(lambda x: _one(x, rtol), e, batch_size=chunk)


def jax_grouped(es: np.ndarray, rtol: float, chunk: int) -> tuple[float, np.ndarray]:
    return _timed(
        _grouped(rtol, chunk), jnp.asarray(np.sort(es))
    )  # similar durations share a chunk


def jax_grouped_sharded(es: np.ndarray, rtol: float, chunk: int) -> tuple[float, np.ndarray]:
    n = jax.device_count()
    ordered = np.sort(es)
    ordered = ordered[: len(ordered) // n * n]
    dealt = ordered.reshape(-1, n).T.reshape(-1)  # device i gets ordered[i::n]: equal loads
    mesh = jax.make_mesh((n,), ("batch",))
    sharded = jax.shard_map(
        _grouped(rtol, chunk),
        mesh=mesh,
        in_specs=PartitionSpec("batch"),
        out_specs=PartitionSpec("batch"),
        check_vma=False,
    )  # diffrax loops carry unvarying state
    placed = jax.device_put(
        jnp.asarray(dealt), jax.sharding.NamedSharding(mesh, PartitionSpec("batch"))
    )
    seconds, out = _timed(sharded, placed)
    order = np.argsort(dealt, kind="stable")
    return seconds, out[order]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jax", type=int, default=10_000)
    parser.add_argument("--n-scipy", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument(
        "--devices", type=int, default=_DEVICES, help="forced host CPU devices (default 2)"
    )
    parser.add_argument("--skip-vmap", action="store_true", help="skip the plain (slow) vmap row")
    parser.add_argument("--rtol", type=float, default=1e-9)
    args = parser.parse_args()

    rows = []
    es = fields(args.n_scipy)
    seconds, populations = scipy_loop(es, args.rtol)
    rows.append(
        (
            "scipy solve_ivp DOP853, Python loop",
            len(es),
            len(es) / seconds,
            np.max(np.abs(populations - landau_zener(es))),
        )
    )
    es = fields(args.n_jax)
    if not args.skip_vmap:
        seconds, populations = jax_vmap(es, args.rtol)
        rows.append(
            (
                "semiclassical_jax evolve, jax.vmap (Dopri8)",
                len(es),
                len(es) / seconds,
                np.max(np.abs(populations - landau_zener(es))),
            )
        )
    seconds, populations = jax_grouped(es, args.rtol, args.chunk)
    rows.append(
        (
            f"evolve, lax.map chunks of {args.chunk} sorted by duration, 1 device",
            len(es),
            len(es) / seconds,
            np.max(np.abs(populations - landau_zener(np.sort(es)))),
        )
    )
    if jax.device_count() > 1:
        seconds, populations = jax_grouped_sharded(es, args.rtol, args.chunk)
        n = len(populations)
        rows.append(
            (
                f"evolve, lax.map chunks of {args.chunk} sorted, sharded over {jax.device_count()} CPU devices",
                n,
                n / seconds,
                np.max(np.abs(populations - landau_zener(np.sort(es)[:n]))),
            )
        )
    scipy_rate = rows[0][2]
    print(
        f"Landau-Zener trajectories, float64, rtol = atol = {args.rtol:g}, {platform.machine()}, "
        f"{jax.devices()[0].platform} ({jax.device_count()} devices, {os.cpu_count()} cores), jax {jax.__version__}\n"
    )
    print("| method | trajectories | trajectories / s | speed-up vs scipy | max abs(P - P_LZ) |")
    print("|---|---|---|---|---|")
    for name, n, rate, error in rows:
        print(f"| {name} | {n:,} | {rate:.3g} | {rate / scipy_rate:.3g}x | {error:.1e} |")
    print(f"\ncommand: python {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
