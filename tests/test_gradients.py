"""Gradients of everything a user computes (issue 6, item 1), against finite differences and closed forms.

The oracle is a central difference with one Richardson step,
    D(h) = (f(p + h e_i) - f(p - h e_i)) / 2h,   D = (4 D(h/2) - D(h)) / 3,   h = 1e-3 max(|p_i|, 0.1),
whose truncation error is O(h^4) (~1e-12 relative) and whose rounding error is ~1e-16 |f| / h. The
bar is the issue's 1e-6: every column (parameter) of the autodiff Jacobian must match the finite
difference to 1e-6 of that column's largest entry, and every column must be non-zero (so that a
wrong number cannot pass by being compared with zero). Parameter points are drawn from a fixed
seed. Closed forms where they exist: the Dirac curvature and its mass derivative at zero mass, and
the Kane-Mele spin sectors as two Haldane models.
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import grids, models, textures

RTOL = 1e-6


def finite_difference(function, point, step=1e-3, floor=0.1):
    """Jacobian (outputs..., parameters) of function at point by Richardson-extrapolated central
    differences with h = step * max(|p_i|, floor)."""
    point = np.asarray(point, dtype=float)
    columns = []
    for i in range(point.size):
        h = step * max(abs(point[i]), floor)
        unit = np.zeros_like(point)
        unit[i] = 1.0

        def central(h):
            return (
                np.asarray(function(point + h * unit)) - np.asarray(function(point - h * unit))
            ) / (2 * h)

        columns.append((4 * central(h / 2) - central(h)) / 3)
    return np.stack(columns, axis=-1)


def assert_jacobian_close(autodiff, reference, rtol=RTOL):
    """Column-wise: |autodiff - reference| <= rtol * max |reference column|, columns non-zero."""
    autodiff = np.asarray(autodiff).reshape(-1, np.shape(reference)[-1])
    reference = np.asarray(reference).reshape(-1, np.shape(reference)[-1])
    assert np.all(np.isfinite(autodiff)), autodiff
    scale = np.max(np.abs(reference), axis=0)
    assert np.all(scale > 0), f"a parameter with zero derivative makes a vacuous check: {scale}"
    error = np.max(np.abs(autodiff - reference), axis=0) / scale
    assert np.all(error <= rtol), f"relative error per parameter {error} (scale {scale})"


def jacobian_with_value(function, mode="reverse"):
    """jit(p -> (Jacobian, value)) by jax.jacrev (or jacfwd): one compilation serves the autodiff
    Jacobian and the finite differences (the value comes out of the same forward pass)."""

    def both(p):
        value = function(p)
        return value, value

    return jax.jit((jax.jacrev if mode == "reverse" else jax.jacfwd)(both, has_aux=True))


def check_gradient(compiled, points, floor=0.1):
    """Autodiff Jacobian = finite differences (assert_jacobian_close) at every point, for
    compiled = jacobian_with_value(function, mode)."""

    def value(p):
        return compiled(jnp.asarray(p))[1]

    for point in points:
        assert_jacobian_close(
            compiled(jnp.asarray(point))[0], finite_difference(value, point, floor=floor)
        )


def _points(rng, low, high, count):
    low, high = np.asarray(low, float), np.asarray(high, float)
    return [low + (high - low) * rng.random(low.size) for _ in range(count)]


# --- Berry-curvature integrals: the intrinsic Hall conductivity -----------------------------

HALDANE_GRID = grids.brillouin_zone(models.Haldane(1.0, 0.1, 1.0, 0.1), 16)


def _haldane_hall(p):  # p = (t1, t2, phi, mass, mu, T)
    model = models.Haldane(p[0], p[1], p[2], p[3])
    return sj.hall_conductivity(model, HALDANE_GRID, mu=p[4], temperature=p[5])[0, 1]


REMOTE_GRID = grids.disk(1.0, 6, 8, breaks=[0.05, 0.2, 0.5])


def _remote_band_hall(
    p,
):  # p = (velocity, mass, remote_energy, coupling, mu, T): 3 bands, general eigh
    model = models.DiracWithRemoteBand(p[0], p[1], p[2], p[3])
    return sj.hall_conductivity(model, REMOTE_GRID, mu=p[4], temperature=p[5])[0, 1]


@pytest.mark.parametrize(
    "function, low, high",
    [
        (_haldane_hall, [0.8, 0.05, 0.3, -0.4, 0.7, 0.08], [1.2, 0.2, 2.8, 0.4, 1.5, 0.2]),
        (_remote_band_hall, [0.8, 0.05, 2.0, 0.1, 0.15, 0.02], [1.2, 0.15, 3.0, 0.5, 0.4, 0.05]),
    ],
    ids=["haldane-2x2", "remote-band-3x3"],
)
def test_hall_conductivity_gradient_matches_finite_differences(function, low, high, rng):
    """d sigma_xy / d(model parameters, mu, T) by reverse mode (jax.grad) = finite differences to 1e-6,
    at two random points with mu in the bands (the closed-form 2x2 and the general N = 3 eigensolver)."""
    check_gradient(jacobian_with_value(function), _points(rng, low, high, 2))


# --- MSCT currents, texture parameters included -----------------------------------------------

DIRAC_GRID = grids.disk(1.0, 4, 8, breaks=[0.02, 0.1, 0.3])
POSITION = jnp.array([3.0, 1.0])
WAVEVECTOR = jnp.array([0.4, 0.1])


def _textured_dirac_current(p, manifolds):
    """J at x = POSITION; p = (velocity, mass amplitude, mass offset, tilt, E_x, E_y, mu, T, tau)."""
    mass = textures.CosineModulation(p[1], WAVEVECTOR, offset=p[2])
    model = models.MassiveDirac(p[0], mass, tilt=p[3])
    return sj.current(
        model,
        DIRAC_GRID,
        field=p[4:6],
        mu=p[6],
        temperature=p[7],
        tau=p[8],
        manifolds=manifolds,
        x=POSITION,
    )


@pytest.mark.parametrize(
    "manifolds", [[[0], [1]], [[0, 1]]], ids=["one-band", "two-band-nonadiabatic"]
)
def test_msct_current_gradient_matches_finite_differences(manifolds, rng):
    """dJ / d(velocity, texture amplitude and offset, tilt, field, mu, T, tau) of the MSCT current of a
    textured Dirac valley at x != 0 (forces and x-k curvature from the texture) = finite differences
    to 1e-6, by forward mode (reverse mode for the two-band manifold of an untextured valley is
    tests/test_transport.py's check; benchmarks/gradients.py compares the two modes to 1e-15): two
    random points, plus a point where the local mass vanishes (an exact band touching at k = 0,
    which the grid does not contain): the gradient with respect to the mass there is finite and
    correct."""
    compiled = jacobian_with_value(lambda p: _textured_dirac_current(p, manifolds), "forward")
    low = [0.8, 0.03, 0.05, -0.2, -0.02, -0.02, 0.12, 0.02, 0.5]
    high = [1.2, 0.08, 0.12, 0.2, 0.02, 0.02, 0.3, 0.05, 3.0]
    check_gradient(compiled, _points(rng, low, high, 2))
    # massless at x: J varies with the mass on the scale v k_min ~ 1e-3 of the grid's smallest |k|,
    # so the difference step for the (zero) mass parameters is 1e-5
    massless = np.array([1.0, 0.0, 0.0, 0.1, 0.01, -0.005, 0.2, 0.03, 1.5])
    check_gradient(compiled, [massless], floor=0.01)


def _remote_band_current(p):  # p = (velocity, mass, remote_energy, coupling, E_x, E_y, mu, T, tau)
    model = models.DiracWithRemoteBand(p[0], p[1], p[2], p[3])
    return sj.current(
        model,
        REMOTE_GRID,
        field=p[4:6],
        mu=p[6],
        temperature=p[7],
        tau=p[8],
        manifolds=[[0, 1], [2]],
    )


def test_msct_current_with_remote_band_gradient_matches_finite_differences(rng):
    """The non-Abelian terms (F^{kk} E, F^{xk} E from a remote band; general N = 3 eigensolver) of MSCT with
    manifolds [[0, 1], [2]]: dJ / d(all 9 parameters) by forward mode = finite differences to 1e-6."""
    low = [0.8, 0.05, 2.0, 0.2, -0.02, -0.02, 0.15, 0.02, 0.5]
    high = [1.2, 0.15, 3.0, 0.5, 0.02, 0.02, 0.4, 0.05, 3.0]
    check_gradient(jacobian_with_value(_remote_band_current, "forward"), _points(rng, low, high, 1))


# --- trajectory end points ---------------------------------------------------------------------


def _trajectory_end(p, adjoint=None):
    """(x, k) at t1 of an Abelian wavepacket crossing a mass domain wall in a field;
    p = (velocity, wall amplitude, wall width, E_x, E_y)."""
    mass = textures.DomainWall(p[1], p[2], offset=0.2)
    model = models.MassiveDirac(p[0], mass)
    trajectory = sj.evolve(
        model,
        jnp.array([-1.0, 0.3]),
        jnp.array([0.2, -0.1]),
        t1=6.0,
        field=p[3:5],
        method="abelian",
        band=0,
        rtol=1e-12,
        atol=1e-12,
        adjoint=adjoint,
        adiabaticity_limit=None,
    )
    return jnp.concatenate([trajectory.x[-1], trajectory.k[-1]])


def test_trajectory_end_point_gradient_matches_finite_differences(rng):
    """d(x, k)(t1) / d(velocity, texture amplitude and width, field) of an Abelian wavepacket (Berry
    curvature, force and x-k curvature along the path) = finite differences to 1e-6, with
    rtol = atol = 1e-12 so that step-size changes stay far below the bar. Forward mode
    (diffrax.ForwardMode): reverse mode through the default adjoint compiles for ~20 s and is
    compared with it in benchmarks/gradients.py."""
    points = _points(rng, [0.8, 0.05, 0.5, 0.01, -0.03], [1.2, 0.1, 1.5, 0.03, 0.03], 1)
    check_gradient(
        jacobian_with_value(lambda p: _trajectory_end(p, diffrax.ForwardMode()), "forward"), points
    )


# --- exact degeneracies ------------------------------------------------------------------------


def test_dirac_curvature_mass_derivative_at_zero_mass_is_the_closed_form():
    """At mass 0 (bands touch at k = 0) d Omega_0^{kx ky} / d Delta at k != 0 is finite and equals the
    derivative of Delta v^2 / (2 (v^2 k^2 + Delta^2)^{3/2}), i.e. 1 / (2 v |k|^3), to 1e-10; finite
    differences agree to 1e-6."""
    velocity = 0.8

    def curvature(p):  # p = (mass, kx, ky)
        return sj.berry_curvature(models.MassiveDirac(velocity, p[0]), None, p[1:])[0, 2, 3]

    compiled = jacobian_with_value(curvature)
    for k in ([0.3, 0.0], [0.05, -0.2], [-1.0, 0.7]):
        point = np.array([0.0, *k])
        derivative = float(compiled(jnp.asarray(point))[0][0])
        exact = 1.0 / (2 * velocity * np.linalg.norm(k) ** 3)
        np.testing.assert_allclose(derivative, exact, rtol=1e-10)
        reference = finite_difference(lambda p: compiled(jnp.asarray(p))[1], point)[
            0
        ]  # the k-derivatives vanish
        np.testing.assert_allclose(derivative, reference, rtol=RTOL)


def test_dirac_hall_conductivity_mass_derivative_at_zero_mass():
    """sigma_xy = -sum_i w_i Omega_0(k_i) with mu = 0, T = 0 on a disk grid (no k = 0): at the band
    touching Delta = 0 its mass derivative is finite and equals -sum_i w_i / (2 v |k_i|^3) to 1e-10;
    finite differences agree to 1e-6 (step 1e-5: sigma varies with the mass on the scale
    v k_min ~ 1e-3 of the grid's smallest |k|)."""
    velocity = 1.2
    grid = grids.disk(1.0, 6, 8, breaks=[0.05, 0.2])

    def sigma(p):
        model = models.MassiveDirac(velocity, p[0])
        return sj.hall_conductivity(model, grid, mu=0.0, temperature=0.0)[0, 1]

    k = np.linalg.norm(np.asarray(grid.points), axis=1)
    exact = -np.sum(np.asarray(grid.weights) / (2 * velocity * k**3))
    compiled = jacobian_with_value(sigma)
    np.testing.assert_allclose(float(compiled(jnp.zeros(1))[0][0]), exact, rtol=1e-10)
    check_gradient(compiled, [np.zeros(1)], floor=0.01)


KANE_MELE_GRID = grids.brillouin_zone(models.KaneMele(1.0, 0.06), 12)


def _kane_mele_curvature_square(p):
    """int dk Tr[F^{kx ky} F^{kx ky}] of the lower (spin-degenerate) manifold, p = (t, soc): gauge invariant."""
    model = models.KaneMele(p[0], p[1])

    def trace_square(k):
        f = sj.nonabelian_curvature(model, None, k, [0, 1])[2, 3]
        return jnp.real(jnp.trace(f @ f))

    return KANE_MELE_GRID.integrate(jax.vmap(trace_square)(KANE_MELE_GRID.points))


@jax.jit
def _haldane_pair_curvature_square(p):
    """The same for the two spin sectors as Haldane models (t2 = soc, phi = +-pi/2): no degeneracy."""
    total = 0.0
    for phi in (np.pi / 2, -np.pi / 2):
        model = models.Haldane(p[0], p[1], phi, 0.0)
        omega = jax.vmap(lambda k: sj.berry_curvature(model, None, k)[0, 2, 3])(
            KANE_MELE_GRID.points
        )
        total = total + KANE_MELE_GRID.integrate(omega**2)
    return total


def test_kane_mele_gradient_at_spin_degeneracy():
    """Kane-Mele at mass = rashba = 0: every band is doubly degenerate at every k (the eigensolver's
    basis inside each pair is arbitrary). For (t, soc), which keep the degeneracy, the
    gauge-invariant int Tr F^2 of the lower manifold equals the closed-form oracle (two
    non-degenerate Haldane spin sectors) to 1e-12 and its gradient matches finite differences to
    1e-6 (its value is not zero: each spin sector carries curvature of opposite sign)."""
    point = np.array([1.0, 0.06])
    compiled = jacobian_with_value(_kane_mele_curvature_square)
    np.testing.assert_allclose(
        compiled(jnp.asarray(point))[1], _haldane_pair_curvature_square(point), rtol=1e-12
    )
    check_gradient(compiled, [point])


# Perturbations that SPLIT a degeneracy (semiclassical_jax/_degenerate.py). Kane-Mele in a rotated
# spin frame, H' = R H R^dagger with R a fixed spin rotation (1.1 rad about (0.6, 0, 0.8)): the same
# physics, but the degenerate pairs are no longer the computational s_z states, so no eigensolver
# returns the basis adapted to a mass or Rashba perturbation by accident. Before the degenerate-block
# correction, d Tr F / d rashba here was off by 2-3 % and, on the 12 x 12 Brillouin-zone grid, the
# unrotated d sigma_xy / d mass came out -6e-2 (LAPACK) and -9e-2 (Jacobi) where it is 0.
_PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]])
_SPIN_GENERATOR = np.einsum("i,iab->ab", np.array([0.6, 0.0, 0.8]), _PAULI)
_SPIN_ROTATION = jnp.asarray(
    np.kron(np.eye(2), np.cos(0.55) * np.eye(2) - 1j * np.sin(0.55) * _SPIN_GENERATOR)
)


