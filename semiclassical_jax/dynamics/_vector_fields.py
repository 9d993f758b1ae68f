"""The three wavepacket equations of motion as diffrax vector fields (PHYSICS.md section 2).

State y = (x, k, Re chi, Im chi) with chi an N-vector in the orbital basis (real and imaginary
parts kept apart so every diffrax solver and controller applies). With lambda = (x, k),
S = [[0, 1], [-1, 0]] (d x d blocks) and <O> = <chi|O|chi>:

* full band (paper Eqs. 8-10, 19-21): dx/dt = <dH_k>, dk/dt = -E - <dH_x>, i dchi/dt = H chi;
* non-Abelian in manifold a (Eqs. 34, 42): (1 + S <F>) dlambda/dt = S <dH> - (0, E), i.e.
      dx_a/dt = <dH_{k_a}> - sum_b (<F^{k_a x_b}> dx_b/dt + <F^{k_a k_b}> dk_b/dt),
      dk_a/dt = -E_a - <dH_{x_a}> + sum_b (<F^{x_a x_b}> dx_b/dt + <F^{x_a k_b}> dk_b/dt),
  and Kato parallel transport dchi/dt = -i H chi + (dP/dt) chi, dP/dt = sum_l dP_l dlambda_l/dt;
* with position terms (a model with A^W(x, k), geometry._kernel): dH_k -> dH_k - i [A^W, H] in
  dx/dt, dP -> dP - i [A^W, P], and i dk/dt . A^W chi added to dchi/dt (full band and Kato): the
  equations of the point-like basis rotated into the model's (the covariance the tests check);
* Abelian, band n (Eq. 43): the same linear system with <F> -> Omega_n; chi is not evolved (the
  dynamics is phase-space local) and is set to u_n(x, k) on output.

Why the fields have this shape: one trajectory integrates arrays of a few numbers, so a solver
step (and its reverse pass under ``jax.grad``) costs in XLA kernels launched, not in arithmetic.
Hence one packed state array (:func:`pack_state`), a closed-form solve for dlambda/dt when d <= 2
(:func:`geometry.symplectic_solve`), and a closed-form two-band Abelian field from
H = d0 + d.sigma (:func:`_two_band_velocity`) instead of rotating dH into the eigenbasis.
"""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._eigh import degeneracy_tolerance
from .._guards import magnetic_field_at
from .._linalg import levi_civita
from ..geometry._kernel import (
    BandGeometry,
    band_geometry_unchecked,
    complement,
    intracell_position,
)
from ..geometry._symplectic import symplectic_solve
from ._magnetic import lorentz_force, magnetic_velocity
from ._magnetic_manifold import manifold_magnetic_velocity

State = tuple[Any, Any, Any, Any]

# Invariant-manifold stabilisation rate, in units of the local band width (see NonAbelianField).
STABILISATION = 0.05


def split_state(y: State):
    """(x, k, chi) from the state (x, k, Re chi, Im chi); leading axes kept."""
    x, k, chi_re, chi_im = y
    return x, k, chi_re + 1j * chi_im


def join_state(x, k, chi) -> State:
    """The state (x, k, Re chi, Im chi) of (x, k, chi): real leaves for every diffrax solver."""
    return x, k, jnp.real(chi), jnp.imag(chi)


def pack_state(y: State):
    """The state as one real array (..., 2d + 2N), the form the solver integrates.

    One leaf instead of four: diffrax's per-step work (stage buffers, error norm, dense output,
    checkpoints) is a few XLA kernels per leaf of the state.
    """
    return jnp.concatenate(y, axis=-1)


def unpack_state(flat, dim: int) -> State:
    """Inverse of :func:`pack_state` (leading axes kept)."""
    n = (flat.shape[-1] - 2 * dim) // 2
    return (
        flat[..., :dim],
        flat[..., dim : 2 * dim],
        flat[..., 2 * dim : 2 * dim + n],
        flat[..., 2 * dim + n :],
    )


# sigma_mu^T (mu = 0, x, y, z) split into real and imaginary parts: d_mu = Tr(sigma_mu H) / 2 is
# sum_ij (Re sigma_mu^T)_ij Re H_ij - (Im sigma_mu^T)_ij Im H_ij, halved.
_PAULI_T = np.stack([np.eye(2), [[0, 1], [1, 0]], [[0, 1j], [-1j, 0]], [[1, 0], [0, -1]]]).astype(
    complex
)
_LEVI_CIVITA_XYZ = np.pad(
    levi_civita(3), ((1, 0), (1, 0), (1, 0))
)  # eps_ijk on components 1..3 of (d0, d)


