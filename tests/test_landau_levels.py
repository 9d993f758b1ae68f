"""Landau levels from Onsager quantisation with the Berry phase and the orbital moment (PHYSICS.md
section 5): massive Dirac closed forms, an exact quantum calculation for the three-band model, the
derivative in B, and the errors.

Compilations are the cost here (~5-10 s each on 2 busy cores): one massive Dirac model with the
valley as a parameter serves both valleys, signs and bands (the band index is traced), one
three-band model, one gradient.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_orbital_moment import landau_levels_exact

import semiclassical_jax as sj
from semiclassical_jax import models

V = 1.0
SX = np.array([[0, 1], [1, 0]], complex)
SY = np.array([[0, -1j], [1j, 0]])
SZ = np.diag([1.0, -1.0]).astype(complex)


def _dirac_hamiltonian(p, x, k):
    """models.MassiveDirac with the valley as a (traced) parameter."""
    v, delta, valley = p
    k_plus, k_minus = v * (valley * k[0] + 1j * k[1]), v * (valley * k[0] - 1j * k[1])
    return jnp.array([[delta + 0j, k_minus], [k_plus, -delta + 0j]])


def dirac(delta, valley):
    params = tuple(jnp.asarray(float(p)) for p in (V, delta, valley))
    return models.FunctionModel(_dirac_hamiltonian, params, dim=2, n_bands=2)


def dirac_levels_numerical(model, band, field):
    return np.asarray(sj.landau_levels(model, band, field, 4, n_angles=16, n_radial=12))


def dirac_levels(delta, valley, field, n_max=4):
    """Exact massive Dirac Landau levels (conduction, valence), n = 0..n_max of each band's own
    semiclassical ladder: E_n = +-sqrt(Delta^2 + 2 n v^2 |B|) for n >= 1, and the single n = 0
    level at +|Delta| when valley sign(Delta) sign(B_z) = -1 (valley +1, Delta > 0, B_z < 0, i.e.
    q B > 0: the zero mode lives on the A sublattice, energy +Delta), at -|Delta| otherwise (checked
    against the ladder-operator calculation in test_dirac_zero_mode_from_the_exact_spectrum)."""
    ladder = np.sqrt(delta**2 + 2 * np.arange(n_max + 2) * V**2 * abs(field))
    zero_up = valley * np.sign(delta) * np.sign(field) < 0
    conduction = ladder[:-1] if zero_up else ladder[1:]
    valence = -(ladder[1:] if zero_up else ladder[:-1])
    return conduction, valence


@pytest.mark.parametrize("valley", [1, -1])
def test_dirac_zero_mode_from_the_exact_spectrum(valley):
    """The closed form's n = 0 assignment against an independent quantum calculation."""
    for delta in (0.5, -0.5):
        for field in (0.01, -0.01):
            h0, hx, hy = delta * SZ, valley * V * SX, V * SY
            exact = landau_levels_exact(h0, hx, hy, -field, n_osc=40)
            conduction, valence = dirac_levels(delta, valley, field, n_max=3)
            above = np.sort(exact[exact > 0])[:4]
            below = np.sort(exact[exact < 0])[::-1][:4]
            np.testing.assert_allclose(above, conduction, atol=1e-10)
            np.testing.assert_allclose(below, valence, atol=1e-10)


def test_massive_dirac_levels_both_bands_valleys_and_signs():
    """Onsager + Berry phase + moment reproduces the massive Dirac levels up to O(B^2): measured
    |error| <= 1.0e-6 at |B| = 1e-3, Delta = 0.5, v = 1 (level spacing ~2e-3, the n = 0 level
    included); tolerance 2e-6. Without the Berry phase every level moves by ~spacing / 2, with the
    moment's sign or the orientation flipped the n = 0 level moves to the wrong band edge."""
    field = 1e-3
    np.testing.assert_allclose(
        dirac(0.5, -1)(None, jnp.array([0.3, -0.2])),
        models.MassiveDirac(V, 0.5, valley=-1)(None, jnp.array([0.3, -0.2])),
    )
    for valley in (1, -1):
        for delta in (0.5, -0.5):
            model = dirac(delta, valley)
            for b_z in (field, -field):
                conduction, valence = dirac_levels(delta, valley, b_z)
                numerical = dirac_levels_numerical(model, 1, b_z)
                np.testing.assert_allclose(numerical, conduction, rtol=0, atol=2e-6)
                numerical = dirac_levels_numerical(model, 0, b_z)
                np.testing.assert_allclose(numerical, valence, rtol=0, atol=2e-6)


