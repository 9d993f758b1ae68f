"""``evolve``: integrate one wavepacket (vmap it for many) with diffrax (PHYSICS.md section 2).

One call is four steps: :func:`_check_arguments` (static checks before tracing; it returns the
static :class:`_Setup` of the solve), :func:`_initial_state` (chi0, by default an eigenstate, and
its checks), :func:`_solve` (the jitted core: one diffrax solve and the observables at the saved
times) and :func:`_guard_failure` (a failed run raises, or is only flagged with ``throw=False``).
"""

import warnings
from collections.abc import Sequence
from typing import Literal, NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._guards import (
    Guards,
    check_finite_parameters,
    check_manifold,
    check_model,
    check_output_shape,
    check_point,
    fail,
    integer,
    is_concrete,
    one_of,
    remote_bands,
)
from .._types import Array, ArrayLike, Complex, Float, PositionLike, RealScalarLike, WavevectorLike
from ..geometry._kernel import GAP_RTOL, band_geometry_unchecked
from ..models import AbstractModel
from ._fields import AbstractField, FieldSpec, as_field
from ._vector_fields import (
    join_state,
    nonadiabaticity,
    pack_state,
    split_state,
    unpack_state,
    vector_field,
)

Method = Literal["full", "nonabelian", "abelian"]
METHODS = ("full", "nonabelian", "abelian")

# |chi0| must be 1, and chi0 inside the manifold, to this absolute tolerance.
CHI0_ATOL = 1e-8


class Trajectory(eqx.Module):
    """A solved wavepacket trajectory. Leading axis of every array: the saved times.

    ``ts`` (T,); ``x``, ``k`` (T, d); ``chi`` (T, N) orbital-basis band state (for "abelian" the
    eigenvector u_n(x, k) in eigh's gauge); ``populations`` (T, N) = |<u_n(x, k)|chi>|^2 over the
    instantaneous bands; ``energy`` (T,) = <chi|H(x, k)|chi> - phi(x) (the total energy, conserved
    for a static potential). ``num_steps`` accepted solver steps; ``result`` diffrax's
    RESULTS; ``gap_closed`` True if a non-Abelian / Abelian run was stopped because the manifold
    description broke down: its gap to the remote bands closed, or the non-adiabaticity
    eta = max |<u_l|dH/dt|u_n>| / (eps_n - eps_l)^2 reached ``adiabaticity_limit``; it stopped at
    ``t_stop`` with gap ``gap_at_stop`` and eta ``nonadiabaticity_at_stop`` (both also reported
    for successful runs, at t1).
    """

    ts: Float[Array, " T"]
    x: Float[Array, "T d"]
    k: Float[Array, "T d"]
    chi: Complex[Array, "T n"]
    populations: Float[Array, "T n"]
    energy: Float[Array, " T"]
    num_steps: Array
    result: diffrax.RESULTS
    gap_closed: Array
    t_stop: Array
    gap_at_stop: Array
    nonadiabaticity_at_stop: Array

    @property
    def success(self) -> Array:
        return (self.result == diffrax.RESULTS.successful) & ~self.gap_closed


class _Setup(NamedTuple):
    """The static part of one ``evolve`` call (a static argument of the jitted :func:`_solve`).

    ``band`` / ``manifold`` are checked and completed (an Abelian run always has a band, a
    non-Abelian one a manifold); ``solver`` and ``adjoint`` have their defaults filled in.
    """

    method: str
    band: int | None
    manifold: tuple[int, ...] | None
    solver: diffrax.AbstractSolver
    rtol: float
    atol: float
    max_steps: int
    adjoint: diffrax.AbstractAdjoint
    adiabaticity_limit: float | None

    @property
    def watched(self) -> tuple[int, ...] | None:
        """The bands the wavepacket is confined to: (band,) for "abelian", else the manifold."""
        return (self.band,) if self.method == "abelian" else self.manifold

    @property
    def backsolve(self) -> bool:
        """BacksolveAdjoint (the memory-lean adjoint) takes neither SubSaveAts nor events."""
        return isinstance(self.adjoint, diffrax.BacksolveAdjoint)

    @property
    def monitored(self) -> bool:
        """Whether the solve stops where the manifold description breaks down (an event)."""
        return self.adiabaticity_limit is not None and self.method != "full" and not self.backsolve


# ---------------------------------------------------------------------------------------------
# checks


