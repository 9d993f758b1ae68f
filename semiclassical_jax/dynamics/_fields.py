"""Driving fields for wavepacket dynamics (PHYSICS.md section 2).

The carrier charge is q = -1, so a field E pushes the crystal momentum as dk/dt = -E - <dH/dx>.
A scalar potential phi(x) gives E = -grad phi, and the conserved total energy is <H> - phi(x).
"""

from collections.abc import Callable
from typing import Union

import equinox as eqx
import jax
import jax.numpy as jnp

from .._guards import fail, vector
from .._types import Array, FieldLike, Float


class AbstractField(eqx.Module):
    """An electric field E(x, t) in natural units (energy / length, = V/nm in eV-nm units), the
    field of PHYSICS.md section 2 (uniform, or E(x) = -grad phi; carrier charge q = -1).

    Subclasses implement ``electric_field(x, t) -> (d,)`` (x: (d,), t: scalar) and, for a static
    potential, ``potential(x)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> from semiclassical_jax.dynamics import AbstractField
        >>> class Pulse(AbstractField):
        ...     amplitude: float
        ...     def electric_field(self, x, t):
        ...         return jnp.array([self.amplitude * jnp.exp(-(t**2)), 0.0])
        >>> print(np.asarray(Pulse(0.01).electric_field(np.zeros(2), 0.0)))
        [0.01 0.  ]
    """

    def electric_field(self, x: Float[Array, " d"], t: Float[Array, ""]) -> Float[Array, " d"]:
        raise NotImplementedError

    def potential(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        """phi(x) for a static potential field; 0 for fields without one."""
        return jnp.zeros((), dtype=x.dtype)


class UniformField(AbstractField):
    """A uniform, static field E (shape (d,)), in energy / length (natural units, e = 1):
    dk/dt = -E + ... in the equations of motion (PHYSICS.md section 2, paper Eqs. 8-10).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> field = sj.UniformField([0.01, 0.0])
        >>> print(np.asarray(field.electric_field(np.zeros(2), 0.0)))
        [0.01 0.  ]
    """

    field: Float[Array, " d"] = eqx.field(converter=lambda e: jnp.asarray(e, dtype=float))

    def electric_field(self, x, t):
        return jnp.broadcast_to(self.field, x.shape)


class FieldFunction(AbstractField):
    """E(x, t) from any pure function ``fn(x, t) -> (d,)`` (x: (d,), t: scalar; energy / length),
    the field of the equations of motion (PHYSICS.md section 2; force -E on the carrier, q = -1).

    Examples:
        >>> import numpy as np
        >>> import jax.numpy as jnp
        >>> import semiclassical_jax as sj
        >>> field = sj.FieldFunction(lambda x, t: jnp.array([0.01 * jnp.cos(t), 0.0]))
        >>> print(np.asarray(field.electric_field(np.zeros(2), np.pi)))
        [-0.01  0.  ]
    """

    fn: Callable[[Array, Array], Array]

    def electric_field(self, x, t):
        return jnp.asarray(self.fn(x, t), dtype=x.dtype)


class ScalarPotential(AbstractField):
    """E = -grad phi(x) for a static scalar potential ``phi(x) -> scalar`` (electron energy -phi;
    PHYSICS.md section 2: <chi|H|chi> - phi(x) is then conserved).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> # phi = 0.01 x: E = -grad phi = (-0.01, 0)
        >>> field = sj.ScalarPotential(lambda x: 0.01 * x[0])
        >>> print(np.asarray(field.electric_field(np.zeros(2), 0.0)) + 0.0)
        [-0.01  0.  ]
    """

    phi: Callable[[Array], Array]

    def electric_field(self, x, t):
        return -jax.grad(lambda y: jnp.asarray(self.phi(y), dtype=x.dtype))(x)

    def potential(self, x):
        return jnp.asarray(self.phi(x), dtype=x.dtype)


# What ``evolve`` accepts as a field: an AbstractField, a uniform (d,) E, or a callable E(x, t).
FieldSpec = Union[
    AbstractField, FieldLike, Callable[[Float[Array, " d"], Float[Array, ""]], Float[Array, " d"]]
]


def as_field(field: FieldSpec, dim: int) -> AbstractField:
    """The field as an :class:`AbstractField` whose E(x, t) has shape (dim,).

    An AbstractField is kept, a callable becomes a :class:`FieldFunction`, anything else must be a
    (dim,) array: a :class:`UniformField`.
    """
    if isinstance(field, AbstractField):
        out = field
    elif callable(field):
        out = FieldFunction(field)
    else:
        try:
            array = jnp.asarray(field, dtype=float)
        except TypeError:
            fail(
                "field must be a (d,) array, a callable E(x, t) or a ScalarPotential; "
                f"got {type(field).__name__}",
                TypeError,
            )
        out = UniformField(vector(array, "field", dim))
    probe = jax.eval_shape(out.electric_field, jnp.zeros(dim), jnp.zeros(()))
    if probe.shape != (dim,):
        fail(f"field E(x, t) must return shape ({dim},), got {probe.shape}")
    return out
