"""Public transport API: currents and conductivities over a k-grid (PHYSICS.md section 3).

Thin public functions check their arguments (errors name the argument), then call one jitted
core per quantity (:mod:`._cores`). Physical numbers (field, mu, temperature, tau, model parameters) are traced, so
one compilation serves a whole sweep and every result is differentiable in all of them; the theory,
the manifold partition and the chunk size are static.
Units: natural (hbar = e = k_B = 1, carrier charge -1, e^2/h = 1/(2 pi)); J is a current density
(per length^(d-1)), conductivities are in units of e^2/hbar.
"""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._guards import (
    check_finite_parameters,
    check_model,
    check_output_shape,
    check_partition,
    is_concrete,
)
from .._types import Array, Float
from ._cores import THEORIES, Theory, check_grid, current_core, response_core
from ._integrate import DEFAULT_CHUNK_POINTS, default_chunk_size


# ---------------------------------------------------------------------------------------------
# argument checks


def _check_vector(value: Any, name: str, dim: int) -> Array:
    array = jnp.asarray(value, dtype=float)
    if array.shape != (dim,):
        raise ValueError(
            f"{name} must have shape ({dim},) for a model of dim = {dim}, got {array.shape}"
        )
    return array


def _check_scalar(value: Any, name: str) -> Array:
    if value is None:
        raise ValueError(f"{name} is required")
    array = jnp.asarray(value, dtype=float)
    if array.shape != ():
        raise ValueError(f"{name} must be a scalar, got shape {array.shape}")
    return array


def _check_positions(model: Any, positions: Any) -> Array:
    d = int(model.dim)
    if positions is None:
        return jnp.zeros((1, d))
    positions = jnp.asarray(positions, dtype=float)
    if positions.ndim != 2 or positions.shape[1] != d:
        raise ValueError(
            f"xs must have shape (n_x, {d}) for a model of dim = {d}, got {positions.shape}"
        )
    return positions


def _check_chunk_size(chunk_size: Any, n_points: int, n_positions: int, chunk_points: int) -> int:
    if chunk_size is None:
        return default_chunk_size(n_points, n_positions, chunk_points)
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, (int, np.integer))
        or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return int(min(chunk_size, n_points))


class _ValueChecks:
    """Value checks: raise now with the number if concrete, else attach eqx.error_if to the result."""

    def __init__(self) -> None:
        self.checks: list[tuple[Array, str]] = []

    def add(self, bad: Any, message: str) -> None:
        self.checks.append((bad, message))

    def apply(self, result: Array) -> Array:
        for bad, message in self.checks:
            if is_concrete(bad):
                if bool(bad):
                    raise ValueError(message)
            else:
                result = eqx.error_if(result, bad, message)
        return result


def _check_temperature(checks: _ValueChecks, temperature: Array, allow_zero: bool) -> None:
    if allow_zero:
        checks.add(
            ~(temperature >= 0),
            f"temperature must be >= 0 (T = 0 is the step occupation), got {temperature}",
        )
    else:
        checks.add(
            ~(temperature > 0),
            f"temperature must be > 0 for Fermi-surface terms (f0' is a delta function at T = 0; "
            f"use a small T that the grid resolves), got {temperature}",
        )


def _check_finite(checks: _ValueChecks, value: Array, name: str) -> None:
    checks.add(~jnp.all(jnp.isfinite(value)), f"{name} must be finite, got {value}")


def _default_chunk_points(theory: str, manifolds: tuple[tuple[int, ...], ...]) -> int:
    """Points per chunk when the caller gives no chunk_size.

    MSCT with a multi-band manifold differentiates its hybridised energies by forward mode (d or
    2d tangents through the geometry at every point), so a point's reverse-mode residuals are
    several times those of the other integrands. On CPU, chunks of 2^11 such points keep a chunk's
    reverse pass in cache: the gradient ~30 % faster at 10^4 k-points than with 2^14, ~15 % at 10^5,
    the forward pass unchanged (2-core CPU; the resulting cost ratios are in benchmarks/RESULTS.md).
    Other platforms (unmeasured) keep 2^14.
    """
    multi_band = theory == "msct" and any(len(manifold) > 1 for manifold in manifolds)
    if multi_band and jax.default_backend() == "cpu":
        return DEFAULT_CHUNK_POINTS // 8
    return DEFAULT_CHUNK_POINTS


def _common(model: Any, grid: Any, positions: Any):
    check_model(model)
    d = int(model.dim)
    points, weights = check_grid(grid, d)
    positions = _check_positions(model, positions)
    check_output_shape(model, positions[0], points[0])
    if is_concrete(model):
        check_finite_parameters(model)
    return d, points, weights, positions


