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
import pytest

import semiclassical_jax as sj
from semiclassical_jax import models
from semiclassical_jax.dynamics._vector_fields import (
    join_state,
    pack_state,
    unpack_state,
    vector_field,
)

V, DELTA, K = 1.0, 0.1, 10.0
SOLVER = sj.InteractionPictureSolver()


def landau_zener(e, ky):
    return np.exp(-np.pi * (DELTA**2 + V**2 * ky**2) / (V * e))


@partial(jax.jit, static_argnums=2)
def _sweep_ip(e, ky, rtol):
    return _sweep(e, ky, rtol, SOLVER)


@partial(jax.jit, static_argnums=2)
def _sweep_dopri8(e, ky, rtol):
    return _sweep(e, ky, rtol, diffrax.Dopri8())


def _sweep(e, ky, rtol, solver):
    """(P_upper(t1), num_steps, max_t |chi|^2 - 1) of the Landau-Zener sweep kx: -K -> K."""
    trajectory = sj.evolve(
        models.MassiveDirac(V, DELTA),
        None,
        jnp.stack([-K, ky]),
        t1=2 * K / e,
        field=jnp.stack([-e, 0.0]),
        band=0,
        saveat=9,
        solver=solver,
        rtol=rtol,
        atol=rtol,
    )
    norm_error = jnp.max(jnp.abs(jnp.sum(jnp.abs(trajectory.chi) ** 2, axis=-1) - 1.0))
    return trajectory.populations[-1, 1], trajectory.num_steps, norm_error


def test_landau_zener_probability_matches_closed_form_and_dopri8():
    """P_upper = exp(-pi (Delta^2 + v^2 ky^2) / (v E)) to 1e-5 at rtol 1e-8 and 1e-12, and the
    interaction-picture run equals Dopri8's at rtol = atol = 1e-12 to 1e-9."""
    for e, ky in [(0.02, 0.0), (0.05, 0.1)]:
        reference = landau_zener(e, ky)
        for rtol in (1e-8, 1e-12):
            p, _, _ = _sweep_ip(e, ky, rtol)
            assert abs(float(p) - reference) <= 1e-5, (e, ky, rtol, float(p), reference)
        p_dopri8, _, _ = _sweep_dopri8(e, ky, 1e-12)
        assert abs(float(p) - float(p_dopri8)) <= 1e-9, (e, ky, float(p), float(p_dopri8))


def test_norm_conserved_to_round_off():
    """|chi|^2 = 1 to 1e-12 at every saved time, at a loose tolerance (rtol 1e-6) where the
    Runge-Kutta error of Dopri8 itself is far larger than round-off."""
    _, _, norm_error = _sweep_ip(0.02, 0.0, 1e-6)
    assert float(norm_error) <= 1e-12, float(norm_error)


def test_fewer_steps_than_dopri8_when_the_gap_is_large(capsys):
    """A slow sweep (E = 0.005, 2 Delta = 0.2: adiabatic, P ~ 2e-3): at equal tolerance the
    interaction-picture solver takes fewer accepted steps than Dopri8 (the chi phase at the gap
    frequency is integrated exactly). Steps and wall time are printed (pytest -s)."""
    rows = []
    for rtol in (1e-8, 1e-11):
        for name, run in (("interaction picture", _sweep_ip), ("Dopri8", _sweep_dopri8)):
            jax.block_until_ready(run(0.005, 0.0, rtol))
            start = time.perf_counter()
            p, steps, _ = jax.block_until_ready(run(0.005, 0.0, rtol))
            rows.append((name, rtol, int(steps), time.perf_counter() - start, float(p)))
    with capsys.disabled():
        for name, rtol, steps, wall, p in rows:
            print(
                f"\n{name:20s} rtol {rtol:g}: {steps:6d} steps, {wall:.3f} s, P - LZ = "
                f"{p - landau_zener(0.005, 0.0):.2e}",
                end="",
            )
    for i in (0, 2):
        assert rows[i][2] < 0.8 * rows[i + 1][2], rows


# --- constant H: exact at any step --------------------------------------------------------------


