"""The interaction-picture (Lawson) Runge-Kutta solver (issue 19, item 2), against closed forms.

Landau-Zener: MassiveDirac(v, Delta) swept by a field E along x from kx = -K to K at fixed ky
ends in the upper band with P = exp(-pi (Delta^2 + v^2 ky^2) / (v E)) (PHYSICS.md; the residual
of the finite sweep |kx| = K = 10 is ~1e-6). A constant H along the path (no field) has the closed
form chi(t) = exp(-i (H - <H>) t) chi0, which the solver must reproduce at any step size.
"""

import time
from functools import partial

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

import semiclassical_jax as sj
from semiclassical_jax import models
from semiclassical_jax.dynamics._vector_fields import (
    join_state,
    pack_state,
    split_state,
    unpack_state,
    vector_field,
)

V, DELTA, K = 1.0, 0.1, 10.0
SOLVER = sj.InteractionPictureSolver()
MODEL = models.MassiveDirac(V, DELTA)


def landau_zener(e, ky):
    return np.exp(-np.pi * (DELTA**2 + V**2 * ky**2) / (V * e))


def lower_band(ky):
    """The lower-band state of MODEL at (kx, ky) = (-K, ky) (numpy's eigh)."""
    return np.linalg.eigh(np.asarray(MODEL(jnp.zeros(2), jnp.array([-K, ky]))))[1][:, 0]


def _run(solver, rtol, ky, chi0, e, t1):
    """(chi (T, 2), P_upper(t1), num_steps) of MODEL from k = (-K, ky), field E = (-e, 0)."""
    trajectory = sj.evolve(
        MODEL,
        None,
        jnp.stack([-K, ky]),
        t1=t1,
        field=jnp.stack([-e, 0.0]),
        chi0=chi0,
        saveat=9,
        solver=solver,
        rtol=rtol,
        atol=rtol,
    )
    return trajectory.chi, trajectory.populations[-1, 1], trajectory.num_steps


# one compilation per (solver, tolerance), shared by the tests below
RUNS = {
    (name, rtol): jax.jit(partial(_run, solver, rtol))
    for name, solver in (("interaction picture", SOLVER), ("Dopri8", diffrax.Dopri8()))
    for rtol in (1e-8, 1e-12)
    if (name, rtol) != ("Dopri8", 1e-8)
}


def sweep(name, rtol, e, ky):
    """The Landau-Zener sweep kx: -K -> K (t1 = 2K / e) from the lower band."""
    return RUNS[name, rtol](ky, lower_band(ky), e, 2 * K / e)


def test_landau_zener_probability_matches_closed_form_and_dopri8():
    """P_upper = exp(-pi (Delta^2 + v^2 ky^2) / (v E)) to 1e-5 at rtol 1e-8 and 1e-12, and equal
    to Dopri8's at rtol = atol = 1e-12 to 1e-9."""
    for e, ky in [(0.02, 0.0), (0.05, 0.1)]:
        reference = landau_zener(e, ky)
        for rtol in (1e-8, 1e-12):
            _, p, _ = sweep("interaction picture", rtol, e, ky)
            assert abs(float(p) - reference) <= 1e-5, (e, ky, rtol, float(p), reference)
        _, p_dopri8, _ = sweep("Dopri8", 1e-12, e, ky)
        assert abs(float(p) - float(p_dopri8)) <= 1e-9, (e, ky, float(p), float(p_dopri8))


def test_norm_conserved_to_round_off():
    """|chi|^2 = 1 to 1e-12 at every saved time at rtol 1e-8 (Dopri8 there drifts by ~6e-10: the
    vector field's stabilisation only pulls the norm back at a finite rate)."""
    chi, _, _ = sweep("interaction picture", 1e-8, 0.02, 0.0)
    norm_error = np.max(np.abs(np.sum(np.abs(np.asarray(chi)) ** 2, axis=-1) - 1.0))
    assert norm_error <= 1e-12, norm_error


