"""Topology of 2D bands and manifolds: Chern numbers (later Wilson loops and Weyl chirality).

Built on the per-point kernel (:mod:`._kernel`); the Brillouin-zone torus is closed with the
orbital-position phases of PHYSICS.md's lattice convention.
"""

from collections.abc import Sequence
from typing import Literal

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


# The gap check (chern_number): the grid's N_CANDIDATES smallest local minima of the manifold's gap
# are refined by GAP_STEPS Gauss-Newton steps on gap^2(k), each at most REACH_CELLS grid cells
# from its grid point; the Chern number is undefined if the smallest gap found is <= GAP_RTOL x
# the model's energy scale max|eps| over the grid (GAP_RTOL from the geometry kernel).
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
def _minimise_gap(model, x, inside, lattice, starts, cell):
    """The smallest manifold gap near each start k (m, 2), Gauss-Newton on gap^2 (see above).

    The steps alternate between q and 2 q (2 q is exact at a quadratic touching, q at a linear
    crossing) and are kept only where they lower the gap;
    the k stay within REACH_CELLS x ``cell`` (reduced units) of their start. Returns (gap (m,),
    k (m, 2), bands (m, 2)) at the best point found, the start included.
    """
    reach = REACH_CELLS * cell
    to_reduced = lattice.T / (2 * jnp.pi)
    to_cartesian = 2 * jnp.pi * jnp.linalg.inv(lattice).T

    def clamp(k, start):
        shift = jnp.clip((k - start) @ to_reduced, -reach, reach)
        return start + shift @ to_cartesian

    def descend(start):
        def step(i, state):
            k, gap, bands, residual, jacobian = state
            trial = clamp(k + (1 + i % 2) * _gauss_newton_step(residual, jacobian), start)
            new = (trial, *_pair_residual(model, x, inside, trial))
            better = new[1] < gap
            return jax.tree_util.tree_map(lambda a, b: jnp.where(better, a, b), new, state)

        # the first step (q = 0, gap = inf) evaluates the start: one trace of the kernel only
        state = (start, jnp.inf, jnp.zeros(2, int), jnp.zeros(3), jnp.eye(3, 2))
        k, gap, bands, _, _ = jax.lax.fori_loop(0, GAP_STEPS + 1, step, state)
        return gap, k, bands

    return jax.vmap(descend)(starts)


def _gap_candidates(gaps: Float[Array, "n n"], points: Float[Array, "n n 2"]) -> Array:
    """The k (m, 2) of the N_CANDIDATES smallest local minima of the gap on the periodic grid."""
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
    return points.reshape(-1, 2)[index]


def _gap_summary(gaps, speeds, scales, points, lattice, n_k):
    """(starts (m, 2), scale max|eps|, closable) from the grid's gaps, max|v_n| and max|eps|.

    ``closable``: the gap might close inside a cell (see SLOPE_SAFETY) or is already closed.
    """
    reciprocal = 2 * jnp.pi * jnp.linalg.inv(lattice).T
    corner = jnp.maximum(
        jnp.linalg.norm(reciprocal[0] + reciprocal[1]),
        jnp.linalg.norm(reciprocal[0] - reciprocal[1]),
    ) / (2 * n_k)
    scale = jnp.max(scales)
    bound = jnp.maximum(SLOPE_SAFETY * 2 * jnp.max(speeds) * corner, GAP_RTOL * scale)
    starts = _gap_candidates(gaps.reshape(n_k, n_k), points)
    return starts, scale, jnp.min(gaps) <= bound


def _gaps_at(geometry: BandGeometry, manifold: tuple[int, ...]) -> tuple[Array, Array, Array]:
    """(manifold gap, max_n |v_n|, max|eps|) at one point."""
    speed = jnp.max(jnp.sqrt(jnp.sum(geometry.velocity() ** 2, axis=-1)))
    return geometry.manifold_gap(manifold), speed, jnp.max(jnp.abs(geometry.energies))