def _pauli_components(model, x, k):
    """(q, dq/dlambda): q = (d0, dx, dy, dz) (4,) of H(x, k) = d0 + d.sigma (its Hermitian part),
    dq/dlambda (2d, 4), lambda = (x, k), by forward mode over x and over k (as geometry's dH)."""
    pauli_re, pauli_im = np.real(_PAULI_T), np.imag(_PAULI_T)

    def components(xx, kk):
        h = jnp.asarray(model(xx, kk))
        return 0.5 * jnp.sum(
            pauli_re * jnp.real(h)[None] - pauli_im * jnp.imag(h)[None], axis=(-2, -1)
        )

    dq_k, q = jax.jacfwd(lambda kk: (components(x, kk),) * 2, has_aux=True)(k)
    dq_x = jax.jacfwd(lambda xx: components(xx, k))(x)
    return q, jnp.concatenate([dq_x, dq_k], axis=-1).T


def _two_band_velocity(q, dq, band: int, electric_field):
    """Abelian dlambda/dt of band 0 (lower) or 1 (upper) of a two-band H = d0 + d.sigma, closed form.

    ``q`` = (d0, d), ``dq`` its derivative (2d, 4) (:func:`_pauli_components`). With s = -1 (lower),
    +1 (upper), r = |d|, n = d / r and P_a = dd/dlambda_a:
        d eps / dlambda_a = dd0/dlambda_a + s n.P_a,      Omega^{ab} = -s n.(P_a x P_b) / (2 r^2)
    (paper Eq. 44 summed over the one other band; e.g. Omega^{kx ky} = Delta v^2 / (2 r^3) for the
    massive Dirac lower band). Equal to the eigenvector route (``BandGeometry``) to rounding, with
    the same convention at a closed gap (2 r within eigh's degeneracy tolerance): Omega = 0 and the
    eigenvectors of eigh's closed form (n = -z). Real broadcast products on (2d, 4) arrays: its
    VJP launches far fewer XLA kernels than the route through eigenvectors.
    """
    sign = -1.0 if band == 0 else 1.0
    d = q * np.array([0.0, 1.0, 1.0, 1.0])
    r2 = jnp.sum(d * d)
    positive = r2 > jnp.finfo(r2.dtype).tiny
    r = jnp.sqrt(jnp.where(positive, r2, 1.0))
    gapped = positive & (2.0 * r > degeneracy_tolerance(jnp.stack([q[0] - r, q[0] + r])))
    n = jnp.where(gapped, d / r, np.array([0.0, 0.0, 0.0, -1.0]))
    # gradient_a = dd0_a + s n.P_a; Omega^{ab} = -s eps_ijk P_ai P_bj n_k / (2 r^2) = -s P_a.[n]_x P_b / (2 r^2)
    # with the cross-product matrix [n]_x,ij = eps_ijk n_k. Small broadcast-sums (<= 64 terms): one
    # 5-index sum is handed to a slow library kernel by XLA CPU under jax.jacfwd.
    gradient = jnp.sum(dq * (np.array([1.0, 0.0, 0.0, 0.0]) + sign * n)[None, :], axis=-1)
    cross_matrix = jnp.sum(_LEVI_CIVITA_XYZ * n, axis=-1)
    cross = jnp.sum(cross_matrix[None, :, :] * dq[:, None, :], axis=-1)  # (2d, 4): [n]_x P_b
    triple = jnp.sum(dq[:, None, :] * cross[None, :, :], axis=-1)
    omega = jnp.where(gapped, -sign / (2.0 * jnp.where(gapped, r2, 1.0)), 0.0) * triple
    return symplectic_solve(omega, gradient, electric_field)


def unpack_args(args):
    """(model, field, magnetic) of the solve's args (model, field[, magnetic]); magnetic is a
    checked ``magnetic_field`` ((c,) components or a callable B(x)) or None."""
    model, field, *rest = args
    return model, field, (rest[0] if rest else None)


