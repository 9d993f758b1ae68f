"""The small-N eigensolver against LAPACK (numpy), at generic points and at degeneracies."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from semiclassical_jax import eigh, models
from semiclassical_jax._eigh import _eigh_2x2


def _random_hermitian(rng, n, scale=1.0):
    a = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    return scale * (a + a.conj().T) / 2


def _projectors(states):
    return np.einsum("in,jn->nij", states, states.conj())


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_matches_lapack_generic(rng, n):
    """Eigenvalues to 1e-12 and rank-one projectors (gauge invariant) to 1e-10 vs numpy."""
    batch = np.stack([_random_hermitian(rng, n, scale) for scale in (1e-3, 1.0, 1e3) for _ in range(10)])
    energies, states = jax.vmap(eigh)(jnp.asarray(batch))
    ref_energies, ref_states = np.linalg.eigh(batch)
    scale = np.abs(ref_energies).max(axis=-1, keepdims=True)
    assert np.max(np.abs(energies - ref_energies) / scale) < 1e-12
    for s, r in zip(np.asarray(states), ref_states):
        assert np.max(np.abs(_projectors(s) - _projectors(r))) < 1e-10
        assert np.max(np.abs(s.conj().T @ s - np.eye(n))) < 1e-12


def test_two_by_two_both_gauge_patches_and_poles():
    """d pointing to either pole, along the equator, and d = 0 (fully degenerate)."""
    pauli = [np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.diag([1.0, -1.0])]
    for d in ([0, 0, 1], [0, 0, -1], [1e-9, 0, -1], [1, 0, 0], [0.3, -0.7, -0.2], [0, 0, 0]):
        h = 0.25 * np.eye(2) + sum(c * p for c, p in zip(d, pauli))
        energies, states = _eigh_2x2(jnp.asarray(h, dtype=complex))
        states = np.asarray(states)
        np.testing.assert_allclose(energies, np.linalg.eigvalsh(h), atol=1e-14)
        np.testing.assert_allclose(h @ states, states * np.asarray(energies), atol=1e-14)
        np.testing.assert_allclose(states.conj().T @ states, np.eye(2), atol=1e-14)


def test_two_by_two_avoids_the_lapack_custom_call():
    """N = 2 must not lower to the LAPACK eigh custom call (the batched-eigh deadlock hazard)."""
    jaxpr = str(jax.make_jaxpr(jax.vmap(eigh))(jnp.zeros((4, 2, 2), complex)))
    assert "eigh" not in jaxpr
    jaxpr3 = str(jax.make_jaxpr(jax.vmap(eigh))(jnp.zeros((4, 3, 3), complex)))
    assert "eigh" in jaxpr3  # the large-N path still uses LAPACK


def _lower_projector_observable(k, model, observable):
    """Tr(P_{0,1} O): invariant under rotations inside the degenerate lower pair."""
    _, states = eigh(model(jnp.zeros(2), k))
    lower = states[:, :2]
    return jnp.real(jnp.trace(lower.conj().T @ observable @ lower))


def test_gradient_finite_and_correct_at_exact_degeneracy(rng):
    """Kane-Mele bands are pairwise degenerate at every k: jnp.linalg.eigh's JVP divides by zero;
    ours must give the finite-difference derivative of a gauge-invariant quantity (1e-7 rel)."""
    model = models.KaneMele(t=1.0, soc=0.07)
    observable = jnp.asarray(_random_hermitian(rng, 4))
    k = jnp.array([0.37, -0.52])
    grad = jax.grad(_lower_projector_observable)(k, model, observable)
    assert np.all(np.isfinite(grad))
    step = 1e-5
    for axis in range(2):
        e = np.zeros(2)
        e[axis] = step
        fd = (
            _lower_projector_observable(k + e, model, observable)
            - _lower_projector_observable(k - e, model, observable)
        ) / (2 * step)
        np.testing.assert_allclose(grad[axis], fd, rtol=1e-7, atol=1e-9)


def test_two_by_two_gradient_finite_at_band_touching():
    """At the massless Dirac point the energies are not differentiable; the rule stays finite."""
    model = models.MassiveDirac(1.0, 0.0)

    def gap(k):
        energies, _ = eigh(model(jnp.zeros(2), k))
        return energies[1] - energies[0]

    assert np.all(np.isfinite(jax.grad(gap)(jnp.zeros(2))))
    # away from it, d gap / dk = 2 v k / |k|
    k = jnp.array([0.3, 0.4])
    np.testing.assert_allclose(jax.grad(gap)(k), 2 * np.asarray(k) / 0.5, rtol=1e-12)