@eqx.filter_jit
def _chern_link(model, x, manifold, n_k, lattice, positions):
    """Fukui-Hatsugai-Suzuki: the Chern number from the link variables' plaquette phases.

    Also returns :func:`_gap_summary` and the plaquette fluxes (n, n) (index (i, j): the
    plaquette with lower-left corner at grid point (i, j)).
    """
    points = torus_grid(lattice, n_k)

    def states_and_gap(k):
        geometry = band_geometry_unchecked(model, x, k)
        return geometry.states[:, jnp.array(manifold)], _gaps_at(geometry, manifold)

    states, gaps = jax.vmap(states_and_gap)(points.reshape(-1, 2))
    states = states.reshape(n_k, n_k, *states.shape[1:])  # (n, n, N, Na)
    # u(k + b_mu) = V(b_mu)^dagger u(k), V = diag(exp(i b_mu . tau)) = diag(exp(2 pi i tau_mu)).
    wrap = jnp.exp(-2j * jnp.pi * positions)  # (N, 2)
    next1 = jnp.roll(states, -1, axis=0).at[-1].multiply(wrap[:, 0][:, None])
    next2 = jnp.roll(states, -1, axis=1).at[:, -1].multiply(wrap[:, 1][:, None])

    def link(u, v):
        return jnp.linalg.det(jnp.einsum("...in,...im->...nm", jnp.conj(u), v))

    u1, u2 = link(states, next1), link(states, next2)
    plaquette = u1 * jnp.roll(u2, -1, axis=0) * jnp.conj(jnp.roll(u1, -1, axis=1)) * jnp.conj(u2)
    orientation = jnp.sign(jnp.linalg.det(lattice))
    flux = -orientation * jnp.angle(plaquette)
    chern = jnp.sum(flux) / (2 * jnp.pi)
    return chern, _gap_summary(*gaps, points, lattice, n_k), flux


@eqx.filter_jit
def _chern_integral(model, x, manifold, n_k, lattice):
    """The Chern number as the grid sum of Tr F^{kx ky} times the cell area / 2 pi.

    Also returns :func:`_gap_summary`.
    """
    points = torus_grid(lattice, n_k)
    d = 2

    def curvature_and_gap(k):
        geometry = band_geometry_unchecked(model, x, k)
        trace = jnp.real(jnp.trace(geometry.nonabelian_curvature(manifold)[d, d + 1]))
        return trace, _gaps_at(geometry, manifold)

    curvature, gaps = jax.vmap(curvature_and_gap)(points.reshape(-1, 2))
    cell = jnp.abs(jnp.linalg.det(2 * jnp.pi * jnp.linalg.inv(lattice)))
    chern = jnp.sum(curvature) * cell / n_k**2 / (2 * jnp.pi)
    return chern, _gap_summary(*gaps, points, lattice, n_k)


def _check_lattice_model(model: AbstractModel) -> Array:
    """The (2, 2) lattice of a 2D lattice model."""
    check_model(model)
    lattice = getattr(model, "lattice", None)
    if lattice is None:
        fail(
            f"chern_number needs a lattice model (model.lattice is missing on {type(model).__name__}); "
            "for a continuum model integrate manifold_berry_curvature over k instead"
        )
    if int(model.dim) != 2:
        fail(f"chern_number is defined for 2D models, got dim = {model.dim}")
    return jnp.asarray(lattice, dtype=float)


