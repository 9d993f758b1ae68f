"""Weyl-point chirality: the Berry flux of a manifold through a small sphere around a node in 3D.

Built on the link-variable flux through a closed surface (:mod:`._topology`).
"""

from collections.abc import Sequence

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
    remote_bands,
    scalar,
    vector,
)
from .._types import Array, Float, PositionLike, WavevectorLike
from ..models import AbstractModel
from ._topology import (
    REACH_CELLS,
    Sphere,
    SurfaceNames,
    check_surface_gap,
    check_surface_resolution,
    surface_flux,
)


def _check_sphere(model: AbstractModel, k0: WavevectorLike, radius: float) -> Sphere:
    """The sphere |k - k0| = radius of a 3D model (k0 Cartesian (3,), radius > 0, may be traced)."""
    check_model(model)
    if int(model.dim) != 3:
        fail(
            f"weyl_chirality needs a 3D model (a sphere around a point in k), got dim = {model.dim}"
        )
    k0 = vector(k0, "k0", 3)
    radius = scalar(radius, "radius")
    if is_concrete(radius) and not (jnp.isfinite(radius) and radius > 0):
        fail(f"radius must be a positive finite number, got {float(radius)!r}")
    return Sphere(k0, radius)


def weyl_chirality(
    model: AbstractModel,
    manifold: Sequence[int],
    k0: WavevectorLike,
    radius: float,
    x: PositionLike | None = None,
    *,
    n_theta: int = 12,
) -> Float[Array, ""]:
    """Chirality of a Weyl node at k0: the Berry flux of ``manifold`` out of the sphere
    |k - k0| = ``radius`` divided by 2 pi, chi = (1/2 pi) oint Omega . dS (an integer).

    ``manifold``: the bands below the node (e.g. [0] for a two-band model; the occupied manifold
    of a many-band model). Omega_c = eps_abc Tr F^{k_a k_b} / 2 with PHYSICS.md's curvature
    (paper Eq. 44). Convention: for H = sum_a v_a (k - k0)_a sigma_a (+ a tilt w . (k - k0)
    times the identity that does not close the gap on the sphere), the lower band gives
    chi = sign(v_x v_y v_z), i.e. chi = sign det(v_ab) for H = sum_ab v_ab (k - k0)_a sigma_b,
    the usual chirality of a Weyl node. The fluxes out of every sphere around all nodes of a
    lattice model add to zero (Nielsen-Ninomiya); a sphere that encloses several nodes gives
    their total.

    Method: Fukui-Hatsugai-Suzuki link variables on the (theta, phi) grid, theta = pi m / n_theta
    (m = 0..n_theta, poles included), phi = pi m / n_theta (m = 0..2 n_theta - 1); the plaquette
    phases of a closed surface add up to 2 pi times an integer exactly. ``k0`` and ``radius``
    are Cartesian (they may be traced, as may the model's parameters); ``x`` picks the point of
    a texture (default: the origin); the model need not be a lattice model.

    Raises ValueError (under jit: equinox's runtime error with the static part of the text) when
    the manifold's gap to the remote bands closes on the sphere (on a grid point, or between
    points: found by the same Gauss-Newton gap search as :func:`chern_number`, inside the
    sphere's surface): the sphere passes through a node, make it smaller or move it; and when a
    plaquette's flux exceeds 0.6 pi: the grid does not resolve the curvature on the sphere (a
    nearby node, e.g. another Weyl point just outside it); increase n_theta or shrink the radius.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import models
        >>> # the node at (0, 0, -k0) has chirality +1 (lower band)
        >>> node = [0.0, 0.0, -np.pi / 2]
        >>> round(float(sj.weyl_chirality(models.WeylLattice(np.pi / 2), [0], node, 0.3)))
        1
    """
    sphere = _check_sphere(model, k0, radius)
    n_theta = integer(n_theta, "n_theta", minimum=2)
    n_bands = int(model.n_bands)
    manifold = check_manifold(manifold, n_bands)
    remote_bands(manifold, n_bands)
    x, _ = check_point(model, x, jnp.zeros(3))
    check_output_shape(model, x, sphere.centre)
    check_concrete_model(model)
    flux, summary = surface_flux(model, x, manifold, n_theta, sphere)
    chirality = jnp.sum(flux) / (2 * jnp.pi)

    def where() -> str:
        if not is_concrete(sphere):
            return ""
        centre = ", ".join(f"{float(c):.10g}" for c in sphere.centre)
        return f" (k0 = ({centre}), radius = {float(sphere.radius):.10g})"

    grid = f"the {n_theta}x{2 * n_theta} (theta, phi) grid of the sphere |k - k0| = radius"
    names = SurfaceNames(grid, "n_theta", "the chirality", None, where)
    guards = Guards()
    guards.add(~(sphere.radius > 0), "radius must be a positive finite number")  # traced radius
    reach = jnp.full(2, REACH_CELLS * jnp.pi / n_theta)
    check_surface_gap(guards, model, x, manifold, sphere, reach, summary, names)
    check_surface_resolution(guards, manifold, sphere, sphere.grid(n_theta), flux, names)
    return guards(chirality)
