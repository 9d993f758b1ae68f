"""Wavepacket dynamics in a magnetic field B (PHYSICS.md section 5; charge q = -1).

* Abelian, band n of a uniform model: the coupled equations dx/dt = v~ - (dk/dt) x Omega,
  dk/dt = q E + q (dx/dt) x B in solved form, with eps~ = eps_n - m_n . B, v~ = d eps~ / dk,
  Omega_c = eps_abc Omega^{k_a k_b} / 2 and D = 1 - q B . Omega = 1 + B . Omega:
      D dx/dt = v~ - q E x Omega - q (v~ . Omega) B,
      D dk/dt = q E + q v~ x B - q^2 (E . B) Omega.
  d m_n / dk comes from forward-mode autodiff of the kernel's (gauge-invariant) moment. A
  position-dependent B(x) adds the force -d eps~ / dx = m_n . dB/dx, i.e. E -> E - m_n . dB/dx.
* full band: the Lorentz force q (dx/dt) x B on dk/dt, dx/dt the wavepacket velocity.

2D vectors are embedded in 3D (B = B_z z, Omega = Omega^{kx ky} z), so (v~ . Omega) B = 0 and
E . B = 0 there. Units: natural (hbar = e = 1), B as an inverse area.
"""

from typing import Any

import jax
import jax.numpy as jnp

from .._guards import magnetic_field_at
from .._types import Array, Float
from ..geometry._kernel import BandGeometry, band_geometry_unchecked

CHARGE = -1.0


def as_vector3(value: Float[Array, " c"], dim: int) -> Float[Array, " 3"]:
    """A (d,) in-plane vector (``dim`` = 2, or any (3,)) or a (1,) z component as a 3-vector."""
    if value.shape[-1] == 3:
        return value
    if value.shape[-1] == 1:
        return jnp.concatenate([jnp.zeros(2, value.dtype), value])
    return jnp.concatenate([value, jnp.zeros(3 - dim, value.dtype)])


def lorentz_force(velocity: Float[Array, " d"], magnetic_field: Float[Array, " c"]) -> Array:
    """q v x B (d,) for a velocity v (d,) and B as (c,) components (d = 2: B_z; d = 3)."""
    d = velocity.shape[0]
    force = CHARGE * jnp.cross(as_vector3(velocity, d), as_vector3(magnetic_field, d))
    return force[:d]


def require_uniform(geometry: BandGeometry, method: str) -> None:
    """The Abelian magnetic equations here need dH/dx = 0 (a uniform model)."""
    if not geometry.uniform or geometry.position_curvature is not None:
        raise NotImplementedError(
            f"evolve(method={method!r}, magnetic_field=...) supports uniform models (H independent "
            "of x, no intra-cell position terms) only; for a textured model use method='full'"
        )


def magnetic_velocity(
    model, x: Float[Array, " d"], k: Float[Array, " d"], band: int, electric_field, magnetic: Any
) -> tuple[Float[Array, " 2d"], BandGeometry]:
    """(dlambda/dt = (dx/dt, dk/dt) (2d,), the geometry at (x, k)) of ``band`` in E and B
    (module docstring; ``magnetic`` a checked field: (c,) components or a callable B(x))."""
    d = x.shape[0]
    field_at_x = magnetic_field_at(magnetic, x, d)

    def moment_energy(kk):  # m_n(k) . B: its k-derivative by forward mode (gauge invariant)
        geometry = band_geometry_unchecked(model, x, kk)
        require_uniform(geometry, "abelian")
        moment = geometry.orbital_moment()[band]
        return moment @ field_at_x, (geometry, moment)

    d_moment_energy, (geometry, moment) = jax.jacfwd(moment_energy, has_aux=True)(k)
    electric = electric_field
    if callable(magnetic):  # q E' = q E - d eps~/dx = q E + m . dB/dx
        d_field = jax.jacfwd(lambda xx: magnetic_field_at(magnetic, xx, d))(x)  # (c, d)
        electric = electric + (moment @ d_field) / CHARGE
    velocity = jnp.real(geometry.dH[d:, band, band]) - d_moment_energy
    omega = as_vector3(geometry.curvature_vector()[band], d)
    b = as_vector3(field_at_x, d)
    v, e = as_vector3(velocity, d), as_vector3(electric, d)
    factor = 1.0 - CHARGE * jnp.dot(b, omega)
    dx = v - CHARGE * jnp.cross(e, omega) - CHARGE * jnp.dot(v, omega) * b
    dk = CHARGE * e + CHARGE * jnp.cross(v, b) - CHARGE**2 * jnp.dot(e, b) * omega
    return jnp.concatenate([dx[:d], dk[:d]]) / factor, geometry


def phase_space_factor_at(geometry: BandGeometry, band: int, magnetic: Any, x) -> Array:
    """D = 1 + B(x) . Omega_band at one point (scalar)."""
    field_at_x = magnetic_field_at(magnetic, x, x.shape[0])
    return geometry.phase_space_factor(field_at_x)[band]


def moment_energy_at(geometry: BandGeometry, band: int, magnetic: Any, x) -> Array:
    """eps~ = eps_band - m_band . B(x) at one point (scalar)."""
    field_at_x = magnetic_field_at(magnetic, x, x.shape[0])
    return geometry.moment_energy(field_at_x)[band]
