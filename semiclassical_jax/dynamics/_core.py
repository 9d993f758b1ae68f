"""The core of ``evolve``: one diffrax solve of a wavepacket and its observables (PHYSICS.md section 2).

:func:`solve` (jitted) integrates the packed state from (x0, k0, chi0) with diffrax, watched between
accepted steps by :class:`MonitoredSolver` (and, for confined runs, stopped by the breakdown event),
and evaluates the observables at the saved times into a :class:`Trajectory`. It never raises:
failures are flags of the Trajectory, which ``evolve`` reports (``_evolve.py``).
"""

import warnings

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array, Complex, Float
from ..geometry._kernel import GAP_RTOL, band_geometry_unchecked
from ._arguments import Setup
from ._fields import AbstractField
from ._magnetic import magnetic_velocity, moment_energy_at, phase_space_factor_at
from ._magnetic_manifold import manifold_magnetic_velocity, manifold_observables
from ._monitor import STOPPED, MonitorState, monitored
from ._vector_fields import (
    join_state,
    nonadiabaticity,
    pack_state,
    split_state,
    unpack_state,
    vector_field,
)


class Trajectory(eqx.Module):
    """A solved wavepacket trajectory. Leading axis of every array: the saved times (a batch
    call of ``evolve`` puts the batch axis B in front of every field: ``ts`` (B, T), ``x``
    (B, T, d), ``success`` (B,), ...).

    ``ts`` (T,); ``x``, ``k`` (T, d); ``chi`` (T, N) orbital-basis band state (for "abelian" the
    eigenvector u_n(x, k) in eigh's gauge); ``populations`` (T, N) = |<u_n(x, k)|chi>|^2 over the
    instantaneous bands; ``energy`` (T,) = <chi|H(x, k)|chi> - phi(x) (the total energy, conserved
    for a static potential; in a magnetic field, for "abelian" the moment energy
    eps~ - phi(x), eps~ = eps_n - m_n . B, PHYSICS.md section 5, for "nonabelian"
    <chi|H - M . B|chi> - phi(x)). ``phase_space_factor`` (T,) D = 1 + B . Omega_n of an
    "abelian" run in a magnetic field, 1 + B . <F> for "nonabelian" (None otherwise: without B,
    and for "full", whose wavepacket is not one band's). ``num_steps`` accepted solver steps;
    ``result`` diffrax's
    RESULTS; ``gap_closed`` True if a non-Abelian / Abelian run was stopped because the manifold
    description broke down: its gap to the remote bands closed, or the non-adiabaticity
    eta = max |<u_l|dH/dt|u_n>| / (eps_n - eps_l)^2 reached ``adiabaticity_limit``; it stopped at
    ``t_stop`` with gap ``gap_at_stop`` and eta ``nonadiabaticity_at_stop`` (both also reported
    for successful runs, at t1). ``state_jumped`` True if such a run stopped because the watched
    bands' projector jumped between two accepted steps (a band touching or a diabatic crossing
    stepped over: Tr(P_prev P_next) / N_a < 1/2; ``gap_closed`` is then True as well);
    ``smallest_overlap`` the smallest such overlap over the accepted steps (1 when not watched).
    ``non_hermitian`` True if the run stopped at a point where H(x, k) is not Hermitian
    (max|H - H^dagger| / max|H| > 1e-10); ``non_hermiticity`` the largest value over the accepted
    points. The between-step checks are off with BacksolveAdjoint (then False, 1 and 0).

    Examples:
        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import models
        >>> run = sj.evolve(
        ...     models.MassiveDirac(1.0, 0.5), jnp.zeros(2), jnp.array([-1.0, 0.0]), t1=40.0,
        ...     field=[-0.05, 0.0], method="abelian", band=0, saveat=jnp.array([20.0, 40.0]),
        ... )
        >>> # saved at t = 20 (kx = 0, the gap minimum) and t = 40; the band stays populated
        >>> print(run.x.shape, np.round(run.k[:, 0], 6) + 0.0, np.round(run.populations[:, 0], 6))
        (2, 2) [0. 1.] [1. 1.]
        >>> print(bool(run.success), bool(run.gap_closed), float(run.gap_at_stop))
        True False 2.236...
    """

    ts: Float[Array, " T"]
    x: Float[Array, "T d"]
    k: Float[Array, "T d"]
    chi: Complex[Array, "T n"]
    populations: Float[Array, "T n"]
    energy: Float[Array, " T"]
    phase_space_factor: Float[Array, " T"] | None
    num_steps: Array
    result: diffrax.RESULTS
    gap_closed: Array
    t_stop: Array
    gap_at_stop: Array
    nonadiabaticity_at_stop: Array
    state_jumped: Array
    smallest_overlap: Array
    non_hermitian: Array
    non_hermiticity: Array

    @property
    def success(self) -> Array:
        """True where the run reached t1 (per member for a batch): the solver succeeded, no gap
        closed or state jumped, H stayed Hermitian."""
        ok = self.result == diffrax.RESULTS.successful
        return ok & ~self.gap_closed & ~self.non_hermitian


