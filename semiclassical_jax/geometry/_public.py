"""The public band-geometry functions: check the arguments, evaluate the kernel, guard the result.

Each function is thin: :func:`_checked` validates (model, x, k) and evaluates the kernel
(:mod:`._kernel`); the requested quantity is one contraction of its :class:`BandGeometry`, and the
value checks (finite, Hermitian, gapped) go through :class:`Guards`.
"""

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._guards import (
    Guards,
    check_concrete_model,
    check_manifold,
    check_model,
    check_output_shape,
    check_point,
    model_value_checks,
    point_value_checks,
    remote_bands,
)
from .._types import Array, Complex, Float, PositionLike, WavevectorLike
from ..models import AbstractModel
from ._kernel import GAP_RTOL, BandGeometry, geometry_with_diagnostics

_kernel_jit = eqx.filter_jit(geometry_with_diagnostics)

# Fixed probe wavevectors for a point function's energy scale, in reduced coordinates of the
# reciprocal lattice (lattice models: points inside the Brillouin zone) or, for continuum models,
# as Cartesian k in natural units (O(1), like the model's parameters).
_PROBES = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.31, 0.23, 0.17], [0.5, 0.5, 0.5]])
_CONTINUUM_PROBES = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-0.7, 0.6, 0.5]])


def _probe_wavevectors(model: AbstractModel) -> Float[Array, "p d"]:
    """The probe k-points of :func:`_energy_scale` (static: from ``model.dim`` and ``lattice``)."""
    d = int(model.dim)
    lattice = getattr(model, "lattice", None)
    if lattice is None:
        return jnp.asarray(_CONTINUUM_PROBES[:, :d])
    reciprocal = 2 * jnp.pi * jnp.linalg.inv(jnp.asarray(lattice, dtype=float)).T
    return jnp.asarray(_PROBES[:, :d]) @ reciprocal


def _energy_scale(model: AbstractModel, x: Array, k: Array) -> Float[Array, ""]:
    """The model's energy scale at a point, for the gap test: the largest Frobenius norm of H(x, k')
    over k' = k and the fixed probe points (so it does not collapse at a band touching where the
    local energies vanish). Traced-safe: p + 1 evaluations of the model, no diagonalisation."""
    probes = jnp.concatenate([k[None, :], _probe_wavevectors(model)], axis=0)

    def norm(kk):
        h = jnp.asarray(model(x, kk))
        return jnp.sqrt(jnp.sum(jnp.real(h) ** 2 + jnp.imag(h) ** 2))

    return jnp.max(jax.vmap(norm)(probes))


@eqx.filter_jit
def _touching_pair(
    model: AbstractModel, geometry: BandGeometry, x: Array, k: Array
) -> tuple[Array, Array, Array]:
    """(smallest non-degenerate gap, its bands (n, m), :func:`_energy_scale`) at (x, k)."""
    n = geometry.n_bands
    gap, pair = geometry.closest_pair(jnp.ones((n, n), bool))
    return gap, pair, _energy_scale(model, x, k)


_energy_scale_jit = eqx.filter_jit(_energy_scale)


def _checked(model: AbstractModel, x: Any, k: Any) -> tuple[BandGeometry, Array, Array, Guards]:
    """(geometry, x, k, guards) at a checked point: static checks now, value checks in ``guards``
    (finite, and Hermitian at this very point, eager or compiled)."""
    check_model(model)
    x, k = check_point(model, x, k)
    check_output_shape(model, x, k)
    check_concrete_model(model)
    geometry, non_hermiticity, finite = _kernel_jit(model, x, k)
    guards = Guards()
    model_value_checks(guards, model)
    point_value_checks(guards, finite, non_hermiticity, (x, k))
    return geometry, x, k, guards


def _checked_bands(model: AbstractModel, x: Any, k: Any, what: str) -> tuple[BandGeometry, Guards]:
    """As :func:`_checked`, plus: no two bands touch at (x, k) (every pair enters ``what``).

    A pair touches when 0 < |eps_n - eps_m| <= GAP_RTOL x :func:`_energy_scale`; exact
    degeneracies (within the eigensolver's tolerance, e.g. Kramers pairs) keep their documented
    treatment (their inter-band terms are dropped).
    """
    geometry, x, k, guards = _checked(model, x, k)
    gap, pair, scale = _touching_pair(model, geometry, x, k)
    guards.add(
        gap <= GAP_RTOL * scale,
        f"{what}: two bands touch (their gap closes), so their inter-band terms diverge",
        detail=lambda: (
            f": bands {int(pair[0])} and {int(pair[1])} at x={x}, k={k} (gap = {float(gap):.3e} "
            f"<= {GAP_RTOL:g} x the energy scale {float(scale):.3e})"
        ),
    )
    return geometry, guards