def _rotated_kane_mele(p, x, k):  # p = (soc, rashba, mass)
    h = models.KaneMele(1.0, p[0], rashba=p[1], mass=p[2])(x, k)
    return _SPIN_ROTATION @ h @ jnp.conj(_SPIN_ROTATION.T)


def _rotated_trace_curvature(p):
    """Tr F^{kx ky} of the lower manifold at one k: gauge invariant, smooth in (soc, rashba, mass)."""
    model = models.FunctionModel(_rotated_kane_mele, p, dim=2, n_bands=4)
    return jnp.real(
        jnp.trace(sj.nonabelian_curvature(model, None, jnp.array([0.37, -0.52]), [0, 1])[2, 3])
    )


_rotated_trace_curvature_compiled = jacobian_with_value(
    _rotated_trace_curvature
)  # compiled on first use


@pytest.mark.parametrize("parameter", ["rashba", "mass"])
def test_kane_mele_gradient_for_degeneracy_splitting_perturbations(parameter):
    """d Tr F / d(rashba, mass) of the spin-degenerate lower manifold (mass = rashba = 0, rotated spin
    frame) must match finite differences to 1e-6 of the mass derivative (the column scale)."""
    point = np.array([0.07, 0.0, 0.0])
    compiled = _rotated_trace_curvature_compiled
    gradient = np.asarray(compiled(jnp.asarray(point))[0])
    reference = finite_difference(lambda p: compiled(jnp.asarray(p))[1], point)
    scale = abs(reference[2])
    assert scale > 1e-4 and np.all(np.isfinite(gradient))
    index = {"rashba": 1, "mass": 2}[parameter]
    assert abs(gradient[index] - reference[index]) <= RTOL * scale, (gradient, reference)


