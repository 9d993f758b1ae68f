"""The SSCT current in B as the direct Jones-Zener series, point by point: a reference for the
package's evaluation by parts (semiclassical_jax/transport/_magnetic.py, whose docstring has
the equations). Here the Lorentz operator L = -(q / D) (v~ x B) . d_k is applied to g1_0 by
nested forward-mode derivatives (three levels around the geometry kernel: v~, then L, then L
again), g = f0(eps~) + g1_0 + tau L g1_0 + (tau L)^2 g1_0 and J = q sum_n g_n R_n with
R = v~ - q E x Omega - q (v~ . Omega) B. The two agree after a k-sum whose integrand's total
k-derivatives integrate to zero (a periodic grid, or f0' = 0 on the grid's edge).
"""

import jax
import jax.numpy as jnp

from semiclassical_jax.geometry._kernel import band_geometry_unchecked
from semiclassical_jax.transport._distribution import level_occupations
from semiclassical_jax.transport._magnetic import cross_axial

Q = -1.0


def direct_series_current(model, k, field, b, mu, temperature, tau):
    """q sum_n g_n R_n at k (L, d) for the levels mu, temperature (L,); B as (c,)."""
    x = jnp.zeros_like(k)

    def energy(kk):
        geometry = band_geometry_unchecked(model, x, kk)
        omega = geometry.curvature_vector()
        eps = geometry.moment_energy(b)
        return eps, (eps, 1.0 + omega @ b, omega)

    def band(kk):
        velocity, (eps, factor, omega) = jax.jacfwd(energy, has_aux=True)(kk)
        return eps, velocity, factor, omega

    def zeroth(kk):  # g1_0 (L, N)
        local = band(kk)
        eps, velocity, factor, omega = local
        _, slope, _ = level_occupations(eps, mu, temperature)
        drive = velocity @ field
        if kk.shape[0] == 3:
            drive = drive - Q * jnp.dot(field, b) * jnp.sum(omega * velocity, axis=-1)
        g = -tau * slope * Q * drive / factor
        return g, (g, local)

    def lorentz(gradient, local):  # tau L g from d_k g (L, N, d)
        _, velocity, factor, _ = local
        return -tau * Q * jnp.sum(gradient * cross_axial(velocity, b)[None], axis=-1) / factor

    def first(kk):  # tau L g1_0 (L, N)
        gradient, (g, local) = jax.jacfwd(zeroth, has_aux=True)(kk)
        h = lorentz(gradient, local)
        return h, (g, h, local)

    gradient, (g, h, local) = jax.jacfwd(first, has_aux=True)(k)
    g1 = g + h + lorentz(gradient, local)
    eps, velocity, factor, omega = local
    f0, _, _ = level_occupations(eps, mu, temperature)
    if k.shape[0] == 2:
        rate = velocity - Q * omega * jnp.stack([field[1], -field[0]])[None, :]
    else:
        rate = velocity - Q * jnp.cross(field[None, :], omega)
        rate = rate - Q * jnp.sum(velocity * omega, axis=-1)[:, None] * b[None, :]
    return Q * (f0 + g1) @ rate
