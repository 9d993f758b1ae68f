"""Natural units of the package and their physical values.

The package works in hbar = e = k_B = 1 with a free choice of energy and length unit. Choosing
energy in eV and length in nm (the default :data:`EV_NM`) fixes every other unit:

| quantity | natural unit | physical value (EV_NM) |
|---|---|---|
| energy | E0 | 1 eV |
| length | L0 | 1 nm |
| wavevector | 1/L0 | 1 nm^-1 |
| time | hbar / E0 | 0.6582 fs |
| velocity | E0 L0 / hbar | 1.519e6 m/s |
| electric field | E0 / (e L0) | 1 V/nm |
| temperature | E0 / k_B | 11604.5 K |
| 2D conductance | e^2 / hbar | 2.434e-4 S (so e^2/h = 1/(2 pi)) |
| 2D current density | e E0 / (hbar L0) | 2.434e5 A/m |
"""

import dataclasses

HBAR_EV_S = 6.582119569e-16  # hbar in eV s (exact SI definitions)
ELEMENTARY_CHARGE_C = 1.602176634e-19
BOLTZMANN_EV_PER_K = 8.617333262e-5


@dataclasses.dataclass(frozen=True)
class UnitSystem:
    """Natural units with energy unit ``energy_ev`` (in eV) and length unit ``length_nm`` (in nm)."""

    energy_ev: float = 1.0
    length_nm: float = 1.0

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

__all__ = ["BOLTZMANN_EV_PER_K", "ELEMENTARY_CHARGE_C", "EV_NM", "HBAR_EV_S", "UnitSystem"]