def test_three_band_levels_against_exact_quantum_levels():
    """models.DiracWithRemoteBand (no closed form; C3, not isotropic): the lowest four levels of
    both Dirac bands against the exact ladder-operator spectrum at B_z = +-2e-3. Measured
    |error| <= 1.3e-5 (conduction), 3.8e-6 (valence): <= 0.4 % of the level spacing (~4e-3),
    O(B^2) (x 6.2 at B = 5e-3); 16 rays and 12 radial nodes agree with 64 and 24 to 1e-16. Tolerance 2e-5 = 0.5 % of the
    spacing."""
    v, delta, e_r, g = 1.0, 0.4, 2.0, 0.6
    model = models.DiracWithRemoteBand(v, delta, e_r, g)
    h0 = np.diag([delta, -delta, e_r]).astype(complex)
    hx = np.array([[0, v, g], [v, 0, g], [g, g, 0]], complex)
    hy = np.array([[0, -1j * v, 1j * g], [1j * v, 0, -1j * g], [-1j * g, 1j * g, 0]])
    for field in (2e-3, -2e-3):
        exact = landau_levels_exact(h0, hx, hy, -field, n_osc=60)
        for band in (0, 1):
            numerical = np.asarray(
                sj.landau_levels(model, band, field, 3, n_angles=16, n_radial=12)
            )
            nearest = exact[np.argmin(np.abs(exact[None, :] - numerical[:, None]), axis=1)]
            assert len(set(nearest)) == 4  # four distinct exact levels
            np.testing.assert_allclose(numerical, nearest, rtol=0, atol=2e-5)


def test_level_derivative_in_the_field():
    """jax.grad of a level with respect to B_z (implicit-function derivatives through both
    bisections) against a central difference (step 1e-6: error ~1e-8 relative) and against the
    closed form d E_2 / dB = 2 v^2 sign(B) / E_2 up to the O(B) error of the semiclassics."""
    model = dirac(0.5, 1.0)

    def level(b_z):
        return sj.landau_levels(model, 1, b_z, 4, n_angles=16, n_radial=12)[2]

    b_z, step = -1e-3, 1e-6
    gradient = float(jax.grad(level)(b_z))
    difference = (float(level(b_z + step)) - float(level(b_z - step))) / (2 * step)
    assert np.isfinite(gradient)
    np.testing.assert_allclose(gradient, difference, rtol=1e-5)
    # valley +1, Delta > 0, B < 0: the conduction ladder starts at the zero mode, level 2 is E_2
    np.testing.assert_allclose(gradient, -2 * V**2 / np.sqrt(0.25 + 4e-3), rtol=1e-2)


def test_errors_name_the_argument():
    model = dirac(0.5, 1.0)
    with pytest.raises(ValueError, match="not closed within radius"):
        sj.landau_levels(model, 1, 1e-3, 4, radius=0.01, n_angles=16, n_radial=12)
    with pytest.raises(ValueError, match="rise monotonically"):
        sj.landau_levels(model, 1, 1e-3, 4, extremum=[0.05, 0.0], n_angles=16, n_radial=12)
    with pytest.raises(ValueError, match="magnetic_field must be non-zero"):
        sj.landau_levels(model, 1, 0.0, 4)
    with pytest.raises(ValueError, match="band"):
        sj.landau_levels(model, 2, 1e-3, 4)
    with pytest.raises(ValueError, match="2D model"):
        sj.landau_levels(models.WeylLattice(1.0), 0, 1e-3, 2)
