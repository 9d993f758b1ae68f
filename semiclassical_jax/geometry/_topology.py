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
    one_of,
    remote_bands,
)
from .._types import Array, Float, PositionLike
from ..models import AbstractModel
from ._kernel import GAP_RTOL, band_geometry_unchecked


def torus_grid(lattice: Float[Array, "2 2"], n_k: int) -> Float[Array, "n n 2"]:
    """The n_k x n_k grid k = (m1 b1 + m2 b2) / n_k, m_i = 0..n_k-1, Cartesian (b_i: reciprocal)."""
    reciprocal = 2 * jnp.pi * jnp.linalg.inv(lattice).T
    fractions = jnp.arange(n_k) / n_k
    reduced = jnp.stack(jnp.meshgrid(fractions, fractions, indexing="ij"), axis=-1)
    return reduced @ reciprocal


@eqx.filter_jit
def _chern_link(model, x, manifold, n_k, lattice, positions):
    """Fukui-Hatsugai-Suzuki: the Chern number from the link variables' plaquette phases."""
    flat = torus_grid(lattice, n_k).reshape(-1, 2)

    def states_and_gap(k):
        geometry = band_geometry_unchecked(model, x, k)
        return (
            geometry.states[:, jnp.array(manifold)],
            geometry.manifold_gap(manifold),
            geometry.energies,
        )

    states, gaps, energies = jax.vmap(states_and_gap)(flat)
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
    chern = -orientation * jnp.sum(jnp.angle(plaquette)) / (2 * jnp.pi)
    return chern, jnp.min(gaps), jnp.max(jnp.abs(energies))


@eqx.filter_jit
def _chern_integral(model, x, manifold, n_k, lattice):
    """The Chern number as the grid sum of Tr F^{kx ky} times the cell area / 2 pi."""
    grid = torus_grid(lattice, n_k).reshape(-1, 2)
    d = 2

    def curvature_and_gap(k):
        geometry = band_geometry_unchecked(model, x, k)
        trace = jnp.real(jnp.trace(geometry.nonabelian_curvature(manifold)[d, d + 1]))
        return trace, geometry.manifold_gap(manifold), jnp.max(jnp.abs(geometry.energies))

    curvature, gaps, scales = jax.vmap(curvature_and_gap)(grid)
    cell = jnp.abs(jnp.linalg.det(2 * jnp.pi * jnp.linalg.inv(lattice)))
    return jnp.sum(curvature) * cell / n_k**2 / (2 * jnp.pi), jnp.min(gaps), jnp.max(scales)


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
        chern, gap, scale = _chern_link(model, x, manifold, n_k, lattice, positions)
    else:
        chern, gap, scale = _chern_integral(model, x, manifold, n_k, lattice)
    guards = Guards()
    guards.add(
        gap <= GAP_RTOL * scale,
        f"manifold {manifold}: its gap to the remote bands closes on the {n_k}x{n_k} grid",
        detail=lambda: f" (min gap = {float(gap):.3e}); the Chern number is undefined",
    )
    return guards(chern)
