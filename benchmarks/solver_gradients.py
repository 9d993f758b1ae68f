"""Reverse-mode gradient cost of a trajectory end point, Dopri8 against the InteractionPictureSolver
(issue 19, item 4).

    python benchmarks/solver_gradients.py [--rtol 1e-8] [--rounds 5]

Not a timed test: it prints a markdown table and the command that produced it. One Landau-Zener
sweep of the full-band equations (MassiveDirac(v = 1, Delta = 0.3 or ``--delta``), kx: -10 -> 10 at ky = 0.1,
E = 0.5, from the lower band), f(p) = P_upper(t1) as a function of p = (Delta, E). For each solver:
the forward pass f, the reverse-mode gradient ``jax.grad(f)`` (diffrax's default
RecursiveCheckpointAdjoint) and the forward-mode gradient ``jax.jacfwd(f)`` with
``diffrax.ForwardMode()`` (the package's default for few parameters). The six programs take
turns for ``--rounds`` rounds (each at least 0.2 s of calls per round); times are the best round,
ratios the median over rounds of the ratio within a round (this VM's speed drifts by tens of
per cent within a minute), compile = first call - best. The bar: the new integrator's
reverse / forward ratio not worse than Dopri8's (diffrax's own floor, benchmarks/RESULTS.md
"Gradient cost", accepted).
"""

import argparse
import sys
import time

import numpy as np
from _machine import cpu_name, take_turns

V, KY, K, E = 1.0, 0.1, 10.0, 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rtol", type=float, default=1e-8)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--delta", type=float, default=0.3, help="the gap parameter Delta")
    args = parser.parse_args()

    import diffrax
    import jax
    import jax.numpy as jnp

    import semiclassical_jax as sj
    from semiclassical_jax import models

    h = np.asarray(models.MassiveDirac(V, args.delta)(jnp.zeros(2), jnp.array([-K, KY])))
    chi0 = jnp.asarray(np.linalg.eigh(h)[1][:, 0])

    def end_point(p, solver, adjoint):
        model = models.MassiveDirac(V, p[0])
        run = sj.evolve(
            model,
            None,
            jnp.array([-K, KY]),
            t1=2 * K / E,
            field=jnp.stack([-p[1], 0.0]),
            chi0=chi0,
            solver=solver,
            rtol=args.rtol,
            atol=args.rtol,
            adjoint=adjoint,
        )
        return run.populations[-1, 1], run.num_steps

    p = jnp.array([args.delta, E])
    functions = []
    for solver in (diffrax.Dopri8(), sj.InteractionPictureSolver()):
        functions += [
            jax.jit(lambda q, s=solver: end_point(q, s, diffrax.RecursiveCheckpointAdjoint())),
            jax.jit(
                jax.grad(
                    lambda q, s=solver: end_point(q, s, diffrax.RecursiveCheckpointAdjoint())[0]
                )
            ),
            jax.jit(jax.jacfwd(lambda q, s=solver: end_point(q, s, diffrax.ForwardMode())[0])),
        ]
    results, compiles, best, per_round = take_turns(functions, p, args.rounds)
    rows = []
    for i, name in enumerate(("Dopri8", "InteractionPictureSolver")):
        (value, steps), g_r, g_t = results[3 * i : 3 * i + 3]
        t_f, t_r, t_t = best[3 * i : 3 * i + 3]
        ratio_r = float(np.median(per_round[:, 3 * i + 1] / per_round[:, 3 * i]))
        ratio_t = float(np.median(per_round[:, 3 * i + 2] / per_round[:, 3 * i]))
        agree = float(jnp.max(jnp.abs(g_r - g_t)) / jnp.max(jnp.abs(g_t)))
        rows.append(
            (name, int(steps), float(value), t_f, t_r, t_t, ratio_r, ratio_t)
            + tuple(compiles[3 * i : 3 * i + 3])
            + (agree,)
        )

    print(
        f"Landau-Zener end point P_upper(t1) w.r.t. (Delta, E), full band, rtol = atol = {args.rtol:g}, "
        f"{cpu_name()}, {jax.devices()[0].platform}, jax {jax.__version__}, "
        f"{time.strftime('%Y-%m-%d')}\n"
    )
    print(
        "| solver | steps | P_upper | forward (ms) | reverse (ms) | reverse / forward | forward mode (ms) | forward mode / forward | compile f, rev, fwd (s) | rev vs fwd |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, steps, value, t_f, t_r, t_t, ratio_r, ratio_t, c_f, c_r, c_t, agree in rows:
        print(
            f"| {name} | {steps} | {value:.6g} | {1e3 * t_f:.1f} | {1e3 * t_r:.1f} | {ratio_r:.1f} "
            f"| {1e3 * t_t:.1f} | {ratio_t:.1f} | {c_f:.1f}, {c_r:.1f}, {c_t:.1f} | {agree:.1e} |"
        )
    print(f"\ncommand: python benchmarks/solver_gradients.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
