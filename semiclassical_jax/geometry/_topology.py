"""Topology of bands and manifolds on closed surfaces in k: Chern numbers of 2D Brillouin zones and
of 2D slices of 3D ones (this module), Weyl-point chirality (:mod:`._weyl`).

Built on the per-point kernel (:mod:`._kernel`). A closed surface is a map u (2,) -> k (d,) from
a grid of u (a :class:`TorusSlice` or a :class:`Sphere`); the Berry flux through it comes from the
link variables of the states on that grid (Fukui-Hatsugai-Suzuki), and two value checks guard the
integer: the manifold's gap must stay open on the surface (:func:`check_surface_gap`) and every
plaquette's flux must be resolved (:func:`check_surface_resolution`). The Brillouin-zone torus is
closed with the orbital-position phases of PHYSICS.md's lattice convention.
"""

from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from .._guards import (
    Guards,
    check_concrete_model,
    check_manifold,
    check_model,
    check_output_shape,
    check_point,
    fail,
    integer,
    is_concrete,
    one_of,
    remote_bands,
    scalar,
)
from .._types import Array, Float, PositionLike
from ..models import AbstractModel
from ._kernel import GAP_RTOL, BandGeometry, band_geometry_unchecked


def torus_grid(lattice: Float[Array, "2 2"], n_k: int) -> Float[Array, "n n 2"]:
    """The n_k x n_k grid k = (m1 b1 + m2 b2) / n_k, m_i = 0..n_k-1, Cartesian (b_i: reciprocal)."""
    reciprocal = 2 * jnp.pi * jnp.linalg.inv(lattice).T
    fractions = jnp.arange(n_k) / n_k
    reduced = jnp.stack(jnp.meshgrid(fractions, fractions, indexing="ij"), axis=-1)
    return reduced @ reciprocal


# The gap check (chern_number, weyl_chirality): the grid's N_CANDIDATES smallest local minima of the
# manifold's gap are refined by GAP_STEPS Gauss-Newton steps on gap^2(k(u)) over the surface's
# coordinates u, each at most REACH_CELLS grid cells from its grid point; the invariant is undefined
# if the smallest gap found is <= GAP_RTOL x the model's energy scale max|eps| over the grid
# (GAP_RTOL from the geometry kernel).
N_CANDIDATES = 8
GAP_STEPS = 16
REACH_CELLS = 2.0
# Eagerly, the minimisation (a compilation per model) is skipped when the grid's smallest gap
# exceeds SLOPE_SAFETY x 2 max|v_n| x (the largest distance from a cell's points to its nearest
# corner): |grad (eps_r - eps_n)| <= 2 max|v_n|, so the gap cannot close inside a cell then.
SLOPE_SAFETY = 2.0
# The link method needs every plaquette's Berry flux well inside (-pi, pi): a small-gap Dirac node
# inside one plaquette puts ~pi there and the sign of the integer is then a matter of luck. Measured
# on QWZ and Haldane near their transitions (n_k = 9..40): every wrong integer had a plaquette flux
# >= 0.70 pi; a node on a grid point or edge gives <= 0.5 pi.
MAX_PLAQUETTE_FLUX = 0.6 * jnp.pi


# ---------------------------------------------------------------------------------------------
# closed surfaces in k


