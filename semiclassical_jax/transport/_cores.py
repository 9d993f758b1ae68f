"""The jitted transport cores and the grid check: the documented internal API of the sweep layer.

:mod:`._current` (the checked public functions) and :mod:`semiclassical_jax._sweep` (sweeps) both
evaluate a current or a conductivity by these cores, so a sweep point equals the public call at the
same arguments. The cores check nothing: their callers validate the arguments first
(:func:`check_grid`, :func:`check_grid_values`, ``semiclassical_jax._guards``) and turn the
returned :class:`~._integrate.Diagnostics` into errors (:func:`check_diagnostics`: H Hermitian at
every point, no gap the integrand divides by closed on a grid point relative to the model's energy
scale, in a magnetic field D = 1 + B . Omega > 0, every value finite). Physical numbers are
traced; ``theory``, ``manifolds``, ``quantity`` and ``chunk`` are static.

Fermi-level scans: the cores take ``mu`` and ``temperature`` as (L,) arrays of L levels and
evaluate the geometry of each k-point once for all of them; every value has a level axis after
the position axis, (n_x, L, ...).
"""

from collections.abc import Callable, Sequence
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._eigh import degeneracy_tolerance
from .._guards import HERMITICITY_RTOL, Guards, fail, is_concrete, namespace
from .._types import Array, Float
from ..geometry._kernel import GAP_RTOL, BandGeometry, energy_scale, geometry_with_diagnostics
from ..models import AbstractModel
from ._integrands import (
    LevelPairs,
    Manifolds,
    berry_curvature_dipole,
    drude_conductivity,
    orbital_magnetisation,
    hall_conductivity,
    msct_current,
    nonabelian_hall_current,
    ssct_current,
)
from ._distribution import fermi_dirac
from ._integrate import Diagnostics, PointCheck, integrate
from ._magnetic import magnetic_current
from ._magnetic_msct import magnetic_msct_current

Theory = Literal["msct", "ssct", "nonabelian_hall"]
# The kinetic theories of a current (PHYSICS.md section 3): MSCT (Eqs. 54-62), SSCT (Eqs. 46-47)
# and the non-Abelian Hall current (Eq. 53).
THEORIES = ("msct", "ssct", "nonabelian_hall")
# A partition of the band indices as given by a caller, e.g. [[0, 1], [2]]; None: every band its own
# manifold (checked by _guards.check_partition into Manifolds).
ManifoldsLike = Sequence[Sequence[int]] | None
Response = Literal["hall", "drude", "berry_curvature_dipole", "orbital_magnetisation"]


def _float_array(value: Any) -> Array:
    """``value`` as a float array; a float64 jax array as it is (jnp.asarray would compile an
    identity program for every new shape)."""
    if isinstance(value, jax.Array) and value.dtype == jnp.float64:
        return value
    return jnp.asarray(value, dtype=float)


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
    points, weights = _float_array(points), _float_array(weights)
    if points.ndim != 2 or points.shape[1] != dim:
        fail(
            f"grid points must have shape (n, {dim}) for a model of dim = {dim}, got {points.shape}"
        )
    if weights.shape != points.shape[:1]:
        fail(f"grid weights must have shape ({points.shape[0]},), got {weights.shape}")
    if points.shape[0] == 0:
        fail("grid has no points")
    return points, weights


