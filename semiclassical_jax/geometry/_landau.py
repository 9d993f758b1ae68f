"""Landau levels of a 2D band from Onsager quantisation with the Berry phase and the orbital moment
(PHYSICS.md section 5; Xiao, Chang, Niu, RMP 82, 1959 (2010), the modified Onsager rule).

Level n (n = 0, 1, ...) is the energy E of the contour eps~(k) = E, eps~ = eps - m_z B_z, with

    S(E) = 2 pi |B| (n + 1/2 - Gamma(E) / 2 pi),   Gamma(E) = -sign(q B) Phi(E) = sign(B_z) Phi(E),

S the k-area inside the contour and Phi = the integral of Omega^{kx ky} over it (q = -1, units
where q B / hbar is an inverse area). Orientation (derived, then pinned by the tests): Gamma is the
Berry phase of the orbit run the way it moves, dk/dt = q v x B, counted with the sign of its
action. An electron-like orbit (around a minimum) runs clockwise for q B > 0, so Gamma = -Phi; a
hole-like orbit (around a maximum) runs the other way, but its action S / (q B) x orientation
changes sign with it, so the quantisation condition holds for minus its phase and the Berry term
enters the same way: Gamma = -sign(q B) Phi = sign(B_z) Phi for both. Pinned by the exact massive
Dirac levels (tests/test_landau_levels.py): the single n = 0 level sits at +Delta for
valley = +1, Delta > 0, B_z < 0 (q B > 0), and each breakage (no Gamma, the other orientation,
the moment's sign flipped) fails them.

Route: the contour is star-shaped around a band extremum k0. M rays k0 + r (cos t, sin t) (uniform
t, trapezoid rule: spectral for a periodic integrand) give r(t) by bisection on eps~ plus one
Newton step, S = (1/2) int r^2 dt and Phi = int dt int_0^r(t) Omega rho d rho (radial
Gauss-Legendre); each level is then a bisection in E on S + B_z Phi - 2 pi |B| (n + 1/2) plus one
Newton step. The Newton steps make the result differentiable (implicit-function derivatives, e.g.
d E_n / d B).
"""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._guards import (
    Guards,
    check_concrete_model,
    check_model,
    check_output_shape,
    check_point,
    fail,
    integer,
    positive,
)
from .._guards import magnetic_field as checked_field
from .._types import Array, Float, PositionLike, WavevectorLike
from ..models import AbstractModel
from ._kernel import band_geometry_unchecked

# Bisection steps (each halves the bracket: 2^-44 ~ 6e-14 of it), then one Newton step.
RADIUS_STEPS = 44
ENERGY_STEPS = 44


def _frozen(tree: Any) -> Any:
    """``tree`` with every array leaf held constant (no derivative flows through the bisections)."""
    return jax.tree_util.tree_map(
        lambda leaf: lax.stop_gradient(leaf) if eqx.is_array(leaf) else leaf, tree
    )


def _bisect(f: Callable[[Array], Array], lo: Array, hi: Array, steps: int) -> Array:
    """The root of f (increasing, f(lo) < 0 < f(hi)) by ``steps`` bisections (vectorised). f must
    close over :func:`_frozen` values only: the loop then needs no derivative (fast to compile)."""

    def step(_, bracket):
        a, b = bracket
        mid = 0.5 * (a + b)
        below = f(mid) < 0
        return jnp.where(below, mid, a), jnp.where(below, b, mid)

    a, b = lax.fori_loop(0, steps, step, (lo, hi))
    return 0.5 * (a + b)