class TorusSlice(eqx.Module):
    """The torus k(u) = offset + u @ span, u in [0, 1)^2: a 2D Brillouin zone (offset 0, span the
    reciprocal vectors) or the slice of a 3D one spanned by b_i, b_j through offset = k_perp b_l.

    ``wraps``: (2, N) the orbital-position phases exp(-2 pi i tau_i), exp(-2 pi i tau_j) that close
    the torus, u(k + b) = V(b)^dagger u(k) (PHYSICS.md lattice convention).
    """

    offset: Float[Array, " d"]
    span: Float[Array, "2 d"]
    wraps: Array

    def __call__(self, u: Float[Array, "2"]) -> Float[Array, " d"]:
        return self.offset + u @ self.span

    def grid(self, n: int) -> Float[Array, "n n 2"]:
        """The n x n grid u = (m1, m2) / n, m_i = 0..n-1 (reduced)."""
        fractions = jnp.arange(n) / n
        return jnp.stack(jnp.meshgrid(fractions, fractions, indexing="ij"), axis=-1)

    def cell_radius(self, n: int) -> Float[Array, ""]:
        """The largest distance in k from a point of a grid cell to the cell's nearest corner."""
        b1, b2 = self.span
        return jnp.maximum(jnp.linalg.norm(b1 + b2), jnp.linalg.norm(b1 - b2)) / (2 * n)

    def close(self, states: Array) -> Array:
        """states (n, n, N, Na) -> (n + 1, n, N, Na): row n is row 0 moved by b_1 (closing axis 0)."""
        return jnp.concatenate([states, states[:1] * self.wraps[0][None, :, None]], axis=0)


class Sphere(eqx.Module):
    """The sphere k(theta, phi) = centre + radius (sin theta cos phi, sin theta sin phi, cos theta).

    (theta, phi) is right-handed with the outward normal: d_theta k x d_phi k points outward, so
    the flux of Omega^{theta phi} is the outward flux of the Berry curvature vector.
    """

    centre: Float[Array, "3"]
    radius: Float[Array, ""]

    def __call__(self, u: Float[Array, "2"]) -> Float[Array, "3"]:
        theta, phi = u[0], u[1]
        direction = jnp.stack(
            [jnp.sin(theta) * jnp.cos(phi), jnp.sin(theta) * jnp.sin(phi), jnp.cos(theta)]
        )
        return self.centre + self.radius * direction

    def grid(self, n: int) -> Float[Array, "n+1 2n 2"]:
        """theta = pi m1 / n (m1 = 0..n, poles included), phi = pi m2 / n (m2 = 0..2n-1)."""
        theta, phi = jnp.pi * jnp.arange(n + 1) / n, jnp.pi * jnp.arange(2 * n) / n
        return jnp.stack(jnp.meshgrid(theta, phi, indexing="ij"), axis=-1)

    def cell_radius(self, n: int) -> Float[Array, ""]:
        """Half the arc-length diagonal of the largest (equatorial) cell, pi sqrt(2) radius / 2n."""
        return jnp.pi * jnp.sqrt(2.0) * jnp.abs(self.radius) / (2 * n)

    def close(self, states: Array) -> Array:
        """The rows already run from pole to pole: nothing to add."""
        return states

    @property
    def wraps(self) -> Array:
        """No phase across the seam phi = 2 pi: the same k as phi = 0."""
        return jnp.ones((2, 1))


Surface = TorusSlice | Sphere


# ---------------------------------------------------------------------------------------------
# the gap minimiser


def _pair_residual(model, x, inside, k):
    """(gap, bands (n, r), w, J) at k for the two closest bands n in the manifold, r remote.

    ``inside``: (N,) bool, the manifold's bands (an array, so one compilation serves every
    manifold). Degenerate perturbation theory in the pair: gap^2(k + q) = |w + J q|^2 + O(q^3)
    with w = (eps_r - eps_n, 0, 0) and the rows of J (3, d) the k-derivatives d(eps_r - eps_n) =
    (dH_k)_rr - (dH_k)_nn, 2 Re (dH_k)_nr and 2 Im (dH_k)_nr (band basis, no eigenvector
    derivative). Exact for a linear (Dirac) crossing: one Gauss-Newton step lands on the node.
    """
    geometry = band_geometry_unchecked(model, x, k)
    e = geometry.energies
    across = inside[:, None] & ~inside[None, :]
    gaps = jnp.where(across, jnp.abs(e[:, None] - e[None, :]), jnp.inf).reshape(-1)
    pair = jnp.argmin(gaps)
    n, r = pair // e.shape[0], pair % e.shape[0]
    dk = geometry.dH[geometry.dim :]
    slope = jnp.real(dk[:, r, r] - dk[:, n, n])
    coupling = dk[:, n, r]
    residual = jnp.zeros(3).at[0].set(e[r] - e[n])
    jacobian = jnp.stack([slope, 2 * jnp.real(coupling), 2 * jnp.imag(coupling)])
    return gaps[pair], jnp.stack([n, r]), residual, jacobian