def check_diagnostics(
    guards: Guards,
    diagnostics: Diagnostics,
    what: str,
    points: Float[Array, "nk d"],
    positions: Float[Array, "nx d"],
    levels: tuple[Array, Array] | None = None,
) -> None:
    """Add the value checks of one k-integral to ``guards``: H Hermitian at every point, no gap the
    integrand divides by closed on a grid point (|eps_n - eps_m| <= GAP_RTOL x the model's energy
    scale, the largest |eps| on the grid), in a magnetic field D = 1 + B . Omega > 0 at every
    point and band (the error names ``magnetic_field``), every value finite. Eager calls name the
    (x, k) point, the bands and the gap (or D and its band); ``levels`` = (mu, temperature), each
    (L,), of a scan: then also the level at which that pair is relevant."""
    if is_concrete(diagnostics):  # compared in numpy: no XLA program per eager call
        diagnostics = jax.tree_util.tree_map(np.asarray, diagnostics)
    n = diagnostics.non_hermiticity

    def at(indices: Array) -> str:
        ix, ik = (int(i) for i in indices)
        return f"x={jnp.asarray(positions)[ix]}, k={jnp.asarray(points)[ik]}"

    guards.add(
        n > HERMITICITY_RTOL,
        f"{what}: model(x, k) is not Hermitian on the grid",
        detail=lambda: (
            f": max|H - H^dagger| / max|H| = {float(n):.3e} at {at(diagnostics.non_hermitian_at)}"
        ),
    )
    gap, scale = diagnostics.gap, diagnostics.scale

    def closed() -> str:
        n_band, m_band = (int(b) for b in diagnostics.pair)
        level = ""
        if levels is not None:
            index = int(diagnostics.level)
            mu, temperature = (float(np.asarray(a)[index]) for a in levels)
            level = f" at level {index} (mu = {mu:g}, temperature = {temperature:g})"
        return (
            f": bands {n_band} and {m_band}{level} at {at(diagnostics.gap_at)}, "
            f"gap = {float(gap):.3e}"
            f" <= {GAP_RTOL:g} x the energy scale {float(scale):.3e}; refine or shift the grid, or "
            "move mu or T so that the touching bands are equally occupied"
        )

    hybridised = diagnostics.level < 0  # MSCT in B: two hybridised bands of a manifold
    guards.add(
        (gap <= GAP_RTOL * scale) & ~hybridised,
        f"{what}: two bands whose occupations differ touch on a grid point (their gap closes), "
        "so the inter-band terms diverge there",
        detail=closed,
    )

    def touching() -> str:
        n_band, m_band = (int(b) for b in diagnostics.pair)
        return (
            f": the hybridised bands of bands {n_band} and {m_band} at {at(diagnostics.gap_at)}, "
            f"gap = {float(gap):.3e} <= {GAP_RTOL:g} x the energy scale {float(scale):.3e}"
        )

    guards.add(
        (gap <= GAP_RTOL * scale) & hybridised,
        f"{what}: magnetic_field with theory='msct' treats each hybridised band of a manifold "
        "as an Abelian band, which needs the hybridised bands split; two of them touch on a grid "
        "point (degenerate bands of a manifold, or E_i = E_j): this case does not carry over "
        "(put such bands in one-band manifolds, or keep the touching off the grid)",
        detail=touching,
        error=NotImplementedError,
    )
    _check_phase_space_factor(guards, diagnostics, what, at)
    guards.add(
        ~diagnostics.finite,
        f"{what} is not finite: the model is not finite somewhere on the grid, or a gap between "
        "manifolds (between bands, for one-band manifolds) closes on a grid point",
    )


def _check_phase_space_factor(
    guards: Guards, diagnostics: Diagnostics, what: str, at: Callable[[Array], str]
) -> None:
    """D = 1 + B . Omega_n > 0 at every grid point and band (PHYSICS.md section 5): where B . Omega
    <= -1 the phase-space density D / (2 pi)^d is not positive and the expansion in B (the
    magnetic length long against the curvature's length scale) does not hold, so the current
    would be meaningless (1 / D diverges at D = 0 and changes sign beyond)."""
    factor = diagnostics.factor
    guards.add(
        factor <= 0,
        f"{what}: magnetic_field is too strong for the semiclassical theory on this grid: the "
        "phase-space factor D = 1 + B . Omega is <= 0 (B . Omega <= -1, near a band touching)",
        detail=lambda: (
            f": D = {float(factor):.3e} in band {int(diagnostics.factor_band)} at "
            f"{at(diagnostics.factor_at)}; reduce |magnetic_field| or keep the grid away from the "
            "curvature's hot spots (|B . Omega| << 1 wherever the grid samples)"
        ),
    )


def gap_closed(diagnostics: Diagnostics) -> Array:
    """True where a gap the integrand divides by closed on a grid point (any leading axes)."""
    return diagnostics.gap <= GAP_RTOL * diagnostics.scale


def diagnostics_failed(diagnostics: Diagnostics) -> Array:
    """True where :func:`check_diagnostics` would raise (any leading axes, NumPy or JAX arrays)."""
    return (
        (diagnostics.non_hermiticity > HERMITICITY_RTOL)
        | gap_closed(diagnostics)
        | (diagnostics.factor <= 0)
        | ~diagnostics.finite
    )


