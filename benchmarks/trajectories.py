"""Trajectories per second: a batch of Landau-Zener sweeps through ``sj.evolve``'s batch call vs a
scipy loop.

    python benchmarks/trajectories.py [--n 2000] [--n-scipy 10] [--devices 2] [--chunk 128]
                                      [--rtol 1e-8] [--solver dopri8|interaction|both]
                                      [--skip-scipy] [--single-device] [--vmap] [--shuffle]

The problem (issue 19, item 3): MassiveDirac(v = 1, Delta = 0.1), kx swept from -10 to 10 by a
field E = 0.05 along x (t1 = 2 K / E = 400), initial ky evenly spaced in [-0.3, 0.3] (``--shuffle``:
in random order), full-band dynamics from the lower band, float64. The upper-band population at t1
is compared with P = exp(-pi (Delta^2 + v^2 ky^2) / (v E)) (0.53 at ky = 0, 0.0019 at |ky| = 0.3;
the finite sweep |kx| <= 10 leaves ~2e-6). Both sides run at rtol = atol = 1e-8, the loosest power
of ten at which both stay within 1e-5 of P (scipy at 1e-7: 2e-5; evolve at 1e-7: 2e-5).

Rows: scipy ``solve_ivp(DOP853)`` in a Python loop over ``--n-scipy`` members spread over the
ky range (one core); ``sj.evolve`` with k0 of shape (n, 2), i.e. the batch call (grouped by
duration, ``lax.map`` over chunks of vmapped members, sharded over ``jax.devices()``: on a CPU
``--devices`` forced host devices, one per core; on a GPU the GPU); with ``--single-device`` the
same on one device; with ``--vmap`` a plain ``jax.vmap`` of single-run ``evolve``. Each row gives
trajectories per second of wall time and per CPU-second of this process (user + system, all
threads: robust when the machine is shared), the speed-up over scipy per wall second, and
per core (the wall-time speed-up divided by the cores the row used: 1 for scipy, the device count
for a CPU row), and the worst |P - P_LZ|. Timings exclude compilation (the first call compiles;
the second is timed). On a GPU (JAX picks it up by itself) the device count is that of the GPUs;
use ``--skip-scipy`` for large ``--n`` (e.g. ``--n 100000 --skip-scipy``).
"""

import argparse
import os
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
from _machine import cpu_name  # noqa: E402

import semiclassical_jax as sj  # noqa: E402
from semiclassical_jax import models  # noqa: E402

V, DELTA, K, FIELD, KY_MAX = 1.0, 0.1, 10.0, 0.05, 0.3


def landau_zener(ky: np.ndarray) -> np.ndarray:
    return np.exp(-np.pi * (DELTA**2 + V**2 * ky**2) / (V * FIELD))


def _hamiltonian(kx: float, ky: float) -> np.ndarray:
    return np.array([[DELTA, V * (kx - 1j * ky)], [V * (kx + 1j * ky), -DELTA]])


def scipy_loop(kys: np.ndarray, rtol: float) -> tuple[float, float, np.ndarray]:
    """(wall s, CPU s, upper-band populations) of solve_ivp(DOP853), one sweep at a time."""
    from scipy.integrate import solve_ivp

    velocity_x = np.array([[0, V], [V, 0]])

    def rhs(t, y, ky):
        chi = y[2:4] + 1j * y[4:6]
        dchi = -1j * _hamiltonian(y[1], ky) @ chi
        velocity = np.real(np.conj(chi) @ (velocity_x @ chi))
        return [velocity, FIELD, *dchi.real, *dchi.imag]

    populations = []
    wall, cpu = time.perf_counter(), time.process_time()
    for ky in kys:
        u = np.linalg.eigh(_hamiltonian(-K, ky))[1][:, 0]
        y0 = [0.0, -K, *u.real, *u.imag]
        sol = solve_ivp(
            rhs, (0.0, 2 * K / FIELD), y0, method="DOP853", rtol=rtol, atol=rtol, args=(ky,)
        )
        chi = sol.y[2:4, -1] + 1j * sol.y[4:6, -1]
        upper = np.linalg.eigh(_hamiltonian(K, ky))[1][:, 1]
        populations.append(abs(np.vdot(upper, chi)) ** 2)
    return time.perf_counter() - wall, time.process_time() - cpu, np.asarray(populations)


def _solver(name: str):
    return sj.InteractionPictureSolver() if name == "interaction" else None  # None: Dopri8


def batch_call(kys, rtol, solver, chunk, devices):
    """(wall s, CPU s, compile s, populations, steps) of the batch call (second call timed)."""

    def run():
        k0 = np.stack([np.full(kys.shape, -K), kys], axis=-1)
        trajectory = sj.evolve(
            models.MassiveDirac(V, DELTA),
            None,
            k0,
            t1=2 * K / FIELD,
            field=jnp.array([-FIELD, 0.0]),
            band=0,
            rtol=rtol,
            atol=rtol,
            solver=_solver(solver),
            chunk_size=chunk,
            devices=devices,
        )
        assert bool(np.all(trajectory.success)), "a member failed"
        return jax.block_until_ready((trajectory.populations[:, -1, 1], trajectory.num_steps))

    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    wall, cpu = time.perf_counter(), time.process_time()
    populations, steps = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, first - wall, np.asarray(populations), np.asarray(steps)