def _gauss_newton_step(residual, jacobian):
    """q minimising |w + J q|^2 (2 x 2 normal equations, Levenberg-damped against rank loss)."""
    normal = jacobian.T @ jacobian
    normal = normal + (1e-12 * jnp.trace(normal) + 1e-300) * jnp.eye(2)
    rhs = -jacobian.T @ residual
    det = normal[0, 0] * normal[1, 1] - normal[0, 1] * normal[1, 0]
    adjugate = jnp.array([[normal[1, 1], -normal[0, 1]], [-normal[1, 0], normal[0, 0]]])
    step = adjugate @ rhs / det
    return jnp.where(jnp.all(jnp.isfinite(step)), step, 0.0)  # J = 0: no direction to move


@eqx.filter_jit
def _minimise_gap(model, x, inside, surface, starts, reach):
    """The smallest manifold gap near each start u (m, 2) on ``surface``, Gauss-Newton on
    gap^2(k(u)) (see above; J in u is J_k dk/du).

    The steps alternate between q and 2 q (2 q is exact at a quadratic touching, q at a linear
    crossing) and are kept only where they lower the gap; the u stay within ``reach`` (2,) of their
    start. Returns (gap (m,), u (m, 2), bands (m, 2)) at the best point found, the start included.
    """

    def residual_at(u):
        gap, bands, residual, jacobian = _pair_residual(model, x, inside, surface(u))
        return gap, bands, residual, jacobian @ jax.jacfwd(surface)(u)

    def descend(start):
        def step(i, state):
            u, gap, bands, residual, jacobian = state
            shift = (1 + i % 2) * _gauss_newton_step(residual, jacobian)
            trial = start + jnp.clip(u + shift - start, -reach, reach)
            new = (trial, *residual_at(trial))
            better = new[1] < gap
            return jax.tree_util.tree_map(lambda a, b: jnp.where(better, a, b), new, state)

        # the first step (q = 0, gap = inf) evaluates the start: one trace of the kernel only
        state = (start, jnp.inf, jnp.zeros(2, int), jnp.zeros(3), jnp.eye(3, 2))
        u, gap, bands, _, _ = jax.lax.fori_loop(0, GAP_STEPS + 1, step, state)
        return gap, u, bands

    return jax.vmap(descend)(starts)


def _gap_candidates(gaps: Float[Array, "n1 n2"], grid: Float[Array, "n1 n2 2"]) -> Array:
    """The u (m, 2) of the N_CANDIDATES smallest local minima of the gap on the grid (periodic)."""
    neighbours = [
        jnp.roll(gaps, (s1, s2), axis=(0, 1))
        for s1 in (-1, 0, 1)
        for s2 in (-1, 0, 1)
        if (s1, s2) != (0, 0)
    ]
    is_minimum = jnp.all(jnp.stack([gaps <= other for other in neighbours]), axis=0)
    score = jnp.where(is_minimum, gaps, jnp.inf).reshape(-1)
    count = min(N_CANDIDATES, score.shape[0])
    _, index = jax.lax.top_k(-score, count)
    return grid.reshape(-1, 2)[index]


