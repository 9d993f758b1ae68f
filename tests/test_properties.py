"""Property-based tests of the band geometry on random Hermitian models (hypothesis).

Random models: H(x, k) = A0 + sum_a x_a A_a + sum_a k_a B_a + sum_ab k_a k_b C_ab
+ sum_ab x_a k_b D_ab + sum_ab x_a x_b E_ab, every matrix a random Hermitian one from a seeded
numpy Generator (the seed, N in 2..6 and d in 1..2 are drawn by hypothesis; the Abelian tests
also run an explicit d = 3 example), evaluated at a random (x, k). A numpy twin of the same
polynomial gives H for the references.

Independent references (nothing from the package's geometry code):

* exact identities: antisymmetry of Omega, the sum rule sum_n Omega_n = 0, Hermiticity and
  antisymmetry of F, one-band F = Omega, Tr F = sum of Omega over a non-degenerate manifold;
* central finite differences of eigenvalues and of projectors P = sum_{n in a} u_n u_n^dagger,
  both from ``numpy.linalg.eigh`` of H; since P is gauge invariant,
  F^{ab} = i P [dP_a, dP_b] P built from finite-difference dP is independent of any eigenvector
  gauge, and it is well defined inside a degenerate manifold;
* a model with an exactly degenerate pair, H(lambda) = U(lambda) D U(lambda)^dagger with the
  Cayley transform U = (1 - iK)^{-1} (1 + iK), K = sum_a lambda_a G_a, whose curvature at
  lambda = 0 has the closed form F^{ab} = i P0 (T_a Q0 T_b - T_b Q0 T_a) P0, T_a = 2 G_a;
* Kane-Mele (bands pairwise degenerate at every k), against the same projector formula.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

import semiclassical_jax as sj
from semiclassical_jax.models import FunctionModel, KaneMele

FD_STEP = 1e-5
# Finite-difference comparisons: max|pkg - fd| <= FD_TOL * max(1, max|pkg|).
FD_TOL = 1e-6
# Exact identities: violations <= EXACT_TOL * max|quantity| (or * max(1, ...) where stated).
EXACT_TOL = 1e-10
# Random draws are redrawn (deterministically from the same Generator) until every gap at the
# point is at least this fraction of max(1, max|eps|), so finite differences are well conditioned.
MIN_RELATIVE_GAP = 0.03

# Compilation dominates the run time: every new (N, d) costs one compile of the geometry kernel
# and every new (N, d, manifold size) a set of small eager compiles, so examples are few.
SETTINGS = settings(max_examples=10, deadline=None)
MANIFOLD_SETTINGS = settings(max_examples=6, deadline=None)

seeds = st.integers(0, 2**32 - 1)
band_counts = st.integers(2, 6)
dims = st.integers(1, 2)
# d = 3 is exercised by an explicit example on the Abelian tests (one extra compile).
with_three_dimensions = example(seed=2024, n=4, d=3)


# ---------------------------------------------------------------------------------------------
# Random polynomial models
# ---------------------------------------------------------------------------------------------


def _poly(xp, p, x, k):
    """The polynomial model, written once for jnp (the model) and numpy (the reference)."""
    return (
        p["A0"]
        + xp.einsum("a,anm->nm", x, p["A"])
        + xp.einsum("a,anm->nm", k, p["B"])
        + xp.einsum("a,b,abnm->nm", k, k, p["C"])
        + xp.einsum("a,b,abnm->nm", x, k, p["D"])
        + xp.einsum("a,b,abnm->nm", x, x, p["E"])
    )


def _poly_jax(p, x, k):
    return _poly(jnp, p, x, k)


def _random_hermitian(rng, shape, scale):
    g = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    return scale * 0.5 * (g + np.conj(np.swapaxes(g, -1, -2)))


def _min_gap(energies):
    return np.min(np.diff(np.sort(energies)))


class RandomModel:
    """A random polynomial model: ``model`` (package), ``h(lam)`` (numpy), point ``x``, ``k``."""

    def __init__(self, seed, n, d):
        rng = np.random.default_rng(seed)
        self.n, self.d = n, d
        while True:
            self.params = {
                "A0": _random_hermitian(rng, (n, n), 1.0),
                "A": _random_hermitian(rng, (d, n, n), 0.5),
                "B": _random_hermitian(rng, (d, n, n), 0.5),
                "C": _random_hermitian(rng, (d, d, n, n), 0.3),
                "D": _random_hermitian(rng, (d, d, n, n), 0.3),
                "E": _random_hermitian(rng, (d, d, n, n), 0.3),
            }
            self.x, self.k = rng.uniform(-1, 1, d), rng.uniform(-1, 1, d)
            energies = np.linalg.eigvalsh(self.h(self.lam))
            if _min_gap(energies) >= MIN_RELATIVE_GAP * max(1.0, np.max(np.abs(energies))):
                break
        self.rng = rng  # for any further random choices of the test
        self.model = FunctionModel(
            _poly_jax, jax.tree.map(jnp.asarray, self.params), dim=d, n_bands=n
        )

    @property
    def lam(self):
        return np.concatenate([self.x, self.k])

    def h(self, lam):
        return _poly(np, self.params, lam[: self.d], lam[self.d :])


# ---------------------------------------------------------------------------------------------
# numpy references
# ---------------------------------------------------------------------------------------------


def projector(h, lam, bands):
    _, vectors = np.linalg.eigh(h(lam))
    u = vectors[:, list(bands)]
    return u @ np.conj(u.T)


def fd_projector_derivative(h, lam, bands, step=FD_STEP):
    """(2d, N, N) central differences of P = sum_{n in bands} |u_n><u_n| (numpy eigh)."""
    out = []
    for e in np.eye(len(lam)):
        out.append(
            (projector(h, lam + step * e, bands) - projector(h, lam - step * e, bands)) / (2 * step)
        )
    return np.array(out)


def projector_curvature(p, dp):
    """(2d, 2d, N, N) operator F^{ab} = i P [dP_a, dP_b] P."""
    prod = np.einsum("aij,bjk->abik", dp, dp)
    return 1j * np.einsum("ij,abjk,kl->abil", p, prod - np.swapaxes(prod, 0, 1), p)


def fd_eigenvalue_gradient(h, lam, step=FD_STEP):
    """(N, 2d) central differences of the numpy eigenvalues."""
    cols = []
    for e in np.eye(len(lam)):
        cols.append(
            (np.linalg.eigvalsh(h(lam + step * e)) - np.linalg.eigvalsh(h(lam - step * e)))
            / (2 * step)
        )
    return np.array(cols).T


def scaled_error(actual, expected):
    """max|actual - expected| / max(1, max|expected|)."""
    return np.max(np.abs(np.asarray(actual) - expected)) / max(1.0, np.max(np.abs(expected)))


def check_eigenvectors(h, energies, states, tol=EXACT_TOL):
    """The package's states really are eigenvectors of the numpy H (so projecting onto them is
    a legitimate choice of basis)."""
    residual = h @ states - states * energies[None, :]
    assert np.max(np.abs(residual)) <= tol * max(1.0, np.max(np.abs(energies)))
    np.testing.assert_allclose(np.conj(states.T) @ states, np.eye(states.shape[1]), atol=tol)


def contiguous_manifold(data, n):
    """A random contiguous band range [lo, hi) that leaves at least one remote band."""
    lo = data.draw(st.integers(0, n - 1), label="lo")
    hi = data.draw(st.integers(lo + 1, n if lo > 0 else n - 1), label="hi")
    return tuple(range(lo, hi))


# ---------------------------------------------------------------------------------------------
# Abelian curvature
# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(seeds, band_counts, dims)
@with_three_dimensions
def test_abelian_curvature_antisymmetric_and_sum_rule(seed, n, d):
    """(a) Omega_n^{ab} = -Omega_n^{ba} to 1e-10 * max(1, max|Omega|);
    (b) sum_n Omega_n^{ab} = 0 to 1e-10 * max|Omega|."""
    rm = RandomModel(seed, n, d)
    omega = np.asarray(sj.berry_curvature(rm.model, rm.x, rm.k))
    assert omega.shape == (n, 2 * d, 2 * d)
    scale = np.max(np.abs(omega))
    assert np.max(np.abs(omega + np.swapaxes(omega, 1, 2))) <= EXACT_TOL * max(1.0, scale)
    assert np.max(np.abs(omega.sum(axis=0))) <= EXACT_TOL * scale


@SETTINGS
@given(seeds, band_counts, dims)
@with_three_dimensions
def test_abelian_curvature_matches_projector_formula(seed, n, d):
    """Every block of every band vs Omega_n^{ab} = Tr(i P_n [dP_a, dP_b] P_n) with dP from central
    differences of numpy projectors (step 1e-5); tolerance 1e-6 * max(1, max|Omega_n|)."""
    rm = RandomModel(seed, n, d)
    omega = np.asarray(sj.berry_curvature(rm.model, rm.x, rm.k))
    for band in range(n):
        p = projector(rm.h, rm.lam, [band])
        dp = fd_projector_derivative(rm.h, rm.lam, [band])
        expected = np.real(np.trace(projector_curvature(p, dp), axis1=-2, axis2=-1))
        assert scaled_error(omega[band], expected) <= FD_TOL, (band, omega[band], expected)


@SETTINGS
@given(seeds, band_counts, dims)
@with_three_dimensions
def test_velocity_and_force_match_eigenvalue_differences(seed, n, d):
    """(g) band_velocity = d eps/dk and band_force = -d eps/dx, eps from numpy eigvalsh, central
    differences (step 1e-5); tolerance 1e-6 * max(1, max|expected|)."""
    rm = RandomModel(seed, n, d)
    grad = fd_eigenvalue_gradient(rm.h, rm.lam)
    velocity = np.asarray(sj.band_velocity(rm.model, rm.x, rm.k))
    force = np.asarray(sj.band_force(rm.model, rm.x, rm.k))
    assert velocity.shape == force.shape == (n, d)
    assert scaled_error(velocity, grad[:, d:]) <= FD_TOL
    assert scaled_error(force, -grad[:, :d]) <= FD_TOL


# ---------------------------------------------------------------------------------------------
# Manifolds: projector derivative and non-Abelian curvature
# ---------------------------------------------------------------------------------------------


@MANIFOLD_SETTINGS
@given(seeds, band_counts, dims, st.data())
def test_projector_derivative_matches_finite_difference(seed, n, d, data):
    """(f) projector_derivative vs central differences of numpy projectors (step 1e-5);
    tolerance 1e-6 * max(1, max|dP|)."""
    rm = RandomModel(seed, n, d)
    manifold = contiguous_manifold(data, n)
    dp = np.asarray(sj.projector_derivative(rm.model, rm.x, rm.k, manifold))
    expected = fd_projector_derivative(rm.h, rm.lam, manifold)
    assert dp.shape == (2 * d, n, n)
    assert scaled_error(dp, expected) <= FD_TOL


@MANIFOLD_SETTINGS
@given(seeds, band_counts, dims, st.data())
def test_nonabelian_curvature_hermitian_and_antisymmetric(seed, n, d, data):
    """(c) F[a, b] is Hermitian in (n, m) and F[a, b] = -F[b, a], to 1e-10 * max(1, max|F|)."""
    rm = RandomModel(seed, n, d)
    manifold = contiguous_manifold(data, n)
    f = np.asarray(sj.nonabelian_curvature(rm.model, rm.x, rm.k, manifold))
    assert f.shape == (2 * d, 2 * d, len(manifold), len(manifold))
    bound = EXACT_TOL * max(1.0, np.max(np.abs(f)))
    assert np.max(np.abs(f - np.conj(np.swapaxes(f, -1, -2)))) <= bound
    assert np.max(np.abs(f + np.swapaxes(f, 0, 1))) <= bound


@MANIFOLD_SETTINGS
@given(seeds, band_counts, dims, st.data())
def test_one_band_manifold_equals_abelian_curvature(seed, n, d, data):
    """(d) nonabelian_curvature of a random one-band manifold (n,) equals berry_curvature[n]
    (its imaginary part vanishes), to 1e-10 * max(1, max|Omega_n|)."""
    rm = RandomModel(seed, n, d)
    band = data.draw(st.integers(0, n - 1), label="band")
    omega = np.asarray(sj.berry_curvature(rm.model, rm.x, rm.k))
    f = np.asarray(sj.nonabelian_curvature(rm.model, rm.x, rm.k, [band]))
    assert f.shape == (2 * d, 2 * d, 1, 1)
    assert scaled_error(f[..., 0, 0], omega[band]) <= EXACT_TOL


@MANIFOLD_SETTINGS
@given(seeds, band_counts, dims, st.data())
def test_trace_of_nonabelian_curvature_is_sum_of_abelian(seed, n, d, data):
    """(e) Tr F over a manifold = sum of berry_curvature over its bands (non-degenerate spectrum),
    and manifold_berry_curvature = Tr F; to 1e-10 * max(1, max|Tr F|)."""
    rm = RandomModel(seed, n, d)
    manifold = contiguous_manifold(data, n)
    f = np.asarray(sj.nonabelian_curvature(rm.model, rm.x, rm.k, manifold))
    trace = np.trace(f, axis1=-2, axis2=-1)
    omega = np.asarray(sj.berry_curvature(rm.model, rm.x, rm.k))
    manifold_omega = np.asarray(sj.manifold_berry_curvature(rm.model, rm.x, rm.k, manifold))
    assert scaled_error(trace, omega[list(manifold)].sum(axis=0)) <= EXACT_TOL
    assert scaled_error(manifold_omega, np.real(trace)) <= EXACT_TOL


@MANIFOLD_SETTINGS
@given(seeds, band_counts, dims, st.data())
def test_nonabelian_curvature_matches_projector_formula(seed, n, d, data):
    """F_nm^{ab} = <u_n| i P [dP_a, dP_b] P |u_m> with dP from central differences of numpy
    projectors and u_n the package's own states (checked to be eigenvectors of the numpy H):
    elementwise and traced, tolerance 1e-6 * max(1, max|F|)."""
    rm = RandomModel(seed, n, d)
    manifold = contiguous_manifold(data, n)
    f = np.asarray(sj.nonabelian_curvature(rm.model, rm.x, rm.k, manifold))
    energies, states = (np.asarray(a) for a in sj.eigensystem(rm.model, rm.x, rm.k))
    check_eigenvectors(rm.h(rm.lam), energies, states)
    u = states[:, list(manifold)]
    op = projector_curvature(
        projector(rm.h, rm.lam, manifold), fd_projector_derivative(rm.h, rm.lam, manifold)
    )
    expected = np.einsum("in,abij,jm->abnm", np.conj(u), op, u)
    assert scaled_error(f, expected) <= FD_TOL
    assert scaled_error(np.trace(f, axis1=-2, axis2=-1), np.trace(op, axis1=-2, axis2=-1)) <= FD_TOL


# ---------------------------------------------------------------------------------------------
# Exactly degenerate manifolds
# ---------------------------------------------------------------------------------------------

# Levels of D: an exactly degenerate lower pair and three remote bands.
CAYLEY_LEVELS = np.array([-1.0, -1.0, 0.4, 1.1, 1.7])
CAYLEY_DIM = 2


def _cayley(xp, p, x, k):
    lam = xp.concatenate([x, k])
    kk = xp.einsum("a,anm->nm", lam, p["G"])
    eye = xp.eye(kk.shape[0])
    u = xp.linalg.solve(eye - 1j * kk, eye + 1j * kk)
    return u @ (p["D"][:, None] * xp.conj(u.T))


def _cayley_jax(p, x, k):
    return _cayley(jnp, p, x, k)


class CayleyModel:
    """H(lambda) = U D U^dagger, U = (1 - iK)^{-1}(1 + iK), K = sum_a lambda_a G_a: the
    spectrum is D at every point, so bands 0 and 1 are exactly degenerate everywhere."""

    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        n = len(CAYLEY_LEVELS)
        self.params = {
            "G": _random_hermitian(rng, (2 * CAYLEY_DIM, n, n), 0.4),
            "D": CAYLEY_LEVELS.copy(),
        }
        self.lam = rng.uniform(-0.5, 0.5, 2 * CAYLEY_DIM)
        self.rng = rng
        self.model = FunctionModel(
            _cayley_jax, jax.tree.map(jnp.asarray, self.params), dim=CAYLEY_DIM, n_bands=n
        )

    def h(self, lam):
        return _cayley(np, self.params, lam[:CAYLEY_DIM], lam[CAYLEY_DIM:])


def random_unitary(rng, n):
    q, r = np.linalg.qr(rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)))
    return q * (np.diag(r) / np.abs(np.diag(r)))[None, :]


def check_degenerate_manifold(model, h, lam, rng, manifold=(0, 1), remote_nondegenerate=True):
    """Shared checks for an exactly degenerate pair (bands 0, 1) at lam. Returns Tr F^{ab}."""
    d = len(lam) // 2
    x, k = lam[:d], lam[d:]
    energies_np = np.linalg.eigvalsh(h(lam))
    scale = max(1.0, np.max(np.abs(energies_np)))
    # Exactly degenerate: a per-band Abelian formula would divide by (eps_1 - eps_0)^2 ~ 0.
    assert abs(energies_np[1] - energies_np[0]) <= 1e-12 * scale
    assert energies_np[2] - energies_np[1] > 0.1

    f = np.asarray(sj.nonabelian_curvature(model, x, k, manifold))
    omega = np.asarray(sj.berry_curvature(model, x, k))
    assert np.all(np.isfinite(f)) and np.all(np.isfinite(omega))

    energies, states = (np.asarray(a) for a in sj.eigensystem(model, x, k))
    check_eigenvectors(h(lam), energies, states)
    u_pkg = states[:, list(manifold)]

    p = projector(h, lam, manifold)
    op = projector_curvature(p, fd_projector_derivative(h, lam, manifold))
    trace_fd = np.real(np.trace(op, axis1=-2, axis2=-1))
    trace_pkg = np.real(np.trace(f, axis1=-2, axis2=-1))
    # Tr F is gauge invariant: package vs finite-difference projectors, tolerance 1e-6 * max(1, max|F|).
    fscale = max(1.0, np.max(np.abs(f)))
    assert np.max(np.abs(trace_pkg - trace_fd)) <= FD_TOL * fscale
    np.testing.assert_allclose(
        np.asarray(sj.manifold_berry_curvature(model, x, k, manifold)),
        trace_pkg,
        rtol=0,
        atol=EXACT_TOL * fscale,
    )

    # Covariance: in a randomly rotated basis W = u_np V (V in U(2)) of the degenerate pair,
    # F_W = W^dagger F_op W; the package's basis is W S with S = W^dagger u_pkg unitary, and
    # F_pkg must equal S^dagger F_W S. Trace and eigenvalues agree in any basis.
    _, vectors = np.linalg.eigh(h(lam))
    w = vectors[:, list(manifold)] @ random_unitary(rng, len(manifold))
    f_w = np.einsum("in,abij,jm->abnm", np.conj(w), op, w)
    s = np.conj(w.T) @ u_pkg
    np.testing.assert_allclose(np.conj(s.T) @ s, np.eye(len(manifold)), atol=1e-10)
    rotated = np.einsum("nk,abnm,ml->abkl", np.conj(s), f_w, s)
    assert np.max(np.abs(f - rotated)) <= FD_TOL * fscale
    assert np.max(np.abs(np.trace(f_w, axis1=-2, axis2=-1) - trace_pkg)) <= FD_TOL * fscale
    for a in range(2 * d):
        for b in range(2 * d):
            np.testing.assert_allclose(
                np.linalg.eigvalsh(f[a, b]),
                np.linalg.eigvalsh(f_w[a, b]),
                rtol=0,
                atol=FD_TOL * fscale,
            )

    # The package's per-band Abelian values drop the 0-1 terms (documented): each is gauge
    # dependent, but they are finite and sum to Tr F.
    assert np.max(np.abs(omega[0] + omega[1] - trace_pkg)) <= EXACT_TOL * fscale
    # Non-degenerate remote bands: the Abelian curvature is still Tr(i P_n [dP_a, dP_b] P_n).
    for band in range(len(manifold), len(energies_np) if remote_nondegenerate else 0):
        pn = projector(h, lam, [band])
        expected = np.real(
            np.trace(
                projector_curvature(pn, fd_projector_derivative(h, lam, [band])), axis1=-2, axis2=-1
            )
        )
        assert scaled_error(omega[band], expected) <= FD_TOL
    return trace_pkg, f


@settings(max_examples=8, deadline=None)
@given(seeds)
def test_degenerate_pair_curvature_is_gauge_covariant(seed):
    """Cayley model (exact degenerate pair, all four blocks non-trivial): Tr F vs the
    finite-difference projector formula (1e-6 * max(1, max|F|)), F covariant under a random U(2)
    rotation of the degenerate states, Tr F = sum of the (finite) per-band Abelian values."""
    cm = CayleyModel(seed)
    trace, f = check_degenerate_manifold(cm.model, cm.h, cm.lam, cm.rng)
    assert np.max(np.abs(f)) > 1e-3  # a non-trivial comparison


def test_degenerate_pair_closed_form_at_origin():
    """At lambda = 0 the Cayley model has H = D, dU/dlambda_a = 2i G_a, so
    F^{ab} = i P0 (T_a Q0 T_b - T_b Q0 T_a) P0 with T_a = 2 G_a (exactly). The package's F in its
    own basis of the degenerate pair must be that operator's matrix, to 1e-10 * max(1, max|F|);
    Tr F must be non-zero (the pair carries curvature)."""
    cm = CayleyModel(20240611)
    n = len(CAYLEY_LEVELS)
    zero = np.zeros(CAYLEY_DIM)
    f = np.asarray(sj.nonabelian_curvature(cm.model, zero, zero, [0, 1]))
    energies, states = (np.asarray(a) for a in sj.eigensystem(cm.model, zero, zero))
    check_eigenvectors(np.diag(CAYLEY_LEVELS).astype(complex), energies, states)
    p0 = np.diag([1.0, 1.0] + [0.0] * (n - 2))
    q0 = np.eye(n) - p0
    t = 2 * cm.params["G"]
    tqt = np.einsum("aij,jk,bkl->abil", t, q0, t)
    op = 1j * np.einsum("ij,abjk,kl->abil", p0, tqt - np.swapaxes(tqt, 0, 1), p0)
    u = states[:, :2]
    expected = np.einsum("in,abij,jm->abnm", np.conj(u), op, u)
    assert scaled_error(f, expected) <= EXACT_TOL
    assert np.max(np.abs(np.trace(expected, axis1=-2, axis2=-1))) > 1e-2


KANE_MELE = KaneMele(t=1.0, soc=0.06)
_KANE_MELE_B = np.asarray(KANE_MELE.reciprocal_lattice)
_K_POINT = (2 * _KANE_MELE_B[0] + _KANE_MELE_B[1]) / 3
_KP_POINT = (_KANE_MELE_B[0] + 2 * _KANE_MELE_B[1]) / 3
KANE_MELE_POINTS = [
    _K_POINT,
    _K_POINT + np.array([0.05, 0.02]),
    _KP_POINT + np.array([0.03, -0.04]),
    np.array([0.3, 0.7]),
]
_kane_mele_matrix = eqx.filter_jit(lambda model, k: model(jnp.zeros(2), k))


def test_kane_mele_degenerate_manifold():
    """Kane-Mele (t = 1, soc = 0.06): bands 0, 1 are degenerate at every k. At four k points (K,
    near K, near K', generic): F of manifold [0, 1] finite, covariant and equal to the
    finite-difference projector formula (tolerance 1e-6 * max(1, max|F|)); Tr F vanishes
    (inversion x time reversal) in both; the x blocks vanish (no texture); F itself is non-trivial
    near K (eigenvalues of F^{kx ky} ~ +-3.9)."""

    def h(lam):
        return np.asarray(_kane_mele_matrix(KANE_MELE, jnp.asarray(lam[2:])))

    rng = np.random.default_rng(7)
    largest = 0.0
    for k in KANE_MELE_POINTS:
        lam = np.concatenate([np.zeros(2), k])
        trace, f = check_degenerate_manifold(KANE_MELE, h, lam, rng, remote_nondegenerate=False)
        assert np.max(np.abs(trace)) <= 1e-8
        assert np.max(np.abs(f[:2])) == 0.0 and np.max(np.abs(f[:, :2])) == 0.0
        largest = max(largest, np.max(np.abs(f[2, 3])))
    assert largest > 1.0


# ---------------------------------------------------------------------------------------------
# Transformations: vmap and jit
# ---------------------------------------------------------------------------------------------


def test_vmap_and_jit_match_python_loop():
    """berry_curvature over 50 k points: jax.vmap, jax.jit of the vmap and a Python loop of eager
    calls agree to 1e-12 * max(1, max|Omega|)."""
    rm = RandomModel(12345, 4, 2)
    ks = jnp.asarray(np.random.default_rng(1).uniform(-1.5, 1.5, (50, 2)))
    x = jnp.asarray(rm.x)
    looped = np.stack([np.asarray(sj.berry_curvature(rm.model, x, k)) for k in ks])
    batched = jax.vmap(sj.berry_curvature, in_axes=(None, None, 0))
    vmapped = np.asarray(batched(rm.model, x, ks))
    jitted = np.asarray(jax.jit(batched)(rm.model, x, ks))
    bound = 1e-12 * max(1.0, np.max(np.abs(looped)))
    assert looped.shape == (50, 4, 4, 4)
    assert np.max(np.abs(vmapped - looped)) <= bound
    assert np.max(np.abs(jitted - looped)) <= bound
