"""A lattice Weyl semimetal (d = 3)."""

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

from .._types import Array, Complex, Float, ParameterLike
from ._base import AbstractLatticeModel, as_parameter, evaluate


class WeylLattice(AbstractLatticeModel):
    """Two Weyl nodes on the simple cubic lattice (a = 1), the minimal Weyl semimetal that breaks
    time reversal.

    H(k) = sin kx sx + sin ky sy + (cos kx + cos ky + cos kz - cos k0 - 2) sz.

    For 0 < ``k0`` < pi the bands touch only at the nodes k = (0, 0, -+k0), at zero energy, where
    H ~ qx sx + qy sy +- sin(k0) qz sz (q = k - node; cos(-+k0 + qz) ~ cos k0 +- sin(k0) qz):
    chirality +1 at (0, 0, -k0) and -1 at (0, 0, +k0) (:func:`semiclassical_jax.weyl_chirality`'s
    convention, lower band). Each (kx, ky) slice is a
    QWZ model with mass cos kz - cos k0 - 2: the lower band's slice Chern number (plane (0, 1)) is
    1 for |kz| < k0 and 0 for |kz| > k0, so with the Fermi level at the nodes the intrinsic
    anomalous Hall conductivity is sigma_xy = -(1 / 2 pi) (2 k0 / 2 pi) (e^2/h per lattice
    constant, natural units; PHYSICS.md Eq. 53 sign). ``k0`` may be a texture.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> model = models.WeylLattice(np.pi / 2)
        >>> # the nodes k = (0, 0, -+k0) are at zero energy
        >>> print(np.round(sj.eigensystem(model, None, [0.0, 0.0, np.pi / 2])[0], 6) + 0.0)
        [0. 0.]
    """

    k0: ParameterLike = eqx.field(converter=as_parameter)

    dim: ClassVar[int] = 3
    n_bands: ClassVar[int] = 2

    @property
    def lattice(self) -> Float[Array, "3 3"]:
        return jnp.eye(3)

    @property
    def orbital_positions(self) -> Float[Array, "2 3"]:
        return jnp.zeros((2, 3))

    def __call__(self, x: Float[Array, "3"], k: Float[Array, "3"]) -> Complex[Array, "2 2"]:
        k0 = evaluate(self.k0, x)
        dx, dy = jnp.sin(k[0]), jnp.sin(k[1])
        dz = jnp.cos(k[0]) + jnp.cos(k[1]) + jnp.cos(k[2]) - jnp.cos(k0) - 2
        return jnp.array([[dz, dx - 1j * dy], [dx + 1j * dy, -dz]])
