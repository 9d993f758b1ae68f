"""Unit conversions against textbook values (CODATA 2018, typed in by hand).

The SI checks recompute every factor here from e = 1.602176634e-19 C and hbar = 1.054571817e-34 J s
(exact / CODATA 2018), independently of the constants in ``units.py`` (which holds hbar in eV s).
"""

import math

import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import models, units
from semiclassical_jax._results import unit_attrs
from semiclassical_jax.units import EV_NM, UnitSystem

E_C = 1.602176634e-19  # C, exact
HBAR_JS = 1.054571817e-34  # J s, CODATA 2018
ANGSTROM_M = 1e-10
E2_HBAR_S = E_C**2 / HBAR_JS  # e^2/hbar = 2.434e-4 S
WANNIER = UnitSystem.from_names("eV", "Angstrom")


def test_ev_nm_units_match_textbook_values():
    assert math.isclose(EV_NM.time_fs, 0.6582119569, rel_tol=1e-9)  # hbar / 1 eV
    assert math.isclose(EV_NM.field_v_per_nm, 1.0)
    assert math.isclose(EV_NM.temperature_k, 11604.518, rel_tol=1e-6)
    # conductance quantum e^2/h = 3.874045865e-5 S = (e^2/hbar) / (2 pi)
    assert math.isclose(EV_NM.conductance_s / (2 * math.pi), 3.874045865e-5, rel_tol=1e-9)
    # graphene's Fermi velocity 1e6 m/s is hbar v = 0.6582 eV nm
    assert math.isclose(1e6 / EV_NM.velocity_m_per_s, 0.6582119569, rel_tol=1e-9)


def test_scaling_with_the_chosen_units():
    meV_angstrom = UnitSystem(energy_ev=1e-3, length_nm=0.1)
    assert math.isclose(meV_angstrom.time_fs, 658.2119569, rel_tol=1e-9)
    assert math.isclose(meV_angstrom.field_v_per_nm, 1e-2)
    # e E0 / (hbar L0): 1 eV / hbar = 2.4341e-4 A per nm -> 2.4341e5 A/m; (1e-3 / 0.1) of it for meV, A
    assert math.isclose(EV_NM.current_density_a_per_m, 2.434134807e5, rel_tol=1e-8)
    assert math.isclose(meV_angstrom.current_density_a_per_m, 2.434134807e3, rel_tol=1e-8)
    assert UnitSystem.from_names("meV", "Angstrom") == meV_angstrom
    assert (meV_angstrom.energy_name, meV_angstrom.length_name) == ("meV", "Angstrom")


def test_unit_names():
    """Rydberg 13.605693123 eV, Hartree 27.211386246 eV, bohr 0.529177211 Angstrom (CODATA 2018);
    length names case-insensitive (Wannier90 writes Ang / Bohr), energy names not (meV != MeV)."""
    ry_bohr = UnitSystem.from_names("Ry", "Bohr")
    assert math.isclose(ry_bohr.energy_ev, 13.605693123, rel_tol=1e-10)
    assert math.isclose(ry_bohr.length_nm * 10, 0.529177211, rel_tol=1e-9)
    assert math.isclose(UnitSystem.from_names("Hartree").energy_ev, 27.211386246, rel_tol=1e-10)
    assert UnitSystem.from_names("eV", "ang") == UnitSystem.from_names("eV", "Angstrom")
    assert UnitSystem.from_names() == EV_NM
    assert UnitSystem(0.5, 0.2).energy_name == "0.5 eV"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: UnitSystem.from_names("MeV"), "energy='MeV' is not a known energy unit"),
        (lambda: UnitSystem.from_names("eV", "furlong"), "length='furlong' is not a known length"),
        (lambda: UnitSystem(-1.0, 1.0), "energy_ev must be finite and > 0"),
        (lambda: units.conductivity(1.0, WANNIER, 3, to="S"), "to='S' is not a unit of a 3D"),
        (lambda: units.conductivity(1.0, WANNIER, dim=4), "dim must be 1, 2 or 3"),
        (lambda: units.to_si(1.0, "resistance", WANNIER), "quantity='resistance' is not one of"),
    ],
)
def test_bad_units_raise_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call()