def test_kane_mele_hall_conductivity_is_stationary_under_splitting_perturbations():
    """Time reversal makes sigma_xy of Kane-Mele vanish for every (rashba, mass), so at the
    spin-degenerate point its gradient is exactly 0, in the gap at T = 0 and with thermal / metallic
    occupations (which weight the split bands differently): |d sigma_xy| <= 1e-12, forward and reverse
    mode (without the correction: up to 6e-2)."""

    def sigma(p, mu, temperature):
        model = models.KaneMele(1.0, 0.06, rashba=p[0], mass=p[1])
        return sj.hall_conductivity(model, KANE_MELE_GRID, mu=mu, temperature=temperature)[0, 1]

    forward, reverse = jax.jit(jax.jacfwd(sigma)), jax.jit(jax.grad(sigma))
    for mu, temperature in [(0.0, 0.0), (0.0, 0.05), (-1.0, 0.05)]:
        gradients = [np.asarray(d(jnp.zeros(2), mu, temperature)) for d in (forward, reverse)]
        np.testing.assert_array_less(np.abs(np.concatenate(gradients)), 1e-12)


_LAYER_ROTATION = jnp.asarray(
    np.kron(
        np.cos(0.4) * np.eye(2) - 1j * np.sin(0.4) * np.array([[0.6, 0.8], [0.8, -0.6]]), np.eye(2)
    )
)
HALDANE = dict(t1=1.0, t2=0.15, phi=np.pi / 2)


