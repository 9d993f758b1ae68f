"""An exponential (interaction-picture) Runge-Kutta solver for the wavepacket equations.

The band state's fast motion i dchi/dt = H(x, k) chi rotates at the band gap, so an explicit
Runge-Kutta step on chi must resolve 1 / gap even where (x, k) and the band populations barely
move. :class:`InteractionPictureSolver` removes it exactly, step by step (a Lawson, or
integrating-factor, Runge-Kutta method). Over a step [t0, t0 + h], with G = H(x0, k0) - <H>_0
frozen at the step's start (<H>_0 = <chi0|H|chi0> / <chi0|chi0>, the vector field's phase
convention, see ``FullBandField``),

    chi(t0 + tau) = U(tau) psi(tau),   U(tau) = exp(-i G tau) = V exp(-i e tau) V^dagger,
    dpsi/dtau = U^dagger(tau) [f_chi(x, k, U psi) + i G U psi],      (x, k) unchanged,

where f = (dx/dt, dk/dt, dchi/dt) is the term's vector field (every method's equations, position
terms and stabilisation included). The base Runge-Kutta tableau (Dopri8 by default) integrates
(x, k, psi) with its embedded error estimate; chi1 = U(h) psi1. The interaction-picture field is
zero when H is constant along the path, so the phase of chi is then exact at any step, and in
general it is of size |dH/dt| tau: the step follows the slow variables, not the gap.

G's eigenvectors V come from the package's small-N :func:`eigh` (no LAPACK inside long scans) on a
stop-gradient copy of the state and of the model's parameters: any frozen G gives a consistent
scheme, so derivatives (forward or reverse) are those of the same Runge-Kutta method applied to
the variational equations, accurate to the tolerance, and never differentiate eigenvectors. The
frames act on the packed state as real (2N, 2N) matrices, U^dagger as U's transpose. The step
rescales chi1 to the norm of chi0 (a projection onto the invariant |chi| = const, of the size of
the local error), so the norm is kept to round-off.
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._eigh import eigh
from .._types import Array, Complex, Float
from ._unrolled import TableauSolver, combination
from ._vector_fields import unpack_state


def _real_form(matrix: Complex[Array, "... n n"]) -> Float[Array, "... 2n 2n"]:
    """The real (2n, 2n) matrix acting on (Re chi, Im chi) as ``matrix`` acts on chi."""
    re, im = jnp.real(matrix), jnp.imag(matrix)
    top = jnp.concatenate([re, -im], axis=-1)
    return jnp.concatenate([top, jnp.concatenate([im, re], axis=-1)], axis=-2)


def _function(vectors: Complex[Array, "n n"], values: Array) -> Complex[Array, "n n"]:
    """V diag(values) V^dagger (n, n)."""
    return jnp.sum(vectors[:, None, :] * (values * jnp.conj(vectors))[None, :, :], axis=-1)


def _frames(vectors: Complex[Array, "n n"], energies, taus) -> Float[Array, "m 2n 2n"]:
    """Real forms of U(tau) = V exp(-i e tau) V^dagger for each tau of ``taus`` (m,)."""
    phases = jnp.exp(-1j * taus[:, None] * energies[None, :])  # (m, n)
    return _real_form(jax.vmap(_function, in_axes=(None, 0))(vectors, phases))


def _times(matrix: Array, vector: Array) -> Array:
    """matrix @ vector as a broadcast sum (XLA's CPU dot kernels are slow for tiny matrices)."""
    return jnp.sum(matrix * vector[None, :], axis=-1)


def _rotated(matrix: Float[Array, "2n 2n"], packed: Float[Array, " s"], dim: int) -> Array:
    """The packed state (x, k, Re chi, Im chi) with chi -> U chi (``matrix``: U's real form)."""
    return jnp.concatenate([packed[: 2 * dim], _times(matrix, packed[2 * dim :])])


def _generator(model, packed: Float[Array, " s"], dim: int):
    """(e, V): eigenpairs of G = H(x, k) - <H> at the packed state, on a stop-gradient copy of
    the state and of the model's parameters (module docstring)."""
    x, k, chi_re, chi_im = unpack_state(jax.lax.stop_gradient(packed), dim)
    chi = chi_re + 1j * chi_im
    parameters, static = eqx.partition(model, eqx.is_inexact_array)
    h = jnp.asarray(eqx.combine(jax.lax.stop_gradient(parameters), static)(x, k))
    h = 0.5 * (h + jnp.conj(h.T))
    norm2 = jnp.sum(jnp.abs(chi) ** 2)
    mean = jnp.real(jnp.sum(jnp.conj(chi) * _times(h, chi))) / jnp.where(norm2 > 0, norm2, 1.0)
    energies, vectors = eigh(h)
    return energies - mean, vectors


def _keep_norm(packed: Float[Array, " s"], reference: Float[Array, " s"], dim: int) -> Array:
    """``packed`` with chi rescaled to the norm of ``reference``'s chi."""
    norm = jnp.sqrt(jnp.sum(packed[2 * dim :] ** 2))
    target = jnp.sqrt(jnp.sum(reference[2 * dim :] ** 2))
    scale = target / jnp.where(norm > 0, norm, 1.0)
    return jnp.concatenate([packed[: 2 * dim], scale * packed[2 * dim :]])


class InteractionPictureSolver(TableauSolver):
    """Lawson (interaction-picture) Runge-Kutta on the packed wavepacket state (module docstring)
    for the full-band and non-Abelian equations of PHYSICS.md section 2 (paper Eqs. 8-10, 34, 42).

    ``base``: the explicit Runge-Kutta method whose tableau, order and embedded error estimate
    are used (default ``diffrax.Dopri8()``: order 8, embedded order 7). Expects the solve's
    ``args`` to start with the model (as :func:`evolve` passes them) and the packed state of
    ``pack_state``. For ``method="full"`` or ``"nonabelian"`` (an Abelian run does not evolve
    chi: its G only adds work). Dense output is linear between steps (``evolve`` steps onto its
    saved times).

    Example: ``evolve(model, None, k0, t1=..., field=E, band=0, solver=InteractionPictureSolver())``.

    Examples:
        >>> import semiclassical_jax as sj
        >>> solver = sj.InteractionPictureSolver()
        >>> type(solver.base).__name__
        'Dopri8'
    """

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del solver_state, made_jump
        dim = int(args[0].dim)
        tableau = self.base.tableau
        dt = t1 - t0
        energies, vectors = _generator(args[0], y0, dim)
        nodes = np.concatenate([[tableau.c1], tableau.c, [1.0]])
        frames = _frames(vectors, energies, jnp.asarray(nodes) * dt)  # U(c dt), last U(dt)
        i_generator = _real_form(1j * _function(vectors, energies))  # i G
        rows = (np.zeros(0),) + tuple(tableau.a_lower)
        increments = []
        for stage, (node, row) in enumerate(zip(nodes[:-1], rows, strict=True)):
            z = y0 + combination(row, increments)  # (x, k, psi) at the stage
            f = terms.vf(t0 + node * dt, _rotated(frames[stage], z, dim), args)
            pulled = _rotated(frames[stage].T, f, dim)  # U^dagger f: the transpose of U's real form
            pulled = pulled.at[2 * dim :].add(_times(i_generator, z[2 * dim :]))
            increments.append(dt * pulled)
        y1 = _keep_norm(
            _rotated(frames[-1], y0 + combination(tableau.b_sol, increments), dim), y0, dim
        )
        y_error = _rotated(frames[-1], combination(tableau.b_error, increments), dim)
        return y1, y_error, dict(y0=y0, y1=y1), None, diffrax.RESULTS.successful