def _gap_summary(gaps, speeds, scales, surface, grid, n):
    """(starts u (m, 2), scale max|eps|, closable) from the grid's gaps, max|v_n| and max|eps|.

    ``closable``: the gap might close inside a cell (see SLOPE_SAFETY) or is already closed.
    """
    scale = jnp.max(scales)
    bound = jnp.maximum(
        SLOPE_SAFETY * 2 * jnp.max(speeds) * surface.cell_radius(n), GAP_RTOL * scale
    )
    starts = _gap_candidates(gaps.reshape(grid.shape[:2]), grid)
    return starts, scale, jnp.min(gaps) <= bound


def _gaps_at(geometry: BandGeometry, manifold: tuple[int, ...]) -> tuple[Array, Array, Array]:
    """(manifold gap, max_n |v_n|, max|eps|) at one point."""
    speed = jnp.max(jnp.sqrt(jnp.sum(geometry.velocity() ** 2, axis=-1)))
    return geometry.manifold_gap(manifold), speed, jnp.max(jnp.abs(geometry.energies))


# ---------------------------------------------------------------------------------------------
# the Berry flux through a surface


def _link(u: Array, v: Array) -> Array:
    """det <u|v> over the manifold: the link variable between neighbouring grid points."""
    return jnp.linalg.det(jnp.einsum("...in,...im->...nm", jnp.conj(u), v))


@eqx.filter_jit
def surface_flux(model, x, manifold, n, surface):
    """Fukui-Hatsugai-Suzuki on ``surface``'s n-grid: the plaquette fluxes (n1, n2) of Omega^{u1 u2}
    (index (i, j): the plaquette with lower corner at grid point (i, j)) and :func:`_gap_summary`.
    """
    grid = surface.grid(n)

    def states_and_gap(u):
        geometry = band_geometry_unchecked(model, x, surface(u))
        return geometry.states[:, jnp.array(manifold)], _gaps_at(geometry, manifold)

    states, gaps = jax.vmap(states_and_gap)(grid.reshape(-1, 2))
    states = surface.close(states.reshape(*grid.shape[:2], *states.shape[1:]))
    # the neighbour along axis 1; across the seam it is column 0 moved by the second wrap
    next2 = jnp.roll(states, -1, axis=1).at[:, -1].multiply(surface.wraps[1][:, None])
    u1 = _link(states[:-1], states[1:])  # (n1, n2)
    u2 = _link(states, next2)  # (n1 + 1, n2)
    plaquette = u1 * u2[1:] * jnp.conj(jnp.roll(u1, -1, axis=1)) * jnp.conj(u2[:-1])
    return -jnp.angle(plaquette), _gap_summary(*gaps, surface, grid, n)


@eqx.filter_jit
def _slice_integral(model, x, manifold, n, surface):
    """The grid sum of Tr F^{u1 u2} = b_i^a b_j^b Tr F^{k_a k_b} / n^2 (and :func:`_gap_summary`)."""
    grid = surface.grid(n)
    d = surface.span.shape[1]

    def curvature_and_gap(u):
        geometry = band_geometry_unchecked(model, x, surface(u))
        block = geometry.nonabelian_curvature(manifold)[d:, d:]  # (d, d, Na, Na)
        trace = jnp.real(jnp.einsum("abnn->ab", block))
        return surface.span[0] @ trace @ surface.span[1], _gaps_at(geometry, manifold)

    curvature, gaps = jax.vmap(curvature_and_gap)(grid.reshape(-1, 2))
    return jnp.sum(curvature) / n**2, _gap_summary(*gaps, surface, grid, n)


# ---------------------------------------------------------------------------------------------
# the checks of an invariant on a surface


def show_k(k: Array, lattice: Array | None) -> str:
    """'k = (kx, ky, ...) (reduced (r1, r2, ...))' for a Cartesian k (no reduced without lattice)."""
    cartesian = ", ".join(f"{float(c):.10g}" for c in k)
    if lattice is None:
        return f"k = ({cartesian})"
    reduced = ", ".join(f"{float(r):.10g}" for r in k @ lattice.T / (2 * jnp.pi))
    return f"k = ({cartesian}) (reduced ({reduced}))"


