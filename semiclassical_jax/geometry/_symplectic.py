"""The linear system of the Abelian and non-Abelian equations of motion (PHYSICS.md section 2)."""

import jax.numpy as jnp
import numpy as np

from .._linalg import implicit_solve, levi_civita
from .._types import Array, Float


def symplectic_solve(
    omega: Float[Array, "2d 2d"], gradient: Float[Array, " 2d"], electric_field: Float[Array, " d"]
) -> Float[Array, " 2d"]:
    """dlambda/dt of the Abelian / non-Abelian EOM (PHYSICS.md section 2, paper Eqs. 42-43):

        dx/dt = <dH_k> - Omega^{kx} dx/dt - Omega^{kk} dk/dt
        dk/dt = -E - <dH_x> + Omega^{xx} dx/dt + Omega^{xk} dk/dt

    i.e. (1 + S Omega) dlambda/dt = S <dH> - (0, E). ``gradient`` = <dH/dlambda> (2d,), ``omega``
    the curvature (expectation value) (2d, 2d), both in the order lambda = (x, k); ``electric_field``
    E (d,). With the Berry-modified symplectic form K = Omega - S (antisymmetric; S^2 = -1) this is
    K dlambda/dt = <dH> + (E, 0).

    d <= 2: K^-1 = -(*K) / Pf(K) in closed form, with the dual (*K)_ij = sum_{k<l} eps_ijkl K_kl and
    the Pfaffian Pf(K) = K_01 K_23 - K_02 K_13 + K_03 K_12 (d = 1: (*K) = eps, Pf = K_01);
    Pf(K)^2 = det(1 + S Omega) is the phase-space density factor, so the formula holds wherever the
    equations of motion are regular. d = 3: pivoted elimination with the implicit-function
    derivative (``_linalg.implicit_solve``).

    Examples:
        >>> import numpy as np
        >>> from semiclassical_jax.geometry import symplectic_solve
        >>> gradient = np.array([0.0, 0.0, 0.8, 0.0])  # <dH/dx> = 0, <dH/dk> = (0.8, 0)
        >>> field = np.array([0.01, 0.0])
        >>> # no curvature: dx/dt = <dH/dk>, dk/dt = -E
        >>> print(np.round(symplectic_solve(np.zeros((4, 4)), gradient, field), 6) + 0.0)
        [ 0.8   0.   -0.01  0.  ]
        >>> # Omega^{kx ky} = 5.5556 adds the anomalous velocity dy/dt = -Omega E_x = -0.055556
        >>> omega = np.zeros((4, 4))
        >>> omega[2, 3], omega[3, 2] = 5.5556, -5.5556
        >>> print(np.round(symplectic_solve(omega, gradient, field), 6) + 0.0)
        [ 0.8      -0.055556 -0.01      0.      ]
    """
    d = electric_field.shape[0]
    s_matrix = np.block([[np.zeros((d, d)), np.eye(d)], [-np.eye(d), np.zeros((d, d))]])
    form = omega - jnp.asarray(s_matrix, dtype=omega.dtype)
    rhs = gradient + jnp.concatenate([electric_field, jnp.zeros_like(electric_field)])
    if d > 2:
        return implicit_solve(form, rhs)
    if d == 1:
        dual, pfaffian = jnp.asarray(levi_civita(2), dtype=omega.dtype), form[0, 1]
    else:
        # six scalar-times-constant terms, not one contraction with the Levi-Civita tensor
        eps = levi_civita(4)
        dual = sum(form[i, j] * eps[:, :, i, j] for i in range(4) for j in range(i + 1, 4))
        pfaffian = form[0, 1] * form[2, 3] - form[0, 2] * form[1, 3] + form[0, 3] * form[1, 2]
    return -jnp.sum(dual * rhs[None, :], axis=1) / pfaffian