def _observables(model, field: AbstractField, magnetic, method, band, manifold, x, k, chi):
    """(chi, populations |<u_n|chi>|^2 (N,), energy <chi|H|chi> - phi(x), D or None) at one
    saved state.

    For "abelian" chi is not evolved: it is set to u_band(x, k) (eigh's gauge); in a magnetic
    field its energy is eps~ - phi(x) and D = 1 + B . Omega_band is reported; for "nonabelian"
    in a field <chi|H - M . B|chi> - phi(x) and D = 1 + B . <F> over the ``manifold``.
    """
    geometry = band_geometry_unchecked(model, x, k)
    if method == "abelian":
        chi = geometry.states[:, band]
    overlaps = jnp.conj(geometry.states.T) @ chi
    populations = jnp.abs(overlaps) ** 2
    energy = jnp.sum(geometry.energies * populations) - field.potential(x)
    factor = None
    if method == "abelian" and magnetic is not None:
        energy = moment_energy_at(geometry, band, magnetic, x) - field.potential(x)
        factor = phase_space_factor_at(geometry, band, magnetic, x)
    elif method == "nonabelian" and magnetic is not None:
        mean_moment, factor = manifold_observables(geometry, manifold, chi, magnetic, x)
        energy = energy - mean_moment * jnp.sum(populations[jnp.array(manifold)])
    return chi, populations, energy, factor


def _breakdown_diagnostics(model, field, magnetic, setup: Setup, t, y):
    """(gap to the remote bands, non-adiabaticity eta, spectral scale max|eps|) at packed state y.

    The watched bands are the manifold ("nonabelian") or the band ("abelian"); eta as in
    :func:`nonadiabaticity`, with dlambda/dt from the method's equations of motion.
    """
    watched = setup.manifold if setup.method == "nonabelian" else (setup.band,)
    x, k, chi = split_state(unpack_state(y, int(model.dim)))
    electric_field = field.electric_field(x, t)
    geometry = band_geometry_unchecked(model, x, k)
    if magnetic is not None and setup.method == "abelian":
        dlambda = magnetic_velocity(model, x, k, setup.band, electric_field, magnetic)
    elif magnetic is not None and setup.method == "nonabelian":
        dlambda, _, _ = manifold_magnetic_velocity(
            model, x, k, setup.manifold, chi, electric_field, magnetic
        )
    else:
        dlambda = vector_field(setup.method, setup.band, setup.manifold).phase_space_velocity(
            geometry, chi, electric_field
        )
    scale = jnp.max(jnp.abs(geometry.energies))
    return geometry.manifold_gap(watched), nonadiabaticity(geometry, watched, dlambda), scale


def _breakdown_event(model, field, magnetic, setup: Setup, y0: Array) -> diffrax.Event | None:
    """The event that stops a confined run where its gap closes or eta >= adiabaticity_limit;
    None when the monitor is off.

    Closed: gap <= GAP_RTOL x max(max|eps| here, |H(x0, k0)|_F). The local energies alone would
    vanish with the gap at a massless touching (every band at zero energy there), and a run that
    creeps towards it with shrinking steps would never be stopped.
    """
    if not setup.monitored:
        return None
    x0, k0, _ = split_state(unpack_state(y0, int(model.dim)))
    start = jnp.asarray(model(x0, k0))
    start_scale = jnp.sqrt(jnp.sum(jnp.real(start) ** 2 + jnp.imag(start) ** 2))

    def breakdown(t, y, args, **kwargs):
        gap, eta, scale = _breakdown_diagnostics(model, field, magnetic, setup, t, y)
        closed = gap <= GAP_RTOL * jnp.maximum(scale, start_scale)
        return closed | (eta >= setup.adiabaticity_limit)

    return diffrax.Event(breakdown)