def test_conductivities_in_si():
    """e^2/hbar = 2.434e-4 S (2D); e^2/(hbar Angstrom) = 24341 S/cm (3D, Wannier90 units);
    e^2/h = 1/(2 pi) in natural units; e^2/(hbar nm) = 2.434e5 S/m."""
    assert math.isclose(E2_HBAR_S, 2.4341348e-4, rel_tol=1e-7)
    assert math.isclose(units.conductivity(1.0, WANNIER, dim=2), E2_HBAR_S, rel_tol=1e-9)
    s_per_cm = units.conductivity(1.0, WANNIER, dim=3)
    assert math.isclose(s_per_cm, E2_HBAR_S / ANGSTROM_M / 100, rel_tol=1e-9)
    assert round(s_per_cm) == 24341  # the number
    assert math.isclose(units.conductivity(1.0, EV_NM, 3, to="S/m"), E2_HBAR_S / 1e-9, rel_tol=1e-9)
    assert math.isclose(units.conductivity(1 / (2 * math.pi), WANNIER, 2, to="e^2/h"), 1.0)
    assert units.natural_unit("conductivity", WANNIER, 3) == "e^2/(hbar Angstrom)"
    assert units.natural_unit("conductivity", WANNIER, 2) == "e^2/hbar"
    # arrays convert element by element
    np.testing.assert_allclose(
        units.conductivity(np.array([1.0, -2.0]), WANNIER), np.array([1, -2]) * E2_HBAR_S
    )


def test_currents_fields_and_second_order_in_si():
    """J: e E0/(hbar L0^(d-1)); E: E0/(e L0); chi of J = chi E E: e^3 L0^(3-d)/(hbar E0), all from
    the hand-typed constants (E0 = 1 eV = e J, L0 = 1 Angstrom)."""
    e0_j = E_C  # 1 eV in J
    assert math.isclose(
        units.current_density(1.0, WANNIER, 2), E_C * e0_j / HBAR_JS / ANGSTROM_M, rel_tol=1e-9
    )
    a_per_m2 = E_C * e0_j / HBAR_JS / ANGSTROM_M**2
    assert math.isclose(units.current_density(1.0, WANNIER, 3), a_per_m2, rel_tol=1e-9)
    assert math.isclose(
        units.current_density(1.0, WANNIER, 3, "A/cm^2"), a_per_m2 / 1e4, rel_tol=1e-9
    )
    assert math.isclose(units.electric_field(1.0, WANNIER), 1e10, rel_tol=1e-12)  # 1 V/Angstrom
    assert math.isclose(units.electric_field(1.0, EV_NM, "V/nm"), 1.0, rel_tol=1e-12)
    chi_3d = E_C**3 / (HBAR_JS * e0_j)  # A/V^2
    assert math.isclose(units.second_order_conductivity(1.0, WANNIER, 3), chi_3d, rel_tol=1e-9)
    assert math.isclose(
        units.second_order_conductivity(1.0, WANNIER, 2), chi_3d * ANGSTROM_M, rel_tol=1e-9
    )
    # meV and bohr: J scales as E0 / L0^(d-1), chi as L0^(3-d) / E0, sigma as L0^(2-d)
    mev_bohr = UnitSystem.from_names("meV", "bohr")
    bohr_m = 0.529177210903e-10
    j_2d = E_C * 1e-3 * E_C / HBAR_JS / bohr_m
    assert math.isclose(units.current_density(1.0, mev_bohr, 2), j_2d, rel_tol=1e-9)
    chi_2d = E_C**3 * bohr_m / (HBAR_JS * 1e-3 * E_C)
    assert math.isclose(units.second_order_conductivity(1.0, mev_bohr, 2), chi_2d, rel_tol=1e-9)
    assert math.isclose(
        units.conductivity(1.0, mev_bohr, 3, "S/m"), E2_HBAR_S / bohr_m, rel_tol=1e-9
    )
    assert units.natural_unit("second_order_conductivity", mev_bohr, 2) == "e^3 bohr/(hbar meV)"
    # consistency: chi E^2 = J for chi = J = 1 natural, E = 1 natural
    j = units.current_density(1.0, WANNIER, 3)
    assert math.isclose(
        units.second_order_conductivity(1.0, WANNIER, 3) * units.electric_field(1.0, WANNIER) ** 2,
        j,
        rel_tol=1e-12,
    )


