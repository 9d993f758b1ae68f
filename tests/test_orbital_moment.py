"""Orbital magnetic moment (PHYSICS.md section 5): closed forms, an exact quantum Landau-level
oracle for its sign and for models without a closed form, and the manifold moment matrix."""

import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import models


def dirac_moment(valley, v, delta, k):
    """Both bands of H = v (valley kx sx + ky sy) + Delta sz: m_z = -valley Delta v^2 / (2 eps^2),
    eps^2 = Delta^2 + v^2 k^2. Magnitude from PHYSICS.md; sign from the exact n = 0 Landau level
    (see test_moment_sign_from_the_exact_zero_landau_level)."""
    return -valley * delta * v**2 / (2 * (delta**2 + v**2 * np.dot(k, k)))


@pytest.mark.parametrize("valley", [1, -1])
@pytest.mark.parametrize("delta", [0.3, -0.45])
def test_massive_dirac_moment_closed_form_both_bands_valley_odd(valley, delta):
    v = 1.3
    model = models.MassiveDirac(v, delta, valley=valley)
    for k in ([0.2, -0.4], [0.0, 0.0], [1.1, 0.7]):
        moment = np.asarray(sj.orbital_moment(model, None, k))
        assert moment.shape == (2,)
        np.testing.assert_allclose(moment, dirac_moment(valley, v, delta, np.array(k)), rtol=1e-12)


