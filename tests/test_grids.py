"""k-grids: weights against closed-form integrals (the package's int d^dk / (2 pi)^d convention)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import grids, models


def test_brillouin_zone_measure_and_periodic_integrals():
    """Constant -> 1 / A_cell; cos(k.a1) -> 0; exp(cos k.a1) -> I0(1) / A_cell (Bessel), to 1e-12."""
    model = models.Haldane(1.0, 0.1, 0.3, 0.1)
    grid = grids.brillouin_zone(model, 24)
    cell = abs(np.linalg.det(np.asarray(model.lattice)))
    assert grid.points.shape == (24 * 24, 2)
    np.testing.assert_allclose(float(jnp.sum(grid.weights)), 1 / cell, rtol=1e-12)
    a1 = np.asarray(model.lattice)[0]
    np.testing.assert_allclose(float(grid.integrate(jnp.cos(grid.points @ a1))), 0.0, atol=1e-12)
    bessel_i0 = 1.2660658777520082  # I0(1)
    np.testing.assert_allclose(float(grid.integrate(jnp.exp(jnp.cos(grid.points @ a1)))), bessel_i0 / cell, rtol=1e-12)


def test_brillouin_zone_chern_from_curvature():
    """sum_i w_i Omega_i * 2 pi = C: QWZ m = -1 gives the link-method integer to 1e-8."""
    model = models.QWZ(-1.0)
    grid = grids.brillouin_zone(model, 48)
    omega = jax.vmap(sj.berry_curvature, in_axes=(None, None, 0))(model, None, grid.points)[:, 0, 2, 3]
    np.testing.assert_allclose(2 * np.pi * float(grid.integrate(omega)), float(sj.chern_number(model, [0], 48)), atol=1e-8)


def test_disk_gaussian_and_area():
    """Area pi R^2 / (2 pi)^2 and int exp(-k^2) d^2k / (2 pi)^2 = 1 / (4 pi) (R large), 1e-12."""
    grid = grids.disk(3.0, 40, 8)
    np.testing.assert_allclose(float(jnp.sum(grid.weights)), np.pi * 9 / (2 * np.pi) ** 2, rtol=1e-12)
    grid = grids.disk(12.0, 80, 8)
    k2 = jnp.sum(grid.points**2, axis=-1)
    np.testing.assert_allclose(float(grid.integrate(jnp.exp(-k2))), 1 / (4 * np.pi), rtol=1e-12)


def test_disk_massive_dirac_half_quantised_with_cutoff_closed_form():
    """2 pi sum w Omega over |k| <= R equals (sgn Delta / 2)(1 - |Delta| / sqrt(v^2 R^2 + Delta^2)), 1e-10."""
    v, delta, radius = 1.3, 0.2, 5.0
    grid = grids.disk(radius, 120, 4)
    omega = jax.vmap(sj.berry_curvature, in_axes=(None, None, 0))(models.MassiveDirac(v, delta), None, grid.points)
    chern = 2 * np.pi * float(grid.integrate(omega[:, 0, 2, 3]))
    expected = 0.5 * (1 - delta / np.sqrt(v**2 * radius**2 + delta**2))
    np.testing.assert_allclose(chern, expected, rtol=1e-10)


def test_box_polynomial_exactness():
    """int_{[-L, L]^2} kx^2 ky^4 d^2k / (2 pi)^2 = (2 L^3 / 3)(2 L^5 / 5) / (2 pi)^2, exact."""
    half = 1.7
    grid = grids.box(half, 4)
    values = grid.points[:, 0] ** 2 * grid.points[:, 1] ** 4
    expected = (2 * half**3 / 3) * (2 * half**5 / 5) / (2 * np.pi) ** 2
    np.testing.assert_allclose(float(grid.integrate(values)), expected, rtol=1e-12)
    assert grids.box(1.0, 3, dim=3).points.shape == (27, 3)


def test_bad_grid_arguments():
    with pytest.raises(ValueError, match="brillouin_zone needs a lattice model"):
        grids.brillouin_zone(models.MassiveDirac(1.0, 0.1), 8)
    with pytest.raises(ValueError, match="n must be an integer"):
        grids.brillouin_zone(models.QWZ(1.0), 0)
    with pytest.raises(ValueError, match="radius must be a positive"):
        grids.disk(-1.0, 10, 10)
    with pytest.raises(ValueError, match="n_angle must be an integer"):
        grids.disk(1.0, 10, 2.5)
    with pytest.raises(ValueError, match="half_width must be a positive"):
        grids.box(float("nan"), 4)


def test_disk_breaks_composite_rule():
    """Panels at 0.5 and 1.3: the area stays pi R^2 / (2 pi)^2, and a kink at |k| = 1.3
    (int max(0, |k| - 1.3) over the disk, closed form) is integrated exactly by the composite rule."""
    radius, kink = 2.0, 1.3
    grid = grids.disk(radius, 6, 4, breaks=[0.5, kink])
    assert grid.points.shape == (3 * 6 * 4, 2)
    np.testing.assert_allclose(float(jnp.sum(grid.weights)), np.pi * radius**2 / (2 * np.pi) ** 2, rtol=1e-13)
    k = jnp.linalg.norm(grid.points, axis=-1)
    # 2 pi int_kink^R (k - kink) k dk / (2 pi)^2
    exact = ((radius**3 - kink**3) / 3 - kink * (radius**2 - kink**2) / 2) / (2 * np.pi)
    np.testing.assert_allclose(float(grid.integrate(jnp.maximum(k - kink, 0.0))), exact, rtol=1e-13)
    with pytest.raises(ValueError, match="breaks must increase"):
        grids.disk(radius, 6, 4, breaks=[1.0, 0.5])
    with pytest.raises(ValueError, match="breaks must increase"):
        grids.disk(radius, 6, 4, breaks=[2.5])
