"""Derivatives across degenerate bands: first-order degenerate perturbation theory, in JAX's terms.

At an exact degeneracy eps_n = eps_m the eigensolver's basis inside the degenerate subspace is
arbitrary, and when a perturbation dH splits the degeneracy no JVP rule for (eps, U) alone can give
the right derivative of a gauge-invariant output in that basis: the energies of the split bands move
by the eigenvalues of the block P dH P, whose off-diagonal elements a vector of energy tangents
cannot carry (a rotation inside the block is invisible to gauge-invariant outputs, so the state
tangents cannot carry them either). The two functions here carry them instead:

* :func:`degenerate_splitting` is zero at the point; its derivative is the full block
  dE = P dH' P (dH' = U^dagger dH U) on every pair of degenerate bands, minus the diagonal already
  carried by d eps. So diag(eps) + S is the band-basis Hamiltonian U^dagger H U with the tangent
  that degenerate perturbation theory gives it (and that U^dagger H U has under the eigensolver's
  JVP, which leaves the states fixed inside degenerate blocks).
* :func:`divide_by_gaps` forms X_nl = B_nl / (eps_n - eps_l), the quotient behind every inter-band
  quantity (connections, Berry curvature, dP, the non-Abelian curvature). X solves the Sylvester
  equation E_rows X - X E_cols = B, so its derivative is
      dX_nl = (dB - dE_rows X + X dE_cols)_nl / (eps_n - eps_l),   dE = diag(d eps) + dS,
  which is gauge covariant inside degenerate blocks. Without dS this is the ordinary derivative.

Outputs that depend on a degenerate set only through its projector (traces over it, or quantities
of a manifold that contains the whole set) then have the exact derivative in any basis, also for
perturbations that split the degeneracy (tests/test_gradients.py, Kane-Mele mass and Rashba).
Quotients between two bands of one degenerate set are set to zero (their limit depends on the
direction of the perturbation; traces over the set do not see them).
"""

import jax
import jax.numpy as jnp

from ._eigh import degeneracy_tolerance, safe_inverse
from ._linalg import matmul_small
from ._types import Array, Complex, Float


def _degenerate_pairs(energies: Float[Array, " n"]) -> Array:
    """[n, m] -> True where |eps_n - eps_m| is within the degeneracy tolerance (diagonal included)."""
    delta = energies[None, :] - energies[:, None]
    return jnp.abs(delta) <= degeneracy_tolerance(energies)


@jax.custom_jvp
def degenerate_splitting(
    energies: Float[Array, " n"], states: Complex[Array, "n n"], h: Complex[Array, "n n"]
) -> Complex[Array, "n n"]:
    """S = 0 at the point; dS = P dH' P on degenerate pairs - diag(d eps) (module docstring).

    ``energies``, ``states``: the eigensystem of the Hermitian ``h``; only the tangent of ``h``
    (and of ``energies``, to avoid counting the diagonal twice) enters dS.
    """
    del energies, h
    # 0 * states, not zeros_like: an output that does not depend on the inputs is left unbatched by
    # vmap while its tangent is batched, which custom_jvp's batching rule does not reconcile.
    return 0.0 * states


@degenerate_splitting.defjvp
def _degenerate_splitting_jvp(primals, tangents):
    energies, states, h = primals
    d_energies, _, dh = tangents
    dh = 0.5 * (dh + jnp.conj(dh.T))
    dh_band = matmul_small(matmul_small(jnp.conj(states.T), dh), states)
    block = jnp.where(_degenerate_pairs(energies), dh_band, 0.0)
    return 0.0 * states, block - jnp.diag(d_energies).astype(block.dtype)


def divide_by_gaps(
    numerator: Complex[Array, "... r c"],
    row_energies: Float[Array, " r"],
    column_energies: Float[Array, " c"],
    row_splitting: Complex[Array, "r r"] | None,
    column_splitting: Complex[Array, "c c"] | None,
    tolerance: Float[Array, ""] | None = None,
) -> Complex[Array, "... r c"]:
    """X_nl = B_nl / (eps_n - eps_l) with the degeneracy-covariant derivative (module docstring).

    ``row_splitting`` / ``column_splitting``: :func:`degenerate_splitting` restricted to the row
    and column bands (``None``: no degenerate-block correction). ``tolerance``: quotients with
    |eps_n - eps_l| <= tolerance are zero (degenerate pairs); ``None`` divides unconditionally (row
    and column bands known to be separated by a gap).
    """
    rows, columns = row_energies.shape[0], column_energies.shape[0]
    if row_splitting is None:
        row_splitting = jnp.zeros((rows, rows), numerator.dtype)
    if column_splitting is None:
        column_splitting = jnp.zeros((columns, columns), numerator.dtype)
    if tolerance is None:
        tolerance = jnp.zeros((), row_energies.dtype)
    return _divide_by_gaps(
        numerator,
        row_energies,
        column_energies,
        row_splitting,
        column_splitting,
        jax.lax.stop_gradient(tolerance),
    )


def _inverse_gaps(row_energies: Array, column_energies: Array, tolerance: Array) -> Array:
    return safe_inverse(row_energies[:, None] - column_energies[None, :], tolerance)


@jax.custom_jvp
def _divide_by_gaps(
    numerator, row_energies, column_energies, row_splitting, column_splitting, tolerance
):
    del row_splitting, column_splitting
    return numerator * _inverse_gaps(row_energies, column_energies, tolerance)


@_divide_by_gaps.defjvp
def _divide_by_gaps_jvp(primals, tangents):
    numerator, row_energies, column_energies, row_splitting, column_splitting, tolerance = primals
    d_numerator, d_rows, d_columns, d_row_splitting, d_column_splitting, _ = tangents
    inverse = _inverse_gaps(row_energies, column_energies, tolerance)
    quotient = numerator * inverse
    # dE_rows X - X dE_cols with dE = diag(d eps) + dS
    shift = d_rows[:, None] * quotient - quotient * d_columns[None, :]
    shift = shift + matmul_small(d_row_splitting, quotient)
    shift = shift - matmul_small(quotient, d_column_splitting)
    return quotient, (d_numerator - shift) * inverse


def weighted_trace(
    weights: Float[Array, "L n"],
    slopes: Float[Array, "L n"],
    splitting: Complex[Array, "n n"] | None,
    matrix: Complex[Array, "... n n"],
) -> Float[Array, "L ..."]:
    """sum_n w_l(eps_n) M_nn (M Hermitian in n, m) at each of L levels (e.g. occupation-weighted
    band sums at L Fermi levels), sharing one ``matrix``.

    ``slopes`` = w_l'(eps_n). The added term Re sum_nm w_l'(eps_n) S_nm M_mn is zero at the point;
    its derivative, w' Tr(dE M) inside each degenerate block, is what the split energies contribute
    (the diagonal d eps_n M_nn alone depends on the basis inside the block). The per-band vectors
    Re M_nn and Re (S M)_nn are formed once and contracted with the (L, N) weights: O(L N) per
    entry of ``matrix``'s leading axes, not O(L N^2).
    """
    total = jnp.einsum("ln,...n->l...", weights, jnp.real(jnp.einsum("...nn->...n", matrix)))
    if splitting is not None:
        mixed = jnp.real(jnp.einsum("nm,...mn->...n", splitting, matrix))
        total = total + jnp.einsum("ln,...n->l...", slopes, mixed)
    return total
