"""k-grids: weights against closed-form integrals (the package's int d^dk / (2 pi)^d convention)."""

import functools

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
    np.testing.assert_allclose(
        float(grid.integrate(jnp.exp(jnp.cos(grid.points @ a1)))), bessel_i0 / cell, rtol=1e-12
    )


def test_brillouin_zone_chern_from_curvature():
    """sum_i w_i Omega_i * 2 pi = C: QWZ m = -1 gives the link-method integer to 1e-8."""
    model = models.QWZ(-1.0)
    grid = grids.brillouin_zone(model, 48)
    omega = jax.vmap(sj.berry_curvature, in_axes=(None, None, 0))(model, None, grid.points)[
        :, 0, 2, 3
    ]
    np.testing.assert_allclose(
        2 * np.pi * float(grid.integrate(omega)), float(sj.chern_number(model, [0], 48)), atol=1e-8
    )


def test_map_points_chern_and_equals_vmap_in_value_and_gradient():
    """Chunked evaluation (chunks of 50 over 576 points: 11 whole chunks and a remainder of 26):
    the QWZ Chern number from the curvature sum to 1e-6, values equal to the plain vmap's to 1e-13,
    and the reverse-mode derivative w.r.t. m equal to a central difference to 1e-6."""
    grid = grids.brillouin_zone(models.QWZ(-1.0), 24)

    @functools.partial(jax.jit, static_argnums=1)
    def omega(m, chunk_size):
        curvature = lambda k: sj.berry_curvature(models.QWZ(m), None, k)[0, 2, 3]  # noqa: E731
        if chunk_size is None:
            return jax.vmap(curvature)(grid.points)
        return grids.map_points(curvature, grid.points, chunk_size=chunk_size)

    chunked, plain = omega(-1.0, 50), omega(-1.0, None)
    assert chunked.shape == (24 * 24,)
    np.testing.assert_allclose(2 * np.pi * float(grid.integrate(chunked)), 1.0, atol=1e-6)
    np.testing.assert_allclose(chunked, plain, rtol=0, atol=1e-13 * float(jnp.max(jnp.abs(plain))))
    # d/dm of a non-topological moment (the Chern integral's derivative is 0)
    moment = lambda m, c: grid.integrate(omega(m, c) * jnp.cos(grid.points[:, 0]))  # noqa: E731
    reverse = jax.grad(moment)(-1.0, 50)
    step = 1e-4
    central = (moment(-1.0 + step, 50) - moment(-1.0 - step, 50)) / (2 * step)  # O(step^2) ~ 1e-9
    assert abs(float(central)) > 1e-2
    np.testing.assert_allclose(float(reverse), float(central), rtol=1e-6)


def test_map_points_pytree_points_and_bad_input():
    model = models.MassiveDirac(1.0, sj.textures.DomainWall(0.3, 2.0))
    rng = np.random.default_rng(0)
    xs, ks = jnp.asarray(rng.normal(size=(37, 2))), jnp.asarray(rng.normal(size=(37, 2)))
    fn = lambda p: sj.berry_curvature(model, p[0], p[1])[0]  # noqa: E731 - all four blocks
    chunked = jax.jit(lambda p: grids.map_points(fn, p, chunk_size=8))((xs, ks))
    np.testing.assert_allclose(chunked, jax.jit(jax.vmap(fn))((xs, ks)), rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        grids.map_points(fn, (xs, ks), chunk_size=0)
    with pytest.raises(ValueError, match="points must share a non-empty leading axis"):
        grids.map_points(fn, (xs, ks[:5]))
    with pytest.raises(ValueError, match="points must hold at least one array"):
        grids.map_points(fn, ())


def test_disk_gaussian_and_area():
    """Area pi R^2 / (2 pi)^2 and int exp(-k^2) d^2k / (2 pi)^2 = 1 / (4 pi) (R large), 1e-12."""
    grid = grids.disk(3.0, 40, 8)
    np.testing.assert_allclose(
        float(jnp.sum(grid.weights)), np.pi * 9 / (2 * np.pi) ** 2, rtol=1e-12
    )
    grid = grids.disk(12.0, 80, 8)
    k2 = jnp.sum(grid.points**2, axis=-1)
    np.testing.assert_allclose(float(grid.integrate(jnp.exp(-k2))), 1 / (4 * np.pi), rtol=1e-12)


def test_disk_massive_dirac_half_quantised_with_cutoff_closed_form():
    """2 pi sum w Omega over |k| <= R equals (sgn Delta / 2)(1 - |Delta| / sqrt(v^2 R^2 + Delta^2)), 1e-10."""
    v, delta, radius = 1.3, 0.2, 5.0
    grid = grids.disk(radius, 120, 4)
    omega = jax.vmap(sj.berry_curvature, in_axes=(None, None, 0))(
        models.MassiveDirac(v, delta), None, grid.points
    )
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
    np.testing.assert_allclose(
        float(jnp.sum(grid.weights)), np.pi * radius**2 / (2 * np.pi) ** 2, rtol=1e-13
    )
    k = jnp.linalg.norm(grid.points, axis=-1)
    # 2 pi int_kink^R (k - kink) k dk / (2 pi)^2
    exact = ((radius**3 - kink**3) / 3 - kink * (radius**2 - kink**2) / 2) / (2 * np.pi)
    np.testing.assert_allclose(float(grid.integrate(jnp.maximum(k - kink, 0.0))), exact, rtol=1e-13)
    with pytest.raises(ValueError, match="breaks must increase"):
        grids.disk(radius, 6, 4, breaks=[1.0, 0.5])
    with pytest.raises(ValueError, match="breaks must increase"):
        grids.disk(radius, 6, 4, breaks=[2.5])
