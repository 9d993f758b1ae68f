"""The small-N eigensolver against LAPACK (numpy), at generic points and at degeneracies."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from semiclassical_jax import _eigh, eigh, models
from semiclassical_jax._eigh import _eigh_2x2
from semiclassical_jax.geometry._kernel import band_geometry_unchecked

# One jitted batched solver shared by the tests: each (BATCH, n, n) shape compiles once.
_SOLVE = jax.jit(jax.vmap(eigh))
BATCH = 30


def _random_hermitian(rng, n, scale=1.0):
    a = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    return scale * (a + a.conj().T) / 2


def _projectors(states):
    return np.einsum("in,jn->nij", states, states.conj())


def _random_unitary(rng, n):
    q, r = np.linalg.qr(rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)))
    return q * (np.diagonal(r) / np.abs(np.diagonal(r)))


def _eigenspace_projectors(energies, states, tol):
    """Projectors onto the eigenspaces (eigenvalues closer than tol grouped), in ascending order."""
    groups, start = [], 0
    for n in range(1, len(energies) + 1):
        if n == len(energies) or energies[n] - energies[n - 1] > tol:
            groups.append(states[:, start:n] @ states[:, start:n].conj().T)
            start = n
    return groups


def _custom_calls(fn, *args):
    return set(re.findall(r"custom_call @(\w+)", jax.jit(fn).lower(*args).as_text()))


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7, 8, 10])
def test_matches_lapack_generic(rng, n):
    """Every path (closed form, small-N solver for 3 <= n <= 8, LAPACK above) against numpy:
    eigenvalues to 1e-12 of the spectral scale, rank-one projectors (gauge invariant) to 1e-10,
    orthonormal eigenvectors to 1e-12, for matrices of norm 1e-3, 1 and 1e3."""
    batch = np.stack(
        [_random_hermitian(rng, n, scale) for scale in (1e-3, 1.0, 1e3) for _ in range(BATCH // 3)]
    )
    energies, states = _SOLVE(jnp.asarray(batch))
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


def test_small_n_avoids_the_lapack_custom_call():
    """N <= JACOBI_MAX_SIZE must not lower to any custom call (LAPACK's batched eigh is the deadlock
    hazard), also under grad; above the threshold, or with method="lapack", LAPACK is used."""
    limit = _eigh.JACOBI_MAX_SIZE
    for n in range(2, limit + 1):
        assert _custom_calls(jax.vmap(eigh), jnp.zeros((4, n, n), complex)) == set()
    loss = lambda h: jnp.sum(jax.vmap(eigh)(h)[0] ** 2)  # noqa: E731
    assert _custom_calls(jax.grad(loss), jnp.zeros((4, limit, limit), complex)) == set()
    above = _custom_calls(jax.vmap(eigh), jnp.zeros((4, limit + 1, limit + 1), complex))
    forced = _custom_calls(
        jax.vmap(lambda h: eigh(h, method="lapack")), jnp.zeros((4, 4, 4), complex)
    )
    assert any("eigh" in c or "heev" in c or "syev" in c for c in above)
    assert any("eigh" in c or "heev" in c or "syev" in c for c in forced)


def test_exact_degeneracies_match_lapack(rng):
    """Kane-Mele (pairwise degenerate at every k, N = 4) and U diag(1, 1, 1, 2, 3) U^dagger (N = 5):
    eigenvalues to 1e-10 of the spectral scale and the projector onto every eigenspace (the 2- and
    3-dimensional ones included) to 1e-10 vs numpy; eigenvectors orthonormal to 1e-12."""
    model = models.KaneMele(t=1.0, soc=0.07)
    ks = rng.uniform(-4, 4, size=(BATCH, 2))
    kane_mele = np.asarray(jax.vmap(lambda k: model(jnp.zeros(2), k))(jnp.asarray(ks)))
    spectrum = np.array([1.0, 1.0, 1.0, 2.0, 3.0])
    unitaries = [_random_unitary(rng, 5) for _ in range(BATCH)]
    threefold = np.stack([u @ np.diag(spectrum) @ u.conj().T for u in unitaries])
    for batch in (kane_mele, threefold):
        energies, states = (np.asarray(a) for a in _SOLVE(jnp.asarray(batch)))
        ref_energies, ref_states = np.linalg.eigh(batch)
        for e, s, re_, rs in zip(energies, states, ref_energies, ref_states):
            scale = np.abs(re_).max()
            np.testing.assert_allclose(e, re_, rtol=0, atol=1e-10 * scale)
            np.testing.assert_allclose(s.conj().T @ s, np.eye(len(e)), atol=1e-12)
            ours, theirs = (
                _eigenspace_projectors(e, s, 1e-8 * scale),
                _eigenspace_projectors(re_, rs, 1e-8 * scale),
            )
            assert len(ours) == len(theirs) == (2 if batch is kane_mele else 3)
            for p, q in zip(ours, theirs):
                np.testing.assert_allclose(p, q, rtol=0, atol=1e-10)


def _lower_projector_observable(k, model, observable, method="auto"):
    """Tr(P_{0,1} O): invariant under rotations inside the degenerate lower pair."""
    _, states = eigh(model(jnp.zeros(2), k), method=method)
    lower = states[:, :2]
    return jnp.real(jnp.trace(lower.conj().T @ observable @ lower))


@pytest.mark.parametrize("method", ["jacobi", "lapack"])
def test_gradient_finite_and_correct_at_exact_degeneracy(rng, method):
    """Kane-Mele bands are pairwise degenerate at every k: jnp.linalg.eigh's JVP divides by zero;
    ours (small-N solver and LAPACK alike) must give the finite-difference derivative of a
    gauge-invariant quantity (1e-7 rel)."""
    model = models.KaneMele(t=1.0, soc=0.07)
    observable = jnp.asarray(_random_hermitian(rng, 4))
    k = jnp.array([0.37, -0.52])
    grad = jax.grad(_lower_projector_observable)(k, model, observable, method)
    assert np.all(np.isfinite(grad))
    step = 1e-5
    for axis in range(2):
        e = np.zeros(2)
        e[axis] = step
        fd = (
            _lower_projector_observable(k + e, model, observable, method)
            - _lower_projector_observable(k - e, model, observable, method)
        ) / (2 * step)
        np.testing.assert_allclose(grad[axis], fd, rtol=1e-7, atol=1e-9)


def test_gradient_finite_and_correct_at_threefold_degeneracy(rng):
    """H(t) = U diag(1, 1, 1, 2, 3) U^dagger + t X: at t = 0 the lowest eigenvalue is 3-fold. The
    gradients of Tr(P_{0,1,2} O) and of eps_0 + eps_1 + eps_2 at t = 0 are finite and equal central
    finite differences (1e-7 rel; exact value of the second: Tr(P X))."""
    u = _random_unitary(rng, 5)
    h0 = jnp.asarray(u @ np.diag([1.0, 1.0, 1.0, 2.0, 3.0]) @ u.conj().T)
    x, observable = jnp.asarray(_random_hermitian(rng, 5)), jnp.asarray(_random_hermitian(rng, 5))

    def cluster(t):
        energies, states = eigh(h0 + t * x)
        low = states[:, :3]
        return jnp.stack(
            [jnp.real(jnp.trace(low.conj().T @ observable @ low)), jnp.sum(energies[:3])]
        )

    grad = jax.jacfwd(cluster)(0.0)
    assert np.all(np.isfinite(grad)) and np.all(np.isfinite(jax.jacrev(cluster)(0.0)))
    step = 1e-5
    fd = (cluster(step) - cluster(-step)) / (2 * step)
    np.testing.assert_allclose(grad, fd, rtol=1e-7, atol=1e-9)
    projector = u[:, :3] @ u[:, :3].conj().T
    np.testing.assert_allclose(grad[1], np.real(np.trace(projector @ np.asarray(x))), rtol=1e-10)


def test_curvature_small_n_solver_equals_lapack(monkeypatch):
    """An N = 4 model through the generic geometry path with the small-N solver and with LAPACK
    forced: the Abelian curvature of the split Kane-Mele bands and the projector derivative dP of
    the degenerate Kane-Mele lower manifold (gauge invariant) agree to 1e-10 of their maxima."""
    split = models.KaneMele(1.0, 0.06, rashba=0.05, mass=0.1)
    degenerate = models.KaneMele(1.0, 0.07)
    ks = jnp.asarray(np.random.default_rng(5).uniform(-4, 4, size=(BATCH, 2)))

    def curvatures():
        def one(k):
            abelian = band_geometry_unchecked(split, jnp.zeros(2), k).berry_curvature()
            projector = band_geometry_unchecked(degenerate, jnp.zeros(2), k).projector_derivative(
                (0, 1)
            )
            return abelian, projector

        return jax.jit(jax.vmap(one))(ks)

    jacobi = curvatures()
    monkeypatch.setattr(_eigh, "JACOBI_MAX_SIZE", 2)
    jax.clear_caches()  # jit caches do not see the module constant
    try:
        lapack = curvatures()
        assert "lapack" in " ".join(_custom_calls(jax.vmap(eigh), jnp.zeros((2, 4, 4), complex)))
    finally:
        monkeypatch.undo()
        jax.clear_caches()
    for ours, theirs in zip(jacobi, lapack):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10 * np.abs(theirs).max())


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