def _checked_manifold(
    model: AbstractModel, x: Any, k: Any, manifold: Any
) -> tuple[BandGeometry, tuple[int, ...], Guards]:
    """As :func:`_checked`, plus a valid manifold whose gap to the remote bands is open at (x, k):
    larger than GAP_RTOL x :func:`_energy_scale`."""
    check_model(model)
    manifold = check_manifold(manifold, int(model.n_bands))
    remote_bands(manifold, int(model.n_bands))
    geometry, x, k, guards = _checked(model, x, k)
    gap = geometry.manifold_gap(manifold)
    scale = _energy_scale_jit(model, x, k)
    guards.add(
        gap <= GAP_RTOL * scale,
        f"manifold {manifold}: its gap to the remote bands closes",
        detail=lambda: (
            f" at x={x}, k={k} (gap = {float(gap):.3e} <= {GAP_RTOL:g} x the energy scale "
            f"{float(scale):.3e}); the non-Abelian geometry is undefined there"
        ),
    )
    return geometry, manifold, guards


def band_geometry(model: AbstractModel, x: PositionLike | None, k: WavevectorLike) -> BandGeometry:
    """Energies, states and band-basis dH/dlambda at (x, k); see :class:`BandGeometry`.

    H u_n = eps_n u_n (ascending) and (dH_lambda)_nm = <u_n| dH/dlambda |u_m> with dH from autodiff,
    lambda = (x, k): the inputs of every sum-over-states formula of PHYSICS.md section 1.

    ``x``, ``k``: (d,) Cartesian, natural units; ``x = None`` means the origin.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> g = sj.band_geometry(m, None, [0.0, 0.0])
        >>> # energies -+Delta at k = 0; dH stacks dH/dx (2) and dH/dk (2)
        >>> print(np.round(g.energies, 6), g.states.shape, g.dH.shape)
        [-0.3  0.3] (2, 2) (4, 2, 2)
    """
    geometry, _, _, guards = _checked(model, x, k)
    return guards(geometry)


def eigensystem(
    model: AbstractModel, x: PositionLike | None, k: WavevectorLike
) -> tuple[Float[Array, " n"], Complex[Array, "n n"]]:
    """Ascending band energies eps_n (N,) and eigenvectors u_n as columns (N, N) of H(x, k).

    H u_n = eps_n u_n (PHYSICS.md conventions); energies in the model's energy unit.
    ``x``, ``k``: (d,) Cartesian, natural units (``x = None``: the origin).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> energies, states = sj.eigensystem(m, None, [0.4, 0.0])
        >>> # eps = -+sqrt(v^2 k^2 + Delta^2) = -+0.5
        >>> print(np.round(energies, 6), states.shape)
        [-0.5  0.5] (2, 2)
    """
    geometry, _, _, guards = _checked(model, x, k)
    return guards((geometry.energies, geometry.states))


def band_velocity(
    model: AbstractModel, x: PositionLike | None, k: WavevectorLike
) -> Float[Array, "n d"]:
    """Band velocities v_n = d eps_n / dk = <u_n|dH/dk|u_n>, shape (N, d) (PHYSICS.md section 1).

    Units: energy x length (hbar = 1).
    ``x``, ``k``: (d,) Cartesian, natural units (``x = None``: the origin).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> v = sj.band_velocity(m, None, [0.4, 0.0])
        >>> # v_x = -+v^2 kx / sqrt(v^2 k^2 + Delta^2) = -+0.4 / 0.5
        >>> print(np.round(v, 6))
        [[-0.8  0. ]
         [ 0.8  0. ]]
    """
    geometry, _, _, guards = _checked(model, x, k)
    return guards(geometry.velocity())


def band_force(
    model: AbstractModel, x: PositionLike | None, k: WavevectorLike
) -> Float[Array, "n d"]:
    """Band forces F_n = -d eps_n / dx = -<u_n|dH/dx|u_n>, shape (N, d) (PHYSICS.md section 1).

    Units: energy / length; zero for a model without textures.
    ``x``, ``k``: (d,) Cartesian, natural units (``x = None``: the origin).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import models, textures
        >>> wall = models.MassiveDirac(1.0, textures.DomainWall(0.3, 2.0, offset=0.5))
        >>> # at k = 0, eps = -+Delta(x): F = -d eps/dx = +-dDelta/dx = +-0.3 / 2.0 at x = 0
        >>> print(np.round(sj.band_force(wall, [0.0, 0.0], [0.0, 0.0]), 6) + 0.0)
        [[ 0.15  0.  ]
         [-0.15  0.  ]]
    """
    geometry, _, _, guards = _checked(model, x, k)
    return guards(geometry.force())