def test_fewer_steps_than_dopri8_when_the_gap_is_large(capsys):
    """A slow sweep (E = 0.01, 2 Delta = 0.2 > sqrt(v E): P ~ 0.04): at equal
    tolerance the interaction-picture solver takes fewer accepted steps than Dopri8 (the chi phase
    at the gap frequency is integrated exactly). Steps and wall time are printed."""
    rows = []
    for rtol in (1e-12,):
        for name in ("interaction picture", "Dopri8"):
            jax.block_until_ready(RUNS[name, rtol](0.0, lower_band(0.0), 0.01, 1.0))  # compile
            start = time.perf_counter()
            _, p, steps = jax.block_until_ready(sweep(name, rtol, 0.01, 0.0))
            rows.append((name, rtol, int(steps), time.perf_counter() - start, float(p)))
    with capsys.disabled():
        for name, rtol, steps, wall, p in rows:
            error = p - landau_zener(0.01, 0.0)
            print(
                f"\n{name:20s} rtol {rtol:g}: {steps:6d} steps, {wall:.3f} s, P - LZ = {error:.1e}"
            )
    assert rows[0][2] < 0.8 * rows[1][2], rows


# --- fixed steps: constant H, convergence order, forward-mode gradient ------------------------------

FULL = vector_field("full", None, None)


def _packed_field(t, y, args):
    return pack_state(FULL(t, unpack_state(y, 2), args))


def _fixed_steps(p, y0, t1, dt):
    """y(t1) (packed) of MassiveDirac(v, Delta = p[0]) under a field (-p[1], 0) from the packed y0
    on equal steps dt of the interaction-picture solver (Dopri8 tableau)."""
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(_packed_field),
        SOLVER,
        0.0,
        t1,
        dt,
        y0,
        args=(models.MassiveDirac(V, p[0]), sj.UniformField(jnp.stack([-p[1], 0.0]))),
        stepsize_controller=diffrax.ConstantStepSize(),
        max_steps=512,
        adjoint=diffrax.ForwardMode(),  # forward-mode autodiff (the gradient test)
    )
    return solution.ys[-1]


FIXED_STEPS = jax.jit(_fixed_steps)
WINDOW_K0 = np.array([-2.0, 0.3])  # a fast Landau-Zener window: Delta = 0.5, E = 1, kx: -2 -> 2


def _window_start(mass):
    chi0 = np.linalg.eigh(np.asarray(models.MassiveDirac(V, mass)(jnp.zeros(2), WINDOW_K0)))[1][
        :, 0
    ]
    return pack_state(join_state(jnp.zeros(2), jnp.asarray(WINDOW_K0), jnp.asarray(chi0)))


def test_constant_hamiltonian_phase_exact_at_any_step():
    """No field: H is constant on the path and chi(t) = exp(-i (H - <H>) t) chi0 (closed form from
    numpy's eigh), for a superposition of the two bands (gap ~ 4.2). Ten fixed steps of 30 (~20
    gap periods each) give chi to 1e-11, though x (whose velocity <dH_k> has the interband
    Zitterbewegung at the gap frequency) is then far off."""
    chi0 = np.array([0.6, 0.8j])
    h = np.asarray(models.MassiveDirac(V, 0.5)(jnp.zeros(2), jnp.asarray(WINDOW_K0)))
    energies, vectors = np.linalg.eigh(h)
    mean = np.real(np.vdot(chi0, h @ chi0))
    t1 = 300.0
    exact = vectors @ (np.exp(-1j * (energies - mean) * t1) * (vectors.conj().T @ chi0))
    y0 = pack_state(join_state(jnp.zeros(2), jnp.asarray(WINDOW_K0), jnp.asarray(chi0)))
    _, _, chi = split_state(unpack_state(FIXED_STEPS(jnp.array([0.5, 0.0]), y0, t1, t1 / 10), 2))
    assert np.max(np.abs(np.asarray(chi) - exact)) <= 1e-11