class _Recorded:
    energy_unit, length_unit = "eV", "Angstrom"


class _Half:
    energy_unit, length_unit = "meV", None


def test_model_units():
    """Read from the model's energy_unit / length_unit (a Wannier90 model: eV, Angstrom); what is
    missing is the default, named as such; an unknown name raises naming the attribute."""
    assert units.model_units(_Recorded()) == WANNIER
    assert units.units_source(_Recorded()) == "recorded on the model"
    assert units.model_units(_Half()) == UnitSystem(1e-3, 1.0)
    assert "length nm assumed" in units.units_source(_Half())
    assert units.model_units(models.QWZ(-1.0)) == EV_NM
    assert "energy eV, length nm assumed" in units.units_source(models.QWZ(-1.0))
    bad = _Half()
    bad.energy_unit = "Kelvin"
    with pytest.raises(ValueError, match="_Half.energy_unit='Kelvin' is not a known energy unit"):
        units.model_units(bad)
    tb = models.TightBinding(
        np.eye(3), [[0.0, 0, 0]], [[0, 0, 0]], [[[0.0]]], length_unit="Angstrom"
    )
    assert units.model_units(tb) == UnitSystem(1.0, 0.1)


def test_unit_attrs_of_a_3d_wannier_conductivity():
    """A sweep of a 3D eV/Angstrom model records e^2/(hbar Angstrom) and 24341 S/cm per unit."""
    attrs = unit_attrs("hall_conductivity", _Recorded(), 3)
    assert attrs["unit"] == "e^2/(hbar Angstrom)" and attrs["si_unit"] == "S/cm"
    assert math.isclose(attrs["si_factor"], E2_HBAR_S / ANGSTROM_M / 100, rel_tol=1e-9)
    current = unit_attrs("current", _Recorded(), 3)
    assert current["unit"] == "e eV/(hbar Angstrom^2)" and current["si_unit"] == "A/m^2"
    assert unit_attrs("something_else", _Recorded(), 3) == {}
    assert (
        "Kelvin"
        in unit_attrs("current", type("M", (), {"energy_unit": "Kelvin"})(), 2)["unit_system"][
            "error"
        ]
    )


@pytest.fixture(scope="module")
def qwz_sigma():
    """sigma_ab of the QWZ Chern insulator (m = -1, C = +1) from a one-point sweep, 24^2 grid."""
    model = models.QWZ(-1.0)
    grid = sj.grids.brillouin_zone(model, 24)
    return sj.sweep(model, grid, {"mu": [0.0]}, quantity="hall_conductivity", temperature=0.0)


