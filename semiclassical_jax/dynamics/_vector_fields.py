"""The three wavepacket equations of motion as diffrax vector fields (PHYSICS.md section 2).

State y = (x, k, Re chi, Im chi) with chi an N-vector in the orbital basis (real and imaginary
parts kept apart so every diffrax solver and controller applies). With lambda = (x, k),
S = [[0, 1], [-1, 0]] (d x d blocks) and <O> = <chi|O|chi>:

* full band (paper Eqs. 8-10, 19-21): dx/dt = <dH_k>, dk/dt = -E - <dH_x>, i dchi/dt = H chi;
* non-Abelian in manifold a (Eqs. 34, 42): (1 + S <F>) dlambda/dt = S <dH> - (0, E), i.e.
      dx_a/dt = <dH_{k_a}> - sum_b (<F^{k_a x_b}> dx_b/dt + <F^{k_a k_b}> dk_b/dt),
      dk_a/dt = -E_a - <dH_{x_a}> + sum_b (<F^{x_a x_b}> dx_b/dt + <F^{x_a k_b}> dk_b/dt),
  and Kato parallel transport dchi/dt = -i H chi + (dP/dt) chi, dP/dt = sum_l dP_l dlambda_l/dt;
* Abelian, band n (Eq. 43): the same linear system with <F> -> Omega_n; chi is not evolved (the
  dynamics is phase-space local) and is set to u_n(x, k) on output.
"""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from ..geometry import BandGeometry, _band_geometry, symplectic_solve

State = tuple[Any, Any, Any, Any]

# Invariant-manifold stabilisation rate, in units of the local band width (see NonAbelianField).
STABILISATION = 0.05


def split_state(y: State):
    x, k, chi_re, chi_im = y
    return x, k, chi_re + 1j * chi_im


def join_state(x, k, chi) -> State:
    return x, k, jnp.real(chi), jnp.imag(chi)


class FullBandField(eqx.Module):
    """Full-band coherent dynamics, chi in the orbital basis (gauge free)."""

    def __call__(self, t, y: State, args):
        model, field = args
        x, k, chi = split_state(y)
        d = x.shape[0]

        def energy(point):
            h = jnp.asarray(model(point[:d], point[d:]))
            h_chi = jnp.sum(h * chi[None, :], axis=-1)
            return jnp.real(jnp.sum(jnp.conj(chi) * h_chi)), (h, h_chi)

        # <chi|dH/dlambda|chi> = d<chi|H(lambda)|chi>/dlambda at fixed chi: one reverse pass instead
        # of 2d forward ones. Contractions are broadcast-multiply-sums, not matmul/einsum: for these
        # tiny matrices XLA's CPU dot kernels cost ~20x more (benchmarks/trajectories.py).
        expectation, (h, h_chi) = jax.grad(energy, has_aux=True)(jnp.concatenate([x, k]))
        dx = expectation[d:]
        dk = -field.electric_field(x, t) - expectation[:d]
        mean_energy = jnp.real(jnp.sum(jnp.conj(chi) * h_chi))
        # norm stabilisation (zero on exact solutions), rate ~ the spectral spread of H
        # |H - Tr H / N|_F^2 = |H|_F^2 - |Tr H|^2 / N
        spread2 = jnp.sum(jnp.abs(h) ** 2) - jnp.abs(jnp.trace(h)) ** 2 / h.shape[0]
        rate = STABILISATION * jnp.sqrt(jnp.maximum(spread2, 0.0) + jnp.finfo(spread2.dtype).tiny)
        norm_error = 0.5 * (jnp.sum(jnp.abs(chi) ** 2) - 1.0)
        return join_state(dx, dk, -1j * (h_chi - mean_energy * chi) - rate * norm_error * chi)