def _check_bands(
    method: str, band: int | None, manifold: Sequence[int] | None, chi0: object, n_bands: int
) -> tuple[int | None, tuple[int, ...] | None]:
    """(band, manifold) checked against the method; each method fills in the one it needs."""
    if band is not None:
        band = integer(band, "band", minimum=0, maximum=n_bands)
    if manifold is not None:
        manifold = check_manifold(manifold, n_bands)
    if method == "abelian":
        if band is None and manifold is not None and len(manifold) == 1:
            band = manifold[0]
        if band is None:
            fail("method='abelian' needs band= (the band the wavepacket lives in)")
        remote_bands((band,), n_bands, name="band")
    if method == "nonabelian":
        if manifold is None and band is not None:
            manifold = (band,)
        if manifold is None:
            fail("method='nonabelian' needs manifold= (a sequence of band indices)")
        remote_bands(manifold, n_bands)
    if method == "full" and chi0 is None and band is None and manifold is None:
        fail("method='full' needs chi0=, band= or manifold= to set the initial state")
    return band, manifold


def _check_times(
    t0: RealScalarLike, t1: RealScalarLike, saveat: object, concrete: bool
) -> tuple[Array, Array, Array | None]:
    """(t0, t1, ts) as float arrays; ts (T,) the save times, None to save at t1 only.

    The order checks run only on concrete values (and, for t1 > t0, a concrete model and point).
    """
    t0 = jnp.asarray(t0, dtype=float)
    t1 = jnp.asarray(t1, dtype=float)
    if concrete and is_concrete(t0, t1) and not float(t1) > float(t0):
        fail(f"t1 must be later than t0, got t0={float(t0)}, t1={float(t1)}")
    if saveat is None:
        return t0, t1, None
    if isinstance(saveat, (int, np.integer)) and not isinstance(saveat, bool):
        return t0, t1, jnp.linspace(t0, t1, integer(saveat, "saveat (a count)"))
    ts = jnp.asarray(saveat, dtype=float)
    if ts.ndim != 1 or ts.shape[0] < 1:
        fail(f"saveat must be an int or a 1-D array of times, got shape {ts.shape}")
    if is_concrete(ts, t0, t1) and (
        np.any(np.diff(np.asarray(ts)) < 0) or ts[0] < t0 or ts[-1] > t1
    ):
        fail("saveat times must be non-decreasing and lie in [t0, t1]")
    return t0, t1, ts


def _check_arguments(
    model,
    x0,
    k0,
    *,
    field,
    t0,
    t1,
    saveat,
    chi0,
    method,
    band,
    manifold,
    solver,
    rtol,
    atol,
    max_steps,
    adjoint,
    adiabaticity_limit,
):
    """The static checks of :func:`evolve` (its arguments, same names), before any tracing.

    Returns the :class:`_Setup`, (x0, k0) as (d,) float arrays, the field as an
    :class:`AbstractField`, t0 and t1 as float scalars and the save times ts (T,) or None.
    """
    check_model(model)
    one_of(method, "method", METHODS)
    x0, k0 = check_point(model, x0, k0)
    check_output_shape(model, x0, k0)
    concrete = is_concrete(model, x0, k0)
    if concrete:
        check_finite_parameters(model)
    band, manifold = _check_bands(method, band, manifold, chi0, int(model.n_bands))
    field = as_field(field, int(model.dim))
    t0, t1, ts = _check_times(t0, t1, saveat, concrete)
    setup = _Setup(
        method=method,
        band=band,
        manifold=manifold,
        solver=diffrax.Dopri8() if solver is None else solver,
        rtol=float(rtol),
        atol=float(atol),
        max_steps=integer(max_steps, "max_steps"),
        adjoint=diffrax.RecursiveCheckpointAdjoint() if adjoint is None else adjoint,
        adiabaticity_limit=None if adiabaticity_limit is None else float(adiabaticity_limit),
    )
    return setup, x0, k0, field, t0, t1, ts