class _Orbits(eqx.Module):
    """The band's oriented energy u = s eps~ (s = +1 around a minimum, -1 around a maximum) and
    curvature on the rays k0 + r e(t), and the contour integrals at an energy u."""

    model: AbstractModel
    x: Array
    extremum: Array
    field: Array  # (1,) B_z
    sense: Array  # s
    directions: Array  # (M, 2)
    nodes: Array  # (R,) Gauss-Legendre on [0, 1]
    weights: Array  # (R,)
    radius: Array
    band: Array  # () int: traced, so one compilation serves every band

    def energy(self, direction: Array, r: Array) -> Array:
        geometry = band_geometry_unchecked(self.model, self.x, self.extremum + r * direction)
        return self.sense * geometry.moment_energy(self.field)[self.band]

    def energy_and_curvature(self, direction: Array, r: Array) -> tuple[Array, Array]:
        geometry = band_geometry_unchecked(self.model, self.x, self.extremum + r * direction)
        energy = self.sense * geometry.moment_energy(self.field)[self.band]
        return energy, geometry.curvature_vector()[self.band, 0]

    def radii(self, level: Array) -> Float[Array, " m"]:
        """r (M,) of the contour u = level on every ray, by bisection (held constant)."""
        frozen, frozen_level = _frozen((self, level))

        def ray(direction):
            def f(r):
                return frozen.energy(direction, r) - frozen_level

            return _bisect(f, jnp.zeros(()), frozen.radius, RADIUS_STEPS)

        return jax.vmap(ray)(self.directions)

    def flux(self, r: Float[Array, " m"]) -> tuple[Array, Array]:
        """(Phi, u at the radial nodes (M, R)) inside the contour r(t): radial Gauss-Legendre,
        int_0^r Omega rho d rho = r^2 sum_j w_j t_j Omega(t_j r), trapezoid in t."""
        rho = r[:, None] * self.nodes[None, :]
        energy, omega = jax.vmap(jax.vmap(self.energy_and_curvature, (None, 0)), (0, 0))(
            self.directions, rho
        )
        dt = 2 * jnp.pi / self.directions.shape[0]
        return dt * jnp.sum(r**2 * (omega @ (self.weights * self.nodes))), energy

    def action(self, level: Array) -> Array:
        """G(u) = S + B_z Phi, S = (1/2) int r^2 dt: level n is G = 2 pi |B| (n + 1/2). Held
        constant (for the bisection)."""
        r = self.radii(level)
        area = jnp.pi * jnp.mean(r**2)
        return area + self.field[0] * self.flux(r)[0]

    def polished(self, level: Array) -> tuple[Array, Array, Array]:
        """(r, d u / d r, Omega) on the contour u = level: r after one Newton step from the
        bisection, r - (u(r) - level) / u'(r) with u' held constant, so that derivatives of r in
        B, level or the model's parameters are the implicit-function ones, -(d u / d p) / u'."""
        r0 = self.radii(level)
        frozen = _frozen(self)

        def at(direction, r):
            value, omega = self.energy_and_curvature(direction, r)
            slope = jax.jvp(lambda rr: frozen.energy(direction, rr), (r,), (jnp.ones(()),))[1]
            return value, slope, omega

        value, slope, omega = jax.vmap(at)(self.directions, r0)
        slope, omega = lax.stop_gradient((slope, omega))
        r = r0 - jnp.where(slope > 0, (value - level) / jnp.where(slope > 0, slope, 1.0), 0.0)
        return r, slope, omega

    def final(self, level: Array, bottom: Array) -> tuple[Array, Array, Array]:
        """(G(level), dG/du (held constant), rise): dS/du = int r / u' dt, dPhi/du = int Omega r /
        u' dt on the contour; rise > 0 when u rises monotonically along every ray from k0 to the
        contour (at the radial nodes, and u' > 0 on the contour); ``bottom``: u(k0)."""
        r, slope, omega = self.polished(level)
        flux, energy = self.flux(r)
        action = jnp.pi * jnp.mean(r**2) + self.field[0] * flux
        dt = 2 * jnp.pi / self.directions.shape[0]
        safe = jnp.where(slope > 0, slope, jnp.inf)
        derivative = dt * jnp.sum(r * (1 + self.field[0] * omega) / safe)
        column = jnp.ones((r.shape[0], 1))
        path = jnp.concatenate([bottom * column, energy, level * column], axis=1)
        rise = jnp.minimum(jnp.min(jnp.diff(path, axis=1)), jnp.min(slope))
        return action, lax.stop_gradient(derivative), rise


def _orbits(
    model, x, extremum, band, field, radius, n_angles, n_radial
) -> tuple[_Orbits, Array, Array]:
    """(orbits, u(k0), the smallest u at the search radius), u = s eps~ with s = +1 when eps~ rises
    from k0 on average, -1 otherwise."""
    t = 2 * jnp.pi * jnp.arange(n_angles) / n_angles
    directions = jnp.stack([jnp.cos(t), jnp.sin(t)], axis=-1)
    nodes, weights = np.polynomial.legendre.leggauss(n_radial)
    orbits = _Orbits(
        model,
        x,
        extremum,
        field,
        jnp.ones(()),
        directions,
        jnp.asarray(0.5 * (nodes + 1)),
        jnp.asarray(0.5 * weights),
        radius,
        band,
    )
    bottom = orbits.energy(directions[0], jnp.zeros(()))
    edge = jax.vmap(orbits.energy, (0, None))(directions, radius)
    sense = lax.stop_gradient(jnp.sign(jnp.mean(edge) - bottom))
    return eqx.tree_at(lambda o: o.sense, orbits, sense), sense * bottom, jnp.min(sense * edge)