def landau_levels_exact(h0, hx, hy, b_charge, n_osc=120):
    """Eigenvalues of H(pi) = h0 + hx pi_x + hy pi_y for a Hamiltonian linear in k, quantised with
    [pi_x, pi_y] = i q B (ladder operators, n_osc oscillator states): an independent quantum
    calculation of the Landau levels (k -> k - q A, q = -1)."""
    b = np.diag(np.sqrt(np.arange(1, n_osc)), 1)  # annihilation
    scale = np.sqrt(abs(b_charge) / 2)
    pi_x = scale * (b + b.T)
    pi_y = (-1j if b_charge > 0 else 1j) * scale * (b - b.T)
    eye = np.eye(n_osc)
    h = np.kron(h0, eye) + np.kron(hx, pi_x) + np.kron(hy, pi_y)
    levels, states = np.linalg.eigh(h)
    # Truncating the ladder leaves spurious states at its top end: keep the converged ones, with
    # almost no weight on the upper half of the oscillator states.
    weight = np.abs(states.reshape(h0.shape[0], n_osc, -1)) ** 2
    converged = weight[:, n_osc // 2 :].sum(axis=(0, 1)) < 1e-12
    return levels[converged]


def lowest_level_above(levels, energy):
    return levels[levels > energy].min()


@pytest.mark.parametrize("valley", [1, -1])
@pytest.mark.parametrize("delta", [0.5, -0.5])
def test_moment_sign_from_the_exact_zero_landau_level(valley, delta):
    """The exact n = 0 level of massive Dirac sits at +Delta or -Delta by valley, sign(Delta) and
    sign(B); semiclassically the lowest conduction level is eps_min + omega_c / 2 - m_z B, so its
    part odd in B is -m_z B exactly (omega_c and the Berry phase at the band bottom are even / O(B^2))."""
    v, field = 1.0, 1e-6
    sx, sy, sz = np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.diag([1.0, -1.0])
    h0, hx, hy = delta * sz, valley * v * sx, v * sy
    charge = -1.0
    odd = []
    for b_field in (field, -field):
        levels = landau_levels_exact(h0, hx, hy, charge * b_field)
        odd.append(lowest_level_above(levels, 0.0))
    odd_part = 0.5 * (odd[0] - odd[1]) / field
    moment = float(sj.orbital_moment(models.MassiveDirac(v, delta, valley=valley), None, [0, 0])[1])
    np.testing.assert_allclose(
        odd_part, -moment, rtol=1e-5
    )  # O(B / Delta^2) ~ 4e-6 from the O(B^2) level shift


def test_three_band_moment_against_exact_landau_levels():
    """No closed form: the Dirac pair coupled to a remote band. The odd-in-B part of the lowest
    conduction Landau level from an exact quantum calculation equals -m_z(k = 0) of band 1."""
    v, delta, e_r, g = 1.0, 0.4, 2.0, 0.6
    model = models.DiracWithRemoteBand(v, delta, e_r, g)
    h0 = np.diag([delta, -delta, e_r]).astype(complex)
    # H is linear in k: H = h0 + hx kx + hy ky (k_pm = kx +- i ky)
    hx = np.array([[0, v, g], [v, 0, g], [g, g, 0]], complex)
    hy = np.array([[0, -1j * v, 1j * g], [1j * v, 0, -1j * g], [-1j * g, 1j * g, 0]])
    field = 1e-6
    bottom = float(sj.eigensystem(model, None, [0.0, 0.0])[0][1])
    odd = []
    for b_field in (field, -field):
        levels = landau_levels_exact(h0, hx, hy, -b_field, n_osc=160)
        odd.append(levels[np.argmin(np.abs(levels - bottom))])
    odd_part = 0.5 * (odd[0] - odd[1]) / field
    moment = np.asarray(sj.orbital_moment(model, None, [0.0, 0.0]))
    np.testing.assert_allclose(
        odd_part, -moment[1], rtol=1e-5
    )  # O(B / Delta^2) ~ 4e-6 from the O(B^2) level shift
    assert abs(moment[1] - dirac_moment(1, v, delta, np.zeros(2))) > 0.1  # the remote band matters


def test_three_dimensional_components_follow_the_plane():
    """A Dirac model in the (k_y, k_z) plane of a 3D model carries its moment along x, and so on
    cyclically; eps_abc fixes the orientation."""
    v, delta = 0.8, 0.35
    sx, sy, sz = (
        jnp.array(m, complex) for m in ([[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]])
    )
    for c, (a, b) in enumerate(((1, 2), (2, 0), (0, 1))):

        def fn(p, x, k, a=a, b=b):
            return v * (k[a] * sx + k[b] * sy) + delta * sz

        model = models.FunctionModel(fn, None, dim=3, n_bands=2)
        k = np.array([0.3, -0.2, 0.5])
        moment = np.asarray(sj.orbital_moment(model, None, k))
        expected = np.zeros((2, 3))
        expected[:, c] = dirac_moment(1, v, delta, k[[a, b]])
        np.testing.assert_allclose(moment, expected, atol=1e-13)


def _valley_pair(delta_offset, mixing):
    """Two Dirac valleys (block diagonal), lower bands split by ``delta_offset``, orbitals mixed by
    a fixed unitary (k-independent, so every gauge-invariant quantity is unchanged)."""
    v, delta = 1.1, 0.4

    def fn(p, x, k):
        plus = models.MassiveDirac(v, delta, valley=1)(x, k)
        minus = models.MassiveDirac(v, delta, valley=-1)(x, k) + delta_offset * jnp.eye(2)
        block = jnp.zeros((4, 4), complex).at[:2, :2].set(plus).at[2:, 2:].set(minus)
        return mixing @ block @ jnp.conj(mixing).T

    return models.FunctionModel(fn, None, dim=2, n_bands=4), v, delta


def test_manifold_moment_of_valley_pair(rng):
    """Lower bands of two uncoupled valleys as one manifold: the moment matrix has the eigenvalues
    of the two valleys' moments (-+ Delta v^2 / (2 eps^2)), exactly degenerate or split, in any
    orbital basis; one-band manifolds without intra-manifold partners equal orbital_moment."""
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4)))
    k = np.array([0.25, -0.3])
    for offset in (0.0, 0.05):
        model, v, delta = _valley_pair(offset, jnp.asarray(q))
        matrix = np.asarray(sj.manifold_orbital_moment(model, None, k, [0, 1]))
        np.testing.assert_allclose(matrix, matrix.conj().T, atol=1e-14)
        expected = sorted([dirac_moment(1, v, delta, k), dirac_moment(-1, v, delta, k)])
        np.testing.assert_allclose(np.linalg.eigvalsh(matrix), expected, rtol=1e-10)
    dirac = models.MassiveDirac(1.3, 0.3)
    for band in (0, 1):
        one = complex(sj.manifold_orbital_moment(dirac, None, k, [band])[0, 0])
        np.testing.assert_allclose(one, sj.orbital_moment(dirac, None, k)[band], rtol=1e-12)


def test_moment_rejects_models_it_cannot_describe():
    with pytest.raises(ValueError, match="2D or 3D"):
        chain = models.FunctionModel(lambda p, x, k: jnp.diag(jnp.array([k[0], -k[0]])), None, 1, 2)
        sj.orbital_moment(chain, None, [0.1])