def _finish(checks: _ValueChecks, result: Array, finite: Array, what: str) -> Array:
    checks.add(
        ~finite,
        f"{what} is not finite: the model is not finite somewhere on the grid, or a gap between "
        "manifolds (between bands, for one-band manifolds) closes on a grid point",
    )
    return checks.apply(result)


# ---------------------------------------------------------------------------------------------
# public functions


def current_map(
    model: Any,
    grid: Any,
    xs: Float[Array, "nx d"],
    *,
    field: Float[Array, " d"],
    mu: Any,
    temperature: Any,
    tau: Any = None,
    theory: Theory = "msct",
    manifolds: Any = None,
    chunk_size: int | None = None,
) -> Float[Array, "nx d"]:
    """Current density J(x) at each position of ``xs`` (n_x, d): the phase-space grid (PHYSICS.md s. 4).

    Each x has its own k-integral over ``grid``; see :func:`current` for the theories and arguments.
    Memory is bounded by ``chunk_size`` x n_x integrand evaluations at a time.
    """
    d, points, weights, positions = _common(model, grid, xs)
    if theory not in THEORIES:
        raise ValueError(f"theory must be one of {THEORIES}, got {theory!r}")
    manifolds = check_partition(manifolds, int(model.n_bands))
    chunk = _check_chunk_size(
        chunk_size, points.shape[0], positions.shape[0], _default_chunk_points(theory, manifolds)
    )
    if theory == "ssct" and any(len(m) > 1 for m in manifolds):
        raise ValueError(
            f"theory='ssct' treats every band as its own manifold, got manifolds={manifolds}; "
            "use theory='msct' (or 'nonabelian_hall') for multi-band manifolds"
        )
    field = _check_vector(field, "field", d)
    mu = _check_scalar(mu, "mu")
    temperature = _check_scalar(temperature, "temperature")
    checks = _ValueChecks()
    _check_finite(checks, field, "field")
    _check_finite(checks, mu, "mu")
    if theory == "nonabelian_hall":
        tau = jnp.asarray(0.0) if tau is None else _check_scalar(tau, "tau")
        _check_temperature(checks, temperature, allow_zero=True)
    else:
        tau = _check_scalar(tau, "tau")
        checks.add(~(tau > 0), f"tau must be > 0 (a relaxation time), got {tau}")
        _check_temperature(checks, temperature, allow_zero=False)
    checks.apply(mu)  # raise on bad arguments before the k-sum when they are concrete
    result, finite = current_core(
        model, positions, points, weights, field, mu, temperature, tau, theory, manifolds, chunk
    )
    return _finish(checks, result, finite, "current")


def current(
    model: Any,
    grid: Any,
    *,
    field: Float[Array, " d"],
    mu: Any,
    temperature: Any,
    tau: Any = None,
    theory: Theory = "msct",
    manifolds: Any = None,
    x: Any = None,
    chunk_size: int | None = None,
) -> Float[Array, " d"]:
    """Steady-state current density J = q int dk (...) in a uniform field E (PHYSICS.md section 3).

    Arguments:
        model: a model (``dim`` = d); ``grid``: a :class:`~semiclassical_jax.grids.KGrid`.
        field: E, shape (d,), energy / length (natural units).
        mu, temperature: chemical potential and T (energy; k_B = 1).
        tau: relaxation time (1 / energy); not used by ``"nonabelian_hall"``.
        theory: ``"msct"`` (default) the non-adiabatic theory, Eqs. 54-62: the field hybridises the
            bands of each manifold to all orders; ``"ssct"`` the standard kinetic theory with the
            full Abelian EOM, Eqs. 46-47; ``"nonabelian_hall"`` Eq. 53.
        manifolds: a partition of the band indices (every band exactly once); default: every band
            its own manifold. Only ``"msct"`` and ``"nonabelian_hall"`` accept multi-band manifolds.
        x: position (d,) for a textured model (default: the origin).
        chunk_size: k-points per chunk (memory bound); default: at most 2^14 (on CPU 2^11 for MSCT
            with a multi-band manifold), in equal chunks.

    Returns J, shape (d,), carrier charge -1, so the intrinsic Hall current of a Chern insulator is
    J_x = -(C / 2 pi) E_y. ``temperature`` must be > 0 for ``"ssct"`` and ``"msct"``; T = 0 (step
    occupation) is allowed for ``"nonabelian_hall"``.
    """
    position = None if x is None else _check_vector(x, "x", int(model.dim))[None, :]
    return current_map(
        model,
        grid,
        position,
        field=field,
        mu=mu,
        temperature=temperature,
        tau=tau,
        theory=theory,
        manifolds=manifolds,
        chunk_size=chunk_size,
    )[0]