def test_fixed_step_convergence_order():
    """On the default Dopri8 tableau, halving the step divides the end-point error by 2^p with
    7.5 <= p <= 9.5 (order 8; pre-asymptotic steps converge slightly faster), against 256 steps
    of the same scheme (errors ~2e-6, 4e-9, 2e-11 at 8, 16, 32 steps)."""
    order, steps = 8, (8, 16, 32)
    p, y0 = jnp.array([0.5, 1.0]), _window_start(0.5)
    reference = np.asarray(FIXED_STEPS(p, y0, 4.0, 4.0 / 256))
    errors = np.array(
        [np.max(np.abs(np.asarray(FIXED_STEPS(p, y0, 4.0, 4.0 / n)) - reference)) for n in steps]
    )
    observed = np.log2(errors[:-1] / errors[1:])
    assert np.all((observed >= order - 0.5) & (observed <= order + 1.5)), (errors, observed)


def test_end_point_forward_gradient_matches_central_differences():
    """d y(t1) / d (Delta, E) of the Landau-Zener window on 32 fixed steps (end-point error
    ~2e-11), by jax.jacfwd = Richardson central differences of the same steps to 1e-7 of each
    column's largest entry (the frozen G is stop-gradient: autodiff differentiates the scheme
    with G held, which differs from the scheme's exact derivative by its discretisation error)."""

    y0 = _window_start(0.5)

    def end(p):
        return _fixed_steps(p, y0, 4.0, 4.0 / 32)

    point = np.array([0.5, 1.0])
    jacobian = np.asarray(jax.jit(jax.jacfwd(end))(jnp.asarray(point)))
    columns = []
    for i in range(2):
        step = np.zeros(2)
        step[i] = 1e-3 * point[i]

        def central(s):
            plus = FIXED_STEPS(jnp.asarray(point + s), y0, 4.0, 4.0 / 32)
            minus = FIXED_STEPS(jnp.asarray(point - s), y0, 4.0, 4.0 / 32)
            return (np.asarray(plus) - np.asarray(minus)) / (2 * s[i])

        columns.append((4 * central(step / 2) - central(step)) / 3)
    reference = np.stack(columns, axis=-1)
    scale = np.max(np.abs(reference), axis=0)
    assert np.all(scale > 1e-2), scale
    assert np.max(np.abs(jacobian - reference) / scale) <= 1e-7, (jacobian, reference)


# --- non-Abelian --------------------------------------------------------------------------------


def test_nonabelian_run_matches_dopri8_and_keeps_the_invariants():
    """Non-Abelian in the {0, 1} manifold of DiracWithRemoteBand (remote band at 3, coupling 0.5)
    in a static cosine potential, a superposition of the two bands, t1 = 40: at rtol = 1e-9 the
    interaction-picture run equals Dopri8 at rtol = 1e-12 (x, k to 1e-8; populations to 1e-9;
    measured 1e-9, 2e-11, 4e-11), chi stays in the manifold (leak <= 1e-12) and <H> - phi is
    conserved (1e-8)."""
    model = models.DiracWithRemoteBand(1.0, 0.3, 3.0, 0.5)
    x0, k0 = jnp.array([0.5, 0.0]), jnp.array([0.2, -0.1])
    states = np.linalg.eigh(np.asarray(model(x0, k0)))[1]
    chi0 = jnp.asarray((states[:, 0] + 1j * states[:, 1]) / np.sqrt(2))
    potential = sj.ScalarPotential(lambda x: 0.02 * (jnp.cos(0.3 * x[0]) + jnp.cos(0.3 * x[1])))
    runs = [
        sj.evolve(
            model,
            x0,
            k0,
            t1=40.0,
            field=potential,
            method="nonabelian",
            manifold=[0, 1],
            chi0=chi0,
            saveat=5,
            solver=solver,
            rtol=rtol,
            atol=rtol,
        )
        for solver, rtol in ((SOLVER, 1e-9), (diffrax.Dopri8(), 1e-12))
    ]
    run, reference = runs
    assert bool(run.success) and bool(reference.success)
    np.testing.assert_allclose(run.x, reference.x, atol=1e-8)
    np.testing.assert_allclose(run.k, reference.k, atol=1e-8)
    np.testing.assert_allclose(run.populations, reference.populations, atol=1e-9)
    assert np.max(np.abs(1.0 - run.populations[:, 0] - run.populations[:, 1])) <= 1e-12
    assert np.ptp(np.asarray(run.populations[:, 0])) > 1e-3  # the two bands really mix
    assert np.max(np.abs(run.energy - run.energy[0])) <= 1e-8
