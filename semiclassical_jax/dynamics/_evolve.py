"""``evolve``: integrate one wavepacket (vmap it for many) with diffrax."""

import warnings
from typing import Any, Literal

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._guards import (
    check_finite_parameters,
    check_manifold,
    check_model,
    check_output_shape,
    check_point,
    is_concrete,
    remote_bands,
)
from .._types import Array, Complex, Float
from ..geometry._kernel import GAP_RTOL, band_geometry_unchecked
from ._fields import AbstractField, as_field
from ._vector_fields import (
    join_state,
    nonadiabaticity,
    pack_state,
    split_state,
    unpack_state,
    vector_field,
)

Method = Literal["full", "nonabelian", "abelian"]


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


def _observables(model, field: AbstractField, method, band, x, k, chi):
    geometry = band_geometry_unchecked(model, x, k)
    if method == "abelian":
        chi = geometry.states[:, band]
    overlaps = jnp.conj(geometry.states.T) @ chi
    populations = jnp.abs(overlaps) ** 2
    energy = jnp.sum(geometry.energies * populations) - field.potential(x)
    return chi, populations, energy


def _breakdown_diagnostics(model, field, method, band, manifold, t, y):
    """(gap to the remote bands, non-adiabaticity eta, spectral scale) at one state."""
    watched = manifold if method == "nonabelian" else (band,)
    x, k, chi = split_state(unpack_state(y, int(model.dim)))
    geometry = band_geometry_unchecked(model, x, k)
    dlambda = vector_field(method, band, manifold).phase_space_velocity(
        geometry, chi, field.electric_field(x, t)
    )
    scale = jnp.max(jnp.abs(geometry.energies))
    return geometry.manifold_gap(watched), nonadiabaticity(geometry, watched, dlambda), scale


@eqx.filter_jit
def _solve(model, field, x0, k0, chi0, t0, t1, ts, config):
    method, band, manifold, solver, rtol, atol, max_steps, adjoint, adiabaticity_limit = config
    dim = int(model.dim)
    field_function = vector_field(method, band, manifold)

    def packed_field(t, y, args):  # the solver integrates one packed array (see pack_state)
        return pack_state(field_function(t, unpack_state(y, dim), args))

    term = diffrax.ODETerm(packed_field)
    # BacksolveAdjoint (the memory-lean adjoint) takes neither SubSaveAts nor events: save ts and
    # t1 in one array and switch the breakdown monitor off.
    backsolve = isinstance(adjoint, diffrax.BacksolveAdjoint)
    if backsolve:
        saveat = diffrax.SaveAt(ts=t1[None] if ts is None else jnp.concatenate([ts, t1[None]]))
    else:
        subs = [diffrax.SubSaveAt(t1=True)] + ([] if ts is None else [diffrax.SubSaveAt(ts=ts)])
        saveat = diffrax.SaveAt(subs=subs)
    event = None
    if adiabaticity_limit is not None and method != "full" and not backsolve:

        def breakdown(t, y, args, **kwargs):
            gap, eta, scale = _breakdown_diagnostics(model, field, method, band, manifold, t, y)
            return (gap <= GAP_RTOL * scale) | (eta >= adiabaticity_limit)

        event = diffrax.Event(breakdown)
    with warnings.catch_warnings():
        # The state is real (chi split into Re, Im); complex leaves are only model parameters
        # in args (tight-binding hoppings), which diffrax's complex-dtype warning also counts.
        warnings.filterwarnings("ignore", message="Complex dtype support in Diffrax")
        solution = diffrax.diffeqsolve(
            term,
            solver,
            t0,
            t1,
            None,
            pack_state(join_state(x0, k0, chi0)),
            args=(model, field),
            saveat=saveat,
            # steps land on the saved times: no dense-output interpolation error in what we return
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol, step_ts=ts),
            max_steps=max_steps,
            adjoint=adjoint,
            event=event,
            throw=False,
        )

    # final: the state at t1, or where an event stopped the solve; saved: at the requested times
    if backsolve:
        last = slice(-1, None)
        final_ts, final_ys = (
            solution.ts[last],
            jax.tree_util.tree_map(lambda leaf: leaf[last], solution.ys),
        )
        keep = last if ts is None else slice(0, -1)
        saved_ts, saved_ys = (
            solution.ts[keep],
            jax.tree_util.tree_map(lambda leaf: leaf[keep], solution.ys),
        )
    else:
        final_ts, final_ys = solution.ts[0], solution.ys[0]
        saved_ts, saved_ys = (
            (final_ts, final_ys) if ts is None else (solution.ts[1], solution.ys[1])
        )
    saved = split_state(unpack_state(saved_ys, dim))
    watched_band = band if method == "abelian" else 0
    chis, populations, energy = jax.vmap(
        lambda x, k, chi: _observables(model, field, method, watched_band, x, k, chi)
    )(*saved)
    gap_closed = jnp.asarray(False) if event is None else jnp.any(jnp.asarray(solution.event_mask))
    if method == "full":
        gap_at_stop = eta_at_stop = jnp.asarray(jnp.inf)
    else:
        last = jax.tree_util.tree_map(lambda leaf: leaf[-1], final_ys)
        gap_at_stop, eta_at_stop, _ = _breakdown_diagnostics(
            model, field, method, band, manifold, final_ts[-1], last
        )
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
        t_stop=final_ts[-1],
        gap_at_stop=gap_at_stop,
        nonadiabaticity_at_stop=eta_at_stop,
    )


def _default_state(model, x0, k0, band, manifold) -> Array:
    geometry = band_geometry_unchecked(model, x0, k0)
    first = band if band is not None else manifold[0]
    return geometry.states[:, first]


