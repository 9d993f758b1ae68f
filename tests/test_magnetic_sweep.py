"""Magnetic-field axes in sweeps and in the run configuration (issue 18, item 3).

The SSCT current in B itself (transport/_magnetic.py) is pinned by tests/test_magnetotransport.py
(parabolic band, Weyl node); here a B axis must give the same physics, labelled, through the
sweep layer and the command line. The equations (_magnetic's docstring), charge q = -1:
D = 1 + B Omega, eps~ = eps - m B, v~ = d eps~ / dk, g1 = sum_{n <= 2} (tau L)^n g1_0,
g1_0 = -tau f0'(eps~) (q / D) E . v~, L = -(q / D) (v~ x B) . d_k,
J = q sum_n int d^2k / (2 pi)^2 (f0(eps~) + g1) (v~ - q E x Omega).

Closed form for an isotropic 2D band, here a massive Dirac valley: eps_n = -+eps(k),
eps = sqrt(v^2 k^2 + Delta^2), Omega_n = +-Delta v^2 / (2 eps^3), m_n = -v^2 Delta / (2 eps^2)
(both bands; PHYSICS.md s. 5, tests/test_orbital_moment.py). v~ = v~_n(k) k^ is radial, so
(v~ x B) . d_k = -B v~ / k d_phi and L = Omega_c d_phi with Omega_c = q B v~ / (D k) (for a
parabolic band omega_c = |q B| / m*). With E = E x^, g1_0 = A cos(phi), A = -tau f0'(eps~) q v~ E / D:
    g1 = A [(1 - (tau Omega_c)^2) cos(phi) - tau Omega_c sin(phi)]
(the Drude sigma_xx (1 - (omega_c tau)^2) and Hall -tau omega_c terms), and with E x Omega =
-Omega E y^,
    J = q sum_n int d^2k / (2 pi)^2 (f0(eps~_n) + g1) (v~ cos(phi), v~ sin(phi) + q Omega_n E),
evaluated with numpy at the grid's own points and weights: no autodiff, no eigensolver.
Also exact: the mirror k_x -> -k_x conjugated by sigma_y maps H(Delta) to H(-Delta) and flips E_x,
J_x and B_z, so J_x(Delta, B) = J_x(-Delta, -B) and J_y(Delta, B) = -J_y(-Delta, -B).
"""

import re

import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import SweepResult, cli, models
from semiclassical_jax._config import ConfigError, build_plans, load_config
from semiclassical_jax._sweep import MAGNETIC, _swept_vector, prepare_sweep

Q = -1.0


def _swept(plan, name, value):
    """B (c,) of a sweep point whose axis ``name`` has ``value`` (as the compiled batch forms it)."""
    operands = plan.operands
    swept = {name: jnp.asarray(value)}
    b = _swept_vector(operands["magnetic_field"], operands["magnetic_direction"], swept, MAGNETIC)
    return np.asarray(b)


def test_b_axes_set_the_vector_in_2d_and_3d():
    """A strength axis gives B = value x the unit direction (in 2D the direction's sign, default
    +z); component axes set one component on top of ``magnetic_field`` (as field_x /
    field_strength do for E); the attrs record the fixed B and the direction."""
    common = dict(field=[0.0, 0.0, 1e-3], mu=0.1, temperature=0.05, tau=1.0, theory="ssct")
    model = models.WeylLattice(1.2)
    grid = sj.grids.brillouin_zone(model, 2)
    axis = {"magnetic_field_strength": [0.5]}
    plan = prepare_sweep(model, grid, axis, magnetic_field_direction=[0, 3, 4], **common)
    np.testing.assert_allclose(_swept(plan, f"{MAGNETIC}_strength", 0.5), [0, 0.3, 0.4], rtol=1e-15)
    plan = prepare_sweep(model, grid, {f"{MAGNETIC}_y": [0.5]}, magnetic_field=[1, 2, 3], **common)
    np.testing.assert_allclose(_swept(plan, f"{MAGNETIC}_y", -0.5), [1, -0.5, 3], rtol=1e-15)
    common["field"] = [1e-3, 0.0]
    model, grid = models.MassiveDirac(1.0, 0.3), sj.grids.disk(1.0, 2, 4)
    for direction, sign in ((None, 1.0), (-2.0, -1.0)):
        plan = prepare_sweep(model, grid, axis, magnetic_field_direction=direction, **common)
        assert _swept(plan, f"{MAGNETIC}_strength", 0.5) == [0.5 * sign]
    plan = prepare_sweep(
        model, grid, {"tau": [1.0, 2.0]}, **{**common, "tau": None}, magnetic_field=0.1
    )
    assert _swept(plan, "tau", 2.0) == [0.1]