def plain_vmap(kys, rtol, solver):
    """The same with jax.vmap of single-run evolve (lock step over the whole batch)."""

    def one(ky):
        trajectory = sj.evolve(
            models.MassiveDirac(V, DELTA),
            None,
            jnp.stack([-K, ky]),
            t1=2 * K / FIELD,
            field=jnp.array([-FIELD, 0.0]),
            band=0,
            rtol=rtol,
            atol=rtol,
            solver=_solver(solver),
            throw=False,
        )
        return trajectory.populations[-1, 1], trajectory.num_steps

    compiled = jax.jit(jax.vmap(one)).lower(jnp.asarray(kys)).compile()
    wall, cpu = time.perf_counter(), time.process_time()
    populations, steps = jax.block_until_ready(compiled(jnp.asarray(kys)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, float("nan"), np.asarray(populations), np.asarray(steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="trajectories in the batch")
    parser.add_argument("--n-scipy", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=None, help="chunk_size (default: evolve's)")
    parser.add_argument(
        "--devices",
        type=int,
        default=_DEVICES,
        help="forced host CPU devices (default 2; no effect on a GPU)",
    )
    parser.add_argument("--rtol", type=float, default=1e-8)
    parser.add_argument("--solver", choices=["dopri8", "interaction", "both"], default="dopri8")
    parser.add_argument("--skip-scipy", action="store_true", help="no scipy row (large --n)")
    parser.add_argument("--single-device", action="store_true", help="also on one device")
    parser.add_argument("--vmap", action="store_true", help="also a plain jax.vmap of evolve")
    parser.add_argument("--shuffle", action="store_true", help="ky in random order")
    args = parser.parse_args()

    kys = np.linspace(-KY_MAX, KY_MAX, args.n)
    if args.shuffle:
        kys = np.random.default_rng(0).permutation(kys)
    devices = jax.devices()
    platform = devices[0].platform
    rows = []  # (name, n, wall s, CPU s, cores, compile s, max error, steps)
    if not args.skip_scipy:
        subset = np.linspace(-KY_MAX, KY_MAX, args.n_scipy)
        wall, cpu, populations = scipy_loop(subset, args.rtol)
        error = np.max(np.abs(populations - landau_zener(subset)))
        rows.append(
            ("scipy solve_ivp DOP853, Python loop", len(subset), wall, cpu, 1, 0.0, error, None)
        )
    solvers = ["dopri8", "interaction"] if args.solver == "both" else [args.solver]
    cores = len(devices) if platform == "cpu" else 1
    for solver in solvers:
        label = "Dopri8" if solver == "dopri8" else "InteractionPictureSolver"
        layouts = [(devices, f"{len(devices)} {platform} device(s)", cores)]
        if args.single_device and len(devices) > 1:
            layouts.append((devices[:1], f"1 {platform} device", 1))
        for chosen, where, used in layouts:
            wall, cpu, compile_s, populations, steps = batch_call(
                kys, args.rtol, solver, args.chunk, chosen
            )
            error = np.max(np.abs(populations - landau_zener(kys)))
            rows.append(
                (
                    f"sj.evolve batch call ({label}), {where}",
                    args.n,
                    wall,
                    cpu,
                    used,
                    compile_s,
                    error,
                    steps,
                )
            )
        if args.vmap:
            wall, cpu, compile_s, populations, steps = plain_vmap(kys, args.rtol, solver)
            error = np.max(np.abs(populations - landau_zener(kys)))
            rows.append(
                (
                    f"jax.vmap of single-run evolve ({label}), 1 {platform} device",
                    args.n,
                    wall,
                    cpu,
                    1,
                    compile_s,
                    error,
                    steps,
                )
            )

    print(
        f"Landau-Zener sweeps over ky, E = {FIELD}, float64, rtol = atol = {args.rtol:g}, "
        f"{cpu_name()}, {os.cpu_count()} cores, {platform} ({len(devices)} devices), "
        f"jax {jax.__version__}, {time.strftime('%Y-%m-%d')}\n"
    )
    print(
        "| method | trajectories | trajectories / s | per CPU-second | speed-up vs scipy "
        "| per core | compile (s) | steps (mean, max) | max abs(P - P_LZ) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    reference = rows[0][1] / rows[0][2] if not args.skip_scipy else None
    for name, n, wall, cpu, used, compile_s, error, steps in rows:
        rate = n / wall
        speedup = f"{rate / reference:.3g}x" if reference else "-"
        per_core = f"{rate / reference / used:.3g}x" if reference else "-"
        counts = "-" if steps is None else f"{steps.mean():.0f}, {steps.max()}"
        compiled = "-" if np.isnan(compile_s) else f"{compile_s:.1f}"
        print(
            f"| {name} | {n:,} | {rate:.4g} | {n / cpu:.4g} | {speedup} | {per_core} "
            f"| {compiled} | {counts} | {error:.1e} |"
        )
    print(f"\ncommand: python {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