class NonAbelianField(eqx.Module):
    """Dynamics confined to a manifold: non-Abelian curvature and Kato parallel transport."""

    manifold: tuple[int, ...] = eqx.field(static=True)

    def __call__(self, t, y: State, args):
        model, field = args
        x, k, chi = split_state(y)
        geometry, _, _ = _band_geometry(model, x, k)
        dlambda = self.phase_space_velocity(geometry, chi, field.electric_field(x, t))
        d_projector = jnp.einsum("lij,l->ij", geometry.projector_derivative(self.manifold), dlambda)
        overlaps = jnp.conj(geometry.states.T) @ chi
        mean_energy = jnp.sum(geometry.energies * jnp.abs(overlaps) ** 2)
        h_chi = geometry.states @ ((geometry.energies - mean_energy) * overlaps)
        # Stabilisation (zero on exact solutions): pull chi back into range(P) and to |chi| = 1
        # at a rate set by the local band width, so truncation errors cannot accumulate.
        inside = jnp.zeros(chi.shape[0], dtype=bool).at[jnp.array(self.manifold)].set(True)
        leak = geometry.states @ jnp.where(inside, 0.0, overlaps)
        rate = STABILISATION * (geometry.energies[-1] - geometry.energies[0])
        norm_error = 0.5 * (jnp.real(jnp.vdot(chi, chi)) - 1.0)
        correction = -rate * (leak + norm_error * chi)
        d = x.shape[0]
        return join_state(dlambda[:d], dlambda[d:], -1j * h_chi + d_projector @ chi + correction)

    def phase_space_velocity(self, geometry: BandGeometry, chi, electric_field):
        a = jnp.array(self.manifold)
        c = jnp.conj(geometry.states[:, a].T) @ chi  # components on the manifold's bands
        c = c / jnp.linalg.norm(c)  # expectation values in the normalised projected state
        curvature = geometry.nonabelian_curvature(self.manifold)
        omega = jnp.real(jnp.einsum("n,abnm,m->ab", jnp.conj(c), curvature, c))
        gradient = jnp.real(jnp.einsum("n,lnm,m->l", jnp.conj(c), geometry.dH[:, a][:, :, a], c))
        return symplectic_solve(omega, gradient, electric_field)


class AbelianField(eqx.Module):
    """One band, all four curvature blocks; phase-space local (chi is not evolved)."""

    band: int = eqx.field(static=True)

    def __call__(self, t, y: State, args):
        model, field = args
        x, k, chi = split_state(y)
        geometry, _, _ = _band_geometry(model, x, k)
        dlambda = self.phase_space_velocity(geometry, chi, field.electric_field(x, t))
        d = x.shape[0]
        return join_state(dlambda[:d], dlambda[d:], jnp.zeros_like(chi))

    def phase_space_velocity(self, geometry: BandGeometry, chi, electric_field):
        del chi  # phase-space local: the band state is u_n(x, k)
        omega = geometry.berry_curvature()[self.band]
        gradient = jnp.real(geometry.dH[:, self.band, self.band])
        return symplectic_solve(omega, gradient, electric_field)


def nonadiabaticity(geometry: BandGeometry, manifold: tuple[int, ...], dlambda) -> Any:
    """eta = max_{n in a, l in r} |<u_l| dH/dt |u_n>| / (eps_n - eps_l)^2, dH/dt = sum dH_l dlambda_l.

    The ratio of the non-adiabatic coupling |<u_l|d_t u_n>| to the gap: the manifold
    (Abelian / non-Abelian) description needs eta << 1; a massive Dirac crossing has
    eta = v E / (2 Delta)^2 at the gap minimum (Landau-Zener: P = exp(-pi / (4 eta))).
    """
    a = jnp.array(manifold)
    r = jnp.array([n for n in range(geometry.n_bands) if n not in manifold])
    rate = jnp.einsum("l,lrn->rn", dlambda, geometry.dH[:, r][:, :, a])
    gaps = geometry.energies[a][None, :] - geometry.energies[r][:, None]
    return jnp.max(jnp.abs(rate) / gaps**2)


def vector_field(method: str, band: int | None, manifold: tuple[int, ...] | None):
    if method == "full":
        return FullBandField()
    if method == "nonabelian":
        return NonAbelianField(manifold)
    return AbelianField(band)

