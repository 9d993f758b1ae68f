"""Public transport API: currents and conductivities over a k-grid (PHYSICS.md section 3).

Thin public functions check their arguments (``semiclassical_jax._guards``: errors name the
argument), then call one jitted core per quantity (:mod:`._cores`). Physical numbers (field, mu,
temperature, tau, model parameters) are traced, so one compilation serves a whole sweep and every
result is differentiable in all of them; the theory, the manifold partition and the chunk size are
static.
Units: natural (hbar = e = k_B = 1, carrier charge -1, e^2/h = 1/(2 pi)); J is a current density
(per length^(d-1)), conductivities are in units of e^2/hbar.

Fermi-level scans: ``mu`` and ``temperature`` may be arrays that broadcast against each other
(shape S); the geometry of each k-point is then computed once for all levels and the result gets
the leading axes S (a 0-d mu and temperature give the result without them).

Several devices or processes: ``devices=`` (e.g. ``jax.devices()``) splits the k-grid over them
(:mod:`semiclassical_jax.distributed`); every process gets the whole result.
"""

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._guards import (
    Guards,
    check_concrete_model,
    check_model,
    check_output_shape,
    check_partition,
    device_tuple,
    fail,
    integer,
    magnetic_field,
    model_value_checks,
    namespace,
    one_of,
    scalar,
    vector,
)
from .._types import Array, ArrayLike, FieldLike, Float, PositionLike, RealScalarLike
from ..distributed import process_local
from ..grids import KGrid
from ..models import AbstractModel
from ._cores import (
    THEORIES,
    Manifolds,
    ManifoldsLike,
    Theory,
    check_diagnostics,
    check_grid,
    check_grid_values,
    current_core,
    response_core,
)
from ._integrate import Diagnostics
from ._integrate import DEFAULT_CHUNK_POINTS, default_chunk_size

# A chemical potential or temperature: a number, or an array of levels (a Fermi-level scan).
LevelsLike = RealScalarLike | Float[ArrayLike, "..."]


# ---------------------------------------------------------------------------------------------
# argument checks


def _check_positions(model: AbstractModel, positions: Any) -> Float[Array, "nx d"]:
    d = int(model.dim)
    if positions is None:
        return jnp.zeros((1, d))
    positions = jnp.asarray(positions, dtype=float)
    if positions.ndim != 2 or positions.shape[1] != d:
        fail(f"xs must have shape (n_x, {d}) for a model of dim = {d}, got {positions.shape}")
    return positions


