"""Equilibrium occupation (PHYSICS.md section 3): the Fermi-Dirac function and its derivative."""

import jax
import jax.numpy as jnp

from .._types import Array, Bool, Float


def fermi_dirac(energy: Array, mu: Array, temperature: Array) -> Array:
    """f0(eps) = 1 / (exp((eps - mu) / T) + 1) (k_B = 1), the equilibrium occupation of PHYSICS.md
    section 3.

    ``energy``, ``mu``, ``temperature``: arrays that broadcast together, all in the energy unit;
    the result has their broadcast shape.

    T = 0 is the zero-temperature limit, the step theta(mu - eps) with f0(mu) = 1/2; it serves the
    Fermi-sea quantities (intrinsic Hall conductivity, Eq. 53), never the Fermi-surface terms.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> # f(mu) = 1/2; f(mu + T ln 3) = 1/4
        >>> print(np.round(sj.fermi_dirac(np.array([0.0, 0.1 * np.log(3.0)]), 0.0, 0.1), 6))
        [0.5  0.25]
    """
    positive = temperature > 0
    scaled = (mu - energy) / jnp.where(positive, temperature, 1.0)
    step = jnp.where(energy < mu, 1.0, jnp.where(energy > mu, 0.0, 0.5))
    return jnp.where(positive, jax.nn.sigmoid(scaled), step)


def fermi_dirac_derivative(energy: Array, mu: Array, temperature: Array) -> Array:
    """df0/deps = -f0 (1 - f0) / T, written as -sigmoid(s) sigmoid(-s) / T to keep both tails accurate.

    At T = 0 it returns 0 (the step's derivative away from mu): only the degenerate-block
    correction of the Fermi-sea quantities uses it there (``_degenerate.weighted_trace``); the
    Fermi-surface terms need T > 0 (the public functions check it).
    """
    positive = temperature > 0
    safe = jnp.where(positive, temperature, 1.0)
    scaled = (mu - energy) / safe
    return jnp.where(positive, -jax.nn.sigmoid(scaled) * jax.nn.sigmoid(-scaled) / safe, 0.0)


# An occupation within this of 0 or 1 is exactly empty or full (the float64 resolution of 1:
# sigmoid already rounds to 1.0 beyond (mu - eps) / T ~ 37, and this flushes the other tail).
SATURATION = 2.0**-53


def occupation_levels(energy: Array, mu: Array, temperature: Array) -> Array:
    """f0(eps) with values within SATURATION of 0 or 1 set to exactly 0 or 1.

    Two bands at the same level (both full or both empty) have pairwise-cancelling Fermi-sea terms
    and vanishing Fermi-surface weights f0' (to 2^-53 / T): the integrands drop their pair terms.
    """
    f = fermi_dirac(energy, mu, temperature)
    return jnp.where(f <= SATURATION, 0.0, jnp.where(f >= 1.0 - SATURATION, 1.0, f))


def equal_occupation(levels: Array) -> Array:
    """[..., n, m] True where bands n and m are at the same occupation level (Fermi-sea pairs that
    cancel: sum_n f_n Omega_n = sum_{n<m} (f_n - f_m) Omega_nm); ``levels`` (..., n)."""
    return levels[..., :, None] == levels[..., None, :]


def inactive_pairs(levels: Array) -> Array:
    """[..., n, m] True where both bands are exactly full or empty (Fermi-surface weights f0'
    vanish); ``levels`` (..., n)."""
    saturated = (levels == 0.0) | (levels == 1.0)
    return saturated[..., :, None] & saturated[..., None, :]


def level_occupations(
    energies: Float[Array, " n"], mu: Float[Array, " L"], temperature: Float[Array, " L"]
) -> tuple[Float[Array, "L n"], Float[Array, "L n"], Float[Array, "L n"]]:
    """(f0, f0', :func:`occupation_levels`) of every band at each of L levels (mu_l, T_l).

    A Fermi-level scan: the band energies of one k-point against all levels at once.
    """
    e, m, t = energies[None, :], mu[:, None], temperature[:, None]
    return (
        fermi_dirac(e, m, t),
        fermi_dirac_derivative(e, m, t),
        occupation_levels(e, m, t),
    )


def at_every_level(per_level: Bool[Array, "L n n"]) -> Bool[Array, "n n"]:
    """The pairs droppable at every level: the geometry of a point is computed once for all levels,
    so a pair term is left out of it only where every level's occupation-weighted sum loses it."""
    return jnp.all(per_level, axis=0)
