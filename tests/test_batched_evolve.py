"""``evolve`` on a batch (issue 19, item 1): one call, per-member results against closed forms.

Landau-Zener: MassiveDirac(v, Delta) swept by a field E along x from kx = -K to K at fixed ky ends
in the upper band with P = exp(-pi (Delta^2 + v^2 ky^2) / (v E)) (PHYSICS.md section 2; the
finite sweep |kx| <= K = 10 leaves at most 1.2e-4 here, at E = 1); k_x(t) = -K + E t exactly.
One compiled batch serves every test below: a batched model (Delta per member; the massive
Dirac cone plus gamma |0><1|, gamma = 0 but in the call that checks a non-Hermitian start), k0 (ky
per member), field (E per member, hence t1 = 2K / E per member: the members are regrouped by
duration), saveat=3 (each member's own times), 7 members in chunks of 3 (two padded slots), and
one member whose sweep needs more than max_steps (it must be flagged, the others unaffected).
"""

import diffrax
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import models
from semiclassical_jax.models import AbstractModel

V, K, MAX_STEPS = 1.0, 10.0, 1000
MASSES = np.array([0.2, 0.3, 0.25, 0.3, 0.35, 0.2, 0.3])
KYS = np.array([0.0, 0.1, -0.2, 0.0, 0.15, 0.3, -0.1])
FIELDS = np.array([0.5, 1.0, 0.5, 0.05, 1.0, 0.5, 0.5])  # member 3: ~2500 steps > MAX_STEPS
SLOW = 3
TOLERANCE = 3e-4  # |P - P_LZ|: finite-sweep residual <= 1.2e-4 at rtol 1e-8 (P spans 0.40-0.88)


class LeakyDirac(AbstractModel):
    """MassiveDirac (v = 1) plus gamma |0><1|: Hermitian only at gamma = 0."""

    mass: jax.Array
    gamma: jax.Array
    dim: ClassVar[int] = 2
    n_bands: ClassVar[int] = 2

    def __call__(self, x, k):
        h = jnp.array([[self.mass, k[0] - 1j * k[1]], [k[0] + 1j * k[1], -self.mass]])
        return h + self.gamma * jnp.array([[0.0, 1.0], [0.0, 0.0]])