def _initial_state(model, x0: Array, k0: Array, chi0, setup: _Setup) -> Complex[Array, " n"]:
    """chi0 (N,) complex, orbital basis: the given one, checked, or the eigenstate of ``band``
    (else of the lowest band of ``manifold``) at (x0, k0).

    A concrete chi0 must be normalised and, for the confined methods, lie in the watched bands:
    |(1 - P) chi0| <= CHI0_ATOL with P the projector on them at (x0, k0).
    """
    if chi0 is None:
        first = setup.band if setup.band is not None else setup.manifold[0]
        return band_geometry_unchecked(model, x0, k0).states[:, first]
    n_bands = int(model.n_bands)
    chi0 = jnp.asarray(chi0)
    if chi0.shape != (n_bands,):
        fail(f"chi0 must have shape ({n_bands},), got {chi0.shape}")
    chi0 = chi0.astype(jnp.result_type(chi0.dtype, 1j))
    if not is_concrete(chi0, model, x0, k0):
        return chi0
    norm = float(jnp.linalg.norm(chi0))
    if abs(norm - 1.0) > CHI0_ATOL:
        fail(f"chi0 must be normalised: |chi0| = {norm:.12g}")
    if setup.method != "full":
        watched = setup.watched
        ua = band_geometry_unchecked(model, x0, k0).states[:, jnp.array(watched)]
        leak = float(jnp.linalg.norm(chi0 - ua @ (jnp.conj(ua.T) @ chi0)))
        if leak > CHI0_ATOL:
            fail(f"chi0 lies outside the manifold {watched}: |(1 - P) chi0| = {leak:.3e}")
    return chi0


# ---------------------------------------------------------------------------------------------
# the jitted core


def _observables(model, field: AbstractField, method, band, x, k, chi):
    """(chi, populations |<u_n|chi>|^2 (N,), energy <chi|H|chi> - phi(x)) at one saved state.

    For "abelian" chi is not evolved: it is set to u_band(x, k) (eigh's gauge).
    """
    geometry = band_geometry_unchecked(model, x, k)
    if method == "abelian":
        chi = geometry.states[:, band]
    overlaps = jnp.conj(geometry.states.T) @ chi
    populations = jnp.abs(overlaps) ** 2
    energy = jnp.sum(geometry.energies * populations) - field.potential(x)
    return chi, populations, energy


def _breakdown_diagnostics(model, field, setup: _Setup, t, y):
    """(gap to the remote bands, non-adiabaticity eta, spectral scale max|eps|) at packed state y.

    The watched bands are the manifold ("nonabelian") or the band ("abelian"); eta as in
    :func:`nonadiabaticity`, with dlambda/dt from the method's equations of motion.
    """
    watched = setup.manifold if setup.method == "nonabelian" else (setup.band,)
    x, k, chi = split_state(unpack_state(y, int(model.dim)))
    geometry = band_geometry_unchecked(model, x, k)
    dlambda = vector_field(setup.method, setup.band, setup.manifold).phase_space_velocity(
        geometry, chi, field.electric_field(x, t)
    )
    scale = jnp.max(jnp.abs(geometry.energies))
    return geometry.manifold_gap(watched), nonadiabaticity(geometry, watched, dlambda), scale


def _breakdown_event(model, field, setup: _Setup) -> diffrax.Event | None:
    """The event that stops a confined run where its gap closes (gap <= GAP_RTOL max|eps|) or
    eta >= adiabaticity_limit; None when the monitor is off."""
    if not setup.monitored:
        return None

    def breakdown(t, y, args, **kwargs):
        gap, eta, scale = _breakdown_diagnostics(model, field, setup, t, y)
        return (gap <= GAP_RTOL * scale) | (eta >= setup.adiabaticity_limit)

    return diffrax.Event(breakdown)


def _saveat(ts: Array | None, t1: Array, backsolve: bool) -> diffrax.SaveAt:
    """Save at t1 (or where an event stops the solve) and at ``ts``.

    BacksolveAdjoint takes no SubSaveAts: ts and t1 then go in one array (t1 last).
    """
    if backsolve:
        return diffrax.SaveAt(ts=t1[None] if ts is None else jnp.concatenate([ts, t1[None]]))
    subs = [diffrax.SubSaveAt(t1=True)] + ([] if ts is None else [diffrax.SubSaveAt(ts=ts)])
    return diffrax.SaveAt(subs=subs)


