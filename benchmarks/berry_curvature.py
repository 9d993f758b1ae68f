"""Throughput of the Berry curvature on a Haldane k-grid: semiclassical_jax vs references.

Prints a Markdown table (k-points per second, float64, this machine) and the command that made it:

    python benchmarks/berry_curvature.py [--sizes 10000 100000] [--pythtb-points 2000]

Rows: the package's generic path (autodiff dH + eigensolver + sum over states, jit + vmap), the
closed-form two-band d-vector formula in jnp (the speed target for two-band models), a NumPy
batched reference (np.linalg.eigh + analytic dH), and PythTB (finite-difference Berry flux per
plaquette via wf_array; a per-point Python loop). Timings exclude compilation (one warm-up call).
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

T1, T2, PHI, MASS = 1.0, 0.15, 0.7, 0.2


def haldane_grid(n_points: int) -> np.ndarray:
    n = int(round(np.sqrt(n_points)))
    model = models.Haldane(T1, T2, PHI, MASS)
    reciprocal = np.asarray(model.reciprocal_lattice)
    f = np.arange(n) / n
    return np.stack(np.meshgrid(f, f, indexing="ij"), -1).reshape(-1, 2) @ reciprocal


def _best_time(fn, repeats: int = 3) -> float:
    fn()  # warm-up / compile
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def package_generic(ks: jax.Array):
    model = models.Haldane(T1, T2, PHI, MASS)
    f = jax.jit(jax.vmap(lambda k: sj.berry_curvature(model, None, k)[0, 2, 3]))
    return lambda: f(ks).block_until_ready()


def closed_form_d_vector(ks: jax.Array):
    model = models.Haldane(T1, T2, PHI, MASS)

    def d_vector(k):
        h = model(jnp.zeros(2), k)
        return jnp.stack([jnp.real(h[0, 1]), -jnp.imag(h[0, 1]), 0.5 * jnp.real(h[0, 0] - h[1, 1])])

    def omega(k):  # lower band: +1/2 d.(d_x d x d_y d) / |d|^3
        d = d_vector(k)
        jac = jax.jacfwd(d_vector)(k)
        return 0.5 * jnp.dot(d, jnp.cross(jac[:, 0], jac[:, 1])) / jnp.linalg.norm(d) ** 3

    f = jax.jit(jax.vmap(omega))
    return lambda: f(ks).block_until_ready()


def numpy_reference(ks: np.ndarray):
    model = models.Haldane(T1, T2, PHI, MASS)
    hop = np.asarray(model.hopping_table(jnp.zeros(2)))  # (r, n, n)
    from semiclassical_jax.models._lattice import _VECTORS

    sep = (np.asarray(_VECTORS, float)[:, None, None, :] + np.asarray(model.orbital_positions)[None, None]
           - np.asarray(model.orbital_positions)[None, :, None]) @ np.asarray(model.lattice)  # (r, i, j, 2)

    def run():
        phase = np.exp(1j * np.einsum("rijd,kd->krij", sep, ks))
        h = np.einsum("rij,krij->kij", hop, phase)
        dh = np.einsum("rij,rijd,krij->kdij", hop, 1j * sep, phase)
        e, u = np.linalg.eigh(h)
        dhb = np.einsum("kin,kdij,kjm->kdnm", u.conj(), dh, u)
        return -2 * np.imag(dhb[:, 0, 0, 1] * dhb[:, 1, 1, 0]) / (e[:, 0] - e[:, 1]) ** 2

    return run


def pythtb_reference(n_points: int):
    import pythtb

    lat = [[1.0, 0.0], [0.5, np.sqrt(3) / 2]]
    m = pythtb.tb_model(2, 2, lat, [[1 / 3, 1 / 3], [2 / 3, 2 / 3]])
    m.set_onsite([MASS, -MASS])
    t2p, t2m = T2 * np.exp(1j * PHI), T2 * np.exp(-1j * PHI)
    for amp, i, j, r in [(T1, 0, 1, [0, 0]), (T1, 1, 0, [1, 0]), (T1, 1, 0, [0, 1]),
                         (t2p, 0, 0, [1, 0]), (t2p, 1, 1, [1, -1]), (t2p, 1, 1, [0, 1]),
                         (t2m, 1, 1, [1, 0]), (t2m, 0, 0, [1, -1]), (t2m, 0, 0, [0, 1])]:
        m.set_hop(amp, i, j, r)
    n = int(round(np.sqrt(n_points)))

    def run():
        w = pythtb.wf_array(m, [n, n])
        w.solve_on_grid([0.0, 0.0])
        return w.berry_flux([0], individual_phases=True)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--pythtb-points", type=int, default=2_500)
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        ks_np = haldane_grid(size)
        ks = jnp.asarray(ks_np)
        n = ks.shape[0]
        for name, make in (("semiclassical_jax generic (autodiff dH + eigh)", lambda: package_generic(ks)),
                           ("closed-form d-vector (jnp, jit + vmap)", lambda: closed_form_d_vector(ks)),
                           ("NumPy batched reference (np.linalg.eigh)", lambda: numpy_reference(ks_np))):
            rows.append((name, n, n / _best_time(make())))
    try:
        n = int(round(np.sqrt(args.pythtb_points))) ** 2
        rows.append(("PythTB wf_array + berry_flux", n, n / _best_time(pythtb_reference(n), repeats=1)))
    except ImportError:
        rows.append(("PythTB (not installed)", 0, float("nan")))
    print(f"Berry curvature throughput, Haldane model, float64, {platform.processor() or platform.machine()}, "
          f"{jax.devices()[0].platform} ({jax.device_count()} device), jax {jax.__version__}\n")
    print("| method | k-points | k-points / s |\n|---|---|---|")
    for name, n, rate in rows:
        print(f"| {name} | {n:,} | {rate:,.3g} |")
    print(f"\ncommand: python {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