@eqx.filter_jit
def _levels(model, x, extremum, band, field, n_max, radius, n_angles, n_radial):
    """(energies (n_max + 1,), action at the search radius's lowest energy minus the last level's
    target (> 0: closed), the smallest rise of u along the rays (> 0: star-shaped, monotonic))."""
    orbits, bottom, edge = _orbits(model, x, extremum, band, field, radius, n_angles, n_radial)
    quantum = 2 * jnp.pi * jnp.abs(field[0])
    targets = quantum * (jnp.arange(n_max + 1) + 0.5)

    lo = jnp.full(n_max + 1, bottom)
    hi = jnp.full(n_max + 1, edge)
    frozen, frozen_targets = _frozen((orbits, targets))

    def frozen_residual(level):
        return jax.vmap(frozen.action)(level) - frozen_targets

    roots = _bisect(frozen_residual, *_frozen((lo, hi)), ENERGY_STEPS)

    # One pass at the roots and at the edge: the Newton step, the closure check and the rise.
    points = jnp.concatenate([roots, edge[None]])
    action, derivative, rise = jax.vmap(orbits.final, (0, None))(lax.stop_gradient(points), bottom)
    derivative = derivative[:-1]
    safe = jnp.where(derivative > 0, derivative, 1.0)
    levels = roots - jnp.where(derivative > 0, (action[:-1] - targets) / safe, 0.0)
    closed = action[-1] - targets[-1]
    return orbits.sense * levels, closed, jnp.min(rise[:-1])


def landau_levels(
    model: AbstractModel,
    band: int,
    magnetic_field: Any,
    n_max: int,
    *,
    x: PositionLike | None = None,
    extremum: WavevectorLike | None = None,
    radius: float | None = None,
    n_angles: int = 64,
    n_radial: int = 16,
) -> Float[Array, " n"]:
    """Landau levels n = 0..n_max of ``band`` of a 2D model in a uniform ``magnetic_field`` B_z (a
    scalar; PHYSICS.md section 5): the energies E_n, shape (n_max + 1,), of the contours eps~(k) = E around the band
    extremum ``extremum`` (k0, default 0) with S(E) = 2 pi |B| (n + 1/2 - Gamma / 2 pi),
    eps~ = eps - m_z B_z and Gamma = sign(B_z) x (the Berry flux through the contour), charge -1.

    The contours must be star-shaped around k0 and closed within ``radius`` of it (default: 1 for
    a continuum model, half the shortest reciprocal vector for a lattice model); ``n_angles`` rays,
    ``n_radial`` Gauss-Legendre nodes per ray for the flux. ``x``: the position the model is
    evaluated at (default the origin). Semiclassical: accurate for levels with small |B| x the
    curvature scale of the band; differentiable (implicit-function derivatives) in B and in the
    model's parameters.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> levels = sj.landau_levels(m, 1, 0.01, 2, n_angles=16, n_radial=8)
        >>> # the exact massive Dirac levels sqrt(Delta^2 + 2 n v^2 |B|), n = 1, 2, 3, to 1e-3
        >>> print(np.round(levels, 3), np.round(np.sqrt(0.09 + 0.02 * np.arange(1, 4)), 3))
        [0.332 0.361 0.387] [0.332 0.361 0.387]
    """
    check_model(model)
    if int(model.dim) != 2:
        fail(f"landau_levels needs a 2D model (got dim = {int(model.dim)})")
    band = integer(band, "band", minimum=0, maximum=int(model.n_bands))
    n_max = integer(n_max, "n_max", minimum=0)
    n_angles = integer(n_angles, "n_angles", minimum=8)
    n_radial = integer(n_radial, "n_radial", minimum=2)
    if callable(magnetic_field):
        fail("magnetic_field must be a uniform field (a scalar B_z), not a callable")
    field = checked_field(magnetic_field, 2)
    x, k0 = check_point(model, x, jnp.zeros(2) if extremum is None else extremum)
    check_output_shape(model, x, k0)
    check_concrete_model(model)
    radius = positive(_default_radius(model) if radius is None else radius, "radius")
    guards = Guards()
    guards.add(field[0] == 0, "magnetic_field must be non-zero for Landau levels", got=field[0])
    levels, closed, slope = _levels(
        model, x, k0, jnp.asarray(band), field, n_max, jnp.asarray(radius), n_angles, n_radial
    )
    guards.add(
        ~(closed > 0),
        f"landau_levels: the contour of level n_max = {n_max} is not closed within radius = "
        f"{radius:g} of the extremum (increase radius, or lower n_max or |B|)",
    )
    guards.add(
        ~(slope > 0),
        "landau_levels: the band energy eps~ does not rise monotonically along every ray from the "
        "extremum to the contours (is extremum the band's minimum or maximum, and are the "
        "contours star-shaped around it?)",
        got=slope,
    )
    guards.finite(levels, "landau_levels (the model's energies and geometry on the contours)")
    return guards(levels)


def _default_radius(model: AbstractModel) -> float:
    lattice = getattr(model, "lattice", None)
    if lattice is None:
        return 1.0
    reciprocal = 2 * np.pi * np.linalg.inv(np.asarray(lattice, dtype=float)).T
    return 0.5 * float(np.min(np.linalg.norm(reciprocal, axis=1)))