def _diffeqsolve(model, field, y0: Array, t0, t1, ts, setup: _Setup) -> diffrax.Solution:
    """One diffrax solve of the packed state y0 (see :func:`pack_state`) from t0 to t1."""
    dim = int(model.dim)
    field_function = vector_field(setup.method, setup.band, setup.manifold)

    def packed_field(t, y, args):  # the solver integrates one packed array (see pack_state)
        return pack_state(field_function(t, unpack_state(y, dim), args))

    with warnings.catch_warnings():
        # The state is real (chi split into Re, Im); complex leaves are only model parameters
        # in args (tight-binding hoppings), which diffrax's complex-dtype warning also counts.
        warnings.filterwarnings("ignore", message="Complex dtype support in Diffrax")
        return diffrax.diffeqsolve(
            diffrax.ODETerm(packed_field),
            setup.solver,
            t0,
            t1,
            None,
            y0,
            args=(model, field),
            saveat=_saveat(ts, t1, setup.backsolve),
            # steps land on the saved times: no dense-output interpolation error in what we return
            stepsize_controller=diffrax.PIDController(rtol=setup.rtol, atol=setup.atol, step_ts=ts),
            max_steps=setup.max_steps,
            adjoint=setup.adjoint,
            event=_breakdown_event(model, field, setup),
            throw=False,
        )


def _final_and_saved(solution: diffrax.Solution, ts: Array | None, backsolve: bool):
    """(t_final, y_final, saved ts (T,), saved ys (T, 2d + 2N)) of a solution from :func:`_saveat`.

    Final: the state at t1, or where an event stopped the solve; saved: at the requested times
    (at t1 alone if ts is None).
    """
    if backsolve:
        keep = slice(-1, None) if ts is None else slice(0, -1)
        final_ts, final_ys = solution.ts[-1:], solution.ys[-1:]
        saved_ts, saved_ys = solution.ts[keep], solution.ys[keep]
    else:
        final_ts, final_ys = solution.ts[0], solution.ys[0]
        saved_ts, saved_ys = (
            (final_ts, final_ys) if ts is None else (solution.ts[1], solution.ys[1])
        )
    return final_ts[-1], final_ys[-1], saved_ts, saved_ys


@eqx.filter_jit
def _solve(model, field, x0, k0, chi0, t0, t1, ts, setup: _Setup) -> Trajectory:
    """The jitted core of :func:`evolve`: solve from (x0, k0, chi0) at t0 and evaluate the
    observables at the saved times. Failures are flagged in the Trajectory, never raised."""
    solution = _diffeqsolve(model, field, pack_state(join_state(x0, k0, chi0)), t0, t1, ts, setup)
    t_final, y_final, saved_ts, saved_ys = _final_and_saved(solution, ts, setup.backsolve)
    saved = split_state(unpack_state(saved_ys, int(model.dim)))
    watched_band = setup.band if setup.method == "abelian" else 0
    chis, populations, energy = jax.vmap(
        lambda x, k, chi: _observables(model, field, setup.method, watched_band, x, k, chi)
    )(*saved)
    if setup.monitored:
        gap_closed = jnp.any(jnp.asarray(solution.event_mask))
    else:
        gap_closed = jnp.asarray(False)
    if setup.method == "full":
        gap_at_stop = eta_at_stop = jnp.asarray(jnp.inf)
    else:
        gap_at_stop, eta_at_stop, _ = _breakdown_diagnostics(model, field, setup, t_final, y_final)
    return Trajectory(
        ts=saved_ts,
        x=saved[0],
        k=saved[1],
        chi=chis,
        populations=populations,
        energy=energy,
        num_steps=solution.stats["num_accepted_steps"],
        result=solution.result,
        gap_closed=gap_closed,
        t_stop=t_final,
        gap_at_stop=gap_at_stop,
        nonadiabaticity_at_stop=eta_at_stop,
    )


# ---------------------------------------------------------------------------------------------
# reporting