def berry_connection(
    model: AbstractModel, x: PositionLike | None, k: WavevectorLike
) -> Complex[Array, "2d n n"]:
    """Inter-band Berry connection R_lambda,nm = i dH_nm / (eps_m - eps_n), shape (2d, N, N).

    PHYSICS.md section 1; lambda = (x, k): ``[:d]`` has units 1 / length, ``[d:]`` length.
    ``x``, ``k``: (d,) Cartesian, natural units (``x = None``: the origin).

    Raises if two bands touch at (x, k) (gap <= GAP_RTOL x the model's energy scale); exactly
    degenerate pairs get R = 0.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> r = sj.berry_connection(m, None, [0.4, 0.0])
        >>> r.shape
        (4, 2, 2)
        >>> # Hermitian in the band indices, zero on the diagonal
        >>> bool(np.allclose(r, np.conj(np.swapaxes(r, 1, 2)))), float(np.abs(r[:, 0, 0]).max())
        (True, 0.0)
    """
    geometry, guards = _checked_bands(model, x, k, "berry_connection")
    return guards(geometry.berry_connection())


def berry_curvature(
    model: AbstractModel, x: PositionLike | None, k: WavevectorLike
) -> Float[Array, "n 2d 2d"]:
    """Abelian Berry curvature Omega_n^{ab} of every band, all four blocks (paper Eq. 44).

    Shape (N, 2d, 2d) with lambda = (x, k): ``[..., d:, d:]`` is k-k, ``[..., :d, d:]`` is x-k,
    ``[..., d:, :d]`` k-x, ``[..., :d, :d]`` x-x. Antisymmetric in (a, b); sum over n vanishes.
    For the massive Dirac lower band, Omega^{kx ky} = valley Delta v^2 / (2 (v^2 k^2 + Delta^2)^{3/2}).
    Raises if two bands touch at (x, k) (gap <= GAP_RTOL x the model's energy scale, the largest
    norm of H over the point and fixed probe points); between exactly degenerate bands (e.g. the
    Kramers pairs of Kane-Mele) the pair terms are dropped, see BandGeometry.berry_curvature.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> omega = sj.berry_curvature(m, None, [0.0, 0.0])
        >>> # k-k block, lower and upper band: +-valley v^2 / (2 Delta^2) = +-1 / 0.18 at k = 0
        >>> print(np.round(omega[:, 2, 3], 4))
        [ 5.5556 -5.5556]
    """
    geometry, guards = _checked_bands(model, x, k, "berry_curvature")
    return guards(geometry.berry_curvature())


def projector_derivative(
    model: AbstractModel, x: PositionLike | None, k: WavevectorLike, manifold: Sequence[int]
) -> Complex[Array, "2d n n"]:
    """dP/dlambda of the manifold's projector P = sum_{n in a} |u_n><u_n|, orbital basis, (2d, N, N).

    dP = sum_{n in a, l in r} (|u_l> (dH)_ln <u_n| + h.c.) / (eps_n - eps_l) (PHYSICS.md section 1);
    lambda = (x, k). ``manifold``: band indices a.
    ``x``, ``k``: (d,) Cartesian, natural units (``x = None``: the origin).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> dp = sj.projector_derivative(m, None, [0.0, 0.0], [0])
        >>> # lower band P = (1 - d.sigma / |d|) / 2 with d = (v kx, v ky, Delta):
        >>> # dP/dkx = -v sx / (2 Delta) at k = 0
        >>> print(dp.shape, np.round(dp[2].real, 4) + 0.0)
        (4, 2, 2) [[ 0.     -1.6667]
         [-1.6667  0.    ]]
    """
    geometry, manifold, guards = _checked_manifold(model, x, k, manifold)
    return guards(geometry.projector_derivative(manifold))


