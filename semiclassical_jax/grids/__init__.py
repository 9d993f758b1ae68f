"""k-space grids with quadrature weights for the kinetic theory (PHYSICS.md section 3).

A grid holds points k_i (shape (n, d), Cartesian) and weights w_i such that
    sum_i w_i f(k_i) ~ int d^dk / (2 pi)^d f(k),
the package's k-integral convention. Integrands are evaluated per point and summed with the weights.

Fixed rules (:mod:`._grid`): :func:`brillouin_zone` (Monkhorst-Pack), :func:`disk` (polar),
:func:`box` (Gauss-Legendre product). Adaptive rule (:mod:`._adaptive`, d = 2, 3): :func:`adaptive`
refines cells where a Berry-curvature hot-spot indicator is under-resolved (small gaps), then
returns an ordinary, fixed :class:`KGrid`. :func:`map_points` (:mod:`._map`) evaluates any
per-point function over many points in chunks.
"""

from ._adaptive import adaptive as adaptive
from ._grid import KGrid as KGrid
from ._grid import box as box
from ._grid import brillouin_zone as brillouin_zone
from ._grid import disk as disk
from ._map import DEFAULT_MAP_CHUNK as DEFAULT_MAP_CHUNK
from ._map import map_points as map_points

__all__ = [
    "DEFAULT_MAP_CHUNK",
    "KGrid",
    "adaptive",
    "box",
    "brillouin_zone",
    "disk",
    "map_points",
]
