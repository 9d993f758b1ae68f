"""k-space grids with quadrature weights for the kinetic theory (PHYSICS.md section 3).

A grid holds points k_i (shape (n, d), Cartesian) and weights w_i such that
    sum_i w_i f(k_i) ~ int d^dk / (2 pi)^d f(k),
the package's k-integral convention. Integrands are evaluated per point and summed with the weights.
"""

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._types import Array, Float


class KGrid(eqx.Module):
    """Points (n, d) and weights (n,), with sum(w f) ~ int d^dk/(2 pi)^d f."""

    points: Float[Array, "n d"]
    weights: Float[Array, " n"]

    @property
    def dim(self) -> int:
        return self.points.shape[1]

    def integrate(self, values: Array) -> Array:
        """sum_i w_i values_i over the leading axis."""
        return jnp.tensordot(self.weights, values, axes=(0, 0))


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _positive_real(value: Any, name: str) -> float:
    number = float(value)
    if not np.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return number


def brillouin_zone(model: Any, n: int) -> KGrid:
    """n^d Monkhorst-Pack grid over the Brillouin zone of a lattice model (``model.lattice``).

    Points sit at the cell centres k = sum_i (m_i + 1/2) / n b_i; each weight is
    |det B| / (n^d (2 pi)^d) = 1 / (n^d A_cell), so a constant integrates to 1 / A_cell.
    Exponentially accurate for smooth periodic integrands.
    """
    lattice = getattr(model, "lattice", None)
    if lattice is None:
        raise ValueError(
            f"brillouin_zone needs a lattice model (model.lattice is missing on {type(model).__name__}); "
            "use grids.disk or grids.box for a continuum model"
        )
    n = _positive_int(n, "n")
    lattice = np.asarray(lattice, dtype=float)
    dim = lattice.shape[0]
    reciprocal = 2 * np.pi * np.linalg.inv(lattice).T
    fractions = (np.arange(n) + 0.5) / n
    reduced = np.stack(np.meshgrid(*([fractions] * dim), indexing="ij"), axis=-1).reshape(-1, dim)
    weight = abs(np.linalg.det(reciprocal)) / (n**dim * (2 * np.pi) ** dim)
    return KGrid(jnp.asarray(reduced @ reciprocal), jnp.full(n**dim, weight))


def disk(radius: float, n_radial: int, n_angle: int) -> KGrid:
    """Polar grid on |k| <= radius (d = 2): Gauss-Legendre in |k|, uniform in angle.

    Weights carry the polar measure |k| d|k| dtheta and 1/(2 pi)^2. Exact for polynomials in |k| up
    to degree 2 n_radial - 2 times trigonometric polynomials of degree < n_angle. For a continuum
    model check convergence in ``radius`` (the cutoff) as well as in the node counts.
    """
    radius = _positive_real(radius, "radius")
    n_radial = _positive_int(n_radial, "n_radial")
    n_angle = _positive_int(n_angle, "n_angle")
    nodes, weights = np.polynomial.legendre.leggauss(n_radial)
    k = 0.5 * radius * (nodes + 1)
    w_k = 0.5 * radius * weights * k
    theta = 2 * np.pi * np.arange(n_angle) / n_angle
    points = np.stack(
        [np.outer(k, np.cos(theta)).ravel(), np.outer(k, np.sin(theta)).ravel()], axis=-1
    )
    w = np.repeat(w_k, n_angle) * (2 * np.pi / n_angle) / (2 * np.pi) ** 2
    return KGrid(jnp.asarray(points), jnp.asarray(w))


def box(half_width: float, n: int, dim: int = 2) -> KGrid:
    """Gauss-Legendre product grid on [-half_width, half_width]^dim (n nodes per direction)."""
    half_width = _positive_real(half_width, "half_width")
    n = _positive_int(n, "n")
    dim = _positive_int(dim, "dim")
    nodes, weights = np.polynomial.legendre.leggauss(n)
    nodes, weights = half_width * nodes, half_width * weights
    points = np.stack(np.meshgrid(*([nodes] * dim), indexing="ij"), axis=-1).reshape(-1, dim)
    w = np.prod(np.stack(np.meshgrid(*([weights] * dim), indexing="ij"), axis=-1).reshape(-1, dim), axis=-1)
    return KGrid(jnp.asarray(points), jnp.asarray(w / (2 * np.pi) ** dim))