def _batch(gammas=np.zeros(len(MASSES)), **kwargs):
    dirac = jax.vmap(LeakyDirac)(jnp.asarray(MASSES), jnp.asarray(gammas))
    k0 = np.stack([np.full(KYS.shape, -K), KYS], axis=-1)
    field = np.stack([-FIELDS, np.zeros_like(FIELDS)], axis=-1)
    return sj.evolve(
        dirac, None, k0, t1=2 * K / FIELDS, field=field, band=0, rtol=1e-8, atol=1e-8,
        saveat=3, max_steps=MAX_STEPS, chunk_size=3, batched_model=True, **kwargs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def batch():
    return _batch()


def test_batch_matches_landau_zener_per_member(batch):
    """Each member: P_upper(t1) = exp(-pi (Delta^2 + v^2 ky^2) / (v E)) to 3e-4, its own save
    times linspace(0, 2K/E, 3), k(t) = (-K + E t, ky) to 1e-9 and every field batched."""
    good = np.arange(len(MASSES)) != SLOW
    expected = np.exp(-np.pi * (MASSES**2 + V**2 * KYS**2) / (V * FIELDS))
    np.testing.assert_allclose(batch.populations[good, -1, 1], expected[good], atol=TOLERANCE)
    times = np.linspace(0.0, 1.0, 3)[None, :] * (2 * K / FIELDS)[:, None]
    np.testing.assert_allclose(batch.ts[good], times[good], rtol=1e-12)
    np.testing.assert_allclose(
        batch.k[good, :, 0], -K + FIELDS[good, None] * times[good], atol=1e-9
    )
    np.testing.assert_allclose(batch.k[good, :, 1], np.repeat(KYS[good, None], 3, 1), atol=1e-12)
    np.testing.assert_allclose(batch.populations[good].sum(-1), 1.0, atol=1e-9)
    leaves = [leaf for leaf in jax.tree_util.tree_leaves(batch) if eqx.is_array(leaf)]
    assert leaves and all(leaf.shape[0] == len(MASSES) for leaf in leaves)


def test_slow_member_is_flagged_and_throw_names_it(batch):
    """The member that needs more than max_steps is flagged (success False, result not
    successful, stopped before t1); the others succeed. throw=True raises after the whole batch
    ran, naming the member and the reason."""
    expected = np.arange(len(MASSES)) != SLOW
    np.testing.assert_array_equal(batch.success, expected)
    assert int(batch.num_steps[SLOW]) > MAX_STEPS // 2  # accepted; with the rejected ones: max
    assert float(batch.t_stop[SLOW]) < 2 * K / FIELDS[SLOW]
    with pytest.raises(RuntimeError, match=r"1 of 7 members .*\[3\].*max_steps \(now 1000\)"):
        _batch(throw=True)  # the same compiled batch
    # a bad argument that only the model shows (H not Hermitian at member 5's start): that member
    # is not integrated, and the batch raises its single-run error afterwards, naming it
    with pytest.raises(ValueError, match=r"member 5 of the batch: model\(x, k\) is not Hermitian"):
        _batch(gammas=np.eye(len(MASSES))[5] * 0.1)  # the same compiled batch again


def test_batch_arguments_are_checked_per_member():
    """Bad batched values raise before the solve, naming the members; a batch-size mismatch and
    batch options on a single run name the arguments."""
    model = models.MassiveDirac(V, 0.2)
    k0 = np.stack([np.full(4, -K), np.linspace(0.0, 0.3, 4)], axis=-1)
    field = jnp.array([-1.0, 0.0])
    bad_k0 = k0.copy()
    bad_k0[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"k0 must be finite: not at member 2"):
        sj.evolve(model, None, bad_k0, t1=20.0, field=field, band=0)
    with pytest.raises(ValueError, match=r"t1 must be later than t0: not at members \[1, 3\]"):
        sj.evolve(model, None, k0, t1=np.array([1.0, -1.0, 2.0, 0.0]), field=field, band=0)
    chi0 = np.tile(np.array([1.0, 0.0], complex), (4, 1))
    chi0[0] *= 2.0
    with pytest.raises(ValueError, match=r"chi0 must be normalised .*not at member 0"):
        sj.evolve(model, None, k0, t1=20.0, field=field, chi0=chi0)
    with pytest.raises(ValueError, match=r"disagree on the batch size.*'k0': 4.*'t1': 3"):
        sj.evolve(model, None, k0, t1=np.ones(3), field=field, band=0)
    with pytest.raises(ValueError, match="chunk_size and devices apply to a batch"):
        sj.evolve(model, None, k0[0], t1=20.0, field=field, band=0, chunk_size=2)
    with pytest.raises(ValueError, match="batched_model=True needs"):
        sj.evolve(model, None, k0, t1=20.0, field=field, band=0, batched_model=True)


def test_unrolled_stages_are_diffrax_dopri8():
    """The batch path's stepper (Dopri8's tableau, stages unrolled) is diffrax's Dopri8: on the
    damped oscillator y' = [[-g, w], [-w, -g]] y it takes the same accepted and rejected steps
    and ends at the same point to 1e-13; both at the closed form e^{-g t} R(w t) y0 to 1e-8."""
    from semiclassical_jax.dynamics._unrolled import UnrolledRungeKutta

    g, w, t1, y0 = 0.1, 1.0, 30.0, jnp.array([1.0, 0.5])
    term = diffrax.ODETerm(lambda t, y, args: jnp.array([[-g, w], [-w, -g]]) @ y)
    ends, counts = [], []
    for solver in (diffrax.Dopri8(), UnrolledRungeKutta(diffrax.Dopri8())):
        solution = diffrax.diffeqsolve(
            term, solver, 0.0, t1, None, y0, stepsize_controller=diffrax.PIDController(
                rtol=1e-10, atol=1e-10))  # fmt: skip
        ends.append(np.asarray(solution.ys[-1]))
        counts.append(
            (int(solution.stats["num_accepted_steps"]), int(solution.stats["num_rejected_steps"]))
        )
    c, s = np.cos(w * t1), np.sin(w * t1)
    exact = np.exp(-g * t1) * np.array([[c, s], [-s, c]]) @ np.asarray(y0)
    assert counts[0] == counts[1] and counts[0][0] > 50
    np.testing.assert_allclose(ends[1], ends[0], rtol=0, atol=1e-13)
    np.testing.assert_allclose(ends[0], exact, rtol=0, atol=1e-8)


def test_reverse_mode_gradient_through_a_batch():
    """jax.grad through the batch call (per-member masses, a batched model, chunks of 2 with a
    padded slot): dP_i/dDelta_i = -2 pi Delta_i / (v E) P_LZ,i to 1e-3 of each value (the
    finite sweep K = 10 leaves ~5e-4 relative; a missing or doubled term is off by O(1))."""
    masses = jnp.array([0.2, 0.3, 0.4])
    kys = np.array([0.0, 0.1, -0.15])
    k0 = np.stack([np.full(3, -K), kys], axis=-1)

    def total_upper(m):
        model = jax.vmap(lambda mass: models.MassiveDirac(V, mass))(m)
        run = sj.evolve(
            model, None, k0, t1=2 * K, field=jnp.array([-1.0, 0.0]), band=0, rtol=1e-8,
            atol=1e-8, chunk_size=2, batched_model=True,
        )  # fmt: skip
        return jnp.sum(run.populations[:, -1, 1])

    gradient = np.asarray(jax.jit(jax.grad(total_upper))(masses))
    p_lz = np.exp(-np.pi * (masses**2 + V**2 * kys**2) / V)
    np.testing.assert_allclose(gradient, -2 * np.pi * masses / V * p_lz, rtol=1e-3)


def test_members_are_grouped_by_their_expected_step_count():
    """The batch's grouping key (``step_estimates``) is duration x the spread of the energies chi's
    phase rotates with: for MassiveDirac(1, Delta) from k0, t1 x 2 sqrt(Delta^2 + |k0|^2) (closed
    form, 1e-12); it follows the members' real step counts (equal durations, |k0| from 0.5 to 8:
    correlation of the logarithms >= 0.95), where the duration alone would not distinguish them;
    the Abelian method keys by duration alone (its steps follow x and k)."""
    from semiclassical_jax.dynamics._batched_evolve import (
        find_batch,
        prepare_batch,
        step_estimates,
    )

    radii = np.array([8.0, 0.5, 4.0, 1.0, 2.0, 6.0])
    k0 = np.stack([radii * np.cos(radii), radii * np.sin(radii)], axis=-1)
    model = models.MassiveDirac(V, 0.3)
    potential = sj.ScalarPotential(lambda x: 0.05 * jnp.cos(x[0]) * jnp.cos(x[1]))
    chi0 = np.stack([np.linalg.eigh(np.asarray(model(np.zeros(2), k)))[1][:, 0] for k in k0])
    values = dict(x0=None, k0=k0, chi0=chi0, t0=0.0, t1=10.0, field=potential)
    options = dict(method="full", band=None, manifold=None, solver=None, rtol=1e-8, atol=1e-8,
                   max_steps=2**20, adjoint=None, adiabaticity_limit=1.0)  # fmt: skip
    batch = find_batch(model, values, False)
    setup, shared, members, _ = prepare_batch(batch, saveat=None, magnetic_field=None, **options)
    key = np.asarray(step_estimates(shared, members, setup, len(radii)))
    np.testing.assert_allclose(key, 10.0 * 2 * np.sqrt(0.3**2 + radii**2), rtol=1e-12)
    run = sj.evolve(model, None, k0, chi0=chi0, t1=10.0, field=potential, rtol=1e-8, atol=1e-8,
                    chunk_size=2)  # fmt: skip
    steps = np.asarray(run.num_steps)
    assert np.corrcoef(np.log(key), np.log(steps))[0, 1] >= 0.95, (key, steps)
    abelian = setup._replace(method="abelian", band=0)
    np.testing.assert_array_equal(step_estimates(shared, members, abelian, len(radii)), 10.0)