def evolve(
    model: Any,
    x0: Any,
    k0: Any,
    *,
    t1: float,
    field: Any,
    method: Method = "full",
    band: int | None = None,
    manifold: Any = None,
    chi0: Any = None,
    saveat: Any = None,
    solver: diffrax.AbstractSolver | None = None,
    rtol: float = 1e-10,
    atol: float = 1e-10,
    max_steps: int = 2**20,
    t0: float = 0.0,
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
    check_model(model)
    if method not in ("full", "nonabelian", "abelian"):
        raise ValueError(f"method must be 'full', 'nonabelian' or 'abelian', got {method!r}")
    n_bands, dim = int(model.n_bands), int(model.dim)
    x0, k0 = check_point(model, x0, k0)
    check_output_shape(model, x0, k0)
    concrete = is_concrete(model, x0, k0)
    if concrete:
        check_finite_parameters(model)
    if band is not None:
        if (
            isinstance(band, bool)
            or not isinstance(band, (int, np.integer))
            or not 0 <= band < n_bands
        ):
            raise ValueError(f"band must be an integer in [0, {n_bands}), got {band!r}")
        band = int(band)
    if manifold is not None:
        manifold = check_manifold(manifold, n_bands)
    if method == "abelian":
        if band is None and manifold is not None and len(manifold) == 1:
            band = manifold[0]
        if band is None:
            raise ValueError("method='abelian' needs band= (the band the wavepacket lives in)")
        remote_bands((band,), n_bands, name="band")
    if method == "nonabelian":
        if manifold is None and band is not None:
            manifold = (band,)
        if manifold is None:
            raise ValueError("method='nonabelian' needs manifold= (a sequence of band indices)")
        remote_bands(manifold, n_bands)
    if method == "full" and chi0 is None and band is None and manifold is None:
        raise ValueError("method='full' needs chi0=, band= or manifold= to set the initial state")
    watched = (
        (band,) if method == "abelian" else manifold
    )  # the bands the wavepacket is confined to
    field = as_field(field, dim)
    t0 = jnp.asarray(t0, dtype=float)
    t1 = jnp.asarray(t1, dtype=float)
    if concrete and is_concrete(t0, t1) and not float(t1) > float(t0):
        raise ValueError(f"t1 must be later than t0, got t0={float(t0)}, t1={float(t1)}")
    ts = None
    if saveat is not None:
        if isinstance(saveat, (int, np.integer)) and not isinstance(saveat, bool):
            if saveat < 1:
                raise ValueError(f"saveat as a count must be >= 1, got {saveat}")
            ts = jnp.linspace(t0, t1, int(saveat))
        else:
            ts = jnp.asarray(saveat, dtype=float)
            if ts.ndim != 1 or ts.shape[0] < 1:
                raise ValueError(
                    f"saveat must be an int or a 1-D array of times, got shape {ts.shape}"
                )
            if is_concrete(ts, t0, t1) and (
                np.any(np.diff(np.asarray(ts)) < 0) or ts[0] < t0 or ts[-1] > t1
            ):
                raise ValueError("saveat times must be non-decreasing and lie in [t0, t1]")

    # initial band state
    if chi0 is None:
        chi0 = _default_state(model, x0, k0, band, manifold)
    else:
        chi0 = jnp.asarray(chi0)
        if chi0.shape != (n_bands,):
            raise ValueError(f"chi0 must have shape ({n_bands},), got {chi0.shape}")
        chi0 = chi0.astype(jnp.result_type(chi0.dtype, 1j))
        if is_concrete(chi0, model, x0, k0):
            norm = float(jnp.linalg.norm(chi0))
            if abs(norm - 1.0) > 1e-8:
                raise ValueError(f"chi0 must be normalised: |chi0| = {norm:.12g}")
            if method != "full":
                geometry = band_geometry_unchecked(model, x0, k0)
                ua = geometry.states[:, jnp.array(watched)]
                leak = float(jnp.linalg.norm(chi0 - ua @ (jnp.conj(ua.T) @ chi0)))
                if leak > 1e-8:
                    raise ValueError(
                        f"chi0 lies outside the manifold {watched}: |(1 - P) chi0| = {leak:.3e}"
                    )

    if solver is None:
        solver = diffrax.Dopri8()
    if adjoint is None:
        adjoint = diffrax.RecursiveCheckpointAdjoint()
    config = (
        method,
        band,
        manifold,
        solver,
        float(rtol),
        float(atol),
        int(max_steps),
        adjoint,
        None if adiabaticity_limit is None else float(adiabaticity_limit),
    )
    trajectory = _solve(model, field, x0, k0, chi0, t0, t1, ts, config)

    if not throw:
        return trajectory
    if is_concrete(trajectory):
        if bool(trajectory.gap_closed):
            raise ValueError(
                f"evolve: the gap of manifold {watched} to the remote bands closed (or became too small "
                f"for the {method} description) at t = {float(trajectory.t_stop):.6g}: gap = "
                f"{float(trajectory.gap_at_stop):.3e}, non-adiabaticity eta = "
                f"{float(trajectory.nonadiabaticity_at_stop):.3g} (limit {adiabaticity_limit}); "
                "use method='full' or a larger manifold"
            )
        if not bool(trajectory.result == diffrax.RESULTS.successful):
            raise RuntimeError(
                f"evolve: the solver stopped at t = {float(trajectory.t_stop):.6g} before t1 "
                f"({trajectory.result}): raise max_steps (now {max_steps}) or loosen rtol/atol"
            )
        return trajectory
    return eqx.error_if(
        trajectory,
        ~trajectory.success,
        "evolve failed (max_steps reached, or the manifold's gap closed / adiabaticity broke down); "
        "pass throw=False to get a flagged Trajectory",
    )
