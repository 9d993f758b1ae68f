"""SSCT current in a uniform magnetic field B (PHYSICS.md section 5), per k-point, charge q = -1.

Equations (uniform model, relaxation time tau, E-linear distribution):

    eps~ = eps - m . B,   v~ = d eps~ / dk (dm/dk by forward autodiff of the kernel's moment),
    D = 1 + B . Omega,
    D dk/dt = q E + q v~ x B - q^2 (E . B) Omega,
    D dx/dt = v~ - q E x Omega - q (v~ . Omega) B,
    g = f0(eps~) + g1,  g1 = sum_{n <= 2} (tau L)^n g1_0       (Jones-Zener, second order in B),
    g1_0 = -tau f0'(eps~) (q / D) (E - q (E . B) Omega) . v~,
    L = -(q / D) (v~ x B) . d_k,
    J = q sum_n int dk (D dx/dt)_n g_n.

f0(eps~) is annihilated by the Lorentz term ((v~ x B) . v~ = 0), so only g1 carries it. L is
applied by nested forward-mode derivatives (``jax.jacfwd``) of the per-point function, band by
band (each band has its own direction v~_n x B). In 2D, B = B_z z and Omega = Omega^{kx ky} z, so
E . B = 0, v~ . Omega = 0, v x B = B_z (v_y, -v_x) and E x Omega = Omega (E_y, -E_x).

Validity: the expansion needs D > 0 (|B . Omega| < 1, a magnetic length longer than the
curvature's length scale); each point reports its smallest D and the transport callers raise,
naming ``magnetic_field``, where it is <= 0 on the grid (``_cores.check_diagnostics``). T = 0 is
refused by the callers: g1 ~ f0'(eps~) is then a delta function on the Fermi surface, which a
k-grid sum does not resolve (a small T that the grid resolves gives the T -> 0 limit; L is
tangent to the constant-eps~ surfaces, so no f0'' appears).
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .._guards import magnetic_field_at
from .._types import Array, Bool, Float
from ..geometry._kernel import BandGeometry, band_geometry_unchecked
from ..models import AbstractModel
from ._distribution import level_occupations

CHARGE = -1.0


def cross_axial(vector: Float[Array, "n d"], axial: Float[Array, " c"]) -> Float[Array, "n d"]:
    """vector x axial for each row: in 2D the axial vector is (c,) = (its z component,)."""
    if vector.shape[-1] == 2:
        return axial[0] * jnp.stack([vector[:, 1], -vector[:, 0]], axis=-1)
    return jnp.cross(vector, axial)


def _moment_band(
    model: AbstractModel, x: Array, b: Array
) -> Callable[[Array], tuple[Array, Array, Array, Array]]:
    """k -> (eps~ (N,), (v~ (N, d), D (N,), Omega (N, c))) at fixed x and B."""

    def energy(k: Array) -> tuple[Array, tuple[Array, Array, Array]]:
        geometry: BandGeometry = band_geometry_unchecked(model, x, k)
        omega = geometry.curvature_vector()
        eps = geometry.moment_energy(b)
        return eps, (eps, 1.0 + omega @ b, omega)

    def band(k: Array) -> tuple[Array, Array, Array, Array]:
        velocity, (eps, factor, omega) = jax.jacfwd(energy, has_aux=True)(k)  # v~ (N, d)
        return eps, velocity, factor, omega

    return band


def ssct_magnetic_current(
    model: AbstractModel,
    x: Float[Array, " d"],
    k: Float[Array, " d"],
    field: Float[Array, " d"],
    magnetic_field: Float[Array, " c"],
    mu: Float[Array, " L"],
    temperature: Float[Array, " L"],
    tau: Float[Array, ""],
) -> tuple[Float[Array, "L d"], Float[Array, " n"]]:
    """The SSCT current integrand q sum_n (D dx/dt)_n g_n at one k-point in E and B (equations in
    the module docstring), at each of the L levels, and the phase-space factor D_n of each band
    (n,) at the point; ``magnetic_field`` (c,): B_z in 2D, (3,) in 3D. Units: natural (hbar = e =
    1), as :func:`._integrands.ssct_current`."""
    q, b = CHARGE, magnetic_field
    band = _moment_band(model, x, b)

    def zeroth(kk: Array) -> tuple[Array, tuple[Array, tuple]]:  # g1_0 (L, N)
        local = band(kk)
        eps, velocity, factor, omega = local
        _, slope, _ = level_occupations(eps, mu, temperature)
        drive = velocity @ field  # E . v~ (N,)
        if kk.shape[0] == 3:
            drive = drive - q * jnp.dot(field, b) * jnp.sum(omega * velocity, axis=-1)
        g = -tau * slope * q * drive / factor
        return g, (g, local)

    def lorentz(gradient: Array, local: tuple) -> Array:
        """tau L g from d_k g (L, N, d): L = -(q / D) (v~ x B) . d_k, band by band."""
        _, velocity, factor, _ = local
        direction = cross_axial(velocity, b)  # (N, d)
        return -tau * q * jnp.sum(gradient * direction[None], axis=-1) / factor

    def first(kk: Array) -> tuple[Array, tuple[Array, Array, tuple]]:  # tau L g1_0 (L, N)
        gradient, (g, local) = jax.jacfwd(zeroth, has_aux=True)(kk)
        h = lorentz(gradient, local)
        return h, (g, h, local)

    # one nested forward pass: d_k (tau L g1_0) with g1_0, tau L g1_0 and the band at k as aux
    gradient, (g, h, local) = jax.jacfwd(first, has_aux=True)(k)
    g1 = g + h + lorentz(gradient, local)
    eps, velocity, factor, omega = local
    f0, _, _ = level_occupations(eps, mu, temperature)
    if k.shape[0] == 2:  # E x (Omega z) = Omega (E_y, -E_x); v~ . Omega = 0
        rate = velocity - q * omega * jnp.stack([field[1], -field[0]])[None, :]  # (N, d)
    else:
        rate = velocity - q * jnp.cross(field[None, :], omega)
        rate = rate - q * jnp.sum(velocity * omega, axis=-1)[:, None] * b[None, :]
    return q * (f0 + g1) @ rate, factor


def magnetic_current(
    model: AbstractModel,
    geometry: BandGeometry,
    x: Float[Array, " d"],
    k: Float[Array, " d"],
    field: Float[Array, " d"],
    magnetic_field: Any,
    mu: Float[Array, " L"],
    temperature: Float[Array, " L"],
    tau: Float[Array, ""],
) -> tuple[Float[Array, "L d"], Bool[Array, "L n n"], Float[Array, " n"]]:
    """:func:`ssct_magnetic_current` at (x, k) for a checked ``magnetic_field`` ((c,) or B(x)),
    with the pairs it divides by (the moment and the curvature divide by every gap) and the
    phase-space factor it divides by: (J of each level, relevant pairs of each level, D of each
    band; the caller raises where D <= 0). ``geometry``: the point's (checked) geometry; a model
    that depends on x raises ValueError (the magnetic theory here is for uniform models)."""
    if not geometry.uniform:
        raise ValueError(
            "magnetic_field: the SSCT current in B needs a uniform model (H independent of x); "
            "this model depends on position"
        )
    b = magnetic_field_at(magnetic_field, x, k.shape[0])
    value, factor = ssct_magnetic_current(model, x, k, field, b, mu, temperature, tau)
    n = geometry.n_bands
    relevant = jnp.broadcast_to(~jnp.eye(n, dtype=bool), (mu.shape[0], n, n))
    return value, relevant, factor
