"""Hermitian eigensolver for the small matrices of band theory.

``eigh(h)`` returns ascending eigenvalues and the eigenvectors as columns, like
``jnp.linalg.eigh``, with two differences that matter here:

* N = 2 uses the closed form of H = d0 + d.sigma in pure jnp. It is fast, vectorises, and
  avoids the LAPACK custom call, whose batched CPU form can deadlock when two such calls run
  concurrently inside a long ``lax.scan`` / ``lax.map`` (jaxlib 0.10.2, see the developers'
  guide).
* N > 2 calls LAPACK (cuSOLVER on GPU) through a custom JVP that drops the terms between
  (numerically) degenerate eigenvalues. JAX's own rule divides by eps_m - eps_n and returns
  inf/NaN there; ours stays finite. It is exact for outputs that depend on a degenerate
  subspace only through its projector (e.g. Tr(P O), the non-Abelian geometry of a manifold that
  contains the whole subspace) and for perturbations that keep the degeneracy. When a
  perturbation splits a degeneracy, an output computed band by band inside the subspace can pick
  up a small gauge-dependent error: measured 4e-9 (exact value 0) for d Tr F / d rashba of the
  Kane-Mele lower manifold at rashba = 0, while d / d mass matches finite differences to 1e-10.
  A fully degeneracy-covariant rule (degenerate perturbation theory in the JVP) is future work.

Derivative rule (first-order perturbation theory, dH' = U^dagger dH U):
    d eps_n = Re dH'_nn,   dU = U (G o dH'),   G_mn = 1/(eps_n - eps_m) for |eps_n - eps_m| > tol, else 0.
"""

import jax
import jax.numpy as jnp

from ._types import Array, Complex, Float

# Eigenvalues closer than this (relative to the spectral scale) count as degenerate.
DEGENERACY_RTOL = 1e-10


def degeneracy_tolerance(energies: Float[Array, "... n"]) -> Float[Array, "..."]:
    """Absolute splitting below which two eigenvalues are treated as degenerate."""
    scale = jnp.max(jnp.abs(energies), axis=-1)
    return DEGENERACY_RTOL * jnp.maximum(scale, jnp.finfo(energies.dtype).tiny)


def _safe_inverse(delta: Array, tol: Array) -> Array:
    """1/delta where |delta| > tol, 0 elsewhere; finite gradients everywhere (double where)."""
    ok = jnp.abs(delta) > tol
    return jnp.where(ok, 1.0 / jnp.where(ok, delta, 1.0), 0.0)


def _eigh_2x2(h: Complex[Array, "2 2"]) -> tuple[Float[Array, "2"], Complex[Array, "2 2"]]:
    """Closed form for H = d0 + dx sx + dy sy + dz sz."""
    d0 = 0.5 * jnp.real(h[0, 0] + h[1, 1])
    dz = 0.5 * jnp.real(h[0, 0] - h[1, 1])
    b = 0.5 * (h[0, 1] + jnp.conj(h[1, 0]))  # = dx - i dy (Hermitian part)
    dxy2 = jnp.real(b) ** 2 + jnp.imag(b) ** 2
    r2 = dxy2 + dz**2
    tiny = jnp.finfo(r2.dtype).tiny
    positive = r2 > tiny
    r = jnp.where(positive, jnp.sqrt(jnp.where(positive, r2, 1.0)), 0.0)
    energies = jnp.stack([d0 - r, d0 + r])

    # Upper state. Two gauge patches, each regular where it is used:
    # dz >= 0: (r + dz, conj(b)) / sqrt(2 r (r + dz));  dz < 0: (b, r - dz) / sqrt(2 r (r - dz)).
    north = dz >= 0
    big = r + jnp.abs(dz)  # >= r > 0 when not degenerate
    norm2 = 2.0 * r * big
    ok = positive & (norm2 > tiny)
    inv_norm = jnp.where(ok, 1.0 / jnp.sqrt(jnp.where(ok, norm2, 1.0)), 0.0)
    top = jnp.where(north, big + 0j, b) * inv_norm
    bottom = jnp.where(north, jnp.conj(b), big + 0j) * inv_norm
    # Degenerate (d = 0): any basis is an eigenbasis; take the identity.
    top = jnp.where(ok, top, 0.0 + 0j)
    bottom = jnp.where(ok, bottom, 1.0 + 0j)
    upper = jnp.stack([top, bottom])
    lower = jnp.stack([-jnp.conj(bottom), jnp.conj(top)])
    states = jnp.stack([lower, upper], axis=-1)
    return energies, states


@jax.custom_jvp
def _eigh_lapack(h: Complex[Array, "n n"]) -> tuple[Float[Array, " n"], Complex[Array, "n n"]]:
    energies, states = jnp.linalg.eigh(h)
    return energies, states


@_eigh_lapack.defjvp
def _eigh_lapack_jvp(primals, tangents):
    (h,) = primals
    (dh,) = tangents
    energies, states = _eigh_lapack(h)
    dh = 0.5 * (dh + jnp.conj(dh.T))
    dh_band = jnp.conj(states.T) @ dh @ states
    delta = energies[None, :] - energies[:, None]  # eps_n - eps_m at [m, n]
    g = _safe_inverse(delta, degeneracy_tolerance(energies))
    d_energies = jnp.real(jnp.diagonal(dh_band))
    d_states = states @ (g * dh_band)
    return (energies, states), (d_energies, d_states)


def eigh(h: Complex[Array, "n n"]) -> tuple[Float[Array, " n"], Complex[Array, "n n"]]:
    """Eigenvalues (ascending) and eigenvectors (columns) of one Hermitian matrix.

    vmap it for batches. Gradients are finite at degeneracies (see module docstring).
    """
    h = jnp.asarray(h)
    if h.ndim != 2 or h.shape[0] != h.shape[1]:
        raise ValueError(f"eigh expects one square matrix, got shape {h.shape}")
    if not jnp.iscomplexobj(h):
        h = h.astype(jnp.result_type(h.dtype, jnp.complex64))
    if h.shape[0] == 1:
        return jnp.real(h[0]), jnp.ones((1, 1), h.dtype)
    if h.shape[0] == 2:
        return _eigh_2x2(h)
    return _eigh_lapack(h)
