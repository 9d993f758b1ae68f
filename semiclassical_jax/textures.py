"""Spatial textures: scalar fields of position x that any model parameter may be.

A texture is an equinox Module ``f(x) -> scalar`` whose numeric fields are differentiable
parameters. Pass one wherever a model takes a number (PHYSICS.md section 4), e.g. a Dirac mass
that changes sign across a graphene/hBN moire cell, in one line::

    MassiveDirac(velocity=1.0, mass=textures.HexagonalMoire(amplitude=0.1, period=20.0))

Any other pure callable of x works too (e.g. ``lambda x: 0.1 * jnp.tanh(x[0])``); the Modules
below are differentiable in their amplitudes, periods and widths.
"""

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._guards import fail, is_concrete
from ._types import Array, Float


def _real(value) -> Array:
    return jnp.asarray(value, dtype=float)


def _vector(value) -> Array:
    array = jnp.asarray(value, dtype=float)
    if array.ndim != 1:
        fail(f"expected a vector of shape (d,), got shape {array.shape}")
    return array


def _raise_now(texture: eqx.Module) -> None:
    """Raise at construction for the texture's :meth:`value_checks` whose values are concrete."""
    for bad, message in texture.value_checks():
        if is_concrete(bad) and bool(np.any(np.asarray(bad))):
            fail(message)


class CosineModulation(eqx.Module):
    """f(x) = offset + amplitude cos(G . x + phase): a one-harmonic (stripe) moire modulation,
    the Delta(x) = Delta0 cos(G . x) texture of PHYSICS.md section 4 (x and 1/G in length units).

    Examples:
        >>> import numpy as np
        >>> from semiclassical_jax import textures
        >>> f = textures.CosineModulation(0.2, [np.pi, 0.0], offset=0.3)
        >>> # offset + amplitude cos(G . x): 0.5 at x = 0, 0.1 at x = (1, 0)
        >>> round(float(f(np.zeros(2))), 6), round(float(f(np.array([1.0, 0.0]))), 6)
        (0.5, 0.1)
    """

    amplitude: Float[Array, ""] = eqx.field(converter=_real)
    wavevector: Float[Array, " d"] = eqx.field(converter=_vector)
    offset: Float[Array, ""] = eqx.field(default=0.0, converter=_real)
    phase: Float[Array, ""] = eqx.field(default=0.0, converter=_real)

    def __call__(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        return self.offset + self.amplitude * jnp.cos(jnp.dot(self.wavevector, x) + self.phase)


class DomainWall(eqx.Module):
    """f(x) = offset + amplitude tanh((n . x - center) / width), n = direction / |direction|.

    A sign-changing wall between -amplitude and +amplitude (for offset 0) of width ``width``
    (length units): a texture of PHYSICS.md section 4 entering only through H(x, k).

    Examples:
        >>> import numpy as np
        >>> from semiclassical_jax import textures
        >>> wall = textures.DomainWall(0.3, 2.0)
        >>> # amplitude tanh(x / width): 0 at the centre, 0.3 tanh(1) = 0.228478 at x = width
        >>> round(float(wall(np.zeros(2))), 6), round(float(wall(np.array([2.0, 0.0]))), 6)
        (0.0, 0.228478)
    """

    amplitude: Float[Array, ""] = eqx.field(converter=_real)
    width: Float[Array, ""] = eqx.field(converter=_real)
    center: Float[Array, ""] = eqx.field(default=0.0, converter=_real)
    direction: Float[Array, " d"] = eqx.field(default=(1.0, 0.0), converter=_vector)
    offset: Float[Array, ""] = eqx.field(default=0.0, converter=_real)

    def value_checks(self) -> list[tuple[Array, str]]:
        """(bad, message) pairs: the width and the direction must be usable (a zero width or
        direction divides by zero). Raised at construction when concrete; the public functions
        add them to their run-time checks when traced (``_guards.model_value_checks``)."""
        return [
            (
                ~(jnp.isfinite(self.width) & (self.width != 0)),
                "DomainWall width must be finite and non-zero",
            ),
            (~jnp.any(self.direction != 0), "DomainWall direction must be a non-zero vector"),
        ]

    def __check_init__(self) -> None:
        _raise_now(self)

    def __call__(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        normal = self.direction / jnp.linalg.norm(self.direction)
        return self.offset + self.amplitude * jnp.tanh(
            (jnp.dot(normal, x) - self.center) / self.width
        )


class HexagonalMoire(eqx.Module):
    """Triangular-lattice moire pattern of period L (d = 2):

    f(x) = offset + (amplitude / 3) sum_{j=1..3} cos(G_j . x + phase),
    |G_j| = 4 pi / (sqrt(3) L), G_j at angles rotation + 2 pi j / 3. With phase = 0 its maximum is
    offset + amplitude (at x = 0) and its minimum offset - amplitude / 2: for offset 0 the sign
    reverses across the cell, as the gap of graphene aligned on hBN does (PHYSICS.md section 4).

    Examples:
        >>> import numpy as np
        >>> from semiclassical_jax import textures
        >>> moire = textures.HexagonalMoire(0.1, 10.0)
        >>> # maximum offset + amplitude at x = 0; periodic with the lattice vectors (length 10)
        >>> a1 = moire.lattice[0]
        >>> round(float(moire(np.zeros(2))), 6), round(float(moire(a1)), 6)
        (0.1, 0.1)
        >>> round(float(np.linalg.norm(a1)), 6)
        10.0
    """

    amplitude: Float[Array, ""] = eqx.field(converter=_real)
    period: Float[Array, ""] = eqx.field(converter=_real)
    offset: Float[Array, ""] = eqx.field(default=0.0, converter=_real)
    phase: Float[Array, ""] = eqx.field(default=0.0, converter=_real)
    rotation: Float[Array, ""] = eqx.field(default=0.0, converter=_real)

    def value_checks(self) -> list[tuple[Array, str]]:
        """(bad, message) pairs: the period must be finite and non-zero (|G| = 4 pi / (sqrt 3 L)).
        Raised at construction when concrete; the public functions add them to their run-time
        checks when traced (``_guards.model_value_checks``)."""
        return [
            (
                ~(jnp.isfinite(self.period) & (self.period != 0)),
                "HexagonalMoire period must be finite and non-zero",
            )
        ]

    def __check_init__(self) -> None:
        _raise_now(self)

    @property
    def reciprocal_vectors(self) -> Float[Array, "3 2"]:
        angles = self.rotation + 2 * jnp.pi * jnp.arange(3) / 3
        size = 4 * jnp.pi / (jnp.sqrt(3.0) * self.period)
        return size * jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=-1)

    @property
    def lattice(self) -> Float[Array, "2 2"]:
        """Moire lattice vectors (rows), period L, such that f(x + a_i) = f(x)."""
        g = self.reciprocal_vectors[:2]
        return 2 * jnp.pi * jnp.linalg.inv(g).T

    def __call__(self, x: Float[Array, "2"]) -> Float[Array, ""]:
        return self.offset + self.amplitude / 3 * jnp.sum(
            jnp.cos(self.reciprocal_vectors @ x + self.phase)
        )


__all__ = ["CosineModulation", "DomainWall", "HexagonalMoire"]
