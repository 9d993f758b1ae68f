"""Watching a solve between accepted steps: band-state jumps and Hermiticity (PHYSICS.md section 2).

A diffrax event sees only the state after a step, never the one before, so a confined (Abelian /
non-Abelian) run can step straight over a band touching: the Abelian vector field of a massless
cone is smooth through k = 0, while the watched band's state changes label there (the branch of
the cone that was band 0 continues as band 1). :class:`MonitoredSolver` wraps the user's solver
and compares the watched bands' projector P_a before and after every step,

    overlap = Tr(P_a(lambda_prev) P_a(lambda_next)) / N_a = |U_a(prev)^dagger U_a(next)|_F^2 / N_a,

gauge invariant, 1 for a resolved adiabatic step (1 - overlap ~ (rotation angle)^2 / 4 per band).
Below :data:`JUMP_OVERLAP` = 1/2 (the projector turned by more than 90 degrees on the Bloch sphere in
one accepted step: the step did not resolve the state, the label it follows is not the state
transported) the step ends the solve. It also checks that H is Hermitian at every step's end point
(:data:`HERMITICITY_RTOL`, relative to max|H|), for every method. A failed check returns the failure :data:`STOPPED` for the
step: if the step is accepted the solve stops there, as it would at an event; the reason is kept in
the solver state (:class:`MonitorState`).

Cost per attempted step: one evaluation of H and, for a confined run, one small eigh (the
package's pure-jnp :func:`eigh`), on a stop-gradient copy of the state (no effect on gradients).
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

from .._eigh import eigh
from .._guards import HERMITICITY_RTOL
from .._types import Array, Complex, Float
from ._vector_fields import unpack_state

# A step whose projector overlap Tr(P P') / N_a falls below this ends the solve (see module doc).
JUMP_OVERLAP = 0.5

# The result of a step that failed a check. Not ``event_occurred``: diffrax lets the step-size
# controller's result overwrite an "okay" solver result, and only a failure ends the loop. The
# caller reads the reason from the final MonitorState and reports ``event_occurred``.
STOPPED = diffrax.RESULTS.breakdown


class MonitorState(eqx.Module):
    """The wrapper's part of the solver state, kept (like all solver state) on accepted steps.

    ``states``: (N, N_a) the watched band states at the last accepted point (None when only the
    Hermiticity is watched); ``overlap``: the smallest projector overlap over the accepted steps;
    ``non_hermiticity``: the largest max|H - H^dagger| / max|H| over the accepted points;
    ``jumped`` / ``non_hermitian``: whether an accepted step failed the check (the solve stops).
    """

    inner: object
    states: Complex[Array, "n na"] | None
    overlap: Float[Array, ""]
    non_hermiticity: Float[Array, ""]
    jumped: Array
    non_hermitian: Array


def _max_norm(a: Complex[Array, "n n"]) -> Float[Array, ""]:
    """max_ij max(|Re a_ij|, |Im a_ij|), the kernel's norm for the non-Hermiticity."""
    return jnp.maximum(jnp.max(jnp.abs(jnp.real(a))), jnp.max(jnp.abs(jnp.imag(a))))


class MonitoredSolver(diffrax.AbstractWrappedSolver):
    """``solver``, with the checks of the module docstring after every step.

    ``watched``: the bands of a confined run (None: Hermiticity only, the full-band method);
    ``dim``: the model's dimension d (to unpack the state, see ``pack_state``). The model is the
    first element of the solve's ``args``.
    """

    solver: diffrax.AbstractSolver
    dim: int = eqx.field(static=True)
    watched: tuple[int, ...] | None = eqx.field(static=True)

    @property
    def term_structure(self):
        return self.solver.term_structure

    @property
    def interpolation_cls(self):  # pyright: ignore
        return self.solver.interpolation_cls

    @property
    def term_compatible_contr_kwargs(self):
        return self.solver.term_compatible_contr_kwargs

    @property
    def scan_kind(self):
        """The wrapped Runge-Kutta solver's (see :func:`monitored`); diffrax's adjoint reads it."""
        return getattr(self.solver, "scan_kind", None)

    def order(self, terms):
        return self.solver.order(terms)

    def strong_order(self, terms):
        return self.solver.strong_order(terms)

    def error_order(self, terms):
        return self.solver.error_order(terms)

    def func(self, terms, t0, y0, args):
        return self.solver.func(terms, t0, y0, args)

    def _look(self, y, args):
        """(watched states (N, N_a) or None, non-Hermiticity) at the packed state y (no gradient)."""
        model = args[0]
        x, k = unpack_state(jax.lax.stop_gradient(y), self.dim)[:2]
        h = jnp.asarray(model(x, k))
        h = h.astype(jnp.result_type(h.dtype, 1j))
        scale = jnp.maximum(_max_norm(h), jnp.finfo(jnp.real(h).dtype).tiny)
        non_hermiticity = _max_norm(h - jnp.conj(h.T)) / scale
        if self.watched is None:
            return None, non_hermiticity
        states = eigh(0.5 * (h + jnp.conj(h.T)))[1][:, jnp.array(self.watched)]
        return states, non_hermiticity

    def init(self, terms, t0, t1, y0, args) -> MonitorState:
        states, non_hermiticity = self._look(y0, args)
        return MonitorState(
            self.solver.init(terms, t0, t1, y0, args),
            states,
            jnp.ones((), non_hermiticity.dtype),
            non_hermiticity,
            jnp.asarray(False),
            jnp.asarray(False),
        )

    def step(self, terms, t0, t1, y0, args, solver_state: MonitorState, made_jump):
        y1, y_error, dense_info, inner, result = self.solver.step(
            terms, t0, t1, y0, args, solver_state.inner, made_jump
        )
        states, non_hermiticity = self._look(y1, args)
        if states is None:
            overlap = jnp.ones((), non_hermiticity.dtype)
        else:
            overlap = jnp.sum(jnp.abs(jnp.conj(solver_state.states.T) @ states) ** 2)
            overlap = overlap / len(self.watched)
        jumped = overlap < JUMP_OVERLAP
        non_hermitian = non_hermiticity > HERMITICITY_RTOL
        stop = (result == diffrax.RESULTS.successful) & (jumped | non_hermitian)
        result = diffrax.RESULTS.where(stop, STOPPED, result)
        state = MonitorState(
            inner,
            states,
            jnp.minimum(solver_state.overlap, overlap),
            jnp.maximum(solver_state.non_hermiticity, non_hermiticity),
            jumped,
            non_hermitian,
        )
        return y1, y_error, dense_info, state, result


def monitored(
    solver: diffrax.AbstractSolver, dim: int, watched: tuple[int, ...] | None
) -> MonitoredSolver:
    """``solver`` wrapped in a :class:`MonitoredSolver`.

    A Runge-Kutta solver gets ``scan_kind="bounded"`` first: diffrax's checkpointed adjoint sets
    it on the solver it is given (for forward-mode autodiff), which it cannot do through a wrapper.
    The stage loop's kind changes no number.
    """
    if isinstance(solver, diffrax.AbstractRungeKutta) and solver.scan_kind is None:
        solver = eqx.tree_at(lambda s: s.scan_kind, solver, "bounded", is_leaf=lambda v: v is None)
    return MonitoredSolver(solver, dim, watched)