CONFIG = """
[model]
type = "MassiveDirac"
velocity = 1.0
mass = 0.3

[grid]
type = "disk"
radius = 2.0
n_radial = 12
n_angle = 8
breaks = [0.52]

[[sweep]]
name = "magnetoconductance"
theory = "ssct"
mu = 0.6
temperature = 0.05
tau = 2.0
field = [1e-3, 0.0]
axes.mass = [0.3, -0.3]
axes.magnetic_field_z = [-0.02, 0.0, 0.02]
"""


def _dirac_current(points, weights, delta, b, e, mu, temperature, tau, v=1.0):
    """J (2,) of a massive Dirac valley in B_z = b, E = (e, 0): the closed form of the module
    docstring at the grid's points, summed with its weights (both bands)."""
    k = np.linalg.norm(points, axis=1)
    cos, sin = points[:, 0] / k, points[:, 1] / k
    eps = np.sqrt(v**2 * k**2 + delta**2)
    moment_energy = v**2 * delta * b / (2 * eps**2)  # -m B, the same for both bands
    current = np.zeros(2)
    for sign in (-1.0, 1.0):  # lower, upper band
        omega = -sign * delta * v**2 / (2 * eps**3)
        energy = sign * eps + moment_energy
        velocity = sign * v**2 * k / eps - v**4 * delta * b * k / eps**4
        factor = 1 + b * omega
        x = (energy - mu) / (2 * temperature)
        slope = -1 / (4 * temperature * np.cosh(x) ** 2)  # f0'
        occupation = 0.5 * (1 - np.tanh(x))
        a = -tau * slope * Q * velocity * e / factor
        rate = tau * Q * b * velocity / (factor * k)  # tau Omega_c
        g1 = a * ((1 - rate**2) * cos - rate * sin)
        current[0] += Q * np.sum(weights * (occupation + g1) * velocity * cos)
        current[1] += Q * np.sum(weights * (occupation + g1) * (velocity * sin + Q * omega * e))
    return current


