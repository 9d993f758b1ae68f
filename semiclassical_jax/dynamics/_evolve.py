"""``evolve``: integrate one wavepacket, or a batch of them, with diffrax (PHYSICS.md section 2).

One call is four steps: :func:`check_arguments` (static checks before tracing; it returns the
static :class:`Setup` of the solve), :func:`checked_inputs` (the value checks of every argument,
the same eager and compiled, and chi0, by default an eigenstate), :func:`solve` (``_core.py``, the
jitted core: one diffrax solve, watched between accepted steps, and the observables at the saved
times) and :func:`_guard_failure` (a failed run raises, or is only flagged with ``throw=False``).
A batch (``_batched_evolve.py``) runs the same steps for every member, grouped, chunked and
sharded over devices, and by default only flags failed members.
"""

from collections.abc import Sequence
from typing import Any, Literal

import diffrax
import jax
import numpy as np

from .._guards import HERMITICITY_RTOL, Guards, fail
from .._types import ArrayLike, Complex, Float, PositionLike, RealScalarLike, WavevectorLike
from ..models import AbstractModel
from ._arguments import Setup, check_arguments, check_magnetic, checked_inputs
from ._batch import report_members
from ._batched_evolve import evolve_batch, find_batch
from ._core import Trajectory, solve
from ._fields import FieldSpec
from ._monitor import JUMP_OVERLAP

Method = Literal["full", "nonabelian", "abelian"]


# ---------------------------------------------------------------------------------------------
# reporting


def _guard_failure(trajectory: Trajectory, setup: Setup) -> Trajectory:
    """``trajectory``, or the error of a failed run (``throw=True``).

    Eager: ValueError if H is not Hermitian on the path or the manifold description broke down
    (a state jump, a closed gap, eta over the limit), RuntimeError if the solver stopped early, each with where it stopped. Traced (jit, vmap): the static part of the same message, as
    equinox's run-time error on every leaf of the returned Trajectory.
    """
    guards = Guards()
    guards.add(
        trajectory.non_hermitian,
        f"evolve failed: model(x, k) is not Hermitian on the trajectory (max|H - H^dagger| / "
        f"max|H| > {HERMITICITY_RTOL:g}); check the model, or pass throw=False to flag it",
        detail=lambda: (
            f" (stopped at t = {float(trajectory.t_stop):.6g}: max|H - H^dagger| / max|H| = "
            f"{float(trajectory.non_hermiticity):.3e})"
        ),
    )
    guards.add(
        trajectory.state_jumped,
        f"evolve failed: the state of manifold {setup.watched} jumped between two accepted steps "
        f"(projector overlap Tr(P P') / N_a < {JUMP_OVERLAP}): the {setup.method} run stepped "
        "over a band touching or a diabatic crossing; use method='full', a larger manifold, or "
        "throw=False to flag it",
        detail=lambda: (
            f" (stopped at t = {float(trajectory.t_stop):.6g}: overlap = "
            f"{float(trajectory.smallest_overlap):.3g}, gap = {float(trajectory.gap_at_stop):.3e})"
        ),
    )
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


def _guard_batch_failure(trajectory: Trajectory, setup: Setup) -> Trajectory:
    """``trajectory`` (a batch), or one error for its failed members (``throw=True``).

    Eager: the error of the first failed member (as :func:`_guard_failure` raises it for a single
    run, same type), prefixed with how many members failed and which. Traced: equinox's run-time
    error with the static part of that message.
    """

    def prefix(failed: np.ndarray, index: int) -> str:
        where = np.flatnonzero(failed)
        shown = ", ".join(str(int(i)) for i in where[:10]) + (", ..." if where.size > 10 else "")
        return (
            f"evolve failed for {where.size} of {failed.size} members of the batch (members "
            f"[{shown}]; throw=False, the default for a batch, flags them in Trajectory.success "
            f"instead). Member {index}: "
        )

    def raise_single(index: int) -> None:
        _guard_failure(jax.tree_util.tree_map(lambda leaf: leaf[index], trajectory), setup)

    return report_members(
        ~trajectory.success,
        trajectory,
        "evolve failed for some members of the batch (throw=True); pass throw=False (the "
        "default for a batch) to flag them in Trajectory.success instead",
        prefix,
        raise_single,
    )


# ---------------------------------------------------------------------------------------------
# the public function


