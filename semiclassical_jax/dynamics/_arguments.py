"""The checks of ``evolve``'s arguments: the same checks eager and compiled (PHYSICS.md section 2).

Two stages. :func:`check_arguments` runs the static checks in Python (method, bands, shapes,
tolerances) and returns the static :class:`Setup` of the solve. :func:`checked_inputs` runs the
value checks through one :class:`Guards`: every check whose values are concrete raises
``ValueError`` at once, naming the argument and the value; the traced ones (under ``jax.jit`` /
``jax.vmap`` / ``jax.grad``) become one equinox run-time error that names the argument, attached to
the inputs of the solve, so it is raised before the solve starts (under ``jax.vmap``: if any member
is bad, for the whole batch - a bad argument is the caller's error, not a flagged run).
"""

from collections.abc import Sequence
from typing import NamedTuple

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
    magnetic_field,
    namespace,
    one_of,
    point_value_checks,
    positive,
    remote_bands,
)
from .._pytree import leaf_name
from .._types import Array, Complex
from ..geometry._kernel import geometry_with_diagnostics
from ._fields import AbstractField, as_field

METHODS = ("full", "nonabelian", "abelian")

# |chi0| must be 1, and chi0 inside the manifold, to this absolute tolerance.
CHI0_ATOL = 1e-8

# The kernel at the initial point, compiled once per model structure (eager op-by-op is slow).
_initial_geometry = eqx.filter_jit(geometry_with_diagnostics)


