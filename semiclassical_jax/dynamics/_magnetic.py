"""Wavepacket dynamics in a magnetic field B (PHYSICS.md section 5; charge q = -1).

* Abelian, band n of a uniform model: the coupled equations dx/dt = v~ - (dk/dt) x Omega,
  dk/dt = q E + q (dx/dt) x B in solved form, with eps~ = eps_n - m_n . B, v~ = d eps~ / dk,
  Omega_c = eps_abc Omega^{k_a k_b} / 2 and D = 1 - q B . Omega = 1 + B . Omega:
      D dx/dt = v~ - q E x Omega - q (v~ . Omega) B,
      D dk/dt = q E + q v~ x B - q^2 (E . B) Omega.
  d m_n / dk comes from forward-mode autodiff of the kernel's (gauge-invariant) moment (for a
  two-band H = d0 + d . sigma of its closed form, :func:`_two_band_terms`: no eigh to
  differentiate, a much cheaper reverse pass under jax.grad). A position-dependent B(x) adds
  the force -d eps~ / dx = m_n . dB/dx, i.e. E -> E - m_n . dB/dx.
* full band: the Lorentz force q (dx/dt) x B on dk/dt, dx/dt the wavepacket velocity.

2D vectors are embedded in 3D (B = B_z z, Omega = Omega^{kx ky} z), so (v~ . Omega) B = 0 and
E . B = 0 there. Units: natural (hbar = e = 1), B as an inverse area.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._eigh import degeneracy_tolerance
from .._guards import magnetic_field_at
from .._types import Array, Float
from ..geometry._kernel import (
    BandGeometry,
    axial_pairs,
    band_geometry_unchecked,
    depends_on_position,
    intracell_position,
)

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


def _pauli_vector(model, x, k) -> Float[Array, " 4"]:
    """(d0, dx, dy, dz) of the Hermitian part of a two-band H(x, k) = d0 + d . sigma."""
    h = jnp.asarray(model(x, k))
    return 0.5 * jnp.stack(
        [
            jnp.real(h[0, 0] + h[1, 1]),
            jnp.real(h[0, 1] + h[1, 0]),
            jnp.imag(h[1, 0] - h[0, 1]),
            jnp.real(h[0, 0] - h[1, 1]),
        ]
    )


def _two_band_terms(model, x, k, band: int):
    """(d eps/dk (d,), Omega (c,), m (c,)) of band 0 (s = -1) or 1 (s = +1) of a two-band
    H = d0 + d . sigma, closed form: with r = |d|, P_a = dd/dk_a and (a, b, c) cyclic,
        m_c = -d . (P_a x P_b) / (2 r^2)  (both bands),   Omega_c = s m_c / r,
    (massive Dirac: m_z = -valley Delta v^2 / (2 r^2), the kernel's moment); 0 at a closed gap."""
    q = _pauli_vector(model, x, k)
    dq = jax.jacfwd(lambda kk: _pauli_vector(model, x, kk))(k).T  # (d, 4)
    sign = -1.0 if band == 0 else 1.0
    vector, derivative = q[1:], dq[:, 1:]
    r2 = jnp.sum(vector**2)
    positive = r2 > jnp.finfo(r2.dtype).tiny
    r = jnp.sqrt(jnp.where(positive, r2, 1.0))
    gapped = positive & (2.0 * r > degeneracy_tolerance(jnp.stack([q[0] - r, q[0] + r])))
    n = jnp.where(gapped, vector / r, np.array([0.0, 0.0, -1.0]))
    gradient = dq[:, 0] + sign * derivative @ n
    triple = jnp.stack(
        [
            jnp.dot(vector, jnp.cross(derivative[a], derivative[b]))
            for a, b in axial_pairs(k.shape[0])
        ]
    )
    moment = jnp.where(gapped, -triple / (2.0 * jnp.where(gapped, r2, 1.0)), 0.0)
    return gradient, sign * moment / r, moment


def _band_terms(model, x, k, band: int, field_at_x):
    """(d eps~/dk (d,), Omega (c,), m (c,)) of ``band``: d (m . B)/dk by forward mode."""
    if depends_on_position(model, x, k) or intracell_position(model, x, k) is not None:
        raise NotImplementedError(
            "evolve(method='abelian', magnetic_field=...) supports uniform models (H independent "
            "of x, no intra-cell position terms) only; for a textured model use method='full'"
        )
    if int(model.n_bands) == 2:

        def moment_energy(kk):
            gradient, omega, moment = _two_band_terms(model, x, kk, band)
            return moment @ field_at_x, (gradient, omega, moment)
    else:

        def moment_energy(kk):
            geometry = band_geometry_unchecked(model, x, kk)
            gradient = jnp.real(geometry.dH[x.shape[0] :, band, band])
            moment = geometry.orbital_moment()[band]
            return moment @ field_at_x, (gradient, geometry.curvature_vector()[band], moment)

    d_moment_energy, (gradient, omega, moment) = jax.jacfwd(moment_energy, has_aux=True)(k)
    return gradient - d_moment_energy, omega, moment


def magnetic_velocity(
    model, x: Float[Array, " d"], k: Float[Array, " d"], band: int, electric_field, magnetic: Any
) -> Float[Array, " 2d"]:
    """dlambda/dt = (dx/dt, dk/dt) (2d,) of ``band`` in E and B (module docstring; ``magnetic``
    a checked field: (c,) components or a callable B(x))."""
    d = x.shape[0]
    field_at_x = magnetic_field_at(magnetic, x, d)
    velocity, omega, moment = _band_terms(model, x, k, band, field_at_x)
    electric = electric_field
    if callable(magnetic):  # q E' = q E - d eps~/dx = q E + m . dB/dx
        d_field = jax.jacfwd(lambda xx: magnetic_field_at(magnetic, xx, d))(x)  # (c, d)
        electric = electric + (moment @ d_field) / CHARGE
    return solved_rates(velocity, omega, electric, field_at_x)


def solved_rates(velocity, omega, electric, field_at_x) -> Float[Array, " 2d"]:
    """(dx/dt, dk/dt) (2d,) of the solved section-5 equations (module docstring) from v~ (d,),
    Omega (c,), E (d,) and B (c,)."""
    d = velocity.shape[0]
    v, e = as_vector3(velocity, d), as_vector3(electric, d)
    b, o = as_vector3(field_at_x, d), as_vector3(omega, d)
    factor = 1.0 - CHARGE * jnp.dot(b, o)
    dx = v - CHARGE * jnp.cross(e, o) - CHARGE * jnp.dot(v, o) * b
    dk = CHARGE * e + CHARGE * jnp.cross(v, b) - CHARGE**2 * jnp.dot(e, b) * o
    return jnp.concatenate([dx[:d], dk[:d]]) / factor


def phase_space_factor_at(geometry: BandGeometry, band: int, magnetic: Any, x) -> Array:
    """D = 1 + B(x) . Omega_band at one point (scalar)."""
    field_at_x = magnetic_field_at(magnetic, x, x.shape[0])
    return geometry.phase_space_factor(field_at_x)[band]


def moment_energy_at(geometry: BandGeometry, band: int, magnetic: Any, x) -> Array:
    """eps~ = eps_band - m_band . B(x) at one point (scalar)."""
    field_at_x = magnetic_field_at(magnetic, x, x.shape[0])
    return geometry.moment_energy(field_at_x)[band]
