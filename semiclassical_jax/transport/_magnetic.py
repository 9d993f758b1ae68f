"""Currents in a uniform magnetic field B (PHYSICS.md section 5), per k-point, charge q = -1:
the SSCT current, and the evaluation that it shares with the MSCT current in B
(:mod:`._magnetic_msct`).

Each band (an SSCT band n, or a hybridised band of MSCT) is an Abelian band in B with energy
eps~ = eps - m . B, v~ = d eps~ / dk (forward autodiff of the kernel's moment), curvature Omega
(Omega_c = eps_abc Omega^{k_a k_b} / 2), D = 1 + B . Omega, and the field's anomalous velocity
a (SSCT: a = -q E x Omega). With V = v~ + a, eliminating dk/dt = q E + q dx/dt x B gives

    D dx/dt = V - q (V . Omega) B,        D dk/dt = q D E + q V x B,

and the Boltzmann equation in the relaxation-time approximation, E-linear in the distribution,
the Lorentz part to second order in B (Jones-Zener):

    g = f0(eps~) + sum_{n <= 2} (tau L)^n g1_0,   L = -(q / D) (v~ x B) . d_k,
    g1_0 = -tau q f0'(eps~) X,   X = dk/dt . v~ / q = E . v~ + (a x B) . v~ / D,
    J = q sum_n int dk g_n R_n,   R = D dx/dt.

For SSCT, X = (E - q (E . B) Omega) . v~ / D and R = v~ - q E x Omega - q (v~ . Omega) B (in 2D,
B = B_z z, E . B = 0, v~ . Omega = 0 and E x Omega = Omega (E_y, -E_x)). f0(eps~) is annihilated
by the Lorentz term ((v~ x B) . v~ = 0), so only g1 carries it.

Evaluation by parts, one nested derivative instead of the direct series' three: L leaves
f0'(eps~) alone, and int f0' (tau L Y) R = int f0' Y (tau L' R) with
tau L' R = tau q (v~ x B) . d_k (R / D) (d_k . (v~ x B) = 0 as v~ is a gradient,
(v~ x B) . d_k f0' = 0, and f0' vanishes on the grid's edge or the grid is periodic), so

    J = q sum_n int dk { f0(eps~) R - tau q f0'(eps~) [X (R + tau L' R) + (tau L X)(tau L' R)] },

which needs only d_k X and d_k (R / D): one forward pass over the first derivatives of eps~,
shared by every Fermi level (f0' enters after the derivatives). It equals the direct series after
the k-sum (to the quadrature error of a total derivative), not point by point
(tests/test_magnetotransport.py checks both against each other and against closed forms).

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


# What the bands of a point hand on to :func:`by_parts_current`: (eps~ (N,), v~ (N, d), the field's
# anomalous velocity a (N, d), D (N,), Omega (N, c), anything else the caller wants back).
Local = tuple[Array, Array, Array, Array, Array, Any]


def _field_cross_curvature(field: Float[Array, " d"], omega: Float[Array, "n c"]) -> Array:
    """E x Omega of each band (n, d); in 2D Omega = Omega_z z and E x Omega = Omega (E_y, -E_x)."""
    if field.shape[0] == 2:
        return omega[:, :1] * jnp.stack([field[1], -field[0]])[None, :]
    return jnp.cross(field[None, :], omega)


def _ssct_bands(model: AbstractModel, x: Array, b: Array, field: Array) -> Callable[[Array], Local]:
    """k -> the SSCT bands at (x, k) as :data:`Local` (a = -q E x Omega; extra: ())."""

    def energy(k: Array) -> tuple[Array, tuple[Array, Array]]:
        geometry: BandGeometry = band_geometry_unchecked(model, x, k)
        omega = geometry.curvature_vector()
        eps = geometry.moment_energy(b)
        return eps, (eps, omega)

    def band(k: Array) -> Local:
        velocity, (eps, omega) = jax.jacfwd(energy, has_aux=True)(k)  # v~ (N, d)
        anomalous = -CHARGE * _field_cross_curvature(field, omega)
        return eps, velocity, anomalous, 1.0 + omega @ b, omega, ()

    return band


def by_parts_current(
    band: Callable[[Array], Local],
    k: Float[Array, " d"],
    field: Float[Array, " d"],
    b: Float[Array, " c"],
    mu: Float[Array, " L"],
    temperature: Float[Array, " L"],
    tau: Float[Array, ""],
) -> tuple[Float[Array, "L d"], Local]:
    """q sum_n int-dk integrand of J at k, each of the L levels, evaluated by parts (module
    docstring), and the bands at k (``band(k)``). Units: natural (hbar = e = 1)."""
    q = CHARGE

    def drive_and_rate(kk: Array) -> tuple[tuple[Array, Array], tuple[Array, Array, Local]]:
        """(X (N,), R / D (N, d)) at kk, with X, R and the bands as aux."""
        local = band(kk)
        _, velocity, anomalous, factor, omega, _ = local
        drive = velocity @ field + jnp.sum(cross_axial(anomalous, b) * velocity, axis=-1) / factor
        rate = velocity + anomalous  # V; D dx/dt = V - q (V . Omega) B
        if kk.shape[0] == 3:
            rate = rate - q * jnp.sum(rate * omega, axis=-1)[:, None] * b[None, :]
        return (drive, rate / factor[:, None]), (drive, rate, local)

    (d_drive, d_scaled), (drive, rate, local) = jax.jacfwd(drive_and_rate, has_aux=True)(k)
    shifted, velocity, _, factor, _, _ = local
    direction = cross_axial(velocity, b)  # v~ x B (N, d)
    lorentz_drive = -tau * q * jnp.sum(d_drive * direction, axis=-1) / factor  # tau L X
    lorentz_rate = tau * q * jnp.einsum("nc,nac->na", direction, d_scaled)  # tau L' R
    relaxation = drive[:, None] * (rate + lorentz_rate) + lorentz_drive[:, None] * lorentz_rate
    f0, slope, _ = level_occupations(shifted, mu, temperature)  # (L, N)
    return q * f0 @ rate - tau * q**2 * slope @ relaxation, local


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
    """The SSCT current integrand q sum_n (D dx/dt)_n g_n at one k-point in E and B (module
    docstring; evaluated by parts), at each of the L levels, and the phase-space factor D_n of
    each band (n,) at the point; ``magnetic_field`` (c,): B_z in 2D, (3,) in 3D. Units: natural
    (hbar = e = 1), as :func:`._integrands.ssct_current`."""
    band = _ssct_bands(model, x, magnetic_field, field)
    value, local = by_parts_current(band, k, field, magnetic_field, mu, temperature, tau)
    return value, local[3]


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