class Setup(NamedTuple):
    """The static part of one ``evolve`` call (a static argument of the jitted solve).

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
# static checks


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


def _times(t0, t1, saveat: object) -> tuple[Array, Array, Array | None]:
    """(t0, t1, ts) as float arrays; ts (T,) the save times, None to save at t1 only.

    Shapes only: the values (finite, ordered) are checked by :func:`checked_inputs`.
    """
    t0 = jnp.asarray(t0, dtype=float)
    t1 = jnp.asarray(t1, dtype=float)
    for name, value in (("t0", t0), ("t1", t1)):
        if value.shape != ():
            fail(f"{name} must be a scalar, got shape {value.shape}")
    if saveat is None:
        return t0, t1, None
    if isinstance(saveat, (int, np.integer)) and not isinstance(saveat, bool):
        return t0, t1, jnp.linspace(t0, t1, integer(saveat, "saveat (a count)"))
    ts = jnp.asarray(saveat, dtype=float)
    if ts.ndim != 1 or ts.shape[0] < 1:
        fail(f"saveat must be an int or a 1-D array of times, got shape {ts.shape}")
    return t0, t1, ts


def check_arguments(model, x0, k0, *, field, t0, t1, saveat, chi0, method, band, manifold, **solve):
    """The static checks of ``evolve`` (its arguments, same names), before any tracing.

    ``solve`` holds solver, rtol, atol, max_steps, adjoint and adiabaticity_limit. Returns the
    :class:`Setup`, (x0, k0) as (d,) float arrays, the field as an :class:`AbstractField`, t0 and
    t1 as float scalars and the save times ts (T,) or None.
    """
    check_model(model)
    one_of(method, "method", METHODS)
    x0, k0 = check_point(model, x0, k0)
    check_output_shape(model, x0, k0)
    band, manifold = _check_bands(method, band, manifold, chi0, int(model.n_bands))
    field = as_field(field, int(model.dim))
    t0, t1, ts = _times(t0, t1, saveat)
    limit = solve["adiabaticity_limit"]
    setup = Setup(
        method=method,
        band=band,
        manifold=manifold,
        solver=diffrax.Dopri8() if solve["solver"] is None else solve["solver"],
        rtol=positive(solve["rtol"], "rtol"),
        atol=positive(solve["atol"], "atol"),
        max_steps=integer(solve["max_steps"], "max_steps"),
        adjoint=diffrax.RecursiveCheckpointAdjoint()
        if solve["adjoint"] is None
        else solve["adjoint"],
        adiabaticity_limit=None if limit is None else positive(limit, "adiabaticity_limit"),
    )
    return setup, x0, k0, field, t0, t1, ts


def check_magnetic(value, model):
    """The checked ``magnetic_field`` of ``evolve`` ((c,) components, a callable or None);
    concrete components must be finite."""
    magnetic = magnetic_field(value, int(model.dim))
    if magnetic is not None and not callable(magnetic) and is_concrete(magnetic):
        if not bool(jnp.all(jnp.isfinite(magnetic))):
            fail(f"magnetic_field must be finite, got {magnetic}")
    return magnetic


# ---------------------------------------------------------------------------------------------
# value checks


def _guard_times(guards: Guards, t0: Array, t1: Array, ts: Array | None) -> None:
    """t0, t1 finite with t1 > t0; ts finite, non-decreasing and inside [t0, t1]."""
    guards.finite(t0, "t0")
    guards.finite(t1, "t1")
    guards.add(
        ~(t1 > t0),
        "t1 must be later than t0",
        detail=lambda: f", got t0={float(t0)}, t1={float(t1)}",
    )
    if ts is None:
        return
    guards.finite(ts, "saveat times")
    xp = namespace(ts, t0, t1)  # numpy when concrete: no XLA program per number of save times
    ts_, t0_, t1_ = (xp.asarray(v) for v in (ts, t0, t1))
    disordered = xp.any(xp.diff(ts_) < 0) | (ts_[0] < t0_) | (ts_[-1] > t1_)
    guards.add(
        disordered,
        "saveat times must be non-decreasing and lie in [t0, t1]",
        got=ts,
        detail=lambda: f" with t0={float(t0)}, t1={float(t1)}",
    )


def _guard_model(guards: Guards, model, x0: Array, k0: Array):
    """Finite parameters, and H finite and Hermitian at (x0, k0); returns the geometry there.

    Concrete parameters are checked (and named) at once; traced ones are guarded leaf by leaf.
    """
    if is_concrete(model):
        check_finite_parameters(model)
    leaves = jax.tree_util.tree_flatten_with_path(eqx.filter(model, eqx.is_inexact_array))[0]
    for path, leaf in leaves:
        if not is_concrete(leaf):  # the text of check_finite_parameters, eager
            guards.add(
                ~jnp.all(jnp.isfinite(leaf)), f"model parameter '{leaf_name(path)}' is not finite"
            )
    geometry, non_hermiticity, finite = _initial_geometry(model, x0, k0)
    where = " at the initial point (x0, k0)"
    point_value_checks(guards, finite, non_hermiticity, (x0, k0), ("x0", "k0"), where)
    return geometry


def _guard_chi0(guards: Guards, chi0, geometry, setup: Setup) -> Complex[Array, " n"]:
    """chi0 (N,) complex, orbital basis: the given one, guarded, or the eigenstate of ``band``
    (else of the lowest band of ``manifold``) at (x0, k0).

    chi0 must be finite, normalised and, for the confined methods, in the watched bands:
    |(1 - P) chi0| <= CHI0_ATOL with P the projector on them at (x0, k0).
    """
    if chi0 is None:
        first = setup.band if setup.band is not None else setup.manifold[0]
        return geometry.states[:, first]
    n_bands = geometry.energies.shape[0]
    chi0 = jnp.asarray(chi0)
    if chi0.shape != (n_bands,):
        fail(f"chi0 must have shape ({n_bands},), got {chi0.shape}")
    chi0 = chi0.astype(jnp.result_type(chi0.dtype, 1j))
    guards.finite(chi0, "chi0")
    norm = jnp.linalg.norm(chi0)
    guards.add(
        ~(jnp.abs(norm - 1.0) <= CHI0_ATOL),
        f"chi0 must be normalised (to {CHI0_ATOL:g})",
        detail=lambda: f": |chi0| = {float(norm):.12g}",
    )
    if setup.method != "full":
        ua = geometry.states[:, jnp.array(setup.watched)]
        leak = jnp.linalg.norm(chi0 - ua @ (jnp.conj(ua.T) @ chi0))
        guards.add(
            leak > CHI0_ATOL,
            f"chi0 lies outside the manifold {setup.watched}",
            detail=lambda: f": |(1 - P) chi0| = {float(leak):.3e}",
        )
    return chi0


def input_checks(
    model, field: AbstractField, x0: Array, k0: Array, chi0, t0: Array, t1: Array, ts, setup: Setup
) -> tuple[Guards, Complex[Array, " n"]]:
    """(the :class:`Guards` of the value checks of :func:`checked_inputs`, chi0).

    Concrete failures raise ValueError now; the traced checks are recorded in the guards, not yet
    attached: chi0 is the given one, or the default eigenstate when None.
    """
    guards = Guards()
    _guard_times(guards, t0, t1, ts)
    guards.finite(x0, "x0")
    guards.finite(k0, "k0")
    guards.finite(field.electric_field(x0, t0), "field E(x0, t0)")
    guards.finite(field.potential(x0), "field potential phi(x0)")
    geometry = _guard_model(guards, model, x0, k0)
    return guards, _guard_chi0(guards, chi0, geometry, setup)


def checked_inputs(
    model, field: AbstractField, x0: Array, k0: Array, chi0, t0: Array, t1: Array, ts, setup: Setup
):
    """(x0, k0, chi0, t0, t1, ts) after the value checks of every argument of ``evolve``.

    Checked: t0, t1 (finite, t1 > t0), ts (finite, ordered, in [t0, t1]), x0, k0 (finite), the
    field at (x0, t0) (E and phi finite), the model (finite parameters; H finite and Hermitian at
    (x0, k0)) and chi0 (see :func:`_guard_chi0`; the default eigenstate when None). Concrete
    failures raise ValueError now; traced ones are attached to the returned inputs (one equinox
    run-time error naming the argument), so the solve cannot start before they are evaluated.
    """
    guards, chi0 = input_checks(model, field, x0, k0, chi0, t0, t1, ts, setup)
    x0, k0, chi0, t0, t1 = guards((x0, k0, chi0, t0, t1))
    return x0, k0, chi0, t0, t1, ts
