"""Natural units of the package and their physical values; results in SI.

The package works in hbar = e = k_B = 1 with a free choice of energy unit E0 and length unit L0
(a :class:`UnitSystem`; the default :data:`EV_NM` is eV and nm, Wannier90 models are in eV and
Angstrom). Choosing them fixes every other unit:

| quantity | natural unit | physical value (EV_NM) |
|---|---|---|
| energy | E0 | 1 eV |
| length | L0 | 1 nm |
| wavevector | 1/L0 | 1 nm^-1 |
| time | hbar / E0 | 0.6582 fs |
| velocity | E0 L0 / hbar | 1.519e6 m/s |
| electric field | E0 / (e L0) | 1 V/nm |
| temperature | E0 / k_B | 11604.5 K |
| current density, d dims | e E0 / (hbar L0^(d-1)) | 2.434e5 A/m (2D) |
| conductivity J/E, d dims | e^2 / (hbar L0^(d-2)) | 2.434e-4 S (2D; e^2/h = 1/(2 pi)) |
| order-n response J/E^n | e^(n+1) L0^(n+1-d) / (hbar E0^(n-1)) | A/V^2 for n = 2, d = 3 |

A conductivity of a 3D model in Wannier90's units (eV, Angstrom) is in e^2/(hbar Angstrom) =
24341 S/cm. :func:`to_si` (and :func:`conductivity`, :func:`current_density`,
:func:`second_order_conductivity`, :func:`electric_field`) multiply a natural-unit value by the
factor that :func:`si_factor` returns; :func:`model_units` reads a model's ``energy_unit`` and
``length_unit``.
"""

import dataclasses
import math
from typing import Any

HBAR_EV_S = 6.582119569e-16  # hbar in eV s (exact SI definitions)
"""hbar in eV s (exact, from the SI definitions of h and e)."""
ELEMENTARY_CHARGE_C = 1.602176634e-19
"""The elementary charge e in C (exact)."""
BOLTZMANN_EV_PER_K = 8.617333262e-5
"""k_B in eV/K."""
RYDBERG_EV = 13.605693122994  # CODATA 2018
"""One Rydberg in eV (CODATA 2018)."""
HARTREE_EV = 27.211386245988  # CODATA 2018
"""One Hartree in eV (CODATA 2018)."""
BOHR_NM = 0.0529177210903  # CODATA 2018
"""The Bohr radius in nm (CODATA 2018)."""

# name -> value; energies in eV, lengths in nm. Energy names are case-sensitive (meV is not MeV);
# length names are matched case-insensitively. The first name of a value is its canonical name.
ENERGY_UNITS = {"eV": 1.0, "meV": 1e-3, "Ry": RYDBERG_EV, "Rydberg": RYDBERG_EV}
"""Energy unit names and their values in eV (case-sensitive: meV is not MeV)."""
ENERGY_UNITS |= {"Hartree": HARTREE_EV, "Ha": HARTREE_EV, "hartree": HARTREE_EV}
LENGTH_UNITS = {"nm": 1.0, "Angstrom": 0.1, "Ang": 0.1, "\u00c5": 0.1, "bohr": BOHR_NM}
"""Length unit names and their values in nm (matched case-insensitively)."""
LENGTH_UNITS |= {"a0": BOHR_NM, "m": 1e9}


