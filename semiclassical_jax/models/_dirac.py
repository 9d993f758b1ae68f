"""Continuum Dirac models (d = 2)."""

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

from .._guards import fail
from .._types import Array, Complex, Float, ParameterLike
from ._base import AbstractModel, as_parameter, evaluate


def _check_valley(valley: int) -> int:
    if valley not in (1, -1):
        fail(f"valley must be +1 or -1, got {valley!r}")
    return int(valley)


class MassiveDirac(AbstractModel):
    """One valley of gapped graphene / a massive surface Dirac cone.

    H(x, k) = v (valley kx sx + ky sy) + Delta sz + w kx,

    with ``velocity`` v, ``mass`` Delta (half the gap 2|Delta|), ``valley`` = +1 or -1 and ``tilt``
    w (a velocity, along x). Any of v, Delta, w may be a texture (a callable of x): a mass that
    changes sign across a moire cell is ``MassiveDirac(1.0, textures.HexagonalMoire(0.1, 10.0))``.

    Lower-band Berry curvature (PHYSICS.md sign convention):
        Omega^{kx ky} = valley Delta v^2 / (2 (v^2 k^2 + Delta^2)^{3/2}),
    so the lower band carries half a Chern number, valley sign(Delta) / 2.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> # H(k = 0) = Delta sz
        >>> print(np.round(np.asarray(m(np.zeros(2), np.zeros(2))).real, 6))
        [[ 0.3  0. ]
         [ 0.  -0.3]]
    """

    velocity: ParameterLike = eqx.field(converter=as_parameter)
    mass: ParameterLike = eqx.field(converter=as_parameter)
    valley: int = eqx.field(default=1, static=True, converter=_check_valley)
    tilt: ParameterLike = eqx.field(default=0.0, converter=as_parameter)

    dim: ClassVar[int] = 2
    n_bands: ClassVar[int] = 2

    def __call__(self, x: Float[Array, "2"], k: Float[Array, "2"]) -> Complex[Array, "2 2"]:
        v = evaluate(self.velocity, x)
        delta = evaluate(self.mass, x)
        w = evaluate(self.tilt, x)
        kx = self.valley * v * k[0]
        ky = v * k[1]
        diagonal = w * k[0]
        return jnp.array(
            [[diagonal + delta, kx - 1j * ky], [kx + 1j * ky, diagonal - delta]],
            dtype=jnp.result_type(kx, 1j),
        )


class DiracWithRemoteBand(AbstractModel):
    """A massive Dirac pair (bands 0, 1) coupled to a remote band (band 2): a 3-band test bed.

    Orbitals (A, B, C); with k_pm = kx +- i ky,
        H = [[ Delta,      v k_-,    g k_+ ],
             [ v k_+,     -Delta,    g k_- ],
             [ g k_-,      g k_+,   E_r   ]].
    ``remote_energy`` E_r puts the remote band far above the Dirac pair; ``coupling`` g mixes it in.
    For g != 0 the non-Abelian curvature of the active manifold {0, 1} is non-zero and scales as
    g^2 / E_r^2 for large E_r; g = 0 decouples the remote band exactly. Parameters may be textures.
    The active / remote split of PHYSICS.md section 1 (paper Fig. 1, Eqs. 40-41); energies in the
    model's energy unit, k in inverse length.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> model = models.DiracWithRemoteBand(1.0, 0.3, 2.0, 0.2)
        >>> model.n_bands, model.dim
        (3, 2)
        >>> print(np.round(sj.eigensystem(model, None, [0.0, 0.0])[0], 6))
        [-0.3  0.3  2. ]
    """

    velocity: ParameterLike = eqx.field(converter=as_parameter)
    mass: ParameterLike = eqx.field(converter=as_parameter)
    remote_energy: ParameterLike = eqx.field(converter=as_parameter)
    coupling: ParameterLike = eqx.field(converter=as_parameter)

    dim: ClassVar[int] = 2
    n_bands: ClassVar[int] = 3

    def __call__(self, x: Float[Array, "2"], k: Float[Array, "2"]) -> Complex[Array, "3 3"]:
        v = evaluate(self.velocity, x)
        delta = evaluate(self.mass, x)
        e_r = evaluate(self.remote_energy, x)
        g = evaluate(self.coupling, x)
        k_plus = k[0] + 1j * k[1]
        k_minus = k[0] - 1j * k[1]
        zero = jnp.zeros((), dtype=jnp.result_type(k_plus))
        return jnp.array(
            [
                [delta + zero, v * k_minus, g * k_plus],
                [v * k_plus, -delta + zero, g * k_minus],
                [g * k_minus, g * k_plus, e_r + zero],
            ]
        )
