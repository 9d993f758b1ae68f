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
    HERMITICITY_RTOL,
    Guards,
    check_concrete_model,
    check_manifold,
    check_model,
    check_output_shape,
    check_point,
    fail,
    is_concrete,
    remote_bands,
)
from .._types import Array, Complex, Float, PositionLike, WavevectorLike
from ..models import AbstractModel
from ._kernel import GAP_RTOL, BandGeometry, geometry_with_diagnostics

_kernel_jit = eqx.filter_jit(geometry_with_diagnostics)

# Points (x, k) at which a concrete model is checked for Hermiticity before tracing: O(1) values,
# since the model's own scales are not known here.
_PROBES = np.random.default_rng(20261127).uniform(-1.3, 1.3, size=(3, 2, 3))


def _probe_hermiticity(model: AbstractModel) -> None:
    """Raise ValueError if H(x, k) is not Hermitian at three fixed points (eager, once per call).

    Used when the model is concrete but the points are traced (jit / vmap over k), in place of
    the per-point check inside the compiled kernel: a non-Hermitian model is so almost everywhere.
    """
    d = int(model.dim)
    for x, k in _PROBES[:, :, :d]:
        with jax.ensure_compile_time_eval():  # concrete values under an outer jit / vmap
            h = np.asarray(model(jnp.asarray(x), jnp.asarray(k)))
        scale = max(np.max(np.abs(h)), np.finfo(float).tiny)
        error = np.max(np.abs(h - h.conj().T)) / scale
        if np.all(np.isfinite(h)) and not error <= HERMITICITY_RTOL:  # non-finite: per point
            fail(
                f"model(x, k) is not Hermitian: max|H - H^dagger| / max|H| = {error:.3e} at x={x}, k={k} "
                "(a probe point checked before tracing)"
            )


def _checked(model: AbstractModel, x: Any, k: Any) -> tuple[BandGeometry, Array, Array, Guards]:
    """(geometry, x, k, guards) at a checked point: static checks now, value checks in ``guards``."""
    check_model(model)
    x, k = check_point(model, x, k)
    check_output_shape(model, x, k)
    check_concrete_model(model)
    probed = is_concrete(model) and not is_concrete(x, k)
    if probed:  # a traced point of a known model: check its Hermiticity once, here, not per point
        _probe_hermiticity(model)
    geometry, non_hermiticity, finite = _kernel_jit(model, x, k)
    guards = Guards()
    guards.add(
        ~finite,
        "model(x, k) or its derivative is not finite (check the parameters)",
        detail=lambda: f" at x={x}, k={k}",
    )
    if not probed:
        guards.add(
            non_hermiticity > HERMITICITY_RTOL,
            "model(x, k) is not Hermitian",
            detail=lambda: (
                ": max|H - H^dagger| / max|H| (max over real and imaginary parts) = "
                f"{float(non_hermiticity):.3e} at x={x}, k={k}"
            ),
        )
    return geometry, x, k, guards


def _checked_manifold(
    model: AbstractModel, x: Any, k: Any, manifold: Any
) -> tuple[BandGeometry, tuple[int, ...], Guards]:
    """As :func:`_checked`, plus a valid manifold whose gap to the remote bands is open at (x, k)."""
    check_model(model)
    manifold = check_manifold(manifold, int(model.n_bands))
    remote_bands(manifold, int(model.n_bands))
    geometry, x, k, guards = _checked(model, x, k)
    gap = geometry.manifold_gap(manifold)
    tolerance = GAP_RTOL * jnp.maximum(jnp.max(jnp.abs(geometry.energies)), 1e-300)
    guards.add(
        gap <= tolerance,
        f"manifold {manifold}: its gap to the remote bands closes",
        detail=lambda: (
            f" at x={x}, k={k} (gap = {float(gap):.3e}); the non-Abelian geometry is undefined there"
        ),
    )
    return geometry, manifold, guards


def band_geometry(model: AbstractModel, x: PositionLike | None, k: WavevectorLike) -> BandGeometry:
    """Energies, states and band-basis dH/dlambda at (x, k); see :class:`BandGeometry`.

    ``x``, ``k``: (d,) Cartesian, natural units; ``x = None`` means the origin.
    """
    geometry, _, _, guards = _checked(model, x, k)
    return guards(geometry)


def eigensystem(
    model: AbstractModel, x: PositionLike | None, k: WavevectorLike
) -> tuple[Float[Array, " n"], Complex[Array, "n n"]]:
    """Ascending band energies eps_n (N,) and eigenvectors u_n as columns (N, N) of H(x, k)."""
    geometry, _, _, guards = _checked(model, x, k)
    return guards((geometry.energies, geometry.states))


def band_velocity(
    model: AbstractModel, x: PositionLike | None, k: WavevectorLike
) -> Float[Array, "n d"]:
    """Band velocities v_n = d eps_n / dk = <u_n|dH/dk|u_n>, shape (N, d) (PHYSICS.md section 1)."""
    geometry, _, _, guards = _checked(model, x, k)
    return guards(geometry.velocity())


def band_force(
    model: AbstractModel, x: PositionLike | None, k: WavevectorLike
) -> Float[Array, "n d"]:
    """Band forces F_n = -d eps_n / dx = -<u_n|dH/dx|u_n>, shape (N, d) (PHYSICS.md section 1)."""
    geometry, _, _, guards = _checked(model, x, k)
    return guards(geometry.force())


def berry_connection(
    model: AbstractModel, x: PositionLike | None, k: WavevectorLike
) -> Complex[Array, "2d n n"]:
    """Inter-band Berry connection R_lambda,nm = i dH_nm / (eps_m - eps_n), shape (2d, N, N)."""
    geometry, _, _, guards = _checked(model, x, k)
    return guards(geometry.berry_connection())


def berry_curvature(
    model: AbstractModel, x: PositionLike | None, k: WavevectorLike
) -> Float[Array, "n 2d 2d"]:
    """Abelian Berry curvature Omega_n^{ab} of every band, all four blocks (paper Eq. 44).

    Shape (N, 2d, 2d) with lambda = (x, k): ``[..., d:, d:]`` is k-k, ``[..., :d, d:]`` is x-k,
    ``[..., d:, :d]`` k-x, ``[..., :d, :d]`` x-x. Antisymmetric in (a, b); sum over n vanishes.
    For the massive Dirac lower band, Omega^{kx ky} = valley Delta v^2 / (2 (v^2 k^2 + Delta^2)^{3/2}).
    """
    geometry, _, _, guards = _checked(model, x, k)
    return guards(geometry.berry_curvature())


def projector_derivative(
    model: AbstractModel, x: PositionLike | None, k: WavevectorLike, manifold: Sequence[int]
) -> Complex[Array, "2d n n"]:
    """dP/dlambda of the manifold's projector P = sum_{n in a} |u_n><u_n|, orbital basis, (2d, N, N)."""
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
    """
    geometry, manifold, guards = _checked_manifold(model, x, k, manifold)
    return guards(geometry.nonabelian_curvature(manifold))


def manifold_berry_curvature(
    model: AbstractModel, x: PositionLike | None, k: WavevectorLike, manifold: Sequence[int]
) -> Float[Array, "2d 2d"]:
    """Tr F^{ab} of a manifold: its gauge-invariant (Abelian) Berry curvature, shape (2d, 2d)."""
    curvature = nonabelian_curvature(model, x, k, manifold)
    return jnp.real(jnp.trace(curvature, axis1=-2, axis2=-1))
