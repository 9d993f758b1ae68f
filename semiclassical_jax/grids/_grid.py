"""The fixed k-grids: :class:`KGrid` and the Monkhorst-Pack, polar and box rules (PHYSICS.md
section 3).

Sizes are checked before anything is allocated (:func:`check_memory`): each rule estimates its
points and bytes from its arguments alone, in Python integers (no overflow), and refuses a grid
that does not fit in the memory the machine has free, quoting the estimate.
"""

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._files import free_memory
from .._guards import fail, integer, positive
from .._types import Array, Float
from ..models import AbstractModel


# Bytes per grid point and coordinate while a rule builds it: the NumPy meshgrid / stack /
# product temporaries and the device copy hold about this many float64 copies at once.
GRID_COPIES = 4
# leggauss(n) diagonalises an n x n companion matrix: about this many n x n float64 arrays.
LEGGAUSS_COPIES = 3


def format_bytes(n_bytes: float) -> str:
    """``n_bytes`` in kB, MB, GB, ... (powers of 1000), 3 significant digits."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if n_bytes < 1000 or unit == "PB":
            return f"{n_bytes:.3g} {unit}"
        n_bytes /= 1000
    raise AssertionError  # pragma: no cover


def check_memory(n_bytes: int, what: str, devices: Sequence[Any] = ()) -> None:
    """Refuse (ValueError) an allocation of about ``n_bytes`` that exceeds the free memory of the
    host or of any of ``devices`` (see ``_files.free_memory``); ``what`` names it and how the
    estimate was made. Nothing is checked where the free memory is unknown."""
    for free, where in free_memory(devices):
        if n_bytes > free:
            fail(
                f"{what} need about {format_bytes(n_bytes)}, more than the "
                f"{format_bytes(free)} free in {where}; make it smaller"
            )


def _check_grid_size(rule: str, n_points: int, dim: int, nodes: int = 0) -> None:
    """A rule's n_points points (n, dim) + weights (GRID_COPIES float64 copies of each), and the
    nodes x nodes Gauss-Legendre matrix (LEGGAUSS_COPIES copies)."""
    point_bytes = GRID_COPIES * 8 * (dim + 1) * n_points
    matrix_bytes = LEGGAUSS_COPIES * 8 * nodes**2
    what = f"{rule}: {n_points:.3g} points of dimension {dim}"
    if matrix_bytes > point_bytes:
        what += f" and the {nodes} x {nodes} Gauss-Legendre matrix"
    check_memory(point_bytes + matrix_bytes, what)


class KGrid(eqx.Module):
    """Points (n, d) and weights (n,), with sum(w f) ~ int d^dk/(2 pi)^d f (the k-integral of
    PHYSICS.md conventions; k in inverse length units).

    ``evaluations``: how many integrand (indicator) evaluations it took to *build* the grid. It is
    0 for the fixed rules (:func:`brillouin_zone`, :func:`disk`, :func:`box`), whose only cost is
    the n points themselves; :func:`adaptive` sets it to the total number of indicator evaluations
    during refinement (starting cells plus every set of children), which exceeds n.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> grid = grids.KGrid(np.zeros((1, 2)), np.ones(1))
        >>> grid.points.shape, grid.weights.shape, grid.evaluations
        ((1, 2), (1,), 0)
    """

    points: Float[Array, "n d"]
    weights: Float[Array, " n"]
    evaluations: int = eqx.field(static=True, default=0)

    @property
    def dim(self) -> int:
        return self.points.shape[1]

    def integrate(self, values: Array) -> Array:
        """sum_i w_i values_i: the integral of the integrand ``values`` (n, ...) at the points."""
        return jnp.tensordot(self.weights, values, axes=(0, 0))


def brillouin_zone(model: AbstractModel, n: int) -> KGrid:
    """n^d Monkhorst-Pack grid over the Brillouin zone of a lattice model (``model.lattice``).

    Points sit at the cell centres k = sum_i (m_i + 1/2) / n b_i; each weight is
    |det B| / (n^d (2 pi)^d) = 1 / (n^d A_cell), so a constant integrates to 1 / A_cell.
    Exponentially accurate for smooth periodic integrands. The measure is PHYSICS.md's
    int dk = int_BZ d^dk / (2 pi)^d (conventions).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> grid = grids.brillouin_zone(models.QWZ(1.0), 6)
        >>> # QWZ: square lattice a = 1, weights sum to 1 / area of the unit cell
        >>> grid.points.shape, round(float(grid.weights.sum()), 6)
        ((36, 2), 1.0)
    """
    lattice = getattr(model, "lattice", None)
    if lattice is None:
        fail(
            f"brillouin_zone needs a lattice model (model.lattice is missing on "
            f"{type(model).__name__}); use grids.disk or grids.box for a continuum model"
        )
    n = integer(n, "n")
    lattice = np.asarray(lattice, dtype=float)
    dim = lattice.shape[0]
    _check_grid_size(f"brillouin_zone(n = {n})", n**dim, dim)
    reciprocal = 2 * np.pi * np.linalg.inv(lattice).T
    fractions = (np.arange(n) + 0.5) / n
    reduced = np.stack(np.meshgrid(*([fractions] * dim), indexing="ij"), axis=-1).reshape(-1, dim)
    weight = abs(np.linalg.det(reciprocal)) / (n**dim * (2 * np.pi) ** dim)
    return KGrid(jnp.asarray(reduced @ reciprocal), jnp.full(n**dim, weight))


def disk(radius: float, n_radial: int, n_angle: int, *, breaks: Sequence[float] = ()) -> KGrid:
    """Polar grid on |k| <= radius (d = 2): Gauss-Legendre in |k|, uniform in angle; the cutoff
    region of a continuum model's k-integral (PHYSICS.md conventions).

    ``breaks``: radii 0 < b_1 < ... < radius that split [0, radius] into panels, each with its own
    n_radial-node Gauss-Legendre rule (a composite rule). Put breaks where the integrand has
    structure: geometric panels from the gap scale Delta / v out to the cutoff, and one at the
    Fermi momentum (an exact node boundary for the T = 0 step). Weights carry the polar measure
    |k| d|k| dtheta and 1/(2 pi)^2; each panel is exact for polynomials in |k| up to degree
    2 n_radial - 2 times trigonometric polynomials of degree < n_angle.

    Cutoff convergence: a continuum model needs the k-integral to converge in ``radius``, checked
    by repeating it at larger radius. For the massive Dirac Hall conductivity the cutoff error is
    |Delta| / sqrt(v^2 R^2 + Delta^2) (a closed form, tested), so 1e-3 needs R ~ 10^3 |Delta| / v:
    cheap with geometric panels, expensive with one panel.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> disk = grids.disk(2.0, 8, 8, breaks=[0.4])
        >>> # weights sum to pi R^2 / (2 pi)^2 = 1 / pi
        >>> disk.points.shape, round(float(disk.weights.sum()), 6), round(1 / np.pi, 6)
        ((128, 2), 0.31831, 0.31831)
    """
    radius = positive(radius, "radius")
    n_radial = integer(n_radial, "n_radial")
    n_angle = integer(n_angle, "n_angle")
    edges = np.concatenate([[0.0], np.asarray(breaks, dtype=float).reshape(-1), [radius]])
    if not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        fail(f"breaks must increase strictly inside (0, radius = {radius}), got {list(breaks)!r}")
    n_points = (edges.size - 1) * n_radial * n_angle
    rule = f"disk(n_radial = {n_radial}, n_angle = {n_angle}, {edges.size - 1} panel(s))"
    _check_grid_size(rule, n_points, 2, n_radial)
    nodes, weights = np.polynomial.legendre.leggauss(n_radial)
    lower, width = edges[:-1, None], np.diff(edges)[:, None]
    k = (lower + 0.5 * width * (nodes + 1)).ravel()
    w_k = (0.5 * width * weights).ravel() * k
    theta = 2 * np.pi * np.arange(n_angle) / n_angle
    points = np.stack(
        [np.outer(k, np.cos(theta)).ravel(), np.outer(k, np.sin(theta)).ravel()], axis=-1
    )
    w = np.repeat(w_k, n_angle) * (2 * np.pi / n_angle) / (2 * np.pi) ** 2
    return KGrid(jnp.asarray(points), jnp.asarray(w))


def box(half_width: float, n: int, dim: int = 2) -> KGrid:
    """Gauss-Legendre product grid on [-half_width, half_width]^dim (n nodes per direction).

    Points (n^dim, dim) in 1 / length; weights (n^dim,) carry 1/(2 pi)^dim, so that
    sum(w f) ~ int d^dk/(2 pi)^d f (PHYSICS.md conventions).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> grid = grids.box(1.0, 4)
        >>> # weights sum to the area / (2 pi)^2 = 4 / (4 pi^2)
        >>> grid.points.shape, round(float(grid.weights.sum()), 6), round(4 / (4 * np.pi**2), 6)
        ((16, 2), 0.101321, 0.101321)
    """
    half_width = positive(half_width, "half_width")
    n = integer(n, "n")
    dim = integer(dim, "dim")
    _check_grid_size(f"box(n = {n}, dim = {dim})", n**dim, dim, n)
    nodes, weights = np.polynomial.legendre.leggauss(n)
    nodes, weights = half_width * nodes, half_width * weights
    points = np.stack(np.meshgrid(*([nodes] * dim), indexing="ij"), axis=-1).reshape(-1, dim)
    w = np.prod(
        np.stack(np.meshgrid(*([weights] * dim), indexing="ij"), axis=-1).reshape(-1, dim), axis=-1
    )
    return KGrid(jnp.asarray(points), jnp.asarray(w / (2 * np.pi) ** dim))
