"""Orbital magnetisation, the Berry-phase formula (PHYSICS.md section 5): massive Dirac closed
forms at T = 0, a radial quadrature of the closed-form integrand at T > 0, the Streda relation on a
lattice, and a 3D stack."""

import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import grids, models

V, DELTA, CUTOFF = 1.0, 0.3, 30.0
MU = np.array([-0.1, 0.0, 0.2, 0.5])  # three in the gap (|Delta| = 0.3), one in the upper band


def dirac_magnetisation(valley, delta, mu):
    """M_z of one massive Dirac valley on |k| <= CUTOFF at T = 0. In the gap the lower band gives
    int d^2k / (2 pi)^2 [m + (mu - eps_-) Omega_-] = valley Delta mu / (4 pi) (1/|Delta| - 1/eps_K);
    with mu in the upper band its part adds mu int_{k < k_F} Omega_+, and in total
    M_z = valley Delta / (4 pi) (1 - mu / eps_K), eps_K = sqrt(Delta^2 + v^2 K^2)."""
    eps_k = np.sqrt(delta**2 + V**2 * CUTOFF**2)
    in_gap = valley * delta * mu / (4 * np.pi) * (1 / abs(delta) - 1 / eps_k)
    in_band = valley * delta / (4 * np.pi) * (1 - mu / eps_k)
    return np.where(np.abs(mu) < abs(delta), in_gap, in_band)


def dirac_grid():
    k_fermi = np.sqrt(0.5**2 - DELTA**2) / V  # a panel edge at the Fermi momentum of mu = 0.5
    return grids.disk(CUTOFF, 24, 4, breaks=[0.3, k_fermi, 1.0, 3.0, 10.0])


@pytest.mark.parametrize("valley", [1, -1])
def test_massive_dirac_magnetisation_closed_form(valley):
    grid = dirac_grid()
    for delta in (DELTA, -DELTA):
        model = models.MassiveDirac(V, delta, valley=valley)
        magnetisation = sj.orbital_magnetisation(model, grid, mu=MU, temperature=0.0)
        assert magnetisation.shape == (4,)
        expected = dirac_magnetisation(valley, delta, MU)
        np.testing.assert_allclose(magnetisation, expected, rtol=1e-9, atol=1e-15)


def test_finite_temperature_against_radial_quadrature():
    """T > 0: the closed-form integrand (eps = +-sqrt(Delta^2 + v^2 k^2), both moments
    m_z = -Delta v^2 / (2 eps^2), Omega_-+ = +-Delta v^2 / (2 eps^3)) on a fine radial rule."""
    mu, temperature = 0.38, 0.04
    k, w = np.polynomial.legendre.leggauss(4000)
    k, w = 0.5 * CUTOFF * (k + 1), 0.5 * CUTOFF * w
    eps = np.sqrt(DELTA**2 + V**2 * k**2)
    moment = -DELTA * V**2 / (2 * eps**2)
    total = 0.0
    for energy, omega in ((-eps, DELTA * V**2 / (2 * eps**3)), (eps, -DELTA * V**2 / (2 * eps**3))):
        s = (mu - energy) / temperature
        f = 0.5 * (1 + np.tanh(s / 2))
        grand = temperature * np.logaddexp(0.0, s)
        total += np.sum(w * k * (f * moment + grand * omega)) / (2 * np.pi)
    grid = grids.disk(CUTOFF, 40, 4, breaks=[0.1, 0.2, 0.3, 0.4, 0.6, 1.0, 3.0, 10.0])
    value = sj.orbital_magnetisation(
        models.MassiveDirac(V, DELTA), grid, mu=mu, temperature=temperature
    )
    np.testing.assert_allclose(value, total, rtol=1e-8)


def test_streda_relation_on_a_chern_insulator():
    """In a gap at T = 0, dM/dmu = sum_occ int Omega = -sigma_xy (the intrinsic Hall conductivity):
    differences of M at two in-gap levels against hall_conductivity on the same grid."""
    model = models.QWZ(1.2)
    grid = grids.brillouin_zone(model, 24)
    levels = jnp.array([-0.3, 0.4])
    magnetisation = sj.orbital_magnetisation(model, grid, mu=levels, temperature=0.0)
    sigma = sj.hall_conductivity(model, grid, mu=0.0, temperature=0.0)[0, 1]
    slope = (magnetisation[1] - magnetisation[0]) / (levels[1] - levels[0])
    np.testing.assert_allclose(slope, -sigma, rtol=1e-10)
    np.testing.assert_allclose(abs(slope), 1 / (2 * np.pi), rtol=1e-3)  # |C| = 1


def test_three_dimensional_stack_of_dirac_layers():
    """H(k) = Dirac(k_x, k_y), independent of k_z on k_z in [-pi, pi]: M = (0, 0, M_2D)."""
    plane = models.MassiveDirac(V, DELTA)
    model = models.FunctionModel(lambda p, x, k: plane(x[:2], k[:2]), None, dim=3, n_bands=2)
    points = jnp.asarray(dirac_grid().points)
    weights = jnp.asarray(dirac_grid().weights)
    kz, wz = np.polynomial.legendre.leggauss(2)
    stacked = grids.KGrid(
        jnp.concatenate([jnp.column_stack([points, jnp.full(len(points), np.pi * z)]) for z in kz]),
        jnp.concatenate([weights * wz_i * np.pi / (2 * np.pi) for wz_i in wz]),
    )
    value = sj.orbital_magnetisation(model, stacked, mu=0.2, temperature=0.0)
    assert value.shape == (3,)
    np.testing.assert_allclose(
        value, [0.0, 0.0, dirac_magnetisation(1, DELTA, 0.2)], rtol=1e-9, atol=1e-14
    )
