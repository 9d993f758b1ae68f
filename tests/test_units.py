"""Unit conversions against textbook values (CODATA 2018, typed in by hand)."""

import math

from semiclassical_jax.units import EV_NM, UnitSystem


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