def test_config_b_axis_round_trip(tmp_path, capsys):
    """`semiclassical-jax run` with a B axis (and a mass axis): the file carries the axis, its
    values and units; the values equal the closed form of the module docstring (1e-9 relative to
    the largest) and obey the mirror symmetry (1e-10)."""
    config = tmp_path / "b.toml"
    config.write_text(CONFIG)
    out = tmp_path / "out"
    assert cli.main(["run", str(config), "--out", str(out), "--no-plots"]) == 0
    result = SweepResult.load(out / "magnetoconductance.npz")
    assert result.dims == ("mass", "magnetic_field_z", "component")
    np.testing.assert_array_equal(result.coord("magnetic_field_z"), [-0.02, 0.0, 0.02])
    assert result.units["magnetic_field_z"] == "hbar / (e length^2)"
    assert result.attrs["config"]["axes"]["magnetic_field_z"] == [-0.02, 0.0, 0.02]
    j = result.values
    scale = np.max(np.abs(j))
    grid = sj.grids.disk(2.0, 12, 8, breaks=[0.52])
    points, weights = np.asarray(grid.points), np.asarray(grid.weights)
    for i, delta in enumerate(result.coord("mass")):
        for n, b in enumerate(result.coord("magnetic_field_z")):
            expected = _dirac_current(points, weights, delta, b, 1e-3, 0.6, 0.05, 2.0)
            np.testing.assert_allclose(j[i, n], expected, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(j[0, :, 0], j[1, ::-1, 0], rtol=1e-10)
    np.testing.assert_allclose(j[0, :, 1], -j[1, ::-1, 1], atol=1e-10 * scale)
    assert abs(j[0, 2, 0] - j[0, 0, 0]) > 1e-3 * abs(j[0, 1, 0])  # odd-in-B part present


def test_config_magnetic_field_keys_are_checked():
    """The fixed ``magnetic_field`` of a sweep table reaches the plan (2D: a number B_z), also
    with theory msct; a list in 2D, or B with theory nonabelian_hall, is a ConfigError naming the
    key (validation only, nothing runs)."""
    base = CONFIG.replace("axes.mass = [0.3, -0.3]\naxes.magnetic_field_z = [-0.02, 0.0, 0.02]", "")
    plans = build_plans(load_config(base + "magnetic_field = 0.1\naxes.mass = [0.3]\n"))
    assert plans[0][1].operands["magnetic_field"].tolist() == [0.1]
    plans = build_plans(load_config(base + "axes.magnetic_field_strength = [0.1]\n"))
    assert plans[0][1].operands["magnetic_direction"].tolist() == [1.0]
    msct = base.replace('theory = "ssct"\n', "") + "magnetic_field = 0.1\naxes.mass = [0.3]\n"
    assert build_plans(load_config(msct + "theory = 'msct'\n"))[0][1].theory == "msct"
    for change, message in (
        ("magnetic_field = [0.1, 0.2]\n", "magnetic_field: must be a number"),
        (
            "magnetic_field = 0.1\naxes.mass = [0.3]\ntheory = 'nonabelian_hall'\n",
            "implemented for theory='ssct' and 'msct'",
        ),
    ):
        text = base.replace('theory = "ssct"\n', "") if "hall" in change else base
        with pytest.raises(ConfigError, match=re.escape(message)):
            build_plans(load_config(text + change))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"theory": "nonabelian_hall"}, "implemented for theory='ssct' and 'msct'"),
        ({"magnetic_field": [0.1, 0.2]}, "magnetic_field must be a scalar B_z"),
        ({"magnetic_field": np.inf}, "magnetic_field must be finite"),
        ({"axes": {"magnetic_field_x": [0.1]}}, "unknown axis 'magnetic_field_x'"),
        ({"magnetic_field_direction": 1.0}, "is for a 'magnetic_field_strength' axis"),
        (
            {
                "axes": {"mu": [0.6], "magnetic_field_strength": [0.1]},
                "magnetic_field": None,
                "magnetic_field_direction": 0.0,
            },
            "magnetic_field_direction must be a finite, non-zero number",
        ),
        ({"axes": {"mu": [0.6], "magnetic_field_strength": [0.1]}}, "not magnetic_field"),
        ({"quantity": "drude_conductivity"}, "takes no magnetic field"),
    ],
)
def test_bad_magnetic_sweeps_name_the_argument(arguments, message):
    model = models.MassiveDirac(1.0, 0.3)
    grid = sj.grids.disk(1.0, 2, 4)
    base = {"axes": {"mu": [0.6]}, "field": [1e-3, 0.0], "magnetic_field": 0.1, "theory": "ssct"}
    base.update(arguments)
    if base.pop("quantity", None) == "drude_conductivity":
        base["quantity"], base["field"] = "drude_conductivity", None
    axes = base.pop("axes")
    base = {key: value for key, value in base.items() if value is not None}
    with pytest.raises((ValueError, NotImplementedError)) as error:
        sj.sweep(model, grid, axes, tau=1.0, temperature=0.05, **base)
    assert message in str(error.value)


def test_textured_model_in_b_is_refused_before_running():
    model = models.MassiveDirac(1.0, sj.textures.HexagonalMoire(amplitude=0.1, period=30.0))
    with pytest.raises(ValueError, match="magnetic_field: the SSCT current in B needs a uniform"):
        sj.sweep(
            model,
            sj.grids.disk(1.0, 2, 4),
            {"magnetic_field_z": [0.1]},
            field=[1e-3, 0.0],
            mu=0.6,
            temperature=0.05,
            tau=1.0,
            theory="ssct",
        )
