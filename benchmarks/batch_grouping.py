"""Grouping a batch by expected step count: ``evolve``'s batch call on members of equal duration
whose step counts differ (issue 19, item 1).

    python benchmarks/batch_grouping.py [--n 512] [--chunk 32] [--rtol 1e-8] [--rounds 3]

Not a timed test: it prints a markdown table and the command that produced it. Members:
MassiveDirac(v = 1, Delta = 0.3), full band, from the lower band at k0 = |k| (cos a, sin a) with
|k| evenly in [0.5, 8] in random order (seed 0), x0 = 0, in the static potential
phi = 0.05 cos(x) cos(y), all for t1 = 50. chi's phase rotates at the gap 2 sqrt(Delta^2 + k^2), so
an explicit solver's step count grows ~16x across the batch while the durations are equal.
Under ``vmap`` a chunk steps in lock step, so a chunk costs its slowest member's steps.
Rows: the batch call grouped by duration alone (the key before 2026-12-04, all equal here, so the
chunks keep the random order) and by the step estimate (duration x the energy spread at (x0,
k0), ``step_estimates``). Columns: wall time of the second call (the first compiles), the
lock-step cost (sum over chunks of the slowest member's steps, from each member's num_steps and
the chunks the key makes), and the total of the members' own steps.
"""

import argparse
import sys
import time

import numpy as np
from _machine import cpu_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--rtol", type=float, default=1e-8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp

    import semiclassical_jax as sj
    from semiclassical_jax import models
    from semiclassical_jax.dynamics import _batched_evolve

    rng = np.random.default_rng(0)
    radii = rng.permutation(np.linspace(0.5, 8.0, args.n))
    angles = rng.uniform(0.0, 2 * np.pi, args.n)
    k0 = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=-1)
    model = models.MassiveDirac(1.0, 0.3)
    potential = sj.ScalarPotential(lambda x: 0.05 * jnp.cos(x[0]) * jnp.cos(x[1]))

    chi0 = np.stack([np.linalg.eigh(np.asarray(model(np.zeros(2), k)))[1][:, 0] for k in k0])

    def run():
        return sj.evolve(
            model, None, k0, t1=50.0, field=potential, chi0=chi0, rtol=args.rtol,
            atol=args.rtol, chunk_size=args.chunk, devices=jax.devices()[:1],
        )  # fmt: skip

    estimate = _batched_evolve.step_estimates

    def by_duration(shared, members, setup, size):
        t0 = members.get("t0", shared.get("t0"))
        t1 = members.get("t1", shared.get("t1"))
        return jnp.broadcast_to(t1 - t0, (size,))

    rows = []
    for label, key in (("duration alone", by_duration), ("step estimate", estimate)):
        _batched_evolve.step_estimates = key
        jax.clear_caches()  # the key is read when the batch is traced
        try:
            start = time.perf_counter()
            steps = np.asarray(jax.block_until_ready(run().num_steps))
            compile_ = time.perf_counter() - start
            best = np.inf
            for _ in range(args.rounds):
                start = time.perf_counter()
                jax.block_until_ready(run().num_steps)
                best = min(best, time.perf_counter() - start)
        finally:
            _batched_evolve.step_estimates = estimate
        order = np.arange(args.n) if key is by_duration else np.argsort(radii, kind="stable")
        padded = np.concatenate([order, np.full(-args.n % args.chunk, order[-1])])
        lock_step = int(steps[padded].reshape(-1, args.chunk).max(axis=1).sum() * args.chunk)
        rows.append((label, best, compile_ - best, lock_step, int(steps.sum())))

    print(
        f"Batch of {args.n} full-band wavepackets, equal durations, step counts "
        f"{int(steps.min())}-{int(steps.max())}, chunks of {args.chunk}, "
        f"rtol = atol = {args.rtol:g}, "
        f"{cpu_name()}, {jax.devices()[0].platform} (1 device), jax {jax.__version__}, "
        f"{time.strftime('%Y-%m-%d')}\n"
    )
    print("| grouped by | wall (s) | compile (s) | lock-step member-steps | members' own steps |")
    print("|---|---|---|---|---|")
    for label, best, compile_, lock_step, own in rows:
        print(f"| {label} | {best:.2f} | {compile_:.1f} | {lock_step:,} | {own:,} |")
    print(f"\ncommand: python benchmarks/batch_grouping.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