def nonabelian_curvature(
    model: AbstractModel, x: PositionLike | None, k: WavevectorLike, manifold: Sequence[int]
) -> Complex[Array, "2d 2d na na"]:
    """Non-Abelian Berry curvature of a manifold (paper Eqs. 40-41), shape (2d, 2d, Na, Na).

    ``F[a, b, n, m]`` = <u_n| i P [dP_a, dP_b] P |u_m> for n, m the manifold's bands in ascending
    order; Hermitian in (n, m), antisymmetric in (a, b); its trace over (n, m) is gauge invariant
    and for a one-band manifold F equals :func:`berry_curvature` of that band. Raises if the gap to
    the remote bands closes at (x, k).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> f = sj.nonabelian_curvature(m, None, [0.0, 0.0], [0])
        >>> # a one-band manifold: F^{kx ky} is the Abelian curvature, 1 / 0.18
        >>> f.shape, round(float(f[2, 3, 0, 0].real), 4)
        ((4, 4, 1, 1), 5.5556)
    """
    geometry, manifold, guards = _checked_manifold(model, x, k, manifold)
    return guards(geometry.nonabelian_curvature(manifold))


def manifold_berry_curvature(
    model: AbstractModel, x: PositionLike | None, k: WavevectorLike, manifold: Sequence[int]
) -> Float[Array, "2d 2d"]:
    """Tr F^{ab} of a manifold: its gauge-invariant (Abelian) Berry curvature, shape (2d, 2d).

    F^{ab} = i P [dP_a, dP_b] P (paper Eqs. 40-41, PHYSICS.md section 1), lambda = (x, k); the k-k
    block has units length^2. ``manifold``: band indices a.
    ``x``, ``k``: (d,) Cartesian, natural units (``x = None``: the origin).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> omega = sj.manifold_berry_curvature(m, None, [0.0, 0.0], [0])
        >>> # lambda = (x, y, kx, ky): only the k-k block, v^2 / (2 Delta^2) = 1 / 0.18
        >>> print(np.round(omega, 4))
        [[ 0.      0.      0.      0.    ]
         [ 0.      0.      0.      0.    ]
         [ 0.      0.      0.      5.5556]
         [ 0.      0.     -5.5556  0.    ]]
    """
    curvature = nonabelian_curvature(model, x, k, manifold)
    return jnp.real(jnp.trace(curvature, axis1=-2, axis2=-1))


def orbital_moment(
    model: AbstractModel, x: PositionLike | None, k: WavevectorLike
) -> Float[Array, "n"] | Float[Array, "n 3"]:
    """Orbital magnetic moment m_n(k) of every band (PHYSICS.md section 5, charge -1).

    m_n^c = (1/2) eps_abc Im sum_{l != n} (dH_k_a)_nl (dH_k_b)_ln / (eps_l - eps_n), from autodiff
    dH (no eigenvector derivatives). Shape (N,) in 2D (m_z), (N, 3) in 3D; units energy x
    length^2 (natural units), so eps - m . B is an energy for B in inverse length^2. For the massive
    Dirac model both bands carry m_z = -valley Delta v^2 / (2 (Delta^2 + v^2 k^2)). Raises if two
    bands touch at (x, k), and for a model with intra-cell positions (Wannier90 r(R)).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> # at k = 0 both bands carry m = -valley v^2 / (2 Delta) = -1 / 0.6 (charge -1)
        >>> print(np.round(sj.orbital_moment(m, None, [0.0, 0.0]), 4))
        [-1.6667 -1.6667]
    """
    geometry, guards = _checked_bands(model, x, k, "orbital_moment")
    moment = geometry.orbital_moment()
    return guards(moment[:, 0] if geometry.dim == 2 else moment)


def manifold_orbital_moment(
    model: AbstractModel, x: PositionLike | None, k: WavevectorLike, manifold: Sequence[int]
) -> Complex[Array, "na na"] | Complex[Array, "3 na na"]:
    """Orbital moment matrix of a manifold (PHYSICS.md section 5, non-Abelian), Hermitian,
    shape (Na, Na) in 2D (the z component), (3, Na, Na) in 3D:

    M^c_nm = -(i/2) eps_abc sum_{l remote} G_a,nl conj(G_b,ml) (eps_l - (eps_n + eps_m) / 2),
    G_a,nl = (dH_k_a)_nl / (eps_n - eps_l). Its trace is gauge invariant. Raises if the gap to the
    remote bands closes at (x, k).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> # one-band manifold: the Abelian moment of the lower band, -v^2 / (2 Delta) = -1 / 0.6
        >>> print(np.round(sj.manifold_orbital_moment(m, None, [0.0, 0.0], [0]).real, 4))
        [[-1.6667]]
    """
    geometry, manifold, guards = _checked_manifold(model, x, k, manifold)
    moment = geometry.manifold_orbital_moment(manifold)
    return guards(moment[0] if geometry.dim == 2 else moment)