def test_manifold_moment_is_the_roth_effective_hamiltonian_term():
    """Off the diagonal of a non-degenerate manifold the energy reference matters: the moment
    matrix is the B-linear term of the band-group effective Hamiltonian (Roth 1962; Blount),
    M^z_nm = -(i/2) sum_l [(v_x)_nl (v_y)_lm - (v_y)_nl (v_x)_lm] (1/(eps_l - eps_n) + 1/(eps_l - eps_m)) / 2,
    evaluated here in NumPy from H(k) = h0 + hx kx + hy ky; entries compared in modulus (each
    code fixes its own eigenvector phases)."""
    v, delta, e_r, g = 1.0, 0.4, 2.0, 0.6
    model = models.DiracWithRemoteBand(v, delta, e_r, g)
    hx = np.array([[0, v, g], [v, 0, g], [g, g, 0]], complex)
    hy = np.array([[0, -1j * v, 1j * g], [1j * v, 0, -1j * g], [-1j * g, 1j * g, 0]])
    k = np.array([0.3, 0.45])
    energies, states = np.linalg.eigh(np.diag([delta, -delta, e_r]) + hx * k[0] + hy * k[1])
    vx, vy = (states.conj().T @ h @ states for h in (hx, hy))
    expected = np.zeros((2, 2), complex)
    for n in range(2):
        for m in range(2):
            weight = 0.5 * (1 / (energies[2] - energies[n]) + 1 / (energies[2] - energies[m]))
            expected[n, m] = -0.5j * (vx[n, 2] * vy[2, m] - vy[n, 2] * vx[2, m]) * weight
    matrix = np.asarray(sj.manifold_orbital_moment(model, None, k, [0, 1]))
    np.testing.assert_allclose(np.abs(matrix), np.abs(expected), rtol=1e-10)
    assert abs(expected[0, 1]) > 0.05


def test_curvature_vector_phase_space_factor_and_moment_energy():
    """Omega_c = eps_abc Omega^{k_a k_b} / 2, D = 1 + B . Omega and eps - m . B against the Dirac
    closed forms, in 2D (B_z) and for a 3D model whose Dirac plane is (k_z, k_x) (c = y)."""
    from semiclassical_jax.geometry import band_geometry

    v, delta, field = 1.2, 0.3, 0.7
    k2 = np.array([0.2, 0.1])
    eps2 = delta**2 + v**2 * k2 @ k2
    omega_lower = delta * v**2 / (2 * eps2**1.5)  # valley +1
    moment = dirac_moment(1, v, delta, k2)
    geometry = band_geometry(models.MassiveDirac(v, delta), None, k2)
    b = jnp.array([field])
    np.testing.assert_allclose(
        geometry.curvature_vector()[:, 0], [omega_lower, -omega_lower], rtol=1e-12
    )
    np.testing.assert_allclose(
        geometry.phase_space_factor(b),
        1 + field * np.array([omega_lower, -omega_lower]),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        geometry.moment_energy(b), np.array([-1, 1]) * np.sqrt(eps2) - moment * field, rtol=1e-12
    )
    sx, sy, sz = (
        jnp.array(m, complex) for m in ([[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]])
    )
    model = models.FunctionModel(
        lambda p, x, k: v * (k[2] * sx + k[0] * sy) + delta * sz, None, dim=3, n_bands=2
    )
    k3 = np.array([0.1, -0.5, 0.2])
    geometry = band_geometry(model, None, k3)
    b3 = jnp.array([0.3, field, -0.2])
    np.testing.assert_allclose(
        geometry.phase_space_factor(b3),
        1 + field * np.array([omega_lower, -omega_lower]),
        rtol=1e-12,
    )


def test_magnetic_field_argument_errors_name_the_argument():
    from semiclassical_jax._guards import magnetic_field

    assert magnetic_field(0.5, 2).shape == (1,)
    assert magnetic_field([0, 0, 1.0], 3).shape == (3,)
    with pytest.raises(ValueError, match="magnetic_field must be a scalar B_z"):
        magnetic_field([0.0, 1.0], 2)
    with pytest.raises(ValueError, match=r"magnetic_field must be shape \(3,\)"):
        magnetic_field(1.0, 3)
    with pytest.raises(ValueError, match="2D or 3D"):
        magnetic_field(1.0, 1)