@dataclasses.dataclass(frozen=True)
class UnitSystem:
    """Natural units with energy unit ``energy_ev`` (in eV) and length unit ``length_nm`` (in nm).

    In the natural units of PHYSICS.md (conventions): hbar = e = k_B = 1, carrier charge -e.

    ``UnitSystem.from_names("eV", "Angstrom")`` builds one from unit names.

    Examples:
        >>> from semiclassical_jax import units
        >>> u = units.UnitSystem.from_names("eV", "Angstrom")
        >>> u.length_nm, u.energy_name, u.length_name
        (0.1, 'eV', 'Angstrom')
        >>> round(u.time_fs, 4)
        0.6582
    """

    energy_ev: float = 1.0
    length_nm: float = 1.0

    def __post_init__(self) -> None:
        for name in ("energy_ev", "length_nm"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"UnitSystem: {name} must be a number, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"UnitSystem: {name} must be finite and > 0, got {value!r}")

    @classmethod
    def from_names(cls, energy: str = "eV", length: str = "nm") -> "UnitSystem":
        """The unit system of energy unit ``energy`` (eV, meV, Ry / Rydberg, Hartree / Ha) and
        length unit ``length`` (nm, Angstrom / Ang / Å, bohr / a0, m)."""
        return cls(_lookup(energy, "energy", ENERGY_UNITS), _lookup(length, "length", LENGTH_UNITS))

    @property
    def energy_name(self) -> str:
        """The energy unit's name ("eV", "meV", ...) or its value in eV ("0.5 eV")."""
        return _name(self.energy_ev, ENERGY_UNITS, "eV")

    @property
    def length_name(self) -> str:
        """The length unit's name ("nm", "Angstrom", ...) or its value in nm ("0.5 nm")."""
        return _name(self.length_nm, LENGTH_UNITS, "nm")

    @property
    def time_fs(self) -> float:
        return HBAR_EV_S / self.energy_ev * 1e15

    @property
    def velocity_m_per_s(self) -> float:
        return self.length_nm * 1e-9 / (self.time_fs * 1e-15)

    @property
    def field_v_per_nm(self) -> float:
        return self.energy_ev / self.length_nm

    @property
    def temperature_k(self) -> float:
        return self.energy_ev / BOLTZMANN_EV_PER_K

    @property
    def conductance_s(self) -> float:
        """e^2 / hbar in siemens."""
        return ELEMENTARY_CHARGE_C / HBAR_EV_S

    @property
    def current_density_a_per_m(self) -> float:
        """Unit of a 2D current density, e / (time unit x length unit), in A/m."""
        return ELEMENTARY_CHARGE_C / (self.time_fs * 1e-15) / (self.length_nm * 1e-9)


EV_NM = UnitSystem(1.0, 1.0)
"""The default unit system: energy in eV, length in nm."""


def _lookup(name: Any, kind: str, table: dict[str, float], argument: str | None = None) -> float:
    """The value of ``kind`` unit ``name`` in ``table`` (lengths case-insensitively), else a
    ValueError naming ``argument`` (default: ``kind``)."""
    if isinstance(name, str):
        if name in table:
            return table[name]
        if kind == "length":
            folded = {key.casefold(): value for key, value in table.items()}
            if name.casefold() in folded:
                return folded[name.casefold()]
    raise ValueError(
        f"{argument or kind}={name!r} is not a known {kind} unit; known: {', '.join(table)}"
    )


def _name(value: float, table: dict[str, float], base: str) -> str:
    for key, known in table.items():
        if math.isclose(value, known, rel_tol=1e-12):
            return key
    return f"{value:g} {base}"


def model_units(model: Any, default: UnitSystem = EV_NM) -> UnitSystem:
    """The unit system of ``model``: its ``energy_unit`` and ``length_unit`` attributes (unit
    names, e.g. "eV" and "Angstrom" on a Wannier90 model); where one is absent or None, that of
    ``default`` (eV, nm), as :func:`units_source` says. An unknown name raises ValueError.

    In the natural units of PHYSICS.md (conventions): hbar = e = k_B = 1, carrier charge -e.

    Examples:
        >>> from semiclassical_jax import units
        >>> from semiclassical_jax import models
        >>> units.model_units(models.QWZ(1.0))
        UnitSystem(energy_ev=1.0, length_nm=1.0)
    """
    energy, length = _recorded(model)
    owner = type(model).__name__
    return UnitSystem(
        default.energy_ev
        if energy is None
        else _lookup(energy, "energy", ENERGY_UNITS, f"{owner}.energy_unit"),
        default.length_nm
        if length is None
        else _lookup(length, "length", LENGTH_UNITS, f"{owner}.length_unit"),
    )


def units_source(model: Any, default: UnitSystem = EV_NM) -> str:
    """Where :func:`model_units` took each unit from, in words (for labels and metadata).

    In the natural units of PHYSICS.md (conventions): hbar = e = k_B = 1, carrier charge -e.

    Examples:
        >>> from semiclassical_jax import units
        >>> from semiclassical_jax import models
        >>> units.units_source(models.QWZ(1.0))
        'energy eV, length nm assumed (the default: the model records no energy or length unit)'
    """
    energy, length = _recorded(model)
    if energy is not None and length is not None:
        return "recorded on the model"
    missing = [name for name, value in (("energy", energy), ("length", length)) if value is None]
    assumed = ", ".join(f"{name} {getattr(default, f'{name}_name')}" for name in missing)
    return f"{assumed} assumed (the default: the model records no {' or '.join(missing)} unit)"


def _recorded(model: Any) -> tuple[Any, Any]:
    return getattr(model, "energy_unit", None), getattr(model, "length_unit", None)


# ---------------------------------------------------------------------------------------------
# results in SI

# quantity -> the power n of the field in J = chi E^n (the current density itself: n = 0)
RESPONSES = {"current_density": 0, "conductivity": 1, "second_order_conductivity": 2}
"""Response quantity names and the power n of the field in J = chi E^n."""
QUANTITIES = (*RESPONSES, "electric_field")
"""The quantity names that :func:`si_factor` and :func:`to_si` convert."""
# Named SI targets per (quantity, dim): name -> its size in the SI base unit (1 S/cm = 100 S/m);
# the first is the default. "e^2/h" (2D conductance quantum) is handled apart: it has no dimension.
_TARGETS = {
    ("current_density", 1): {"A": 1.0},
    ("current_density", 2): {"A/m": 1.0},
    ("current_density", 3): {"A/m^2": 1.0, "A/cm^2": 1e4},
    ("conductivity", 1): {"S m": 1.0},
    ("conductivity", 2): {"S": 1.0, "e^2/h": None, "e^2/hbar": None},
    ("conductivity", 3): {"S/cm": 1e2, "S/m": 1.0},
    ("second_order_conductivity", 1): {"A m^2/V^2": 1.0},
    ("second_order_conductivity", 2): {"A m/V^2": 1.0},
    ("second_order_conductivity", 3): {"A/V^2": 1.0},
}
_FIELD_TARGETS = {"V/m": 1.0, "V/cm": 1e2, "V/nm": 1e9, "V/Angstrom": 1e10}


def _check_dim(dim: Any) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim not in (1, 2, 3):
        raise ValueError(f"dim must be 1, 2 or 3 (the model's dimension), got {dim!r}")
    return dim


def _check_units(units: Any) -> UnitSystem:
    if not isinstance(units, UnitSystem):
        raise TypeError(
            f"units must be a UnitSystem (e.g. UnitSystem.from_names('eV', 'Angstrom') or "
            f"model_units(model)), got {type(units).__name__}"
        )
    return units


def natural_unit(quantity: str, units: UnitSystem = EV_NM, dim: int = 2) -> str:
    """The natural unit of ``quantity`` in words: "e^2/hbar" (2D conductivity),
    "e^2/(hbar Angstrom)" (3D, Wannier90 units), "e eV/(hbar nm)" (2D current density), ...

    In the natural units of PHYSICS.md (conventions): hbar = e = k_B = 1, carrier charge -e.

    Examples:
        >>> from semiclassical_jax import units
        >>> units.natural_unit("conductivity"), units.natural_unit("current_density")
        ('e^2/hbar', 'e eV/(hbar nm)')
    """
    dim, units = _check_dim(dim), _check_units(units)
    energy, length = units.energy_name, units.length_name
    if quantity == "electric_field":
        return f"{energy}/(e {length})"
    if quantity not in RESPONSES:
        raise ValueError(f"quantity={quantity!r} is not one of {', '.join(QUANTITIES)}")
    n = RESPONSES[quantity]
    top = [f"e^{n + 1}" if n else "e", *_power(length, n + 1 - dim), *_power(energy, 1 - n)]
    bottom = ["hbar", *_power(length, dim - n - 1), *_power(energy, n - 1)]
    numerator = " ".join(top)
    return f"{numerator}/{bottom[0]}" if len(bottom) == 1 else f"{numerator}/({' '.join(bottom)})"


def _power(name: str, exponent: int) -> list[str]:
    if exponent <= 0:
        return []
    unit = f"({name})" if " " in name else name
    return [unit if exponent == 1 else f"{unit}^{exponent}"]


def si_factor(
    quantity: str, units: UnitSystem = EV_NM, dim: int = 2, to: str | None = None
) -> tuple[float, str]:
    """(factor, unit name): a natural-unit value of ``quantity`` times ``factor`` is in ``unit``.

    In the natural units of PHYSICS.md (conventions): hbar = e = k_B = 1, carrier charge -e.

    ``quantity``: "current_density" (J, A m^(1-d)), "conductivity" (J/E), "second_order_conductivity"
    (J = chi E E: chi in A V^-2 m^(3-d)) or "electric_field". The natural unit of an order-n
    response J/E^n is e^(n+1) L0^(n+1-d) / (hbar E0^(n-1)) (current density n = 0); its SI value
    is e E0^(1-n) L0^(n+1-d) / (hbar in eV s) with E0 in eV and L0 in m.
    ``to``: the unit wanted; default the first of each list: current density A (1D), A/m (2D),
    A/m^2 or A/cm^2 (3D); conductivity S m (1D), S, e^2/h or e^2/hbar (2D), S/cm or S/m (3D);
    second order A m^2/V^2, A m/V^2, A/V^2 (1D, 2D, 3D); field V/m, V/cm, V/nm, V/Angstrom.

    Examples:
        >>> from semiclassical_jax import units
        >>> import numpy as np
        >>> # 2D conductivity: e^2/hbar in S, and 2 pi per e^2/h
        >>> factor, name = units.si_factor("conductivity")
        >>> f"{factor:.4e} {name}", units.si_factor("conductivity", to="e^2/h")
        ('2.4341e-04 S', (6.283185307179586, 'e^2/h'))
    """
    dim, units = _check_dim(dim), _check_units(units)
    if quantity == "electric_field":
        targets = _FIELD_TARGETS
        base = units.energy_ev / (units.length_nm * 1e-9)  # V/m
    elif quantity in RESPONSES:
        targets = _TARGETS[(quantity, dim)]
        n, length_m = RESPONSES[quantity], units.length_nm * 1e-9
        base = ELEMENTARY_CHARGE_C * units.energy_ev ** (1 - n) * length_m ** (n + 1 - dim)
        base /= HBAR_EV_S
    else:
        raise ValueError(f"quantity={quantity!r} is not one of {', '.join(QUANTITIES)}")
    to = next(iter(targets)) if to is None else to
    if to not in targets:
        raise ValueError(
            f"to={to!r} is not a unit of a {dim}D {quantity.replace('_', ' ')}; "
            f"choose one of {', '.join(targets)}"
        )
    if to == "e^2/h":
        return 2 * math.pi, to
    if to == "e^2/hbar":
        return 1.0, to
    return base / targets[to], to


def to_si(
    value: Any, quantity: str, units: UnitSystem = EV_NM, dim: int = 2, to: str | None = None
) -> Any:
    """``value`` (natural units; a number or an array) of ``quantity`` in the unit ``to``
    (see :func:`si_factor`): value x factor.

    In the natural units of PHYSICS.md (conventions): hbar = e = k_B = 1, carrier charge -e.

    Examples:
        >>> from semiclassical_jax import units
        >>> f"{units.to_si(1.0, 'electric_field', to='V/nm'):.3f}"
        '1.000'
    """
    return value * si_factor(quantity, units, dim, to)[0]


def conductivity(value: Any, units: UnitSystem = EV_NM, dim: int = 2, to: str | None = None):
    """A conductivity J/E (natural unit e^2/(hbar L0^(d-2))) in S (2D, or "e^2/h"), S/cm (3D, or
    "S/m"), S m (1D). E.g. 1 in eV and Angstrom, 3D: 24341 S/cm; -1/(2 pi), 2D: -3.874e-5 S.

    In the natural units of PHYSICS.md (conventions): hbar = e = k_B = 1, carrier charge -e.

    Examples:
        >>> from semiclassical_jax import units
        >>> import numpy as np
        >>> # sigma_xy = -1/(2 pi) e^2/hbar (a Chern insulator) is -e^2/h
        >>> sigma = -1 / (2 * np.pi)
        >>> f"{units.conductivity(sigma):.4e}", round(units.conductivity(sigma, to="e^2/h"), 6)
        ('-3.8740e-05', -1.0)
    """
    return to_si(value, "conductivity", units, dim, to)


def current_density(value: Any, units: UnitSystem = EV_NM, dim: int = 2, to: str | None = None):
    """A current density (natural unit e E0/(hbar L0^(d-1))) in A/m (2D), A/m^2 (3D, or
    "A/cm^2"), A (1D).

    In the natural units of PHYSICS.md (conventions): hbar = e = k_B = 1, carrier charge -e.

    Examples:
        >>> from semiclassical_jax import units
        >>> f"{units.current_density(1.0):.4e}"
        '2.4341e+05'
    """
    return to_si(value, "current_density", units, dim, to)


def second_order_conductivity(
    value: Any, units: UnitSystem = EV_NM, dim: int = 2, to: str | None = None
):
    """chi of J = chi E E (natural unit e^3 L0^(3-d)/(hbar E0)) in A m/V^2 (2D), A/V^2 (3D).

    In the natural units of PHYSICS.md (conventions): hbar = e = k_B = 1, carrier charge -e.

    Examples:
        >>> from semiclassical_jax import units
        >>> f"{units.second_order_conductivity(1.0):.4e}"
        '2.4341e-13'
    """
    return to_si(value, "second_order_conductivity", units, dim, to)


def electric_field(value: Any, units: UnitSystem = EV_NM, to: str = "V/m"):
    """A field (natural unit E0/(e L0): 1 V/nm for eV and nm) in V/m, V/cm, V/nm or V/Angstrom.

    In the natural units of PHYSICS.md (conventions): hbar = e = k_B = 1, carrier charge -e.

    Examples:
        >>> from semiclassical_jax import units
        >>> round(units.electric_field(1.0, to="V/nm"), 6)
        1.0
    """
    return to_si(value, "electric_field", units, 2, to)


__all__ = [
    "BOHR_NM",
    "BOLTZMANN_EV_PER_K",
    "ELEMENTARY_CHARGE_C",
    "ENERGY_UNITS",
    "EV_NM",
    "HARTREE_EV",
    "HBAR_EV_S",
    "LENGTH_UNITS",
    "QUANTITIES",
    "RESPONSES",
    "RYDBERG_EV",
    "UnitSystem",
    "conductivity",
    "current_density",
    "electric_field",
    "model_units",
    "natural_unit",
    "second_order_conductivity",
    "si_factor",
    "to_si",
    "units_source",
]