def chern_number(
    model: AbstractModel,
    manifold: Sequence[int],
    n_k: int,
    x: PositionLike | None = None,
    *,
    method: Literal["link", "integral"] = "link",
) -> Float[Array, ""]:
    """Chern number C = (1/2 pi) int_BZ Tr F^{kx ky} d^2k of a 2D band or manifold.

    ``method="link"`` (default) uses the Fukui-Hatsugai-Suzuki link variables on an n_k x n_k
    Monkhorst-Pack grid: an integer to rounding on coarse grids whenever the manifold is gapped.
    ``method="integral"`` sums Tr F^{kx ky} on the same grid (a cross-check; converges exponentially
    in n_k for a gapped manifold). Needs ``model.lattice``; ``x`` picks the point of a texture
    (default: the origin). The torus is closed with the orbital-position phases of PHYSICS.md's
    convention, so ``model.orbital_positions`` (reduced) must be correct.

    Raises ValueError (under jit: equinox's runtime error with the static part of the text) when
    the gap between the manifold and the remote bands closes, on a grid point or between points:
    from the grid's N_CANDIDATES smallest local gap minima, GAP_STEPS Gauss-Newton steps on
    gap^2(k) (exact in one step at a linear crossing, within REACH_CELLS grid cells) find the
    smallest gap nearby, and a gap <= GAP_RTOL (1e-8) x max|eps| over the grid is closed (called
    eagerly, the search is skipped when the grid's gaps and band velocities rule out a closing
    inside any cell; see SLOPE_SAFETY). The
    message names the two bands, k (Cartesian and reduced) and the gap. The link method also raises
    when a plaquette's flux exceeds MAX_PLAQUETTE_FLUX (0.6 pi): the grid does not resolve a
    small-gap node, whose integer is then unreliable; increase n_k. Runs eagerly and under
    jit/vmap of the model's parameters (n_k, manifold and method static).
    """
    lattice = _check_lattice_model(model)
    one_of(method, "method", ("link", "integral"))
    n_k = integer(n_k, "n_k", minimum=2)
    n_bands = int(model.n_bands)
    manifold = check_manifold(manifold, n_bands)
    remote_bands(manifold, n_bands)
    x, _ = check_point(model, x, jnp.zeros(2))
    check_output_shape(model, x, jnp.zeros(2))
    check_concrete_model(model)
    positions = getattr(model, "orbital_positions", None)
    positions = (
        jnp.zeros((n_bands, 2)) if positions is None else jnp.asarray(positions, dtype=float)
    )
    if method == "link":
        chern, summary, flux = _chern_link(model, x, manifold, n_k, lattice, positions)
    else:
        chern, summary = _chern_integral(model, x, manifold, n_k, lattice)
    guards = Guards()
    starts, scale, closable = summary
    if not is_concrete(closable) or bool(closable):
        _check_gap(guards, model, x, manifold, n_k, lattice, starts, scale)
    if method == "link":
        _check_resolution(guards, manifold, n_k, lattice, flux)
    return guards(chern)


def _show_k(k: Array, lattice: Array) -> str:
    """'k = (kx, ky) (reduced (r1, r2))' for a Cartesian k."""
    cartesian = ", ".join(f"{float(c):.10g}" for c in k)
    reduced = ", ".join(f"{float(r):.10g}" for r in k @ lattice.T / (2 * jnp.pi))
    return f"k = ({cartesian}) (reduced ({reduced}))"


def _check_gap(
    guards: Guards,
    model: AbstractModel,
    x: Float[Array, " d"],
    manifold: tuple[int, ...],
    n_k: int,
    lattice: Float[Array, "2 2"],
    starts: Float[Array, "m 2"],
    scale: Float[Array, ""],
) -> None:
    """The manifold's gap, minimised from the grid's smallest gaps, must exceed GAP_RTOL max|eps|."""
    inside = jnp.isin(jnp.arange(int(model.n_bands)), jnp.array(manifold))
    gaps, points, bands = _minimise_gap(model, x, inside, lattice, starts, jnp.asarray(1.0 / n_k))
    best = jnp.argmin(gaps)
    gap, k, pair = gaps[best], points[best], bands[best]
    guards.add(
        gap <= GAP_RTOL * scale,
        f"manifold {manifold}: its gap to the remote bands closes on the {n_k}x{n_k} grid or "
        f"between its points (gap <= {GAP_RTOL:g} x max|eps|)",
        detail=lambda: (
            f": bands {int(pair[0])} and {int(pair[1])} meet at {_show_k(k, lattice)} with "
            f"gap = {float(gap):.3e} (max|eps| = {float(scale):.3e}); the Chern number is undefined"
        ),
    )


def _check_resolution(
    guards: Guards,
    manifold: tuple[int, ...],
    n_k: int,
    lattice: Float[Array, "2 2"],
    flux: Float[Array, "n n"],
) -> None:
    """Every plaquette's Berry flux must be within MAX_PLAQUETTE_FLUX (link method)."""
    worst = jnp.argmax(jnp.abs(flux))
    value = flux.reshape(-1)[worst]
    centre = (jnp.array([worst // n_k, worst % n_k]) + 0.5) / n_k  # reduced
    reciprocal = 2 * jnp.pi * jnp.linalg.inv(lattice).T
    guards.add(
        jnp.abs(value) > MAX_PLAQUETTE_FLUX,
        f"manifold {manifold}: the {n_k}x{n_k} grid does not resolve its Berry curvature (a "
        f"plaquette's flux exceeds {MAX_PLAQUETTE_FLUX / jnp.pi:g} pi; a small-gap node lies inside "
        "it and the integer is unreliable); increase n_k",
        detail=lambda: (
            f": flux {float(value) / jnp.pi:.3f} pi in the plaquette centred at "
            f"{_show_k(centre @ reciprocal, lattice)}"
        ),
    )