class FullBandField(eqx.Module):
    """Full-band coherent dynamics, chi in the orbital basis (gauge free). In a magnetic field
    the Lorentz force q (dx/dt) x B joins dk/dt (PHYSICS.md section 5), dx/dt = <dH_k> (+ the
    position terms)."""

    def __call__(self, t, y: State, args):
        model, field, magnetic = unpack_args(args)
        x, k, chi = split_state(y)
        d = x.shape[0]

        def energy(point):
            h = jnp.asarray(model(point[:d], point[d:]))
            h_chi = jnp.sum(h * chi[None, :], axis=-1)
            return jnp.real(jnp.sum(jnp.conj(chi) * h_chi)), (h, h_chi)

        # <chi|dH/dlambda|chi> = d<chi|H(lambda)|chi>/dlambda at fixed chi: one reverse pass instead
        # of 2d forward ones. Contractions are broadcast-multiply-sums, not matmul/einsum: for these
        # tiny matrices XLA's CPU dot kernels are much slower (benchmarks/trajectories.py).
        expectation, (h, h_chi) = jax.grad(energy, has_aux=True)(jnp.concatenate([x, k]))
        dx = expectation[d:]
        dk = -field.electric_field(x, t) - expectation[:d]
        mean_energy = jnp.real(jnp.sum(jnp.conj(chi) * h_chi))
        # norm stabilisation (zero on exact solutions), rate ~ the spectral spread of H
        # |H - Tr H / N|_F^2 = |H|_F^2 - |Tr H|^2 / N
        spread2 = jnp.sum(jnp.abs(h) ** 2) - jnp.abs(jnp.trace(h)) ** 2 / h.shape[0]
        rate = STABILISATION * jnp.sqrt(jnp.maximum(spread2, 0.0) + jnp.finfo(spread2.dtype).tiny)
        norm_error = 0.5 * (jnp.sum(jnp.abs(chi) ** 2) - 1.0)
        dchi = -1j * (h_chi - mean_energy * chi) - rate * norm_error * chi
        position = intracell_position(model, x, k)
        if position is not None:
            # dx/dt = <dH_k - i [A^W, H]> = <dH_k> + 2 Im <A^W chi|H chi>, and the moving Bloch
            # basis adds i dk/dt . A^W chi (kernel docstring: position terms)
            a_chi = jnp.sum(position * chi[None, None, :], axis=-1)  # (d, N)
            dx = dx + 2.0 * jnp.imag(jnp.sum(jnp.conj(a_chi) * h_chi[None, :], axis=-1))
            if magnetic is not None:
                dk = dk + lorentz_force(dx, _field_at(magnetic, x))
            dchi = dchi + 1j * jnp.sum(dk[:, None] * a_chi, axis=0)
        elif magnetic is not None:
            dk = dk + lorentz_force(dx, _field_at(magnetic, x))
        return join_state(dx, dk, dchi)


class NonAbelianField(eqx.Module):
    """Dynamics confined to a manifold: non-Abelian curvature and Kato parallel transport."""

    manifold: tuple[int, ...] = eqx.field(static=True)

    def __call__(self, t, y: State, args):
        model, field, magnetic = unpack_args(args)
        x, k, chi = split_state(y)
        electric_field = field.electric_field(x, t)
        if magnetic is None:
            geometry = band_geometry_unchecked(model, x, k)
            dlambda = self.phase_space_velocity(geometry, chi, electric_field)
        else:  # PHYSICS.md section 5: H~ = P (H - M . B) P, D and the Lorentz force
            dlambda, geometry, moment_b = manifold_magnetic_velocity(
                model, x, k, self.manifold, chi, electric_field, magnetic
            )
        d_projector = jnp.einsum("lij,l->ij", geometry.projector_derivative(self.manifold), dlambda)
        overlaps = jnp.conj(geometry.states.T) @ chi
        mean_energy = jnp.sum(geometry.energies * jnp.abs(overlaps) ** 2)
        h_chi = geometry.states @ ((geometry.energies - mean_energy) * overlaps)
        if magnetic is not None:  # - (M . B - <M . B>) chi, M . B = U_a (M . B) U_a^dagger
            a = jnp.array(self.manifold)
            projected = overlaps[a]
            mean_moment = jnp.real(jnp.vdot(projected, moment_b @ projected))
            moment_chi = moment_b @ projected - mean_moment * projected
            h_chi = h_chi - geometry.states[:, a] @ moment_chi
        # Stabilisation (zero on exact solutions): pull chi back into range(P) and to |chi| = 1
        # at a rate set by the local band width, so truncation errors cannot accumulate.
        inside = jnp.zeros(chi.shape[0], dtype=bool).at[jnp.array(self.manifold)].set(True)
        leak = geometry.states @ jnp.where(inside, 0.0, overlaps)
        rate = STABILISATION * (geometry.energies[-1] - geometry.energies[0])
        norm_error = 0.5 * (jnp.real(jnp.vdot(chi, chi)) - 1.0)
        correction = -rate * (leak + norm_error * chi)
        d = x.shape[0]
        dchi = -1j * h_chi + d_projector @ chi + correction
        position = intracell_position(model, x, k)
        if position is not None:  # dP is covariant; the moving Bloch basis adds i dk/dt . A^W chi
            a_chi = jnp.sum(position * chi[None, None, :], axis=-1)
            dchi = dchi + 1j * jnp.sum(dlambda[d:, None] * a_chi, axis=0)
        return join_state(dlambda[:d], dlambda[d:], dchi)

    def phase_space_velocity(self, geometry: BandGeometry, chi, electric_field):
        a = jnp.array(self.manifold)
        c = jnp.conj(geometry.states[:, a].T) @ chi  # components on the manifold's bands
        c = c / jnp.linalg.norm(c)  # expectation values in the normalised projected state
        curvature = geometry.nonabelian_curvature(self.manifold)
        omega = jnp.real(jnp.einsum("n,abnm,m->ab", jnp.conj(c), curvature, c))
        gradient = jnp.real(jnp.einsum("n,lnm,m->l", jnp.conj(c), geometry.dH[:, a][:, :, a], c))
        return symplectic_solve(omega, gradient, electric_field)