def _point_check(
    geometry: BandGeometry,
    non_hermiticity: Array,
    relevant: LevelPairs,
    mu: Float[Array, " L"],
    temperature: Float[Array, " L"],
    factor: Float[Array, " n"] | None = None,
) -> PointCheck:
    """The point's :class:`PointCheck` over L levels (``relevant``: (L, N, N), or (1, N, N) for
    every level): the smallest gap of a pair relevant at some level, and the first such level;
    ``factor``: the phase-space factor D_n (N,) of every band in a magnetic field (None: none).

    A relevant pair counts even when exactly degenerate if its occupations differ by 1/2 or more
    at that level (a touching at a T = 0 Fermi level: dropping it would hide the divergence; an
    exact degeneracy inside a band, e.g. a Kramers pair, has equal f). So the check fails iff a
    one-level call at some level would fail.
    """
    e = geometry.energies
    f = fermi_dirac(e[None, :], mu[:, None], temperature[:, None])  # (L, N)
    straddling = jnp.abs(f[:, :, None] - f[:, None, :]) >= 0.5
    gap, pair = geometry.closest_pair(
        jnp.any(relevant, axis=0), jnp.any(relevant & straddling, axis=0)
    )
    # the first level at which (n, m) counts: a masked reduction, not a gather from (L, N, N)
    bands = jnp.arange(geometry.n_bands)
    at_pair = (bands[:, None] == pair[0]) & (bands[None, :] == pair[1])
    counts = relevant & ((gap > degeneracy_tolerance(e)) | straddling) & at_pair
    level = jnp.argmax(jnp.any(counts, axis=(1, 2)))
    if factor is None:
        factor_min, band = jnp.asarray(jnp.inf, e.dtype), jnp.zeros((), int)
    else:
        band = jnp.argmin(factor)
        factor_min = factor[band]
    return PointCheck(energy_scale(e), non_hermiticity, gap, pair, level, factor_min, band)


def _with_hybridised_gap(check: PointCheck, gap: Array, pair: Array) -> PointCheck:
    """``check`` with the smallest gap between hybridised bands of one manifold (MSCT in B,
    :mod:`._magnetic_msct`) when it is smaller: every level divides by it, even when exactly
    degenerate (the Abelian treatment of each hybridised band needs it open); ``pair`` names the
    bands the two hybridised bands descend from, and ``level`` = -1 marks the case for
    :func:`check_diagnostics`."""
    closer = gap < check.gap
    return check._replace(
        gap=jnp.where(closer, gap, check.gap),
        pair=jnp.where(closer, pair, check.pair),
        level=jnp.where(closer, -1, check.level),
    )


def check_grid_values(
    guards: Guards, points: Array, weights: Array, positions: Array | None = None
) -> None:
    """Grid points, weights and positions (x) must be finite: checked now when concrete (naming
    the first bad entry), else attached to ``guards``."""
    named = [("grid points", points), ("grid weights", weights)]
    if positions is not None:
        named.append(("positions (x / xs)", positions))
    for name, value in named:
        xp = namespace(value)
        bad = ~xp.isfinite(xp.asarray(value))

        def first(bad=bad, value=value) -> str:
            index = int(np.argmax(np.asarray(bad).reshape(bad.shape[0], -1).any(axis=1)))
            return f": entry {index} is {np.asarray(value)[index]}"

        guards.add(xp.any(bad), f"{name} must be finite", detail=first)