class SurfaceNames(NamedTuple):
    """How the errors of one call name its surface: ``grid`` (static, e.g. 'the 31x31 grid'),
    ``knob`` (the argument that refines it), ``invariant`` ('the Chern number'), ``lattice`` (for
    reduced k, or None) and ``where`` (concrete detail for the eager message, e.g. the slice's
    k_perp, or '')."""

    grid: str
    knob: str
    invariant: str
    lattice: Array | None
    where: Callable[[], str]


def no_detail() -> str:
    """The empty ``SurfaceNames.where``."""
    return ""


def check_surface_gap(
    guards: Guards,
    model: AbstractModel,
    x: Float[Array, " d"],
    manifold: tuple[int, ...],
    surface: Surface,
    reach: Float[Array, "2"],
    summary: tuple[Array, Array, Array],
    names: SurfaceNames,
) -> None:
    """The manifold's gap on ``surface``, minimised from the grid's smallest gaps (``summary`` of
    :func:`surface_flux`), must exceed GAP_RTOL max|eps|; ``reach``: the u-distance the search may go."""
    starts, scale, closable = summary
    if is_concrete(closable) and not bool(closable):
        return
    inside = jnp.isin(jnp.arange(int(model.n_bands)), jnp.array(manifold))
    gaps, points, bands = _minimise_gap(model, x, inside, surface, starts, reach)
    best = jnp.argmin(gaps)
    gap, k, pair = gaps[best], surface(points[best]), bands[best]
    guards.add(
        gap <= GAP_RTOL * scale,
        f"manifold {manifold}: its gap to the remote bands closes on {names.grid} or between its "
        f"points (gap <= {GAP_RTOL:g} x max|eps|)",
        detail=lambda: (
            f"{names.where()}: bands {int(pair[0])} and {int(pair[1])} meet at "
            f"{show_k(k, names.lattice)} with gap = {float(gap):.3e} (max|eps| = "
            f"{float(scale):.3e}); {names.invariant} is undefined"
        ),
    )


