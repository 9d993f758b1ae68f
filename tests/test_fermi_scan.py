"""Fermi-level scans: mu and temperature as arrays, one pass over k (issue 17, item 3).

Facts pinned, each independent of the code under test:
- massive Dirac valley (v = 1, mass Delta, valley +1) on a disk of radius K, E_K = sqrt(K^2 + Delta^2),
  T = 0: sigma_xy = -(1/4 pi) (sgn Delta - Delta / E_K) with mu in the gap and
  -(Delta/4 pi) (1/|mu| - 1/E_K) with |Delta| < |mu| < E_K (lower band partly empty or upper
  partly full; integrate Omega = Delta / (2 (k^2 + Delta^2)^(3/2)) over the occupied annulus);
- QWZ(1): sigma_xy = -C / (2 pi), |C| = 1, with mu in the gap [-1, 1], and exactly 0 below and
  above both bands (every pair at the same occupation);
- a parabolic band eps = k^2 / 2 (m = 1): Drude sigma_xx = sigma_yy = tau T ln(1 + e^(mu/T)) / 2 pi
  (n tau / m with the 2D density n = (m T / 2 pi) ln(1 + e^(mu/T))), sigma_xy = 0, at any (mu, T);
- a scan equals the one-level calls at each level (a transformation check: same integrands);
- band touchings: a scan raises iff a one-level call at some level raises, naming that level.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import grids, models

DELTA, CUTOFF = 0.1, 1.0
E_CUTOFF = np.hypot(CUTOFF, DELTA)
DIRAC_MUS = np.array([-0.5, -0.2, 0.0, 0.05, 0.3, 0.5])  # not symmetric: level order matters


def _dirac_hall_closed_form(mu):
    """sigma_xy(mu) of one massive Dirac valley on the disk |k| <= CUTOFF at T = 0."""
    mu = np.abs(mu)
    in_gap = -(1.0 - DELTA / E_CUTOFF) / (4 * np.pi)
    in_band = -(DELTA / (4 * np.pi)) * (1.0 / np.maximum(mu, DELTA) - 1.0 / E_CUTOFF)
    return np.where(mu < DELTA, in_gap, in_band)


def _dirac_disk():
    """Panels from the gap scale out, with breaks at the Fermi momenta of DIRAC_MUS (the T = 0
    step on a panel boundary)."""
    fermi = np.sqrt(np.unique(np.abs(DIRAC_MUS[np.abs(DIRAC_MUS) > DELTA])) ** 2 - DELTA**2)
    breaks = np.unique(np.concatenate([[0.02, 0.05, 0.1, 0.3, 0.7], fermi]))
    return grids.disk(CUTOFF, 12, 4, breaks=breaks)


def test_dirac_hall_scan_follows_the_closed_form():
    """One call for six levels: the gap plateau and the 1/|mu| tail in both bands (1e-9)."""
    model, disk = models.MassiveDirac(1.0, DELTA), _dirac_disk()
    scan = sj.hall_conductivity(model, disk, mu=DIRAC_MUS, temperature=0.0)
    assert scan.shape == (6, 2, 2)
    np.testing.assert_allclose(scan[:, 0, 1], _dirac_hall_closed_form(DIRAC_MUS), rtol=1e-9)
    np.testing.assert_allclose(scan[:, 1, 0], -scan[:, 0, 1], rtol=1e-14)


def _parabolic(p, x, k):
    return jnp.sum(k**2)[None, None] / 2 + 0j


def test_drude_scan_of_a_parabolic_band_broadcasts_mu_against_temperature():
    """mu (4, 1) x T (1, 2) -> (4, 2, 2, 2): the closed form at every (mu, T) to 1e-9."""
    model = models.FunctionModel(_parabolic, None, dim=2, n_bands=1)
    disk = grids.disk(2.5, 24, 4, breaks=[0.3, 0.6, 1.0, 1.5])  # eps(K) - mu >= 35 T
    mu = np.array([-0.1, 0.0, 0.1, 0.3])[:, None]
    temperature = np.array([0.03, 0.06])[None, :]
    sigma = sj.drude_conductivity(model, disk, mu=mu, temperature=temperature, tau=2.0)
    assert sigma.shape == (4, 2, 2, 2)
    expected = 2.0 * temperature * np.log1p(np.exp(mu / temperature)) / (2 * np.pi)
    np.testing.assert_allclose(sigma[..., 0, 0], expected, rtol=1e-9)
    np.testing.assert_allclose(sigma[..., 1, 1], expected, rtol=1e-9)
    np.testing.assert_allclose(sigma[..., 0, 1], 0.0, atol=1e-15)


TILTED = models.MassiveDirac(1.0, 0.1, tilt=0.3)
TILTED_GRID = grids.disk(1.5, 4, 4, breaks=[0.3])


@pytest.mark.parametrize("theory, manifolds", [("msct", [[0, 1]]), ("ssct", None)])
def test_a_level_does_not_depend_on_the_other_levels_of_its_scan(theory, manifolds):
    """Two scans of a tilted Dirac valley (levels in the gap, in the bands, above the cutoff's
    band edge; the pairs dropped at every level differ between them) share the level
    (0.25, 0.02): equal to 1e-12. MSCT with the valley as one manifold (forward-mode hybridised
    energies, computed once for all levels). current_map has shape (*S, n_x, d). (One compiled
    program per theory: a one-level call is a scan of one level.)"""
    kwargs = dict(field=[0.01, 0.02], tau=3.0, theory=theory, manifolds=manifolds)
    xs = np.zeros((2, 2))
    first = sj.current_map(
        TILTED, TILTED_GRID, xs, mu=[[-0.3], [0.25]], temperature=[0.05, 0.02], **kwargs
    )
    second = sj.current_map(
        TILTED, TILTED_GRID, xs, mu=[[0.25], [1.05]], temperature=[0.02, 0.1], **kwargs
    )
    assert first.shape == (2, 2, 2, 2)
    np.testing.assert_array_equal(first[..., 0, :], first[..., 1, :])
    np.testing.assert_allclose(first[1, 1], second[0, 0], rtol=1e-12, atol=1e-18)
    assert np.all(np.abs(first[1, 1]) > 1e-6)


# ---------------------------------------------------------------------------------------------
# band touchings, per level

NODE = models.QWZ(2.0)  # Dirac node at k = (pi, pi), energy 0, on every odd grid
NODE_GRID = grids.brillouin_zone(NODE, 21)


def test_node_at_one_level_of_a_scan_raises_naming_that_level():
    """QWZ(2) has its node at energy 0 (an exact degeneracy to the eigensolver); QWZ(2 + 1e-9) a
    gap of 2e-9 there (closed relative to the energy scale, not degenerate). Below and above both
    bands the touching is harmless (sigma = 0 exactly: every pair at one occupation); a level at
    the node raises, naming the first such level, also in a sweep along mu (under jit the static
    message of tests/test_gap_closings.py: the same guard). QWZ(1) on the same grid:
    sigma_xy = -C / 2 pi, |C| = 1, in its gap (-1, 1)."""
    quiet = sj.hall_conductivity(NODE, NODE_GRID, mu=[-5.0, 5.0, 5.5], temperature=0.0)
    np.testing.assert_array_equal(quiet, 0.0)
    chern = sj.hall_conductivity(models.QWZ(1.0), NODE_GRID, mu=[-0.5, 0.0, 0.5], temperature=0.0)
    np.testing.assert_allclose(2 * np.pi * np.abs(chern[:, 0, 1]), 1.0, atol=1e-4)
    np.testing.assert_allclose(chern, np.broadcast_to(chern[1], (3, 2, 2)), rtol=0, atol=1e-14)
    level = r"bands 0 and 1 at level 2 \(mu = 0, temperature = 0\) at x=\[0\. 0\.\], k=\[3\.14"
    with pytest.raises(ValueError, match="two bands whose occupations differ touch.*" + level):
        sj.hall_conductivity(NODE, NODE_GRID, mu=[-5.0, 5.0, 0.0], temperature=0.0)
    near = models.QWZ(2.0 + 1e-9)
    level = r"bands 0 and 1 at level 1 \(mu = 0, temperature = 0\.01\) at .* gap = 2\.0+e-09"
    with pytest.raises(ValueError, match=level):
        sj.hall_conductivity(near, NODE_GRID, mu=[-5.0, 0.0, 5.0], temperature=0.01)

    with pytest.raises(ValueError, match=r"hall_conductivity at mu=0: two bands.*k=\[3\.14"):
        sj.sweep(
            NODE, NODE_GRID, {"mu": [-5.0, 0.0, 5.0]}, quantity="hall_conductivity", temperature=0.0
        )


@pytest.mark.parametrize(
    "levels, message",
    [
        (dict(mu=[0.0, np.nan]), r"mu must be finite, got \[ 0\. nan\]: entry \(1,\) is nan"),
        (
            dict(temperature=[[0.01], [-0.01]]),
            r"(?s)temperature must be > 0.*: entry \(1, 0\) is -0\.01",
        ),
        (dict(temperature=[0.01, np.inf]), r"temperature must be > 0 and finite.*entry \(1,\)"),
        (dict(mu=[0.0, 0.1, 0.2], temperature=[0.01, 0.02]), r"mu \(shape \(3,\)\) and tempera"),
        (dict(mu=[]), r"mu must not be empty"),
        (dict(mu=[0.0, 1j]), r"mu must be real"),
    ],
)
def test_bad_levels_name_the_argument(levels, message):
    arguments = dict(mu=0.0, temperature=0.01, tau=1.0) | levels
    with pytest.raises(ValueError, match=message):
        sj.drude_conductivity(models.MassiveDirac(1.0, 0.1), NODE_GRID, **arguments)


# ---------------------------------------------------------------------------------------------
# sweeps


def test_sweep_level_axes_are_one_pass_in_any_axis_order(capsys):
    """A (temperature, mu, mass) sweep runs one batch per mass (not per mass x mu x T); the
    values keep the axes' order: the closed form at T = 0, and the scans at each mass and T."""
    disk, model = _dirac_disk(), models.MassiveDirac(1.0, DELTA)
    axes = {"temperature": [0.0, 0.01], "mu": DIRAC_MUS, "mass": [DELTA, 2 * DELTA]}
    result = sj.sweep(
        model, disk, axes, quantity="hall_conductivity", batch_size=1, progress="scan"
    )
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("scan [")]
    assert [line.split("]")[1].split()[0] for line in lines] == ["1/2", "2/2"]
    assert result.dims == ("temperature", "mu", "mass", "component", "field_component")
    assert result.values.shape == (2, 6, 2, 2, 2)
    expected = _dirac_hall_closed_form(DIRAC_MUS)
    np.testing.assert_allclose(result.values[0, :, 0, 0, 1], expected, rtol=1e-9)
    for mass, temperature in ((1, 0), (0, 1), (1, 1)):
        scan = sj.hall_conductivity(
            models.MassiveDirac(1.0, axes["mass"][mass]),
            disk,
            mu=DIRAC_MUS,
            temperature=axes["temperature"][temperature],
        )
        np.testing.assert_allclose(
            result.values[temperature, :, mass], scan, rtol=1e-13, atol=1e-16
        )
