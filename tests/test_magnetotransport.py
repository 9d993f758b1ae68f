"""SSCT magnetotransport: ``sj.current(..., theory="ssct", magnetic_field=B)`` (PHYSICS.md s. 5).

Equations implemented (semiclassical_jax/transport/_magnetic.py), charge q = -1, relaxation time
tau, uniform model, E-linear distribution g = f0(eps~) + g1:

    eps~ = eps - m . B,  v~ = d eps~ / dk,  D = 1 + B . Omega (= 1 - q B . Omega),
    D dk/dt = q E + q v~ x B - q^2 (E . B) Omega,
    D dx/dt = v~ - q E x Omega - q (v~ . Omega) B,
    g1 = sum_{n <= 2} (tau L)^n g1_0,   L = -(q / D) (v~ x B) . d_k     (Jones-Zener),
    g1_0 = -tau f0'(eps~) (q / D) (E - q (E . B) Omega) . v~,
    J = q sum_n int d^dk / (2 pi)^d (D dx/dt)_n g_n.

Closed-form limits pinned here:

1. Parabolic band eps = k^2 / (2 m*) in 2D (Omega = m = 0, D = 1). With omega_c = B / m*, the
   Drude model m* dv/dt = q (E + v x B) - m* v / tau gives sigma = sigma_0 / (1 + (omega_c tau)^2)
   x [[1, q omega_c tau], [-q omega_c tau, 1]], sigma_0 = n q^2 tau / m*; the second-order
   Jones-Zener series gives exactly its expansion: sigma_xx = sigma_0 (1 - (omega_c tau)^2),
   sigma_xy = q sigma_0 omega_c tau = -sigma_0 omega_c tau (q = -1, B = B_z > 0), sigma_yx =
   -sigma_xy, and the Hall coefficient sigma_xy / (sigma_xx^2 B) = 1 / (n q) + O((omega_c tau)^2),
   with n = int f0 from the same grid (at any T: int -f0' v_x^2 = n / m* by parts).

2. One Weyl node H = chi v k . sigma (3D), mu > 0 in the upper band, E || B || z. The upper band
   has Omega = s k^ / (2 k^2) (s = +-chi, a convention) and m = eps Omega (the package's moment
   sign, fixed by the exact n = 0 Landau level, tests/test_orbital_moment.py), so with beta = s B
   eps~ = v k - beta v cos(theta) / (2 k), D = 1 + beta cos(theta) / (2 k^2). Everything is
   axially symmetric about B, so (v~ x B) . d_k annihilates g1_0: the Lorentz terms vanish and
       sigma_zz(B) = q^2 tau int d^3k / (2 pi)^3 delta(eps~ - mu) (v~_z - q B v~ . Omega)^2 / D
   exactly. Expanding delta(eps~ - mu), v~ and 1 / D to second order in beta and integrating
   over the Fermi sphere (delta, delta' and delta'' terms; done with sympy):
       sigma_zz = tau mu^2 / (6 pi^2 v) + 0 x B + tau v^3 B^2 / (30 pi^2 mu^2) + O(B^4),
   the same for both chiralities (beta^2 = B^2). The B^2 prefactor with the moment and the
   anomaly term included is 1/30; reference values of the same expansion with one term's sign
   flipped: D -> 1 - B . Omega: 11/60; m -> -m: 11/60; anomaly term -> +: 11/30. At T > 0 the
   theory is linear in f0'(eps~ - mu), so sigma(T) = int de (-f0'(e - mu)) sigma_{T=0}(mu = e):
   the expected numbers below are that 1D integral of the closed forms (numpy, fine trapezoid).

3. The same node with E perpendicular to B (derivation in the test's docstring): the anomaly
   terms drop out, Delta sigma_xx = -tau v^3 B^2 / (60 pi^2 mu^2) - tau^3 v^3 B^2 / (6 pi^2)
   (negative, not zero), sigma_yx = tau^2 B mu v / (6 pi^2) + B v / (24 pi^2 mu); with B at an
   angle the uniaxial (planar Hall) form; d sigma_zz / dB by forward mode through a callable
   B(x); D = 1 + B . Omega <= 0 on the grid is refused.
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import grids, models
from semiclassical_jax.grids import KGrid

Q = -1.0

# ----------------------------------------------------------------------------------------------
# parabolic band


M_STAR, MU, T_PAR, TAU_PAR = 0.5, 1.0, 0.02, 2.0


def _parabolic(p, x, k):
    return (jnp.dot(k, k) / (2 * p))[None, None].astype(complex)


@pytest.fixture(scope="module")
def parabolic():
    model = models.FunctionModel(_parabolic, M_STAR, dim=2, n_bands=1)
    k_fermi = np.sqrt(2 * M_STAR * MU)
    grid = grids.disk(1.6 * k_fermi, 48, 32, breaks=[k_fermi])
    energy = np.sum(np.asarray(grid.points) ** 2, axis=1) / (2 * M_STAR)
    density = float(np.sum(np.asarray(grid.weights) / (1 + np.exp((energy - MU) / T_PAR))))

    def sigma(b):
        """sigma_ab (2, 2) at B_z = b: columns from E along x and y (one compilation)."""
        e = 1e-3
        columns = [
            sj.current(
                model,
                grid,
                field=field,
                mu=MU,
                temperature=T_PAR,
                tau=TAU_PAR,
                theory="ssct",
                magnetic_field=b,
            )
            / e
            for field in ([e, 0.0], [0.0, e])
        ]
        return np.stack([np.asarray(c) for c in columns], axis=1)

    return sigma, density


@pytest.mark.parametrize("b", [0.05, -0.08])
def test_parabolic_band_drude_magnetoresistance_and_hall_second_order(parabolic, b):
    sigma, density = parabolic
    sigma_0 = density * Q**2 * TAU_PAR / M_STAR
    wt = b / M_STAR * TAU_PAR
    s = sigma(b)
    # B = 0: Drude, isotropic
    np.testing.assert_allclose(sigma(0.0), sigma_0 * np.eye(2), rtol=1e-7, atol=1e-12)
    # second order in B (the Jones-Zener series to n = 2 is exactly this polynomial)
    np.testing.assert_allclose(np.diag(s), sigma_0 * (1 - wt**2), rtol=1e-7)
    np.testing.assert_allclose(s[0, 1], Q * sigma_0 * wt, rtol=1e-7)
    np.testing.assert_allclose(s[1, 0], -Q * sigma_0 * wt, rtol=1e-7)


def test_parabolic_band_hall_coefficient_is_one_over_nq(parabolic):
    sigma, density = parabolic
    b = 0.0025  # omega_c tau = 0.01: the ratio deviates by 2 (omega_c tau)^2 = 2e-4
    s = sigma(b)
    np.testing.assert_allclose(s[0, 1] / (s[0, 0] ** 2 * b), 1 / (density * Q), rtol=5e-4)


# ----------------------------------------------------------------------------------------------
# Weyl node: chiral anomaly


PAULI = jnp.array(
    [[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=complex
)  # sigma_x, sigma_y, sigma_z
V, MU_W, T_W, TAU_W = 1.0, 1.0, 0.03, 3.0


def _weyl(p, x, k):
    return p["chi"] * p["v"] * jnp.tensordot(k, PAULI, axes=1)


def _shell(k_fermi, width, n_radial, n_cos, n_phi):
    """A spherical shell grid k in [kF - width, kF + width] (Gauss-Legendre in k and cos theta,
    midpoints in phi): the Fermi surface of the upper band with its thermal window."""
    xr, wr = np.polynomial.legendre.leggauss(n_radial)
    k, wk = k_fermi + width * xr, width * wr * (k_fermi + width * xr) ** 2
    xc, wc = np.polynomial.legendre.leggauss(n_cos)
    phi = 2 * np.pi * (np.arange(n_phi) + 0.5) / n_phi
    kk, cc, pp = np.meshgrid(k, xc, phi, indexing="ij")
    weights = wk[:, None, None] * wc[None, :, None] * np.full(n_phi, 2 * np.pi / n_phi)
    sin = np.sqrt(1 - cc**2)
    points = np.stack([kk * sin * np.cos(pp), kk * sin * np.sin(pp), kk * cc], axis=-1)
    return KGrid(
        jnp.asarray(points.reshape(-1, 3)), jnp.asarray(weights.reshape(-1) / (2 * np.pi) ** 3)
    )


def _thermal(function):
    """int de (-f0'(e - mu)) function(e) at T_W (numpy trapezoid, independent of the package)."""
    e = np.linspace(MU_W - 40 * T_W, MU_W + 40 * T_W, 200001)
    slope = 1 / (4 * T_W * np.cosh((e - MU_W) / (2 * T_W)) ** 2)
    return np.trapezoid(slope * function(e), e)


@functools.cache
def _weyl_grid(rotation=0.0):
    """The shell grid of every Weyl test, rotated by ``rotation`` about the y axis (the same
    shape, so the same compiled program)."""
    grid = _shell(MU_W / V, 20 * T_W / V, 64, 12, 4)
    c, s = np.cos(rotation), np.sin(rotation)
    turn = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return KGrid(jnp.asarray(np.asarray(grid.points) @ turn.T), grid.weights)


def _weyl_model(chi):
    return models.FunctionModel(_weyl, {"chi": chi, "v": V}, dim=3, n_bands=2)


@functools.cache
def _weyl_current(chi, magnetic, field, tau=TAU_W, rotation=0.0):
    """J (3,) of one node of chirality ``chi`` on the shell grid in B = ``magnetic`` and E =
    ``field`` (tuples): every call here shares one compiled program (and repeats are cached)."""
    j = sj.current(
        _weyl_model(chi),
        _weyl_grid(rotation),
        field=list(field),
        mu=MU_W,
        temperature=T_W,
        tau=tau,
        theory="ssct",
        magnetic_field=list(magnetic),
    )
    return np.asarray(j)


def _weyl_sigma(chi, magnetic, direction, tau=TAU_W, rotation=0.0):
    """dJ/dE along the unit vector ``direction`` (3,) by central differences in E (step 1e-4;
    J is linear in E up to the E x Omega term times g1, which is O(E^2))."""
    e = 1e-4
    plus, minus = (tuple(float(x) for x in sign * e * np.asarray(direction)) for sign in (1, -1))
    return (
        _weyl_current(chi, magnetic, plus, tau, rotation)
        - _weyl_current(chi, magnetic, minus, tau, rotation)
    ) / (2 * e)


@pytest.fixture(scope="module")
def weyl_sigma_zz():
    def sigma_zz(chi, b):
        j = _weyl_sigma(chi, (0.0, 0.0, b), (0.0, 0.0, 1.0))
        return j[2], j[:2]

    return sigma_zz


def test_weyl_chiral_anomaly_longitudinal_magnetoconductivity(weyl_sigma_zz):
    sigma_0 = _thermal(lambda e: TAU_W * e**2 / (6 * np.pi**2 * V))
    coefficient = _thermal(lambda e: TAU_W * V**3 / (30 * np.pi**2 * e**2))
    zero, transverse = weyl_sigma_zz(1.0, 0.0)
    np.testing.assert_allclose(zero, sigma_0, rtol=1e-4)
    b = 0.1
    values = {}
    for chi in (1.0, -1.0):
        for field in (b, b / 2):
            value, transverse = weyl_sigma_zz(chi, field)
            np.testing.assert_allclose(transverse, 0.0, atol=1e-12)  # J_x, J_y for E || B
            values[chi, field] = (value - zero) / field**2
        # Richardson: the B^4 term out of (sigma(B) - sigma_0) / B^2
        extrapolated = (4 * values[chi, b / 2] - values[chi, b]) / 3
        np.testing.assert_allclose(extrapolated, coefficient, rtol=2e-3)
    # no term linear in B for either chirality (would show as a difference between them)
    np.testing.assert_allclose(values[1.0, b], values[-1.0, b], rtol=1e-6)


TAU_PERP = 0.4  # the Berry (tau) and Lorentz (tau^3) parts of Delta sigma_xx are 40 / 60 %


def _sigma_perp(tau, b):
    """(sigma_xx, sigma_yx) of the chi = +1 node in B = b z from E = 1e-4 x: one call (with B
    along z the shell's equilibrium current is along z and J_x, J_y are linear in E_x)."""
    e = 1e-4
    j = _weyl_current(1.0, (0.0, 0.0, b), (e, 0.0, 0.0), tau)
    return j[0] / e, j[1] / e


def test_weyl_transverse_magnetoconductivity_has_no_anomaly_part():
    """E perpendicular to B (E || x, B || z) on one Weyl node: the (E . B) Omega term vanishes
    and -q (v~ . Omega) B is along B, so the chiral-anomaly terms drop out of J . E, and
    Delta sigma_xx is NOT zero (PHYSICS.md s. 5 / issue 18 say "zero"): it is the closed form
    below, built without them, negative, and the same for both chiralities.

    Derivation (the module docstring's node; q = -1, beta = s B, c = cos theta, rho = k sin theta).
    eps~ and D are axially symmetric about B, so (v~ x B) . d_k = -B (v~_rho / rho) d_phi and
    tau L = tau w d_phi with w = q B v~_rho / (D rho); g1_0 = A cos phi, A = -tau q f0'(eps~) E
    v~_rho / D. To second order g1 = A [(1 - (tau w)^2) cos phi - tau w sin phi], hence
        sigma_xx = tau int d^3k/(2 pi)^3 (-f0') v~_rho^2 cos^2 phi (1 - tau^2 w^2) / D,
        sigma_yx = tau^2 B int (-f0') v~_rho^3 sin^2 phi / (D^2 rho) + int f0(eps~) Omega_z
    (the last from -q E x Omega, the only E x Omega part along y). With v~_rho = v sin theta
    (1 + beta c / k^2) and, at T = 0, delta(eps~ - mu) = delta(k - k*) / (v D), k* = (mu +
    sqrt(mu^2 + 2 beta c v^2)) / (2 v):
        Berry part: tau v / (8 pi^2) int dc k*^2 (1 - c^2) (1 + beta c / k*^2)^2 / D(k*)^2
                    = tau mu^2 / (6 pi^2 v) - tau v^3 B^2 / (60 pi^2 mu^2) + O(B^4)   (sympy),
        Lorentz part: -tau^3 B^2 int delta v^4 sin^2 cos^2 phi / k^2 = -tau^3 v^3 B^2 / (6 pi^2)
                    (= -sigma_0 (omega_c tau)^2 with omega_c = v^2 B / mu),
        sigma_yx = tau^2 B mu v / (6 pi^2) + B v / (24 pi^2 mu) + O(B^3)
    (the last term: int f0(eps~) Omega_z = s / (8 pi^2) int dc c k*(c), the moment tilting the
    Fermi sea). The first-order Lorentz term (sin phi) drops out of J_x and the Berry
    corrections to the Lorentz terms are O(B^3). Each integrand is invariant under (c, beta) ->
    (-c, -beta), so only even powers of beta survive: the same for both chiralities (the E || B
    test checks the chirality independence on this grid).
    T > 0: L never differentiates f0' ((v~ x B) . d_k eps~ = 0), so every term is linear in
    f0'(eps~ - mu) and sigma(T) = int de (-f0'(e - mu)) sigma_{T=0}(mu = e) (numpy, _thermal).
    Richardson in B (b, b/2) removes the B^4 (sigma_yx / B: B^2) terms; tolerances 2e-3 and 1e-4
    (the E || B test's grid; measured 3e-4 and 7e-6). At tau = 0.4 the Berry and Lorentz parts of
    Delta sigma_xx are 40 / 60 % and the Hall and moment parts of sigma_yx 39 / 61 %, so each
    part is pinned. B = 0: sigma_xx = sigma_zz of the E || B test times tau / tau_W (on this
    grid the angular rule is exact for the B = 0 integrand: 3e-11).
    """
    b, tau = 0.1, TAU_PERP
    zero = _weyl_sigma(1.0, (0.0, 0.0, 0.0), (0.0, 0.0, 1.0))[2] * tau / TAU_W
    xx, yx = {}, {}
    for field in (b, b / 2):
        sigma = _sigma_perp(tau, field)
        xx[field] = (sigma[0] - zero) / field**2
        yx[field] = sigma[1] / field
    berry = _thermal(lambda e: -tau * V**3 / (60 * np.pi**2 * e**2))
    lorentz = -(tau**3) * V**3 / (6 * np.pi**2) * _thermal(np.ones_like)
    np.testing.assert_allclose((4 * xx[b / 2] - xx[b]) / 3, berry + lorentz, rtol=2e-3)
    assert berry + lorentz < 0  # negative transverse magnetoconductance: not zero
    hall = _thermal(lambda e: tau**2 * e * V / (6 * np.pi**2) + V / (24 * np.pi**2 * e))
    np.testing.assert_allclose((4 * yx[b / 2] - yx[b]) / 3, hall, rtol=1e-4)


def test_weyl_planar_hall_angle_dependence():
    """B = b (cos theta, 0, sin theta) at angle theta to E || x: for an isotropic node the
    conductivity in B's frame is uniaxial plus Hall, so J = sigma_xx sin(theta) R x +
    sigma_yx sin(theta) y + sigma_zz cos(theta) R z (R: the rotation taking z to B), i.e.
        J_x = sigma_perp + (sigma_par - sigma_perp) cos^2 theta  (the anomaly part only in
              sigma_par, so only with cos^2 theta: nothing of it at theta = 90 degrees),
        J_z = (sigma_par - sigma_perp) sin theta cos theta  (planar Hall),  J_y = sigma_yx sin theta,
    per unit E, with sigma_par, sigma_perp, sigma_yx those of B || z (pinned above against
    closed forms). The shell grid is rotated with B (a 4-point phi rule aliases the B-tilted
    integrand's 4th harmonics), so this holds to rounding (1e-9 of the anisotropy): it pins the
    package's vector algebra (E . B, v~ x B, E x Omega, (v~ . Omega) B) for B off the z axis."""
    b, theta = 0.1, 0.6
    par = _weyl_sigma(1.0, (0.0, 0.0, b), (0.0, 0.0, 1.0))[2]
    perp, hall = _sigma_perp(TAU_W, b)
    rotation = np.pi / 2 - theta  # about y: z -> (cos theta, 0, sin theta)
    tilted = tuple(float(x) for x in b * np.array([np.cos(theta), 0.0, np.sin(theta)]))
    j = _weyl_sigma(1.0, tilted, (1.0, 0.0, 0.0), rotation=rotation)
    anisotropy = par - perp
    assert anisotropy > 1e-3  # the B^2 anisotropy (sigma_0 = 0.05 at B = 0) is resolved
    expected = [
        perp + anisotropy * np.cos(theta) ** 2,
        hall * np.sin(theta),
        anisotropy * np.sin(theta) * np.cos(theta),
    ]
    np.testing.assert_allclose(j, expected, rtol=0, atol=1e-9 * abs(anisotropy) + 1e-13)


class _FieldAlongZ(eqx.Module):
    """B(x) = (0, 0, b + slope . x): a callable field whose value is a traced leaf."""

    b: jax.Array
    slope: jax.Array

    def __call__(self, x):
        return jnp.array([0.0, 0.0, 1.0]) * (self.b + self.slope @ x)


def test_weyl_callable_field_and_its_gradient():
    """A callable B(x) (evaluated at the current's position x) and d sigma_zz / dB by jax.jacfwd
    through sj.current (E || B, the module docstring's node), at x0 with B(x0) = 0.02 z:
    - d sigma_zz / dB = the closed form's derivative d/dB [tau v^3 B^2 / (30 pi^2 mu^2)] =
      2 tau v^3 B / (30 pi^2 mu^2), thermally averaged (the B^3 term is 5e-4 of it at this B;
      tolerance 2e-3); B(x) evaluated at the wrong point (B = 0.01) would halve it;
    - the forward-mode derivative of J_z(E = +1e-4 z) equals central differences of the array-B
      current (step 1e-3, O(h^2) ~ 1e-10 relative; tolerance 1e-6), and its value equals theirs
      at B(x0) (O(h^2); tolerance 1e-7: B(x = 0) would differ by 50 %, through the shell's
      equilibrium current along B)."""
    x0, b_eff, h, e = np.array([0.5, 0.0, 0.0]), 0.02, 1e-3, 1e-4
    slope = jnp.array([0.02, 0.0, 0.0])
    b0 = b_eff - float(slope @ x0)

    def currents(b):
        field = _FieldAlongZ(b, slope)
        j = jnp.stack(
            [
                sj.current(
                    _weyl_model(1.0),
                    _weyl_grid(),
                    field=[0.0, 0.0, f],
                    mu=MU_W,
                    temperature=T_W,
                    tau=TAU_W,
                    theory="ssct",
                    magnetic_field=field,
                    x=x0,
                )[2]
                for f in (e, -e)
            ]
        )
        return j, j

    slopes, values = jax.jacfwd(currents, has_aux=True)(jnp.asarray(b0))  # J_z(+-E), d/dB
    closed = _thermal(lambda en: 2 * TAU_W * V**3 * b_eff / (30 * np.pi**2 * en**2))
    np.testing.assert_allclose((slopes[0] - slopes[1]) / (2 * e), closed, rtol=2e-3)
    array = {b: _weyl_current(1.0, (0.0, 0.0, b), (0.0, 0.0, e))[2] for b in (b_eff - h, b_eff + h)}
    np.testing.assert_allclose(
        slopes[0], (array[b_eff + h] - array[b_eff - h]) / (2 * h), rtol=1e-6
    )
    np.testing.assert_allclose(values[0], (array[b_eff + h] + array[b_eff - h]) / 2, rtol=1e-7)


def test_field_too_strong_for_the_grid_is_refused():
    """The massive Dirac valley of the tests below (Delta = 0.3, Omega_z = -+Delta / (2 r^3) in
    the upper / lower band, -5.6 / +5.6 at k = 0) in |B_z| = 0.5: D = 1 + B Omega < 0 near k = 0
    in the upper band for B_z > 0, in the lower band for B_z < 0 (B . Omega <= -1: the magnetic
    length is shorter than the curvature's scale). The current would divide by D <= 0 and weigh
    states by a negative phase-space density: ValueError naming magnetic_field, D and the band."""
    model = models.MassiveDirac(1.0, 0.3)
    grid = grids.disk(4.0, 24, 16, breaks=[0.6])
    common = dict(field=[1e-3, 2e-3], mu=0.6, temperature=0.05, tau=2.0, theory="ssct")
    for b, band in ((0.5, 1), (-0.5, 0)):
        with pytest.raises(
            ValueError, match=rf"magnetic_field is too strong.*D = 1 \+ B \. Omega.*band {band}"
        ):
            sj.current(model, grid, magnetic_field=b, **common)


# ----------------------------------------------------------------------------------------------
# B = 0: the plain SSCT current (anomalous velocity, Drude), an independently tested code path


def test_zero_field_equals_plain_ssct_with_berry_curvature():
    """At B = 0 the magnetic integrand must reduce to SSCT (Eqs. 46-47): a massive Dirac band
    with mu in the band has both the Drude and the anomalous (-q E x Omega) current."""
    model = models.MassiveDirac(1.0, 0.3)
    grid = grids.disk(4.0, 24, 16, breaks=[0.6])
    common = dict(field=[1e-3, 2e-3], mu=0.6, temperature=0.05, tau=2.0, theory="ssct")
    plain = np.asarray(sj.current(model, grid, **common))
    magnetic = np.asarray(sj.current(model, grid, magnetic_field=0.0, **common))
    assert abs(plain[1] - 2 * plain[0]) > 1e-3 * abs(plain[0])  # a Hall part is present
    np.testing.assert_allclose(magnetic, plain, rtol=1e-10, atol=1e-16)


def _dirac_in_field(points, b, field, mu, temperature, tau, delta):
    """The per-point integrand of the module docstring's equations for the massive Dirac valley
    (v = 1, valley +1) in B_z = b, from its closed-form band quantities (numpy), summed with the
    grid weights by the caller: both bands share m_z = -Delta / (2 r^2), Omega_z = -+Delta /
    (2 r^3) (upper, lower), r = sqrt(Delta^2 + k^2). Everything is isotropic, so with v~ =
    eps~'(k) k^ the Lorentz operator is tau L = tau w d_phi, w = q b eps~' / (D k), and the
    second-order Jones-Zener series of g1_0 = a cos phi + c sin phi is exactly
    (1 - (tau w)^2) (a cos + c sin) + tau w (c cos - a sin)."""
    kx, ky = points[:, 0], points[:, 1]
    k, phi = np.hypot(kx, ky), np.arctan2(ky, kx)
    r = np.sqrt(delta**2 + k**2)
    total = np.zeros((points.shape[0], 2))
    for sign in (1.0, -1.0):  # upper, lower band
        moment, omega = -delta / (2 * r**2), -sign * delta / (2 * r**3)
        eps = sign * r - moment * b
        slope = sign * k / r - delta * b * k / r**4  # d eps~ / dk
        factor = 1 + b * omega
        f0 = 1 / (1 + np.exp((eps - mu) / temperature))
        df0 = -f0 * (1 - f0) / temperature
        a, c = (-tau * df0 * Q * slope * e / factor for e in field)
        w = tau * Q * b * slope / (factor * k)
        cos, sin = np.cos(phi), np.sin(phi)
        g1 = (1 - w**2) * (a * cos + c * sin) + w * (c * cos - a * sin)
        rate = np.stack([slope * cos, slope * sin], axis=1)
        rate = rate - Q * omega[:, None] * np.array([field[1], -field[0]])[None, :]
        total += Q * (f0 + g1)[:, None] * rate
    return total


def test_massive_dirac_in_b_is_the_closed_form_integrand_on_the_grid():
    """A massive Dirac valley (2D: moment, curvature and D all nonzero and isotropic) in B_z:
    sj.current equals the grid sum of the closed-form integrand (:func:`_dirac_in_field`) to
    1e-10, at two fields of either sign (B Omega up to 0.44). The same quadrature on both sides
    (the package sums the series by parts; on this isotropic model the total derivatives it
    moves are angular ones, which the uniform angular rule integrates exactly), so this pins the
    whole assembly (eps~ by the sum-over-states moment, v~ by
    autodiff, 1 / D in g1_0 and in L, both Jones-Zener orders, f0(eps~) and -q E x Omega) at
    every order in B, not only its O(B^2) part (1 / D in L enters the Weyl tests at O(B^3))."""
    model = models.MassiveDirac(1.0, 0.3)
    grid = grids.disk(4.0, 24, 16, breaks=[0.6])
    points, weights = np.asarray(grid.points), np.asarray(grid.weights)
    common = dict(field=[1e-3, 2e-3], mu=0.6, temperature=0.05, tau=2.0)
    for b in (0.05, -0.08):
        package = np.asarray(sj.current(model, grid, theory="ssct", magnetic_field=b, **common))
        closed = weights @ _dirac_in_field(points, b, delta=0.3, **common)
        np.testing.assert_allclose(package, closed, rtol=1e-10)
        assert abs(package[1]) > 0.1 * abs(package[0])  # a Hall part is present


# ----------------------------------------------------------------------------------------------
# argument errors


def test_magnetic_field_needs_ssct_or_msct_and_the_right_shape(parabolic):
    model = models.FunctionModel(_parabolic, M_STAR, dim=2, n_bands=1)
    grid = grids.disk(1.0, 4, 4)
    common = dict(field=[1e-3, 0.0], mu=MU, temperature=T_PAR, tau=TAU_PAR)
    with pytest.raises(NotImplementedError, match="magnetic_field.*nonabelian_hall"):
        sj.current(model, grid, magnetic_field=0.1, theory="nonabelian_hall", **common)
    with pytest.raises(ValueError, match="magnetic_field must be a scalar B_z"):
        sj.current(model, grid, theory="ssct", magnetic_field=[0.1, 0.2], **common)
    # a textured model (the theory here is for uniform models): refused by name, while tracing
    textured = models.MassiveDirac(1.0, lambda x: 0.3 + 0.1 * jnp.cos(x[0]))
    with pytest.raises(ValueError, match="magnetic_field: the SSCT current in B needs a uniform"):
        sj.current(textured, grid, theory="ssct", magnetic_field=0.1, **common)
    # T = 0: f0' is a delta function, which no k-grid sum resolves (the Jones-Zener terms act
    # on g1 ~ f0'(eps~)); the message says to use a small T and why
    zero_t = dict(common, temperature=0.0)
    with pytest.raises(ValueError, match=r"temperature must be > 0.*delta function.*small T"):
        sj.current(model, grid, theory="ssct", magnetic_field=0.1, **zero_t)


def test_evaluation_by_parts_equals_the_direct_series_after_the_k_sum():
    """The package sums the Jones-Zener series by parts (one nested derivative); the direct series
    (tests/magnetic_reference.py: L applied to g1_0 by nested derivatives, point by point) must
    give the same current after a periodic k-sum: QWZ (m = -1.2, anisotropic bands with
    curvature and moment) on a 40^2 Brillouin-zone grid, mu in the upper band, T = 0.15, B_z of
    either sign, E along a general direction; 1e-9 of the largest component. The integrands
    differ point by point by total k-derivatives (by up to 1.6e-4 of the largest value here)."""
    from magnetic_reference import direct_series_current

    model = models.QWZ(-1.2)
    grid = grids.brillouin_zone(model, 40)
    field = jnp.array([1e-3, 2e-3])
    levels = jnp.array([1.2]), jnp.array([0.15])
    points, weights = np.asarray(grid.points), np.asarray(grid.weights)
    for b in (0.03, -0.05):
        package = np.asarray(
            sj.current(model, grid, field=field, mu=1.2, temperature=0.15, tau=3.0,
                       theory="ssct", magnetic_field=b)
        )  # fmt: skip
        direct = jax.jit(jax.vmap(
            lambda k: direct_series_current(model, k, field, jnp.array([b]), *levels, 3.0)[0]
        ))(jnp.asarray(points))  # fmt: skip
        reference = weights @ np.asarray(direct)
        assert abs(reference[1]) > 0.05 * np.max(np.abs(reference))  # a Hall part is present
        np.testing.assert_allclose(package, reference, atol=1e-9 * np.max(np.abs(reference)))