def evolve(
    model: AbstractModel,
    x0: PositionLike | None,
    k0: WavevectorLike,
    *,
    t1: RealScalarLike,
    field: FieldSpec,
    magnetic_field: Float[ArrayLike, "..."] | None = None,
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
    throw: bool | None = None,
    batched_model: bool = False,
    chunk_size: int | None = None,
    devices: Sequence[Any] | None = None,
) -> Trajectory:
    """Integrate a wavepacket from (x0, k0, chi0) at t0 to t1 (PHYSICS.md section 2), or a batch
    of them in one call.

    **Arguments:**
    - ``model``: a model H(x, k); ``x0``, ``k0``: (d,) centre in phase space.
    - ``t1``: final time (natural units, hbar / energy). ``field``: a (d,) uniform E, a callable
      E(x, t), or a :class:`ScalarPotential` phi(x) (E = -grad phi). Charge -1: dk/dt = -E - ...
    - ``magnetic_field``: B (PHYSICS.md section 5; None: no field): a scalar B_z in 2D, (3,) in
      3D, or a callable B(x); traced (vmap / grad reach it). "full": the Lorentz force
      q (dx/dt) x B on dk/dt. "abelian" (uniform models): eps~ = eps_n - m_n . B and
      D dx/dt = v~ - q E x Omega - q (v~ . Omega) B, D dk/dt = q E + q v~ x B - q^2 (E . B) Omega,
      D = 1 + B . Omega_n (reported as :attr:`Trajectory.phase_space_factor`). "nonabelian"
      (uniform models): the same with the manifold's moment matrix M and curvature F as
      expectation values in the manifold state, and chi precessing under P (H - M . B) P.
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
      leak of about 50 %), or where the watched bands' state jumps between two accepted steps
      (projector overlap Tr(P P') / N_a < 1/2: a band touching or a diabatic crossing stepped
      over). ``None`` switches the monitor off. Every method also stops where H(x, k) is not
      Hermitian at an accepted step (off, like the monitor, with BacksolveAdjoint).
    - ``throw``: raise on failure (max_steps reached, gap closed, state jump, non-Hermitian H);
      with ``throw=False`` the failure is flagged in :attr:`Trajectory.success` instead (use it
      under vmap: each member is flagged on its own). Default (None): True for a single run,
      False for a batch.

    **A batch** (one call, one compilation, a :class:`Trajectory` with a leading batch axis B on
    every field): give any of ``x0``, ``k0`` as (B, d), ``chi0`` as (B, N), ``t0``, ``t1`` as
    (B,) or a uniform ``field`` as (B, d) (one axis more than a single run: recognised by the
    shape), and/or a batched model with ``batched_model=True`` (every array leaf of ``model``
    carries the leading axis B, e.g. ``jax.vmap(lambda m: MassiveDirac(1.0, m))(masses)``).
    Arguments without the axis are common to all members; ``saveat=n`` gives each member n times
    in its own [t0, t1]. The members are sorted by an estimate of their step counts, duration x
    the spread of the energies chi's phase rotates with at (x0, k0) (similar step counts share a
    chunk: adaptive steps under vmap go in lock step), run ``chunk_size`` at a time under
    ``vmap`` inside ``lax.map`` (memory bounded by the chunk; default 128 members on CPU, 2^16 on
    an accelerator), and dealt out evenly over ``devices`` (default ``jax.devices()``; one device:
    no sharding; several: ``jax.shard_map``, every process gets the whole result, so in a
    multi-process run every process must make the same call). An explicit Runge-Kutta solver's
    stages are unrolled in a batch (the same method, a step equal to rounding, ~1.7x faster per
    step, about twice the compile time). Each member's result is its own and does not depend on
    the chunk or the devices; a single run takes the same steps and agrees within the tolerance.
    A failed member (max_steps, gap closed, state jump, non-Hermitian H on its path) is flagged
    in ``success[i]``; the others run to t1. With ``throw=True`` the whole batch still runs,
    then one error names the failed members and gives the first one's reason. Bad arguments
    raise ``ValueError`` naming the members: before the solve for the batched arrays (finite,
    t1 > t0, |chi0| = 1, saveat in [t0, t1], finite model parameters), after it (with the first
    bad member's single-run message) where a check needs the model (e.g. H not Hermitian at one
    member's start; such a member is not integrated). A plain ``jax.vmap`` of a single-run
    ``evolve`` works too (lock step over the whole batch, one device).

    Every argument is checked (t0, t1 finite with t1 > t0; saveat times finite, ordered, in
    [t0, t1]; x0, k0, chi0 finite, chi0 normalised and in the manifold; E(x0, t0) finite; model
    parameters finite, H finite and Hermitian at (x0, k0); rtol, atol positive), the same checks
    eager and compiled: concrete values raise ``ValueError`` naming the argument and the value;
    traced ones (jit, vmap, grad) raise equinox's run-time error naming the argument before the
    solve starts, with ``throw=False`` too, and under vmap for the whole batch (a bad argument
    is the caller's error, not a flagged run).

    Works under ``jax.jit``, ``jax.vmap`` (over initial conditions, fields, model parameters) and
    ``jax.grad``. Eager calls raise ``ValueError`` / ``RuntimeError`` naming the problem.

    Examples:
        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import models
        >>> model = models.MassiveDirac(1.0, 0.5)
        >>> # the lower band swept through the gap, kx: -1 -> 1 (dk/dt = q E = 0.05)
        >>> run = sj.evolve(
        ...     model, jnp.zeros(2), jnp.array([-1.0, 0.0]), t1=40.0, field=[-0.05, 0.0],
        ...     method="abelian", band=0,
        ... )
        >>> # anomalous displacement y = int Omega dkx = 1 / (Delta sqrt(Delta^2 + v^2)) = 1.7889
        >>> print(bool(run.success), np.round(run.k[-1], 6) + 0.0, np.round(run.x[-1], 4) + 0.0)
        True [1. 0.] [0.     1.7889]
    """
    options = dict(
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
    values = dict(x0=x0, k0=k0, chi0=chi0, t0=t0, t1=t1, field=field)
    batch = find_batch(model, values, batched_model)
    if batch is not None:
        trajectory, setup = evolve_batch(
            batch, chunk_size, devices, saveat=saveat, magnetic_field=magnetic_field, **options
        )
        return _guard_batch_failure(trajectory, setup) if throw else trajectory
    if chunk_size is not None or devices is not None:
        fail(
            "chunk_size and devices apply to a batch: x0, k0, chi0, t0, t1 or field with a "
            "leading batch axis, or batched_model=True"
        )
    setup, x0, k0, field, t0, t1, ts = check_arguments(
        model, x0, k0, field=field, t0=t0, t1=t1, saveat=saveat, chi0=chi0, **options
    )
    magnetic = check_magnetic(magnetic_field, model)
    x0, k0, chi0, t0, t1, ts = checked_inputs(model, field, x0, k0, chi0, t0, t1, ts, setup)
    trajectory = solve(model, field, magnetic, x0, k0, chi0, t0, t1, ts, setup)
    return _guard_failure(trajectory, setup) if throw or throw is None else trajectory