def _rotated_haldane_pair(p, x, k):
    """Two identical Haldane layers (degenerate in pairs at every k), the second with its mass shifted
    by p[0], in a rotated layer frame."""
    first = models.Haldane(mass=0.2, **HALDANE)(x, k)
    second = models.Haldane(mass=0.2 + p[0], **HALDANE)(x, k)
    zero = jnp.zeros_like(first)
    h = jnp.block([[first, zero], [zero, second]])
    return _LAYER_ROTATION @ h @ jnp.conj(_LAYER_ROTATION.T)


def test_hall_conductivity_gradient_when_a_mass_splits_a_layer_degeneracy():
    """d sigma_xy / d delta of two degenerate Haldane layers when delta shifts the mass of one (the
    derivative splits every degenerate pair; rotated frame, metallic mu and T > 0 so the occupations of
    the split bands differ) equals d sigma_xy / d mass of ONE Haldane layer, a non-degenerate
    computation, taken by finite differences: 1e-6 relative."""
    haldane = models.Haldane(mass=0.2, **HALDANE)
    grid = grids.brillouin_zone(haldane, 12)
    mu, temperature = -0.9, 0.1
    lattice = np.asarray(haldane.lattice)

    def pair(p):
        model = models.FunctionModel(_rotated_haldane_pair, p, dim=2, n_bands=4, lattice=lattice)
        return sj.hall_conductivity(model, grid, mu=mu, temperature=temperature)[0, 1]

    @jax.jit
    def single(mass):
        layer = models.Haldane(mass=mass, **HALDANE)
        return sj.hall_conductivity(layer, grid, mu=mu, temperature=temperature)[0, 1]

    reference = finite_difference(lambda p: single(0.2 + p[0]), np.zeros(1))[0]
    assert abs(reference) > 1e-3
    for derivative in (jax.jacfwd(pair), jax.grad(pair)):
        value = np.asarray(jax.jit(derivative)(jnp.zeros(1)))[0]
        assert abs(value - reference) <= RTOL * abs(reference), (value, reference)