def _guard_failure(trajectory: Trajectory, setup: _Setup) -> Trajectory:
    """``trajectory``, or the error of a failed run (``throw=True``).

    Eager: ValueError if the manifold description broke down, RuntimeError if the solver stopped
    early, each with where it stopped. Traced (jit, vmap): the static part of the same message, as
    equinox's run-time error on every leaf of the returned Trajectory.
    """
    guards = Guards()
    guards.add(
        trajectory.gap_closed,
        f"evolve failed: the gap of manifold {setup.watched} to the remote bands closed (or "
        f"became too small for the {setup.method} description); use method='full', a larger "
        "manifold, or throw=False to flag it",
        detail=lambda: (
            f" (stopped at t = {float(trajectory.t_stop):.6g}: gap = "
            f"{float(trajectory.gap_at_stop):.3e}, non-adiabaticity eta = "
            f"{float(trajectory.nonadiabaticity_at_stop):.3g}, limit {setup.adiabaticity_limit})"
        ),
    )
    guards.add(
        ~(trajectory.result == diffrax.RESULTS.successful),
        f"evolve failed: the solver stopped before t1; raise max_steps (now {setup.max_steps}), "
        "loosen rtol/atol, or pass throw=False to flag it",
        detail=lambda: f" (stopped at t = {float(trajectory.t_stop):.6g}: {trajectory.result})",
        error=RuntimeError,
    )
    return guards(trajectory)


def evolve(
    model: AbstractModel,
    x0: PositionLike | None,
    k0: WavevectorLike,
    *,
    t1: RealScalarLike,
    field: FieldSpec,
    method: Method = "full",
    band: int | None = None,
    manifold: Sequence[int] | None = None,
    chi0: Complex[ArrayLike, " n"] | None = None,
    saveat: int | Float[ArrayLike, " T"] | None = None,
    solver: diffrax.AbstractSolver | None = None,
    rtol: float = 1e-10,
    atol: float = 1e-10,
    max_steps: int = 2**20,
    t0: RealScalarLike = 0.0,
    adjoint: diffrax.AbstractAdjoint | None = None,
    adiabaticity_limit: float | None = 1.0,
    throw: bool = True,
) -> Trajectory:
    """Integrate a wavepacket from (x0, k0, chi0) at t0 to t1 (PHYSICS.md section 2).

    **Arguments:**
    - ``model``: a model H(x, k); ``x0``, ``k0``: (d,) centre in phase space.
    - ``t1``: final time (natural units, hbar / energy). ``field``: a (d,) uniform E, a callable
      E(x, t), or a :class:`ScalarPotential` phi(x) (E = -grad phi). Charge -1: dk/dt = -E - ...
    - ``method``: ``"full"`` (coherent full-band dynamics, paper Eqs. 8-10), ``"nonabelian"``
      (confined to ``manifold`` by Kato transport, Eqs. 34, 42) or ``"abelian"`` (one ``band``,
      Eq. 43).
    - ``chi0``: (N,) initial band state, orbital basis; defaults to the eigenstate of ``band`` (or
      of the lowest band of ``manifold``) at (x0, k0). Must be normalised (and in the manifold).
    - ``saveat``: None (save at t1 only), an int n (n equally spaced times in [t0, t1]) or an
      array of times. ``solver``: a diffrax solver (default ``diffrax.Dopri8()``) with a PID
      controller at ``rtol``, ``atol``. ``adjoint``: diffrax adjoint (default recursive
      checkpointing; ``diffrax.BacksolveAdjoint()`` is the memory-lean one for long runs: it solves
      the adjoint ODE backwards in O(1) memory, and switches the breakdown monitor off).
    - ``adiabaticity_limit``: stop a non-Abelian / Abelian run where the manifold's gap closes or
      becomes too small for the adiabatic description: eta = max |<u_l|dH/dt|u_n>| /
      (eps_n - eps_l)^2 >= limit (checked at every accepted step; eta = 1 means a Landau-Zener
      leak of about 50 %). ``None`` switches the monitor off.
    - ``throw``: raise on failure (max_steps reached, gap closed); with ``throw=False`` the
      failure is flagged in :attr:`Trajectory.success` instead (use it under vmap).

    Works under ``jax.jit``, ``jax.vmap`` (over initial conditions, fields, model parameters) and
    ``jax.grad``. Eager calls raise ``ValueError`` / ``RuntimeError`` naming the problem.
    """
    setup, x0, k0, field, t0, t1, ts = _check_arguments(
        model,
        x0,
        k0,
        field=field,
        t0=t0,
        t1=t1,
        saveat=saveat,
        chi0=chi0,
        method=method,
        band=band,
        manifold=manifold,
        solver=solver,
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
        adjoint=adjoint,
        adiabaticity_limit=adiabaticity_limit,
    )
    chi0 = _initial_state(model, x0, k0, chi0, setup)
    trajectory = _solve(model, field, x0, k0, chi0, t0, t1, ts, setup)
    return _guard_failure(trajectory, setup) if throw else trajectory