def check_surface_resolution(
    guards: Guards,
    manifold: tuple[int, ...],
    surface: Surface,
    grid: Float[Array, "n1 n2 2"],
    flux: Float[Array, "p1 p2"],
    names: SurfaceNames,
) -> None:
    """Every plaquette's Berry flux must be within MAX_PLAQUETTE_FLUX (link method)."""
    worst = jnp.argmax(jnp.abs(flux))
    value = flux.reshape(-1)[worst]
    corner = grid[worst // flux.shape[1], worst % flux.shape[1]]
    centre = surface(corner + (grid[1, 1] - grid[0, 0]) / 2)  # uniform grids in u
    guards.add(
        jnp.abs(value) > MAX_PLAQUETTE_FLUX,
        f"manifold {manifold}: {names.grid} does not resolve its Berry curvature (a "
        f"plaquette's flux exceeds {MAX_PLAQUETTE_FLUX / jnp.pi:g} pi; a small-gap node lies inside "
        f"it and the integer is unreliable); increase {names.knob}",
        detail=lambda: (
            f"{names.where()}: flux {float(value) / jnp.pi:.3f} pi in the plaquette centred at "
            f"{show_k(centre, names.lattice)}"
        ),
    )


# ---------------------------------------------------------------------------------------------
# chern_number


def _check_lattice_model(model: AbstractModel) -> Array:
    """The (d, d) lattice of a 2D or 3D lattice model."""
    check_model(model)
    lattice = getattr(model, "lattice", None)
    if lattice is None:
        fail(
            f"chern_number needs a lattice model (model.lattice is missing on {type(model).__name__}); "
            "for a continuum model integrate manifold_berry_curvature over k instead"
        )
    if int(model.dim) not in (2, 3):
        fail(
            f"chern_number is defined for 2D models and 2D slices of 3D models, got dim = {model.dim}"
        )
    return jnp.asarray(lattice, dtype=float)


def _check_plane(dim: int, plane: Sequence[int] | None, k_perp: float | None) -> tuple[int, int]:
    """The slice's (i, j) (reduced directions spanning it); 2D: (0, 1) and no k_perp."""
    if dim == 2:
        if k_perp is not None:
            fail("k_perp is for a 2D slice of a 3D model; a 2D model has one plane (leave it None)")
        if plane is not None and tuple(plane) != (0, 1):
            fail(f"plane must be (0, 1) (or None) for a 2D model, got {plane!r}")
        return 0, 1
    if plane is None:
        return 0, 1
    wanted = f"plane must be two distinct reduced directions (i, j) in 0, 1, 2, got {plane!r}"
    try:
        i, j = (int(p) if not isinstance(p, bool) and int(p) == p else -1 for p in plane)
    except (TypeError, ValueError):
        fail(wanted)
    if i == j or not {i, j} <= {0, 1, 2}:
        fail(wanted)
    return i, j


def _slice(
    lattice: Array, positions: Array, plane: tuple[int, int], k_perp: Array
) -> tuple[TorusSlice, int]:
    """(the TorusSlice, the reduced direction along which k_perp is taken; -1 in 2D)."""
    reciprocal = 2 * jnp.pi * jnp.linalg.inv(lattice).T
    i, j = plane
    wraps = jnp.exp(-2j * jnp.pi * positions[:, jnp.array(plane)]).T  # (2, N)
    if lattice.shape[0] == 2:
        return TorusSlice(jnp.zeros(2), reciprocal[jnp.array(plane)], wraps), -1
    (normal,) = {0, 1, 2} - {i, j}
    return TorusSlice(k_perp * reciprocal[normal], reciprocal[jnp.array(plane)], wraps), normal


def chern_number(
    model: AbstractModel,
    manifold: Sequence[int],
    n_k: int,
    x: PositionLike | None = None,
    *,
    method: Literal["link", "integral"] = "link",
    plane: Sequence[int] | None = None,
    k_perp: float | None = None,
) -> Float[Array, ""]:
    """Chern number C = (1/2 pi) int Tr F^{u1 u2} d^2u of a band or manifold over a 2D Brillouin
    zone, or over a 2D slice of a 3D one.

    2D: the Brillouin zone, C = (1/2 pi) int_BZ Tr F^{kx ky} d^2k. 3D: ``plane=(i, j)`` (default
    (0, 1)) and ``k_perp`` (reduced, default 0) pick the slice k = u_1 b_i + u_2 b_j + k_perp b_l,
    u in [0, 1)^2, spanned by the reciprocal vectors b_i, b_j (rows of 2 pi inv(model.lattice).T)
    with l the third direction; C is the Berry flux through it oriented by b_i x b_j divided by
    2 pi, C = (1/2 pi) int d^2u Omega . (b_i x b_j) (Omega_c = eps_abc Tr F^{k_a k_b} / 2). For a
    cubic lattice ``plane=(0, 1)`` gives (1/2 pi) int Tr F^{kx ky} dkx dky at k_z = 2 pi k_perp;
    (1, 0) the opposite sign. Between two Weyl nodes of chirality chi the slice Chern number
    jumps by chi as k_perp crosses a node (see :func:`weyl_chirality`).

    ``method="link"`` (default) uses the Fukui-Hatsugai-Suzuki link variables on an n_k x n_k
    Monkhorst-Pack grid: an integer to rounding on coarse grids whenever the manifold is gapped.
    ``method="integral"`` sums Tr F on the same grid (a cross-check; converges exponentially
    in n_k for a gapped manifold). Needs ``model.lattice``; ``x`` picks the point of a texture
    (default: the origin). The torus is closed with the orbital-position phases of PHYSICS.md's
    convention, so ``model.orbital_positions`` (reduced) must be correct.

    Raises ValueError (under jit: equinox's runtime error with the static part of the text) when
    the gap between the manifold and the remote bands closes on the slice, on a grid point or
    between points: from the grid's N_CANDIDATES smallest local gap minima, GAP_STEPS Gauss-Newton
    steps on gap^2 (exact in one step at a linear crossing, within REACH_CELLS grid cells, inside
    the slice) find the smallest gap nearby, and a gap <= GAP_RTOL (1e-8) x max|eps| over the grid
    is closed (called eagerly, the search is skipped when the grid's gaps and band velocities rule
    out a closing inside any cell; see SLOPE_SAFETY). The message names the slice, the two bands,
    k (Cartesian and reduced) and the gap. The link method also raises when a plaquette's flux
    exceeds MAX_PLAQUETTE_FLUX (0.6 pi): the grid does not resolve a small-gap node, whose integer
    is then unreliable; increase n_k. Runs eagerly and under jit/vmap of the model's parameters and
    ``k_perp`` (n_k, manifold, method and plane static).

    Examples:
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import models
        >>> # QWZ lower band: C = -1 for 0 < m < 2, +1 for -2 < m < 0 (integer already at n_k = 6)
        >>> round(float(sj.chern_number(models.QWZ(1.0), [0], 6)))
        -1
    """
    lattice = _check_lattice_model(model)
    dim = int(model.dim)
    one_of(method, "method", ("link", "integral"))
    plane = _check_plane(dim, plane, k_perp)
    k_perp = scalar(0.0 if k_perp is None else k_perp, "k_perp")
    n_k = integer(n_k, "n_k", minimum=2)
    n_bands = int(model.n_bands)
    manifold = check_manifold(manifold, n_bands)
    remote_bands(manifold, n_bands)
    x, _ = check_point(model, x, jnp.zeros(dim))
    check_output_shape(model, x, jnp.zeros(dim))
    check_concrete_model(model)
    positions = getattr(model, "orbital_positions", None)
    positions = (
        jnp.zeros((n_bands, dim)) if positions is None else jnp.asarray(positions, dtype=float)
    )
    surface, normal = _slice(lattice, positions, plane, k_perp)
    # 2D: Tr F^{u1 u2} = det(B) Tr F^{kx ky}, so the sign of det(lattice) restores F^{kx ky}
    orientation = jnp.sign(jnp.linalg.det(lattice)) if dim == 2 else 1.0
    if method == "link":
        flux, summary = surface_flux(model, x, manifold, n_k, surface)
        chern = orientation * jnp.sum(flux) / (2 * jnp.pi)
    else:
        total, summary = _slice_integral(model, x, manifold, n_k, surface)
        chern = orientation * total / (2 * jnp.pi)
    names = _slice_names(n_k, plane, normal, k_perp, lattice)
    guards = Guards()
    check_surface_gap(
        guards, model, x, manifold, surface, jnp.full(2, REACH_CELLS / n_k), summary, names
    )
    if method == "link":
        check_surface_resolution(guards, manifold, surface, surface.grid(n_k), flux, names)
    return guards(chern)


def _slice_names(
    n_k: int, plane: tuple[int, int], normal: int, k_perp: Array, lattice: Array
) -> SurfaceNames:
    """The :class:`SurfaceNames` of chern_number's grid (2D) or slice (3D, ``normal`` >= 0)."""
    if normal < 0:
        return SurfaceNames(f"the {n_k}x{n_k} grid", "n_k", "the Chern number", lattice, no_detail)
    i, j = plane
    grid = f"the {n_k}x{n_k} grid of the slice k = u_1 b_{i} + u_2 b_{j} + k_perp b_{normal}"

    def where() -> str:
        return f" (k_perp = {float(k_perp):.10g})" if is_concrete(k_perp) else ""

    return SurfaceNames(grid, "n_k", "the slice's Chern number", lattice, where)
