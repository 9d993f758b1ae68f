"""The jitted transport cores and the grid check: the documented internal API of the sweep layer.

:mod:`._current` (the checked public functions) and :mod:`semiclassical_jax._sweep` (sweeps) both
evaluate a current or a conductivity by these cores, so a sweep point equals the public call at the
same arguments. The cores check nothing: their callers validate the arguments first
(:func:`check_grid`, ``semiclassical_jax._guards``) and turn the returned ``finite`` flag into an
error. Physical numbers are traced; ``theory``, ``manifolds``, ``quantity`` and ``chunk`` are static.
"""

from collections.abc import Sequence
from typing import Any, Literal

import equinox as eqx
import jax.numpy as jnp

from .._guards import fail
from .._types import Array, Bool, Float
from ..geometry._kernel import band_geometry_unchecked
from ..models import AbstractModel
from ._integrands import (
    Manifolds,
    berry_curvature_dipole,
    drude_conductivity,
    hall_conductivity,
    msct_current,
    nonabelian_hall_current,
    ssct_current,
)
from ._integrate import integrate

Theory = Literal["msct", "ssct", "nonabelian_hall"]
# The kinetic theories of a current (PHYSICS.md section 3): MSCT (Eqs. 54-62), SSCT (Eqs. 46-47)
# and the non-Abelian Hall current (Eq. 53).
THEORIES = ("msct", "ssct", "nonabelian_hall")
# A partition of the band indices as given by a caller, e.g. [[0, 1], [2]]; None: every band its own
# manifold (checked by _guards.check_partition into Manifolds).
ManifoldsLike = Sequence[Sequence[int]] | None
Response = Literal["hall", "drude", "berry_curvature_dipole"]


def check_grid(grid: Any, dim: int) -> tuple[Float[Array, "n d"], Float[Array, " n"]]:
    """The k-points (n, d) and weights (n,) of ``grid`` as float arrays, checked.

    ``grid`` must have ``points`` (n, dim) and ``weights`` (n,) with n >= 1 (a
    :class:`~semiclassical_jax.grids.KGrid`): TypeError if it has no such attributes, ValueError
    naming the wrong shape otherwise.
    """
    points = getattr(grid, "points", None)
    weights = getattr(grid, "weights", None)
    if points is None or weights is None:
        fail(
            "grid must be a KGrid (points and weights), e.g. grids.disk(...); "
            f"got {type(grid).__name__}",
            TypeError,
        )
    points, weights = jnp.asarray(points, dtype=float), jnp.asarray(weights, dtype=float)
    if points.ndim != 2 or points.shape[1] != dim:
        fail(
            f"grid points must have shape (n, {dim}) for a model of dim = {dim}, got {points.shape}"
        )
    if weights.shape != points.shape[:1]:
        fail(f"grid weights must have shape ({points.shape[0]},), got {weights.shape}")
    if points.shape[0] == 0:
        fail("grid has no points")
    return points, weights


@eqx.filter_jit
def current_core(
    model: AbstractModel,
    positions: Float[Array, "nx d"],
    points: Float[Array, "nk d"],
    weights: Float[Array, " nk"],
    field: Float[Array, " d"],
    mu: Float[Array, ""],
    temperature: Float[Array, ""],
    tau: Float[Array, ""],
    theory: Theory,
    manifolds: Manifolds,
    chunk: int,
) -> tuple[Float[Array, "nx d"], Bool[Array, ""]]:
    """The current density J(x) = sum_i w_i j(x, k_i) at each position (PHYSICS.md section 3).

    j is the per-point integrand of ``theory`` (:mod:`._integrands`: MSCT Eqs. 54-62, SSCT
    Eqs. 46-47, non-Abelian Hall Eq. 53) in the uniform field ``field`` (d,) at chemical potential
    ``mu``, temperature ``temperature`` (energy) and relaxation time ``tau`` (1 / energy; unused by
    ``"nonabelian_hall"``), with ``manifolds`` a checked partition of the bands. The k-sum runs in
    chunks of ``chunk`` points (:func:`._integrate.integrate`).

    Returns (J of shape (n_x, d), whether every integrand value was finite). Unchecked: the caller
    validates the arguments and raises on ``finite`` = False.
    """

    def integrand(x: Array, k: Array) -> Array:
        if theory == "msct":
            return msct_current(model, x, k, field, mu, temperature, tau, manifolds)
        geometry = band_geometry_unchecked(model, x, k)
        if theory == "ssct":
            return ssct_current(geometry, field, mu, temperature, tau)
        return nonabelian_hall_current(geometry, field, mu, temperature, manifolds)

    return integrate(integrand, positions, points, weights, chunk)


@eqx.filter_jit
def response_core(
    model: AbstractModel,
    positions: Float[Array, "nx d"],
    points: Float[Array, "nk d"],
    weights: Float[Array, " nk"],
    mu: Float[Array, ""],
    temperature: Float[Array, ""],
    tau: Float[Array, ""],
    quantity: Response,
    chunk: int,
) -> tuple[Float[Array, "nx ..."], Bool[Array, ""]]:
    """A linear-response coefficient sum_i w_i s(x, k_i) at each position (e^2 / hbar units).

    ``quantity``: ``"hall"`` the intrinsic Hall conductivity (d, d), ``"drude"`` the Drude
    conductivity (d, d) with relaxation time ``tau``, ``"berry_curvature_dipole"`` the dipole D_cab
    (d, d, d); the integrands are in :mod:`._integrands`. ``tau`` is used by ``"drude"`` only.
    The k-sum runs in chunks of ``chunk`` points.

    Returns (the coefficient of shape (n_x, ...), whether every integrand value was finite).
    Unchecked, like :func:`current_core`.
    """

    def integrand(x: Array, k: Array) -> Array:
        geometry = band_geometry_unchecked(model, x, k)
        if quantity == "hall":
            return hall_conductivity(geometry, mu, temperature)
        if quantity == "drude":
            return drude_conductivity(geometry, mu, temperature, tau)
        return berry_curvature_dipole(geometry, mu, temperature)

    return integrate(integrand, positions, points, weights, chunk)