def test_constant_hamiltonian_phase_exact_at_any_step():
    """No field: H(x, k) is constant on the path and chi(t) = exp(-i (H - <H>) t) chi0 (closed form
    from numpy's eigh). The solver reaches t1 = 200 (100 gap periods) in a handful of steps with
    chi exact to 1e-12; Dopri8 needs hundreds of steps at the same tolerance."""
    model = models.MassiveDirac(V, 0.3)
    k0 = np.array([0.4, -0.2])
    h = np.asarray(model(jnp.zeros(2), jnp.asarray(k0)))
    chi0 = np.array([0.6, 0.8j])
    energies, vectors = np.linalg.eigh(h)
    mean = np.real(np.vdot(chi0, h @ chi0))
    t1 = 200.0
    exact = vectors @ (np.exp(-1j * (energies - mean) * t1) * (vectors.conj().T @ chi0))

    def run(solver):
        return sj.evolve(
            model,
            None,
            k0,
            t1=t1,
            field=jnp.zeros(2),
            chi0=chi0,
            solver=solver,
            rtol=1e-10,
            atol=1e-10,
        )

    trajectory = run(SOLVER)
    assert np.max(np.abs(np.asarray(trajectory.chi[-1]) - exact)) <= 1e-12
    assert int(trajectory.num_steps) <= 10, int(trajectory.num_steps)
    assert int(run(diffrax.Dopri8()).num_steps) >= 100


# --- convergence order on fixed steps -----------------------------------------------------------


def _fixed_step_end(base, steps):
    """y(t1) of a fast Landau-Zener window (Delta = 0.5, E = 1, kx: -2 -> 2, ky = 0.3) on ``steps``
    equal steps of the interaction-picture solver on ``base`` (None: Dopri8 at rtol 1e-13)."""
    model = models.MassiveDirac(V, 0.5)
    k0 = jnp.array([-2.0, 0.3])
    chi0 = jnp.linalg.eigh(model(jnp.zeros(2), k0))[1][:, 0]
    field = sj.UniformField(jnp.array([-1.0, 0.0]))
    full = vector_field("full", None, None)

    def packed_field(t, y, args):
        return pack_state(full(t, unpack_state(y, 2), args))

    y0 = pack_state(join_state(jnp.zeros(2), k0, chi0))
    if base is None:
        solver, dt0, controller = diffrax.Dopri8(), None, diffrax.PIDController(1e-13, 1e-13)
    else:
        solver = sj.InteractionPictureSolver(base)
        dt0, controller = 4.0 / steps, diffrax.ConstantStepSize()
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(packed_field),
        solver,
        0.0,
        4.0,
        dt0,
        y0,
        args=(model, field),
        stepsize_controller=controller,
        max_steps=100_000,
    )
    return np.asarray(solution.ys[-1])


@pytest.mark.parametrize("base, order", [(diffrax.Dopri5(), 5), (diffrax.Dopri8(), 8)])
def test_fixed_step_convergence_order(base, order):
    """Halving the step divides the end-point error by 2^order within a factor 2^{+-1} (observed
    order within 1 of the base tableau's), against Dopri8 at rtol 1e-13."""
    reference = _fixed_step_end(None, None)
    steps = (6, 12, 24) if order == 5 else (4, 8, 16)
    errors = [np.max(np.abs(_fixed_step_end(base, n) - reference)) for n in steps]
    observed = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(observed - order) <= 1.0), (errors, observed)
    assert errors[-1] <= 1e-6, errors


# --- forward-mode gradient ----------------------------------------------------------------------


def test_end_point_forward_gradient_matches_central_differences():
    """d (x, P_upper)(t1) / d (Delta, E) of a tilted-Dirac full-band run through the crossing, by
    jax.jacfwd (diffrax.ForwardMode) = Richardson central differences to 1e-6 (rtol 1e-12)."""

    def end(p):  # p = (Delta, E)
        trajectory = sj.evolve(
            models.MassiveDirac(V, p[0], tilt=0.3),
            jnp.zeros(2),
            jnp.array([-1.5, 0.2]),
            t1=3.0 / p[1],
            field=jnp.stack([-p[1], 0.0]),
            band=0,
            solver=SOLVER,
            rtol=1e-12,
            atol=1e-12,
            adjoint=diffrax.ForwardMode(),
        )
        return jnp.concatenate([trajectory.x[-1], trajectory.populations[-1, 1:]])

    both = jax.jit(jax.jacfwd(lambda p: (end(p),) * 2, has_aux=True))
    point = np.array([0.3, 0.8])
    jacobian, _ = both(jnp.asarray(point))
    columns = []
    for i in range(2):
        step = np.zeros(2)
        step[i] = 1e-3 * point[i]

        def central(s):
            return (both(jnp.asarray(point + s))[1] - both(jnp.asarray(point - s))[1]) / (2 * s[i])

        columns.append((4 * central(step / 2) - central(step)) / 3)
    reference = np.stack(columns, axis=-1)
    scale = np.max(np.abs(reference), axis=0)
    assert np.all(scale > 1e-3), scale
    assert np.max(np.abs(np.asarray(jacobian) - reference) / scale) <= 1e-6, (jacobian, reference)
