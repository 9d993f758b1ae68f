"""MSCT magnetotransport: ``sj.current(..., theory="msct", magnetic_field=B)`` (PHYSICS.md s. 3, 5).

Equations: semiclassical_jax/transport/_magnetic_msct.py. Each hybridised band i of a manifold
(state u_i = sum_n eta^(i)_n u_n, energy E_i, the field E to all orders) is an Abelian band in B
with the curvature Omega_i and the moment m_i of the state u_i(k) (remote part <u_i|F|u_i> and
eta^dagger M eta, manifold part from the other hybridised states). Pinned here against:

1. independent NumPy oracles at one k-point at a strong field (the hybridised states from
   numpy.linalg.eigh of Hbar): Omega_i from the Berry phase around a small plaquette, m_i from
   finite differences of u_i with the manifold Hamiltonian Hbar plus Roth's remote matrix;
2. one-band manifolds: SSCT in B (tests/test_magnetotransport.py), parabolic band (Lorentz force
   and Jones-Zener terms), 1e-9;
3. a Weyl node with both bands as one manifold (all of its curvature and moment then come from
   the hybridised partner), E || B || z: per-band SSCT in B and the chiral-anomaly closed form
   sigma_zz = tau mu^2 / (6 pi^2 v) + tau v^3 B^2 / (30 pi^2 mu^2) of tests/test_magnetotransport.py;
   E along x (Lorentz force with D, m and Omega): the tau-dependent part equals per-band SSCT.
   The rest differs by a tau-independent Fermi-sea term: O(E B) total derivatives of the field's
   correction to m_i and Omega_i, which vanish over a complete gapped sea (checked in 2D while
   developing: 6e-9) but not on the shell grid, whose inner sphere cuts the sea around the node
   (where the hybridised bands touch: the case that does not carry over);
4. B = 0: plain MSCT, 1e-10 (parabolic band; for a strongly hybridised manifold the identity is
   algebraic, R_i = v~_i + a_i = v_i, and its ingredients E_i, v_i are checked in 1).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import grids, models
from semiclassical_jax.geometry import BandGeometry
from semiclassical_jax.grids import KGrid
from semiclassical_jax.transport._integrands import _hybridised_manifold
from semiclassical_jax.transport._magnetic_msct import field_hessian, hybridised_bands
from test_magnetotransport import (
    M_STAR,
    MU,
    MU_W,
    T_PAR,
    T_W,
    TAU_PAR,
    TAU_W,
    V,
    _parabolic,
    _shell,
    _thermal,
    _weyl,
)

# ----------------------------------------------------------------------------------------------
# the hybridised bands at one point against NumPy oracles

DIRAC = dict(v=1.0, delta=0.4, remote=2.0, coupling=0.6)
CURVATURE = 0.3  # a k-dependent Dirac mass b k^2, so that d^2 H is neither 0 nor proportional to 1
Z = np.diag([1.0, -1.0, 0.0])


def _dirac_numpy(k):
    """H, dH/dkx, dH/dky of models.DiracWithRemoteBand (its docstring) + b k^2 Z, NumPy."""
    v, delta, e_r, g = DIRAC.values()
    hx = np.array([[0, v, g], [v, 0, g], [g, g, 0]], complex)
    hy = np.array([[0, -1j * v, 1j * g], [1j * v, 0, -1j * g], [-1j * g, 1j * g, 0]])
    h = np.diag([delta, -delta, e_r]) + hx * k[0] + hy * k[1] + CURVATURE * np.dot(k, k) * Z
    return h, (hx + 2 * CURVATURE * k[0] * Z, hy + 2 * CURVATURE * k[1] * Z)


def _curved_dirac(p, x, k):
    return models.DiracWithRemoteBand(*DIRAC.values())(x, k) + p * jnp.dot(k, k) * jnp.asarray(Z)


def _hybridised_numpy(k, field):
    """(E_i, u_i in the orbital basis, the operator Hbar on range(P), P) for manifold {0, 1}."""
    h, slopes = _dirac_numpy(k)
    eps, states = np.linalg.eigh(h)
    u = states[:, :2]
    gap = eps[None, :2] - eps[:2, None] + np.eye(2)
    connection = [1j * (u.conj().T @ s @ u) / gap * (1 - np.eye(2)) for s in slopes]
    hbar = np.diag(eps[:2]) + field[0] * connection[0] + field[1] * connection[1]
    energies, eta = np.linalg.eigh(hbar)
    return energies, u @ eta, u @ hbar @ u.conj().T, u @ u.conj().T, (eps, states, slopes)


def _plaquette_curvature(k, field, i, step=1e-4):
    """Omega_i: minus the Berry phase of u_i around a square of side ``step``, over its area."""
    corners = [k + step * np.array(c) for c in ([-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5])]
    states = [_hybridised_numpy(c, field)[1][:, i] for c in corners]
    loop = np.prod([np.vdot(states[a], states[(a + 1) % 4]) for a in range(4)])
    return -np.angle(loop) / step**2


def _moment(k, field, i, step=1e-5):
    """m_i^z = Im <d_x u_i| P (Hbar - E_i) P |d_y u_i> (finite differences, phases aligned to
    u_i(k); the package's sign of Im <d_x u|(H - eps)|d_y u>) + eta^dagger M eta with Roth's
    M_nm = -(i/2) [(v_x)_n2 (v_y)_2m - (v_y)_n2 (v_x)_2m] (1/(eps_2 - eps_n) + 1/(eps_2 - eps_m))/2."""
    energies, u, hbar, projector, (eps, states, slopes) = _hybridised_numpy(k, field)

    def derivative(axis):
        pair = []
        for sign in (1, -1):
            shifted = _hybridised_numpy(k + sign * step * np.eye(2)[axis], field)[1][:, i]
            phase = np.vdot(u[:, i], shifted)
            pair.append(shifted * np.conj(phase) / abs(phase))
        return (pair[0] - pair[1]) / (2 * step)

    operator = projector @ (hbar - energies[i] * np.eye(3)) @ projector
    partner = np.imag(np.vdot(derivative(0), operator @ derivative(1)))
    vx, vy = (states.conj().T @ s @ states for s in slopes)
    roth = np.zeros((2, 2), complex)
    for n in range(2):
        for m in range(2):
            weight = 0.5 * (1 / (eps[2] - eps[n]) + 1 / (eps[2] - eps[m]))
            roth[n, m] = -0.5j * (vx[n, 2] * vy[2, m] - vy[n, 2] * vx[2, m]) * weight
    eta = states[:, :2].conj().T @ u[:, i]
    return partner + np.real(np.vdot(eta, roth @ eta))


@jax.jit
def _hybridised(energies, states, dh, field, k):
    geometry = BandGeometry(energies, states, dh, None, True)
    model = models.FunctionModel(_curved_dirac, CURVATURE, dim=2, n_bands=3)
    second = field_hessian(model, jnp.zeros(2), k, states, field)
    energies, velocity, _, omega, moment, _ = hybridised_bands(geometry, second, (0, 1), field)
    bands = (energies, velocity, omega, moment)
    plain = _hybridised_manifold(geometry, (0, 1), field, None)[:2]
    bare = (geometry.curvature_vector()[:2, 0], geometry.orbital_moment()[:2, 0])
    return bands, plain, bare, second


def _package_bands(k, field):
    """The package's hybridised bands of manifold {0, 1} at k and plain MSCT's (E_i, v_i), from a
    BandGeometry built on the NumPy eigensystem (no eigensolver to compile); checks the
    package's field-contracted Hessian against d_a (E . d H) = 2 b E_a Z."""
    h, slopes = _dirac_numpy(k)
    eps, states = np.linalg.eigh(h)
    dh = np.stack([np.zeros((3, 3))] * 2 + [states.conj().T @ s @ states for s in slopes])
    (energies, velocity, omega, moment), plain, bare, second = _hybridised(
        eps, states, dh, field, k
    )
    expected = [states.conj().T @ (2 * CURVATURE * f * Z) @ states for f in field]
    np.testing.assert_allclose(second, expected, atol=1e-14)
    return energies, velocity, omega[:, 0], moment[:, 0], plain, bare


def test_hybridised_band_curvature_and_moment_against_numpy_oracles():
    """Strong field (the hybridised curvature differs from the bands' by 25 %): Omega_i and m_i
    to 1e-6 (finite-difference oracles); E_i and v_i equal plain MSCT's; at E = 0 the bands'
    Omega_n and m_n (1e-12)."""
    k = np.array([0.3, -0.45])
    zero, field = np.zeros(2), np.array([0.15, -0.1])
    energies, velocity, omega, moment, plain, _ = _package_bands(k, field)
    np.testing.assert_allclose(energies, plain[0], rtol=1e-13)
    np.testing.assert_allclose(velocity, plain[1], rtol=1e-12, atol=1e-14)
    oracle_omega = [_plaquette_curvature(k, field, i) for i in range(2)]
    np.testing.assert_allclose(omega, oracle_omega, rtol=1e-6)
    np.testing.assert_allclose(moment, [_moment(k, field, i) for i in range(2)], rtol=1e-6)
    _, _, omega_0, moment_0, _, (bare_omega, bare_moment) = _package_bands(k, zero)
    np.testing.assert_allclose(omega_0, bare_omega, rtol=1e-12)
    np.testing.assert_allclose(moment_0, bare_moment, rtol=1e-12)
    assert np.min(np.abs(omega - omega_0) / np.abs(omega_0)) > 0.2  # the field matters


# ----------------------------------------------------------------------------------------------
# one-band manifolds: SSCT in B


def test_one_band_manifold_is_ssct_in_b_and_plain_msct_at_zero_b():
    """Parabolic band (one band, so one one-band manifold): SSCT in B at B_z = 0.05 (Hall and
    magnetoresistance; 1e-9), and at B = 0 plain MSCT (1e-10)."""
    model = models.FunctionModel(_parabolic, M_STAR, dim=2, n_bands=1)
    k_fermi = np.sqrt(2 * M_STAR * MU)
    grid = grids.disk(1.6 * k_fermi, 48, 32, breaks=[k_fermi])
    common = dict(mu=MU, temperature=T_PAR, tau=TAU_PAR)
    for field in ([1e-3, 0.0], [0.0, 1e-3]):
        msct = sj.current(model, grid, field=field, theory="msct", magnetic_field=0.05, **common)
        ssct = sj.current(model, grid, field=field, theory="ssct", magnetic_field=0.05, **common)
        assert abs(float(ssct[1 - int(field[1] > 0)])) > 0.1 * abs(float(ssct.max()))  # Hall
        np.testing.assert_allclose(np.asarray(msct), np.asarray(ssct), rtol=1e-9, atol=1e-18)
    strong = dict(field=[0.1, -0.05], theory="msct", **common)
    zero = sj.current(model, grid, magnetic_field=0.0, **strong)
    np.testing.assert_allclose(
        np.asarray(zero), np.asarray(sj.current(model, grid, **strong)), rtol=1e-10
    )


# ----------------------------------------------------------------------------------------------
# Weyl node, both bands one manifold


def _weyl_model(chi=1.0):
    return models.FunctionModel(_weyl, {"chi": chi, "v": V}, dim=3, n_bands=2)


@pytest.fixture(scope="module")
def weyl_current():
    """J at E = e (1, 0, 1), B = B z on the shell grid of tests/test_magnetotransport.py (the
    same compiled SSCT program)."""
    grid = _shell(MU_W / V, 20 * T_W / V, 64, 12, 4)
    model = _weyl_model()

    def current(theory, e, b, tau=TAU_W, grid=grid):
        manifolds = [[0, 1]] if theory == "msct" else None
        value = sj.current(
            model,
            grid,
            field=[e, 0.0, e],
            mu=MU_W,
            temperature=T_W,
            tau=tau,
            theory=theory,
            manifolds=manifolds,
            magnetic_field=[0.0, 0.0, b],
        )
        return np.asarray(value)

    return current, grid


def test_weyl_manifold_in_b(weyl_current):
    """Both bands of a Weyl node as one manifold (one compiled program for all checks). By the
    axial symmetry J_z = sigma_zz e, J_x = sigma_xx e, J_y = sigma_yx e; sigma = (J(e) - J(0)) / e
    at e = 1e-7 (the O(e) error below 1e-8, rounding 1e-9; J(0) is the equilibrium current of
    the shell, E-independent and the same for both theories at E = 0).

    1. sigma_zz: the closed form's B^2 coefficient from (sigma(B) - sigma(0)) / B^2 at B = 0.05
       (5e-3: the B^4 term and the grid's 2e-3, as for SSCT; flipping the sign of D, of m or of
       the anomaly term changes it 5-fold) and per-band SSCT in B (1e-7);
    2. the tau-dependent (Lorentz-force) part of sigma_xx, sigma_yx: per-band SSCT (1e-7 of its
       change between tau and 2 tau);
    3. a grid point on the node: the hybridised bands touch (the bare pair is exactly degenerate
       and both bands are occupied, so only the hybridised-gap check sees it);
    4. |B| = 1: D_i <= 0 on the inner shell is refused, naming magnetic_field, as for SSCT."""
    current, grid = weyl_current
    b, e = 0.05, 1e-7
    equilibrium = current("msct", 0.0, b)
    full, ssct = current("msct", e, b), current("ssct", e, b)
    zero = current("msct", e, 0.0) / e
    sigma_0 = _thermal(lambda e: TAU_W * e**2 / (6 * np.pi**2 * V))
    coefficient = _thermal(lambda e: TAU_W * V**3 / (30 * np.pi**2 * e**2))
    np.testing.assert_allclose(zero[2], sigma_0, rtol=1e-4)
    sigma_b = (full - equilibrium) / e
    np.testing.assert_allclose((sigma_b[2] - zero[2]) / b**2, coefficient, rtol=5e-3)
    np.testing.assert_allclose(sigma_b[2], (ssct - equilibrium)[2] / e, rtol=1e-7)

    slow, ssct_slow = current("msct", e, b, 2 * TAU_W), current("ssct", e, b, 2 * TAU_W)
    change = (ssct_slow - ssct)[:2]
    assert np.all(np.abs(change) > 0.3 * np.abs(ssct - equilibrium)[:2])  # Lorentz terms matter
    np.testing.assert_allclose((slow - full)[:2], change, rtol=1e-7)

    node = KGrid(grid.points.at[0].set(0.0), grid.weights)
    with pytest.raises(NotImplementedError, match="hybridised bands of bands 0 and 1"):
        current("msct", 1e-4, b, grid=node)
    # |B| = 1: D_i = 1 + B . Omega_i = 1 - 1 / (2 k^2) < 0 near the poles of the inner shell
    with pytest.raises(ValueError, match=r"magnetic_field is too strong.*D = 1 \+ B \. Omega"):
        current("msct", 1e-4, 1.0)


# ----------------------------------------------------------------------------------------------
# what does not carry over


def test_textured_model_raises_not_implemented():
    textured = models.FunctionModel(
        lambda p, x, k: (jnp.dot(k, k) / (2 * p) + 0.1 * jnp.sin(x[0]))[None, None].astype(complex),
        M_STAR,
        dim=2,
        n_bands=1,
    )
    grid = grids.disk(1.0, 4, 4)
    common = dict(field=[1e-3, 0.0], mu=MU, temperature=T_PAR, tau=TAU_PAR, magnetic_field=0.1)
    with pytest.raises(NotImplementedError, match="magnetic_field.*uniform model"):
        sj.current(textured, grid, theory="msct", **common)
