"""An explicit Runge-Kutta step with its stages unrolled: the stepper of batched ``evolve`` runs.

diffrax's Runge-Kutta solvers walk their stages in a loop (``eqxi.while_loop``) that writes each
stage into a buffer and forms every stage's combination over the whole buffer. For the wavepacket
equations the state is a few numbers, so under ``vmap`` that bookkeeping costs as much as the
vector field. :class:`UnrolledRungeKutta` takes the same Butcher tableau (the same method, order
and embedded error estimate, each step equal to rounding) and writes the step as straight-line
code: each stage sums only the non-zero coefficients of its row. Measured on the Landau-Zener
batch of ``benchmarks/trajectories.py`` (Dopri8, 2-core CPU): ~1.7x fewer CPU seconds per
member-step, at about twice the compile time (the vector field is traced once per stage), which
is why single runs keep diffrax's loop and batched runs, where the run time dominates, use this.

First-same-as-last tableaus (Dopri8, Tsit5, ...) reuse the last stage, f(t1, y1), as the next
step's first one (kept in the solver state, recomputed after a jump). Dense output is linear
between steps: ``evolve`` steps onto its save times and its events stop at step ends, so no
returned value is interpolated.
"""

from typing import ClassVar

import diffrax
import jax.numpy as jnp
import numpy as np


def combination(weights: np.ndarray, increments: list):
    """sum_i weights_i increments_i over the non-zero weights (0 if none)."""
    return sum(w * k for w, k in zip(weights, increments, strict=True) if w != 0)


def reuses_last_stage(tableau: diffrax.ButcherTableau) -> bool:
    """Whether the last stage is f(t1, y1) (first same as last): c = 1 and its row = b."""
    if not tableau.fsal or len(tableau.a_lower) == 0:
        return False
    b = np.asarray(tableau.b_sol)
    last = np.asarray(tableau.a_lower[-1])
    return bool(np.isclose(tableau.c[-1], 1.0) and np.allclose(last, b[:-1]) and b[-1] == 0)


class TableauSolver(diffrax.AbstractAdaptiveSolver):
    """A solver that writes out the step of ``base``'s Butcher tableau (its order and embedded
    error estimate) on one packed array, with linear dense output between steps. Subclasses
    implement ``step`` (and ``init`` where they keep a state)."""

    base: diffrax.AbstractERK = diffrax.Dopri8()

    term_structure: ClassVar = diffrax.ODETerm
    interpolation_cls: ClassVar = diffrax.LocalLinearInterpolation

    def order(self, terms):
        return self.base.order(terms)

    def error_order(self, terms):
        return self.base.error_order(terms)

    def init(self, terms, t0, t1, y0, args):
        return None

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)


class UnrolledRungeKutta(TableauSolver):
    """``base``'s explicit Runge-Kutta step (tableau, order, error estimate), stages unrolled.

    For a state that is one array (the packed wavepacket state of ``pack_state``).
    """

    def init(self, terms, t0, t1, y0, args):
        return terms.vf(t0, y0, args) if reuses_last_stage(self.base.tableau) else None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        tableau = self.base.tableau
        dt = t1 - t0
        if solver_state is None:
            first = terms.vf(t0, y0, args)
        elif made_jump is False:
            first = solver_state
        else:  # the stored stage belongs to the state before the jump
            first = jnp.where(made_jump, terms.vf(t0, y0, args), solver_state)
        increments = [dt * first]
        last = first
        for node, row in zip(tableau.c, tableau.a_lower, strict=True):
            last = terms.vf(t0 + node * dt, y0 + combination(row, increments), args)
            increments.append(dt * last)
        y1 = y0 + combination(tableau.b_sol, increments)
        y_error = combination(tableau.b_error, increments)
        state = last if solver_state is not None else None
        return y1, y_error, dict(y0=y0, y1=y1), state, diffrax.RESULTS.successful


def unrolled(solver: diffrax.AbstractSolver) -> diffrax.AbstractSolver:
    """``solver`` as an :class:`UnrolledRungeKutta` if it is an explicit Runge-Kutta method with
    an error estimate (every diffrax ERK: Dopri8, Tsit5, ...); any other solver unchanged."""
    if isinstance(solver, diffrax.AbstractERK) and solver.tableau.b_error is not None:
        return UnrolledRungeKutta(solver)
    return solver