def test_a_chern_insulator_in_si(qwz_sigma, tmp_path):
    """sigma_xy = -C/(2 pi) natural = -C e^2/h = -3.874e-5 S (C = 1), through SweepResult.to_si,
    and after a save / load; the conversion of a converted result goes back through natural units."""
    assert qwz_sigma.attrs["unit"] == "e^2/hbar" and qwz_sigma.attrs["si_unit"] == "S"
    assert "assumed" in qwz_sigma.attrs["unit_system"]["source"]
    natural = qwz_sigma.values[0, 0, 1]
    assert abs(natural + 1 / (2 * math.pi)) < 1e-4
    back = sj.SweepResult.load(qwz_sigma.save(tmp_path / "sigma"))
    siemens = back.to_si()
    assert siemens.units["hall_conductivity"] == "S" and siemens.attrs["unit"] == "S"
    assert abs(siemens.values[0, 0, 1] - natural * E2_HBAR_S) < 1e-9 * E2_HBAR_S  # 10-digit hbar
    assert abs(siemens.values[0, 0, 1] + 3.874046e-5) < 1e-4 * 3.874046e-5
    quanta = siemens.to_si("e^2/h")  # from S back to e^2/h
    assert abs(quanta.values[0, 0, 1] + 1.0) < 1e-3
    np.testing.assert_allclose(quanta.values, qwz_sigma.to_si("e^2/h").values, rtol=1e-12)
    assert "e^2/h" in repr(quanta)


def test_old_results_without_units_load_and_say_so(tmp_path):
    """A file without unit attrs (written before them) loads; to_si says how to convert by hand."""
    old = sj.SweepResult(
        "current",
        np.ones((2, 2)),
        ("mu", "component"),
        {"mu": [0.0, 1.0], "component": ["x", "y"]},
        {"current": "e energy / (hbar length^(d-1))"},
    )
    back = sj.SweepResult.load(old.save(tmp_path / "old"))
    np.testing.assert_array_equal(back.values, old.values)
    with pytest.raises(ValueError, match="records no unit system.*units.to_si"):
        back.to_si()


def _synthetic_3d_sigma(attrs):
    """sigma_xy = 0.03 e^2/(hbar L0) of a 3D model against mu, without computing anything."""
    values = np.zeros((3, 3, 3))
    values[:, 0, 1] = 0.03
    xyz = np.array(["x", "y", "z"])
    coords = {"mu": np.linspace(-0.1, 0.1, 3), "component": xyz, "field_component": xyz}
    dims = ("mu", "component", "field_component")
    return sj.SweepResult("hall_conductivity", values, dims, coords, attrs=attrs)


def test_plots_and_the_cli_summary_label_units(qwz_sigma):
    """3D eV/Angstrom: plotted and summarised in S/cm (0.03 x 24341 = 730.24); 2D: e^2/h with its
    value in S, the default units named as assumed; a result without units keeps the old labels."""
    from semiclassical_jax import cli
    from semiclassical_jax.plotting import plot_result

    wannier = _synthetic_3d_sigma(unit_attrs("hall_conductivity", _Recorded(), 3))
    axes = plot_result(wannier).axes[0]
    assert axes.get_ylabel() == "hall conductivity  [S/cm]"
    assert axes.get_xlabel() == "chemical potential mu  [eV]"
    s_per_cm = 0.03 * E2_HBAR_S / ANGSTROM_M / 100
    np.testing.assert_allclose(axes.lines[1].get_ydata(), s_per_cm, rtol=1e-9)  # sigma_xy
    assert cli._headline(wannier) == f"sigma_xy from {s_per_cm:+.5g} to {s_per_cm:+.5g} S/cm"
    assert cli._unit(wannier) == "e^2/(hbar Angstrom) = 2.434e+04 S/cm"

    figure = plot_result(qwz_sigma)
    assert figure.axes[0].get_ylabel() == "hall conductivity  [e^2/h = 3.874e-05 S]"
    assert "energy eV, length nm assumed" in figure._suptitle.get_text()
    assert cli._unit(qwz_sigma) == "e^2/hbar = 0.0002434 S (energy eV, length nm assumed)"

    kelvin = type("M", (), {"energy_unit": "Kelvin"})()
    with pytest.raises(ValueError, match="units are unknown: M.energy_unit='Kelvin'"):
        _synthetic_3d_sigma(unit_attrs("hall_conductivity", kelvin, 3)).to_si()
    old = _synthetic_3d_sigma({})
    assert plot_result(old).axes[0].get_ylabel() == "hall conductivity  [e^2/(h length^1)]"
    assert cli._unit(old) == "natural units" and "e^2/h" in cli._headline(old)