def _saveat(ts: Array | None, t1: Array, backsolve: bool) -> diffrax.SaveAt:
    """Save at t1 (or where an event stops the solve) and at ``ts``, and the final solver state
    (the :class:`MonitorState` of the between-step checks).

    BacksolveAdjoint takes no SubSaveAts: ts and t1 then go in one array (t1 last).
    """
    if backsolve:
        return diffrax.SaveAt(ts=t1[None] if ts is None else jnp.concatenate([ts, t1[None]]))
    subs = [diffrax.SubSaveAt(t1=True)] + ([] if ts is None else [diffrax.SubSaveAt(ts=ts)])
    return diffrax.SaveAt(subs=subs, solver_state=True)


def _jump_watched(setup: Setup) -> tuple[int, ...] | None:
    """The bands whose state must not jump between accepted steps: those of a monitored run."""
    return setup.watched if setup.monitored else None


def _between_steps(solution: diffrax.Solution, setup: Setup):
    """(result, state_jumped, smallest_overlap, non_hermitian, non_hermiticity) of the
    between-step checks (:class:`MonitorState`); a stop by them is reported as
    ``RESULTS.event_occurred``. (result, False, 1, False, 0) when they are off (BacksolveAdjoint).
    """
    if setup.backsolve:
        off = jnp.asarray(False)
        return solution.result, off, jnp.ones(()), off, jnp.zeros(())
    monitor: MonitorState = solution.solver_state
    stopped = solution.result == STOPPED
    result = diffrax.RESULTS.where(stopped, diffrax.RESULTS.event_occurred, solution.result)
    return (
        result,
        stopped & monitor.jumped,
        monitor.overlap,
        stopped & monitor.non_hermitian,
        monitor.non_hermiticity,
    )


def _diffeqsolve(model, field, magnetic, y0: Array, t0, t1, ts, setup: Setup) -> diffrax.Solution:
    """One diffrax solve of the packed state y0 (see :func:`pack_state`) from t0 to t1.

    The solver is watched between accepted steps (:func:`monitored`: the watched bands' state of a
    confined run must not jump, H must stay Hermitian) unless the adjoint is BacksolveAdjoint.
    """
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
            setup.solver if setup.backsolve else monitored(setup.solver, dim, _jump_watched(setup)),
            t0,
            t1,
            None,
            y0,
            args=(model, field) if magnetic is None else (model, field, magnetic),
            saveat=_saveat(ts, t1, setup.backsolve),
            # steps land on the saved times: no dense-output interpolation error in what we return
            stepsize_controller=diffrax.PIDController(rtol=setup.rtol, atol=setup.atol, step_ts=ts),
            max_steps=setup.max_steps,
            adjoint=setup.adjoint,
            event=_breakdown_event(model, field, magnetic, setup, y0),
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
def solve(model, field, magnetic, x0, k0, chi0, t0, t1, ts, setup: Setup) -> Trajectory:
    """The jitted core of ``evolve``: solve from (x0, k0, chi0) at t0 and evaluate the
    observables at the saved times. Failures are flagged in the Trajectory, never raised."""
    y0 = pack_state(join_state(x0, k0, chi0))
    solution = _diffeqsolve(model, field, magnetic, y0, t0, t1, ts, setup)
    t_final, y_final, saved_ts, saved_ys = _final_and_saved(solution, ts, setup.backsolve)
    saved = split_state(unpack_state(saved_ys, int(model.dim)))
    watched_band = setup.band if setup.method == "abelian" else 0
    chis, populations, energy, factor = jax.vmap(
        lambda x, k, chi: _observables(
            model, field, magnetic, setup.method, watched_band, setup.manifold, x, k, chi
        )
    )(*saved)
    result, jumped, overlap, non_hermitian, non_hermiticity = _between_steps(solution, setup)
    if setup.monitored:
        gap_closed = jnp.any(jnp.asarray(solution.event_mask)) | jumped
    else:
        gap_closed = jnp.asarray(False)
    if setup.method == "full":
        gap_at_stop = eta_at_stop = jnp.asarray(jnp.inf)
    else:
        gap_at_stop, eta_at_stop, _ = _breakdown_diagnostics(
            model, field, magnetic, setup, t_final, y_final
        )
    return Trajectory(
        ts=saved_ts,
        x=saved[0],
        k=saved[1],
        chi=chis,
        populations=populations,
        energy=energy,
        phase_space_factor=factor,
        num_steps=solution.stats["num_accepted_steps"],
        result=result,
        gap_closed=gap_closed,
        t_stop=t_final,
        gap_at_stop=gap_at_stop,
        nonadiabaticity_at_stop=eta_at_stop,
        state_jumped=jumped,
        smallest_overlap=overlap,
        non_hermitian=non_hermitian,
        non_hermiticity=non_hermiticity,
    )