def _response(model, grid, x, chunk_size, mu, temperature, tau, quantity, allow_zero):
    position = None if x is None else _check_vector(x, "x", int(model.dim))[None, :]
    _, points, weights, positions = _common(model, grid, position)
    chunk = _check_chunk_size(chunk_size, points.shape[0], positions.shape[0], DEFAULT_CHUNK_POINTS)
    mu = _check_scalar(mu, "mu")
    temperature = _check_scalar(temperature, "temperature")
    checks = _ValueChecks()
    _check_finite(checks, mu, "mu")
    _check_temperature(checks, temperature, allow_zero=allow_zero)
    if quantity == "drude":
        tau = _check_scalar(tau, "tau")
        checks.add(~(tau > 0), f"tau must be > 0 (a relaxation time), got {tau}")
    else:
        tau = jnp.asarray(0.0)
    checks.apply(mu)
    result, finite = response_core(
        model, positions, points, weights, mu, temperature, tau, quantity, chunk
    )
    return _finish(checks, result[0], finite, quantity.replace("_", " "))


def hall_conductivity(
    model: Any,
    grid: Any,
    *,
    mu: Any,
    temperature: Any,
    manifolds: Any = None,
    x: Any = None,
    chunk_size: int | None = None,
) -> Float[Array, "d d"]:
    """Intrinsic Hall conductivity sigma_ab = dJ_a/dE_b = -sum_n int dk f0(eps_n) Omega_n^{k_a k_b}.

    The E -> 0 limit of the MSCT / SSCT current at tau-independent order. Units e^2/hbar: a Chern
    insulator gives sigma_xy = -C / (2 pi) = -C e^2/h; a massive Dirac valley with mu in the gap
    -valley sgn(Delta) / (4 pi). It does not depend on the manifold partition (only pairs with
    different occupations contribute, Kubo / TKNN); ``manifolds`` is validated for symmetry with
    :func:`current`. ``temperature`` >= 0 (T = 0: step occupation).
    """
    check_partition(manifolds, int(model.n_bands))
    return _response(model, grid, x, chunk_size, mu, temperature, None, "hall", allow_zero=True)


def drude_conductivity(
    model: Any,
    grid: Any,
    *,
    mu: Any,
    temperature: Any,
    tau: Any,
    x: Any = None,
    chunk_size: int | None = None,
) -> Float[Array, "d d"]:
    """Drude conductivity sigma_ab = tau sum_n int dk (-f0'(eps_n)) v_n,a v_n,b (e^2/hbar units).

    A parabolic band eps = k^2 / 2m gives sigma = n tau / m at any T (n the carrier density).
    """
    return _response(model, grid, x, chunk_size, mu, temperature, tau, "drude", allow_zero=False)


def berry_curvature_dipole(
    model: Any,
    grid: Any,
    *,
    mu: Any,
    temperature: Any,
    x: Any = None,
    chunk_size: int | None = None,
) -> Float[Array, "d d d"]:
    """Berry-curvature dipole D_cab = sum_n int dk f0(eps_n) d_{k_c} Omega_n^{k_a k_b} (Sodemann-Fu).

    Evaluated in its Fermi-surface form -sum_n int f0' v_c Omega^{k_a k_b}. In 2D the usual dipole
    vector is D[:, 0, 1]. See :func:`nonlinear_hall_current` for the current it drives.
    """
    return _response(
        model,
        grid,
        x,
        chunk_size,
        mu,
        temperature,
        None,
        "berry_curvature_dipole",
        allow_zero=False,
    )


def nonlinear_hall_current(
    model: Any,
    grid: Any,
    *,
    field: Float[Array, " d"],
    mu: Any,
    temperature: Any,
    tau: Any,
    x: Any = None,
    chunk_size: int | None = None,
) -> Float[Array, " d"]:
    """The SSCT current at order tau E^2: J_a = tau sum_bc D_cab E_b E_c (Berry-curvature dipole).

    Derived from Eqs. 46-47 without texture: f = f0 + tau E . d_k f0 and dx/dt = v + Omega^{kk} E,
    so the tau E^2 term of J = -int f dx/dt is -tau int (E . d_k f0)(Omega^{kk} E). In 2D with
    D_c = D[c, 0, 1]: J = tau (E . D) (E_y, -E_x).
    """
    d = int(model.dim)
    field = _check_vector(field, "field", d)
    tau = _check_scalar(tau, "tau")
    checks = _ValueChecks()
    checks.add(~(tau > 0), f"tau must be > 0 (a relaxation time), got {tau}")
    dipole = berry_curvature_dipole(
        model, grid, mu=mu, temperature=temperature, x=x, chunk_size=chunk_size
    )
    return checks.apply(tau * jnp.einsum("cab,b,c->a", dipole, field, field))