class AbelianField(eqx.Module):
    """One band, all four curvature blocks; phase-space local (chi is not evolved).

    Two-band models take the closed form :func:`_two_band_velocity` (the eigenvector route's
    values to rounding, a cheaper reverse pass); larger ones the eigenvector route of
    :class:`BandGeometry`, whose derivatives stay exact across degenerate remote bands.
    """

    band: int = eqx.field(static=True)

    def __call__(self, t, y: State, args):
        model, field, magnetic = unpack_args(args)
        x, k, chi = split_state(y)
        electric_field = field.electric_field(x, t)
        if magnetic is not None:  # PHYSICS.md section 5: eps~, D and the Lorentz force
            dlambda = magnetic_velocity(model, x, k, self.band, electric_field, magnetic)
        elif int(model.n_bands) == 2 and intracell_position(model, x, k) is None:
            dlambda = _two_band_velocity(*_pauli_components(model, x, k), self.band, electric_field)
        else:
            geometry = band_geometry_unchecked(model, x, k)
            dlambda = self.phase_space_velocity(geometry, chi, electric_field)
        d = x.shape[0]
        return join_state(dlambda[:d], dlambda[d:], jnp.zeros_like(chi))

    def phase_space_velocity(self, geometry: BandGeometry, chi, electric_field):
        del chi  # phase-space local: the band state is u_n(x, k)
        omega = geometry.berry_curvature()[self.band]
        gradient = jnp.real(geometry.dH[:, self.band, self.band])
        return symplectic_solve(omega, gradient, electric_field)


def _field_at(magnetic, x):
    return magnetic_field_at(magnetic, x, x.shape[0])


def nonadiabaticity(geometry: BandGeometry, manifold: tuple[int, ...], dlambda) -> Any:
    """eta = max_{n in a, l in r} |<u_l| dH/dt |u_n>| / (eps_n - eps_l)^2, dH/dt = sum dH_l dlambda_l.

    The ratio of the non-adiabatic coupling |<u_l|d_t u_n>| to the gap: the manifold
    (Abelian / non-Abelian) description needs eta << 1; a massive Dirac crossing has
    eta = v E / (2 Delta)^2 at the gap minimum (Landau-Zener: P = exp(-pi / (4 eta))).
    """
    a = jnp.array(manifold)
    r = jnp.array(complement(manifold, geometry.n_bands))
    rate = jnp.einsum("l,lrn->rn", dlambda, geometry.dH[:, r][:, :, a])
    gaps = geometry.energies[a][None, :] - geometry.energies[r][:, None]
    return jnp.max(jnp.abs(rate) / gaps**2)


def vector_field(method: str, band: int | None, manifold: tuple[int, ...] | None):
    """The equations of motion of ``method``: a callable (t, state, (model, field)) -> d state/dt."""
    if method == "full":
        return FullBandField()
    if method == "nonabelian":
        return NonAbelianField(manifold)
    return AbelianField(band)