@eqx.filter_jit
def current_core(
    model: AbstractModel,
    positions: Float[Array, "nx d"],
    points: Float[Array, "nk d"],
    weights: Float[Array, " nk"],
    field: Float[Array, " d"],
    mu: Float[Array, " L"],
    temperature: Float[Array, " L"],
    tau: Float[Array, ""],
    theory: Theory,
    manifolds: Manifolds,
    chunk: int,
    devices: tuple[Any, ...] = (),
    magnetic_field: Any = None,
) -> tuple[Float[Array, "nx L d"], Diagnostics]:
    """The current density J(x) = sum_i w_i j(x, k_i) at each position (PHYSICS.md section 3).

    j is the per-point integrand of ``theory`` (:mod:`._integrands`: MSCT Eqs. 54-62, SSCT
    Eqs. 46-47, non-Abelian Hall Eq. 53) in the uniform field ``field`` (d,) at the L levels
    (chemical potential ``mu`` (L,), temperature ``temperature`` (L,), energy; the geometry of each
    k-point is computed once for all of them) and relaxation time ``tau`` (1 / energy; unused by
    ``"nonabelian_hall"``), with ``manifolds`` a checked partition of the bands.
    ``magnetic_field``: None, or a checked uniform B ((c,) components or a callable B(x)) for
    ``"ssct"`` (:func:`._magnetic.magnetic_current`) and ``"msct"``
    (:func:`._magnetic_msct.magnetic_msct_current`). The k-sum runs in
    chunks of ``chunk`` points (:func:`._integrate.integrate`), split over ``devices`` when they
    are two or more (then the result is replicated on all of them).

    Returns (J of shape (n_x, L, d), the k-sum's :class:`~._integrate.Diagnostics`: finite, energy
    scale, non-Hermiticity, smallest relevant gap). Unchecked: the caller validates the arguments
    and raises on the diagnostics (:func:`check_diagnostics`).
    """

    def integrand(x: Array, k: Array) -> tuple[Array, PointCheck]:
        if theory == "msct" and magnetic_field is not None:
            value, geometry, non_hermiticity, relevant, hybridised, factor = magnetic_msct_current(
                model, x, k, field, magnetic_field, mu, temperature, tau, manifolds
            )
            check = _point_check(geometry, non_hermiticity, relevant, mu, temperature, factor)
            return value, _with_hybridised_gap(check, *hybridised)
        if theory == "msct":
            value, geometry, non_hermiticity, relevant = msct_current(
                model, x, k, field, mu, temperature, tau, manifolds
            )
            return value, _point_check(geometry, non_hermiticity, relevant, mu, temperature)
        geometry, non_hermiticity, _ = geometry_with_diagnostics(model, x, k)
        if magnetic_field is not None:
            value, relevant, factor = magnetic_current(
                model, geometry, x, k, field, magnetic_field, mu, temperature, tau
            )
            check = _point_check(geometry, non_hermiticity, relevant, mu, temperature, factor)
            return value, check
        if theory == "ssct":
            value, relevant = ssct_current(geometry, field, mu, temperature, tau)
        else:
            value, relevant = nonabelian_hall_current(geometry, field, mu, temperature, manifolds)
        return value, _point_check(geometry, non_hermiticity, relevant, mu, temperature)

    return integrate(integrand, positions, points, weights, chunk, devices)


@eqx.filter_jit
def response_core(
    model: AbstractModel,
    positions: Float[Array, "nx d"],
    points: Float[Array, "nk d"],
    weights: Float[Array, " nk"],
    mu: Float[Array, " L"],
    temperature: Float[Array, " L"],
    tau: Float[Array, ""],
    quantity: Response,
    chunk: int,
    devices: tuple[Any, ...] = (),
) -> tuple[Float[Array, "nx L ..."], Diagnostics]:
    """A linear-response coefficient sum_i w_i s(x, k_i) at each position (e^2 / hbar units).

    ``quantity``: ``"hall"`` the intrinsic Hall conductivity (d, d), ``"drude"`` the Drude
    conductivity (d, d) with relaxation time ``tau``, ``"berry_curvature_dipole"`` the dipole D_cab
    (d, d, d), ``"orbital_magnetisation"`` M (c,) (c = 1 in 2D, 3 in 3D); the integrands are in :mod:`._integrands`. ``tau`` is used by ``"drude"`` only.
    ``mu``, ``temperature``: (L,) levels, sharing each k-point's geometry. The k-sum runs in chunks
    of ``chunk`` points, split over ``devices`` when they are two or more.

    Returns (the coefficient of shape (n_x, L, ...), the k-sum's diagnostics). Unchecked, like
    :func:`current_core`.
    """

    def integrand(x: Array, k: Array) -> tuple[Array, PointCheck]:
        geometry, non_hermiticity, _ = geometry_with_diagnostics(model, x, k)
        if quantity == "hall":
            value, relevant = hall_conductivity(geometry, mu, temperature)
        elif quantity == "drude":
            value, relevant = drude_conductivity(geometry, mu, temperature, tau)
        elif quantity == "orbital_magnetisation":
            value, relevant = orbital_magnetisation(geometry, mu, temperature)
        else:
            value, relevant = berry_curvature_dipole(geometry, mu, temperature)
        return value, _point_check(geometry, non_hermiticity, relevant, mu, temperature)

    return integrate(integrand, positions, points, weights, chunk, devices)