def _share(n_points: int, devices: tuple[Any, ...]) -> int:
    """The k-points each of ``devices`` sums (all of them on one device)."""
    return -(-n_points // max(len(devices), 1))


def _check_chunk_size(chunk_size: Any, n_points: int, n_positions: int, chunk_points: int) -> int:
    if chunk_size is None:
        return default_chunk_size(n_points, n_positions, chunk_points)
    return min(integer(chunk_size, "chunk_size"), n_points)


def _level_array(value: Any, name: str) -> Array:
    """``mu`` or ``temperature`` as a real float array of any shape (it may be traced)."""
    if value is None:
        fail(f"{name} is required")
    if jnp.iscomplexobj(value):
        fail(f"{name} must be real, got {value!r}")
    array = jnp.asarray(value, dtype=float)
    if array.size == 0:
        fail(f"{name} must not be empty, got shape {array.shape}")
    return array


def _flat_levels(mu: Array, temperature: Array) -> tuple[tuple[int, ...], Array, Array]:
    """(the levels' shape S, mu (L,), temperature (L,)): ``mu`` and ``temperature`` broadcast
    against each other (0-d: S = ()); ValueError naming them otherwise."""
    try:
        shape = np.broadcast_shapes(mu.shape, temperature.shape)
    except ValueError:
        fail(
            f"mu (shape {mu.shape}) and temperature (shape {temperature.shape}) must broadcast "
            "against each other (a Fermi-level scan: arrays of levels)"
        )
    flat = [jnp.broadcast_to(a, shape).reshape(-1) for a in (mu, temperature)]
    return shape, flat[0], flat[1]


def _first_bad(bad: Any, value: Any) -> str:
    """Where an array of levels goes wrong: ": entry (i, ...) is v" ('' for a 0-d value)."""
    if np.ndim(value) == 0:
        return ""
    bad = np.broadcast_to(np.asarray(bad), np.shape(value))
    index = np.unravel_index(int(np.argmax(bad)), bad.shape)
    return f": entry {tuple(int(i) for i in index)} is {np.asarray(value)[index]}"


def _check_level_values(guards: Guards, mu: Array, temperature: Array, allow_zero: bool) -> None:
    """mu finite; temperature finite and >= 0 (``allow_zero``) or > 0; arrays name the first bad
    entry."""
    xp = namespace(mu)
    bad_mu = ~xp.isfinite(mu)
    guards.add(bad_mu, "mu must be finite", got=mu, detail=lambda: _first_bad(bad_mu, mu))
    _check_temperature(guards, temperature, allow_zero)


def _check_temperature(guards: Guards, temperature: Array, allow_zero: bool) -> None:
    xp = namespace(temperature)
    temperature = xp.asarray(temperature)
    if allow_zero:
        bad = ~((temperature >= 0) & xp.isfinite(temperature))
        message = "temperature must be >= 0 and finite (T = 0 is the step occupation)"
    else:
        bad = ~((temperature > 0) & xp.isfinite(temperature))
        message = (
            "temperature must be > 0 and finite for Fermi-surface terms (f0' is a delta function "
            "at T = 0; use a small T that the grid resolves)"
        )
    guards.add(bad, message, got=temperature, detail=lambda: _first_bad(bad, temperature))


def _check_tau(guards: Guards, tau: Array) -> None:
    xp = namespace(tau)
    tau = xp.asarray(tau)
    guards.add(
        ~((tau > 0) & xp.isfinite(tau)), "tau must be > 0 and finite (a relaxation time)", got=tau
    )


def _default_chunk_points(theory: str, manifolds: Manifolds) -> int:
    """Points per chunk when the caller gives no chunk_size.

    MSCT with a multi-band manifold differentiates its hybridised energies by forward mode (d or
    2d tangents through the geometry at every point), so a point's reverse-mode residuals are
    several times those of the other integrands. On CPU, chunks of 2^11 such points keep a chunk's
    reverse pass in cache, which speeds up the gradient and leaves the forward pass as it is
    (measurements: benchmarks/RESULTS.md). Other platforms (unmeasured) keep 2^14.
    """
    multi_band = theory == "msct" and any(len(manifold) > 1 for manifold in manifolds)
    if multi_band and jax.default_backend() == "cpu":
        return DEFAULT_CHUNK_POINTS // 8
    return DEFAULT_CHUNK_POINTS


def _common(
    model: AbstractModel, grid: KGrid, positions: Any
) -> tuple[int, Float[Array, "nk d"], Float[Array, " nk"], Float[Array, "nx d"]]:
    """The static checks every public function shares: (d, k-points, weights, positions)."""
    check_model(model)
    d = int(model.dim)
    points, weights = check_grid(grid, d)
    positions = _check_positions(model, positions)
    # shapes only: indexing the (concrete) arrays would compile a program per grid size
    check_output_shape(
        model, *(jax.ShapeDtypeStruct(a.shape[1:], a.dtype) for a in (positions, points))
    )
    check_concrete_model(model)
    return d, points, weights, positions


def _finish(
    guards: Guards,
    result: Float[Array, "L ..."],
    diagnostics: Diagnostics,
    what: str,
    grid: tuple[Array, Array],
    levels: tuple[tuple[int, ...], Array, Array],
) -> Float[Array, "..."]:
    """``result`` (L, ...) as (*S, ...) for levels of shape S, with the value checks attached, the
    k-sum's (Hermiticity, gaps, finite) last. ``grid``: (points, positions); ``levels``: (S,
    mu (L,), temperature (L,)), named in a gap's error when S != ()."""
    shape, mu, temperature = levels
    named = None if shape == () else (mu, temperature)
    check_diagnostics(guards, diagnostics, what, *grid, levels=named)
    return guards(result.reshape(shape + result.shape[1:]))


def _current(
    model: AbstractModel,
    grid: KGrid,
    xs: Any,
    field: Any,
    mu: Any,
    temperature: Any,
    tau: Any,
    theory: str,
    manifolds: Any,
    chunk_size: Any,
    devices: Any,
    magnetic_field: Any = None,
) -> Float[Array, "nx d"]:
    """:func:`current_map`, with ``xs = None`` meaning the origin: checks, then the core."""
    d, points, weights, positions = _common(model, grid, xs)
    one_of(theory, "theory", THEORIES)
    manifolds = check_partition(manifolds, int(model.n_bands))
    devices = device_tuple(devices)
    chunk = _check_chunk_size(
        chunk_size,
        _share(points.shape[0], devices),
        positions.shape[0],
        _default_chunk_points(theory, manifolds),
    )
    if theory == "ssct" and any(len(m) > 1 for m in manifolds):
        fail(
            f"theory='ssct' treats every band as its own manifold, got manifolds={manifolds}; "
            "use theory='msct' (or 'nonabelian_hall') for multi-band manifolds"
        )
    hall = theory == "nonabelian_hall"
    field = vector(field, "field", d)
    magnetic = _check_magnetic_field(magnetic_field, d, theory)
    mu, temperature = _level_array(mu, "mu"), _level_array(temperature, "temperature")
    levels = _flat_levels(mu, temperature)
    tau = jnp.asarray(0.0) if hall and tau is None else scalar(tau, "tau")
    # concrete bad values raise here, before the k-sum; traced ones are attached to the result
    guards = Guards()
    check_grid_values(guards, points, weights, positions)
    model_value_checks(guards, model)
    guards.finite(field, "field")
    if magnetic is not None and not callable(magnetic):
        guards.finite(magnetic, "magnetic_field")
    _check_level_values(guards, mu, temperature, allow_zero=hall)
    if not hall:
        _check_tau(guards, tau)
    result, diagnostics = process_local(
        current_core(
            model,
            positions,
            points,
            weights,
            field,
            *levels[1:],
            tau,
            theory,
            manifolds,
            chunk,
            devices,
            magnetic,
        )
    )
    result = jnp.moveaxis(result, 1, 0)  # (L, n_x, d)
    return _finish(guards, result, diagnostics, "current", (points, positions), levels)


def _check_magnetic_field(value: Any, dim: int, theory: str) -> Any:
    """``magnetic_field`` checked (:func:`~semiclassical_jax._guards.magnetic_field`); ``theory``
    ``'ssct'`` (:mod:`._magnetic`) and ``'msct'`` (:mod:`._magnetic_msct`) take one (PHYSICS.md
    section 5); ``'nonabelian_hall'`` (Eq. 53, a Fermi-sea trace) has no theory in B here."""
    magnetic = magnetic_field(value, dim)
    if magnetic is not None and theory not in ("ssct", "msct"):
        raise NotImplementedError(
            f"magnetic_field is implemented for theory='ssct' and 'msct', got theory={theory!r}: "
            "Eq. 53 (the degenerate, fully occupied manifold) in B needs the non-Abelian "
            "wavepacket in a magnetic field; pass theory='msct'"
        )
    return magnetic


def _response(
    model: AbstractModel,
    grid: KGrid,
    x: Any,
    chunk_size: Any,
    mu: Any,
    temperature: Any,
    tau: Any,
    quantity: str,
    allow_zero: bool,
    devices: Any,
) -> Float[Array, "d ..."]:
    """A linear-response coefficient at one position ``x``: checks, then the core."""
    position = None if x is None else vector(x, "x", int(model.dim))[None, :]
    _, points, weights, positions = _common(model, grid, position)
    devices = device_tuple(devices)
    chunk = _check_chunk_size(
        chunk_size, _share(points.shape[0], devices), positions.shape[0], DEFAULT_CHUNK_POINTS
    )
    mu, temperature = _level_array(mu, "mu"), _level_array(temperature, "temperature")
    levels = _flat_levels(mu, temperature)
    tau = scalar(tau, "tau") if quantity == "drude" else jnp.asarray(0.0)
    guards = Guards()
    check_grid_values(guards, points, weights, positions)
    model_value_checks(guards, model)
    _check_level_values(guards, mu, temperature, allow_zero)
    if quantity == "drude":
        _check_tau(guards, tau)
    result, diagnostics = process_local(
        response_core(model, positions, points, weights, *levels[1:], tau, quantity, chunk, devices)
    )
    named = quantity in ("berry_curvature_dipole", "orbital_magnetisation")
    what = quantity if named else f"{quantity}_conductivity"
    return _finish(guards, result[0], diagnostics, what, (points, positions), levels)


# ---------------------------------------------------------------------------------------------
# public functions


def current_map(
    model: AbstractModel,
    grid: KGrid,
    xs: Float[ArrayLike, "nx d"],
    *,
    field: FieldLike,
    mu: LevelsLike,
    temperature: LevelsLike,
    tau: RealScalarLike | None = None,
    theory: Theory = "msct",
    manifolds: ManifoldsLike = None,
    chunk_size: int | None = None,
    devices: Sequence[Any] | None = None,
    magnetic_field: FieldLike | None = None,
) -> Float[Array, "*S nx d"]:
    """Current density J(x) at each position of ``xs`` (n_x, d): the phase-space grid (PHYSICS.md s. 4).

    Each x has its own k-integral over ``grid``; see :func:`current` for the theories and arguments.
    Memory is bounded by ``chunk_size`` x n_x integrand evaluations at a time. Shape (n_x, d), or
    (*S, n_x, d) for a scan of levels of shape S (``mu`` and ``temperature`` arrays).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> disk = grids.disk(2.0, 8, 8, breaks=[0.4])
        >>> xs = np.zeros((1, 2))  # one position (a uniform model: the same current everywhere)
        >>> j = sj.current_map(
        ...     m, disk, xs, field=[0.01, 0.0], mu=0.0, temperature=0.02, tau=10.0, theory="ssct"
        ... )
        >>> # mu in the gap: only the Hall current, J_y = sigma_yx E_x = 0.0678 x 0.01
        >>> print(np.round(j, 6) + 0.0)
        [[0.       0.000678]]
    """
    return _current(
        model,
        grid,
        xs,
        field,
        mu,
        temperature,
        tau,
        theory,
        manifolds,
        chunk_size,
        devices,
        magnetic_field,
    )


def current(
    model: AbstractModel,
    grid: KGrid,
    *,
    field: FieldLike,
    mu: LevelsLike,
    temperature: LevelsLike,
    tau: RealScalarLike | None = None,
    theory: Theory = "msct",
    manifolds: ManifoldsLike = None,
    x: PositionLike | None = None,
    chunk_size: int | None = None,
    devices: Sequence[Any] | None = None,
    magnetic_field: FieldLike | None = None,
) -> Float[Array, "*S d"]:
    """Steady-state current density J = q int dk (...) in a uniform field E (PHYSICS.md section 3).

    Arguments:
        model: a model (``dim`` = d); ``grid``: a :class:`~semiclassical_jax.grids.KGrid`.
        field: E, shape (d,), energy / length (natural units).
        mu, temperature: chemical potential and T (energy; k_B = 1); numbers, or arrays of
            levels that broadcast against each other (shape S): a Fermi-level scan, one pass
            over the grid (each k-point's geometry, and for MSCT its hybridisation, is computed
            once for all levels).
        tau: relaxation time (1 / energy); not used by ``"nonabelian_hall"``.
        theory: ``"msct"`` (default) the non-adiabatic theory, Eqs. 54-62: the field hybridises the
            bands of each manifold to all orders; ``"ssct"`` the standard kinetic theory with the
            full Abelian EOM, Eqs. 46-47; ``"nonabelian_hall"`` Eq. 53.
        manifolds: a partition of the band indices (every band exactly once); default: every band
            its own manifold. Only ``"msct"`` and ``"nonabelian_hall"`` accept multi-band manifolds.
        x: position (d,) for a textured model (default: the origin).
        chunk_size: k-points per chunk (memory bound); default: at most 2^14 (on CPU 2^11 for MSCT
            with a multi-band manifold), in equal chunks.
        devices: split the k-grid evenly over these devices and add the parts (``jax.shard_map``
            and ``psum``), e.g. ``jax.devices()``: all GPUs, forced CPU devices, or after
            :func:`semiclassical_jax.distributed.initialize` the devices of every process (each
            process gets the whole result). Default: the default device. The result equals one
            device's up to the order of the additions. Every function here takes it.
        magnetic_field: uniform B (a scalar B_z in 2D, shape (3,) in 3D; or a callable B(x));
            ``theory="ssct"`` or ``"msct"`` and a uniform model only: orbital moment
            (eps - m . B), phase-space factor D = 1 + B . Omega, the chiral-anomaly term and the
            Lorentz force to second order in B (Jones-Zener), PHYSICS.md section 5
            (:mod:`._magnetic`). For ``"msct"`` each hybridised band of a manifold is an Abelian
            band with the curvature and moment of its state (:mod:`._magnetic_msct`): the
            hybridised bands must not touch on the grid (NotImplementedError), and the grid must
            cover the whole Fermi sea of a multi-band manifold. ``"nonabelian_hall"`` raises
            NotImplementedError. Default: none.

    Returns J, shape (d,) (a scan: (*S, d), J[i] at level (mu[i], temperature[i])), carrier charge
    -1, so the intrinsic Hall current of a Chern insulator is J_x = -(C / 2 pi) E_y. ``temperature`` must be > 0 for ``"ssct"`` and ``"msct"``; T = 0 (step
    occupation) is allowed for ``"nonabelian_hall"``.

    Raises ValueError (eager; a run-time error under jit) if the model is not Hermitian at a grid
    point, or if two bands whose pair term enters the current touch on a grid point: gap <=
    GAP_RTOL (1e-8) x the largest |eps| on the grid. Pairs of bands both exactly full or both
    exactly empty cancel (Fermi-sea form) and may touch (for SSCT with a textured model only
    empty pairs; a multi-band MSCT manifold keeps every pair to its remote bands). In a scan this
    holds per level: the error names the first level at which the touching pair's occupations
    differ. ValueError naming ``mu`` / ``temperature`` for levels that are not finite (T < 0 or
    T = 0 where not allowed) or that do not broadcast against each other. In a magnetic field,
    ValueError naming ``magnetic_field`` if the phase-space factor D = 1 + B . Omega_n of some
    band is <= 0 at a grid point (B too strong near a band touching: the theory's expansion in
    B fails there), naming the point, the band and D.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> disk = grids.disk(2.0, 8, 8, breaks=[0.4])
        >>> j = sj.current(m, disk, field=[0.01, 0.0], mu=0.0, temperature=0.02, tau=10.0)
        >>> # MSCT, mu in the gap: the Hall current J_y = sigma_yx E_x, sigma_yx on the disk of
        >>> # radius R = 2: (1 - Delta / sqrt(Delta^2 + v^2 R^2)) / 4 pi = 0.0678
        >>> print(np.round(j, 6) + 0.0)
        [0.       0.000678]
    """
    position = None if x is None else vector(x, "x", int(model.dim))[None, :]
    return _current(
        model,
        grid,
        position,
        field,
        mu,
        temperature,
        tau,
        theory,
        manifolds,
        chunk_size,
        devices,
        magnetic_field,
    )[..., 0, :]


def hall_conductivity(
    model: AbstractModel,
    grid: KGrid,
    *,
    mu: LevelsLike,
    temperature: LevelsLike,
    manifolds: ManifoldsLike = None,
    x: PositionLike | None = None,
    chunk_size: int | None = None,
    devices: Sequence[Any] | None = None,
) -> Float[Array, "..."]:
    """Intrinsic Hall conductivity sigma_ab = dJ_a/dE_b = -sum_n int dk f0(eps_n) Omega_n^{k_a k_b}.

    The E -> 0 limit of the MSCT / SSCT current at tau-independent order (PHYSICS.md section 3,
    paper Eqs. 46-47 with the Abelian anomalous velocity of Eq. 43; Eq. 53 for a full manifold,
    Eq. 60 as E -> 0). Units e^2/hbar: a Chern
    insulator gives sigma_xy = -C / (2 pi) = -C e^2/h; a massive Dirac valley with mu in the gap
    -valley sgn(Delta) / (4 pi). It does not depend on the manifold partition (only pairs with
    different occupations contribute, Kubo / TKNN); ``manifolds`` is validated for symmetry with
    :func:`current`. ``temperature`` >= 0 (T = 0: step occupation). ``mu`` and ``temperature``
    may be arrays of levels (shape S after broadcasting): sigma then has shape (*S, d, d), from one
    pass over the grid (the curvature of each k-point computed once for all levels).

    Evaluated in the Fermi-sea form -sum_{n<m} (f_n - f_m) Omega_nm: bands at the same occupation
    (both full or both empty) may touch; a touching of bands whose occupations differ on a grid
    point (gap <= 1e-8 x the largest |eps| on the grid) raises, naming x, k, the bands and the gap
    (and, in a scan, the first level at which their occupations differ).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> disk = grids.disk(2.0, 8, 8, breaks=[0.4])
        >>> s = sj.hall_conductivity(m, disk, mu=0.0, temperature=0.0)
        >>> # mu in the gap, cutoff R = 2: sigma_xy = -(1 - Delta / sqrt(Delta^2 + v^2 R^2)) / 4 pi
        >>> #   = -0.0678
        >>> print(np.round(s, 4) + 0.0)
        [[ 0.     -0.0678]
         [ 0.0678  0.    ]]
    """
    check_partition(manifolds, int(model.n_bands))
    return _response(
        model, grid, x, chunk_size, mu, temperature, None, "hall", True, devices=devices
    )


def drude_conductivity(
    model: AbstractModel,
    grid: KGrid,
    *,
    mu: LevelsLike,
    temperature: LevelsLike,
    tau: RealScalarLike,
    x: PositionLike | None = None,
    chunk_size: int | None = None,
    devices: Sequence[Any] | None = None,
) -> Float[Array, "..."]:
    """Drude conductivity sigma_ab = tau sum_n int dk (-f0'(eps_n)) v_n,a v_n,b (e^2/hbar units).

    The term linear in tau and E of the SSCT current (PHYSICS.md section 3, paper Eqs. 46-47).
    A parabolic band eps = k^2 / 2m gives sigma = n tau / m at any T (n the carrier density).
    Shape (d, d), or (*S, d, d) for arrays ``mu`` / ``temperature`` of levels (one pass over k).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> fermi = grids.disk(0.8, 8, 8, breaks=[0.4])
        >>> s = sj.drude_conductivity(m, fermi, mu=0.5, temperature=0.02, tau=10.0)
        >>> # T -> 0: sigma_xx = tau k_F v_F / (4 pi) = 0.2546, k_F = 0.4, v_F = k_F / mu = 0.8
        >>> print(np.round(s, 2) + 0.0)
        [[0.25 0.  ]
         [0.   0.25]]
    """
    return _response(
        model, grid, x, chunk_size, mu, temperature, tau, "drude", False, devices=devices
    )


def berry_curvature_dipole(
    model: AbstractModel,
    grid: KGrid,
    *,
    mu: LevelsLike,
    temperature: LevelsLike,
    x: PositionLike | None = None,
    chunk_size: int | None = None,
    devices: Sequence[Any] | None = None,
) -> Float[Array, "*S d d d"]:
    """Berry-curvature dipole D_cab = sum_n int dk f0(eps_n) d_{k_c} Omega_n^{k_a k_b} (Sodemann-Fu).

    The dipole of the curvature of PHYSICS.md section 1 (paper Eq. 44), the O(tau E^2) term of the
    SSCT current (PHYSICS.md section 3, Eqs. 46-47 to second order in E; beyond the paper: Sodemann
    and Fu, PRL 115, 216806 (2015)). Evaluated in its Fermi-surface form -sum_n int f0' v_c
    Omega^{k_a k_b}. In 2D the usual dipole
    vector is D[:, 0, 1]. See :func:`nonlinear_hall_current` for the current it drives. Shape
    (d, d, d), or (*S, d, d, d) for arrays ``mu`` / ``temperature`` of levels (one pass over k).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> fermi = grids.disk(0.8, 8, 8, breaks=[0.4])
        >>> tilted = models.MassiveDirac(1.0, 0.3, tilt=0.2)
        >>> # the 2D dipole vector D[:, 0, 1]: zero without tilt (rotation symmetry), along x for a
        >>> # tilt along x
        >>> d = sj.berry_curvature_dipole(m, fermi, mu=0.5, temperature=0.02)
        >>> print(np.round(d[:, 0, 1], 4) + 0.0)
        [0. 0.]
        >>> d = sj.berry_curvature_dipole(tilted, fermi, mu=0.5, temperature=0.02)
        >>> print(np.round(d[:, 0, 1], 4) + 0.0)
        [-0.018  0.   ]
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
        False,
        devices=devices,
    )


def nonlinear_hall_current(
    model: AbstractModel,
    grid: KGrid,
    *,
    field: FieldLike,
    mu: LevelsLike,
    temperature: LevelsLike,
    tau: RealScalarLike,
    x: PositionLike | None = None,
    chunk_size: int | None = None,
    devices: Sequence[Any] | None = None,
) -> Float[Array, "*S d"]:
    """The SSCT current at order tau E^2: J_a = tau sum_bc D_cab E_b E_c (Berry-curvature dipole).

    Derived from paper Eqs. 46-47 (PHYSICS.md section 3) without texture: f = f0 + tau E . d_k f0
    and dx/dt = v + Omega^{kk} E, so the tau E^2 term of J = -int f dx/dt is
    -tau int (E . d_k f0)(Omega^{kk} E). In 2D with D_c = D[c, 0, 1]: J = tau (E . D) (E_y, -E_x).
    Shape (d,), or (*S, d) for levels of shape S.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> fermi = grids.disk(0.8, 8, 8, breaks=[0.4])
        >>> tilted = models.MassiveDirac(1.0, 0.3, tilt=0.2)
        >>> j = sj.nonlinear_hall_current(
        ...     tilted, fermi, field=[0.1, 0.0], mu=0.5, temperature=0.02, tau=10.0
        ... )
        >>> # J = tau (E . D) (E_y, -E_x), dipole D_x = -0.018 (berry_curvature_dipole): J_y = 1.8e-3
        >>> print(np.round(j, 5) + 0.0)
        [0.     0.0018]
    """
    d = int(model.dim)
    field = vector(field, "field", d)
    tau = scalar(tau, "tau")
    guards = Guards()
    guards.finite(field, "field")  # concrete bad values raise here, before the dipole's k-sum
    _check_tau(guards, tau)
    dipole = berry_curvature_dipole(
        model, grid, mu=mu, temperature=temperature, x=x, chunk_size=chunk_size, devices=devices
    )
    return guards(tau * jnp.einsum("...cab,b,c->...a", dipole, field, field))


def orbital_magnetisation(
    model: AbstractModel,
    grid: KGrid,
    *,
    mu: LevelsLike,
    temperature: LevelsLike,
    x: PositionLike | None = None,
    chunk_size: int | None = None,
    devices: Sequence[Any] | None = None,
) -> Float[Array, "*S"] | Float[Array, "*S 3"]:
    """Orbital magnetisation, the Berry-phase formula (PHYSICS.md section 5; RMP 82, 1959, Eq. 3.29,
    charge -1): M = sum_n int dk [f0(eps_n) m_n + T log(1 + exp((mu - eps_n) / T)) Omega_n],
    with m_n the orbital moment (:func:`~semiclassical_jax.orbital_moment`) and Omega_n^c =
    eps_abc Omega_n^{k_a k_b} / 2; at T = 0 the second weight is (mu - eps_n) theta(mu - eps_n).

    Units: energy / length^(d-2) (natural units; in 2D a moment per area). Shape () in 2D (M_z),
    (3,) in 3D; (*S, ...) for arrays ``mu`` / ``temperature`` of levels (one pass over k). In a
    gap at T = 0, dM/dmu = sum_occupied int dk Omega = C / (2 pi) (Streda); a massive Dirac valley
    with mu in the gap has M_z = valley sgn(Delta) mu / (4 pi) (infinite cutoff). Band touchings:
    as :func:`hall_conductivity` (pairs at the same occupation cancel and may touch).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> disk = grids.disk(2.0, 8, 8, breaks=[0.4])
        >>> # mu in the gap (T = 0), Streda: dM/dmu = int_occupied Omega
        >>> #   = (1 - Delta / sqrt(Delta^2 + v^2 R^2)) / (4 pi) on the disk of radius R
        >>> M0 = sj.orbital_magnetisation(m, disk, mu=0.0, temperature=0.0)
        >>> M1 = sj.orbital_magnetisation(m, disk, mu=0.1, temperature=0.0)
        >>> # so M(0.1) - M(0) = 0.1 x 0.0678
        >>> round(float(M1 - M0), 5)
        0.00678
    """
    check_model(model)
    if int(model.dim) not in (2, 3):
        fail(f"orbital_magnetisation needs a 2D or 3D model (got dim={int(model.dim)})")
    result = _response(
        model,
        grid,
        x,
        chunk_size,
        mu,
        temperature,
        None,
        "orbital_magnetisation",
        True,
        devices=devices,
    )
    return result[..., 0] if int(model.dim) == 2 else result
