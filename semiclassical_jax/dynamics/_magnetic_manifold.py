"""Non-Abelian (manifold) wavepacket dynamics in a magnetic field B (PHYSICS.md section 5,
charge q = -1): the Abelian structure of :mod:`._magnetic` with every band quantity replaced by
its expectation value in the normalised manifold state c = U_a^dagger chi / |U_a^dagger chi|:

* the moment matrix M^c (Na, Na) (``BandGeometry.manifold_orbital_moment``) enters the manifold
  Hamiltonian, H~ = P (H - M . B) P with M . B = U_a (M . B) U_a^dagger in the orbital basis:
  chi precesses under it (i dchi/dt = H~ chi + Kato transport) and eps~ = <c|eps - M . B|c>;
* v~ = d<chi|H~(k)|chi>/dk at fixed chi: <c|dH_k|c> (the covariant derivative of eps_a, as at
  B = 0) minus d<chi|M . B(k)|chi>/dk by forward-mode autodiff of the kernel's moment matrix (the
  operator U_a (M . B) U_a^dagger is gauge invariant; P dP P = 0 drops the projector's change);
* Omega_c = eps_abc <c|F^{k_a k_b}|c> / 2, D = 1 + B . Omega, and the solved equations
      D dx/dt = v~ - q E x Omega - q (v~ . Omega) B,
      D dk/dt = q E + q v~ x B - q^2 (E . B) Omega;
  a position-dependent B(x) adds q E -> q E + <c|M|c> . dB/dx.

With E = 0 and static B, <chi|H~|chi> is conserved: its rate is v~ . dk/dt (the Kato and the
precession terms drop out), and dk/dt is along v~ x B. For one band (Na = 1) these are the
Abelian equations. Uniform models only (dH/dx = 0, no intra-cell position terms).

Limitation: at a point where the manifold is exactly degenerate and dH_k splits that degeneracy
within the manifold, the forward-mode derivative of the moment matrix goes through eigh's
degeneracy-safe JVP (``_eigh``), which is exact for outputs that see the degenerate set only
through its projector; the moment matrix also sees the manifold energies, so that derivative is
then not guaranteed. Degenerate manifolds whose dH_k does not mix the degenerate bands (e.g.
decoupled valleys or spins) are exact.
"""

from typing import Any

import jax
import jax.numpy as jnp

from .._guards import magnetic_field_at
from .._types import Array, Complex, Float
from ..geometry._kernel import BandGeometry, axial_pairs, band_geometry_unchecked
from ._magnetic import CHARGE, solved_rates


def _require_uniform(geometry: BandGeometry) -> None:
    if not geometry.uniform or geometry.position_curvature is not None:
        raise NotImplementedError(
            "evolve(method='nonabelian', magnetic_field=...) supports uniform models (H "
            "independent of x, no intra-cell position terms) only; for a textured model use "
            "method='full'"
        )


def _manifold_state(geometry: BandGeometry, manifold: tuple[int, ...], chi) -> Array:
    """c = U_a^dagger chi / |U_a^dagger chi| (Na,), the normalised manifold components."""
    c = jnp.conj(geometry.states[:, jnp.array(manifold)].T) @ chi
    return c / jnp.linalg.norm(c)


def _mean_curvature_vector(geometry: BandGeometry, manifold: tuple[int, ...], c) -> Array:
    """Omega_c = eps_abc <c|F^{k_a k_b}|c> / 2 (c,) for normalised manifold components c."""
    d = geometry.dim
    curvature = geometry.nonabelian_curvature(manifold)[d:, d:]
    mean = jnp.real(jnp.einsum("n,abnm,m->ab", jnp.conj(c), curvature, c))
    return jnp.stack([mean[i, j] for i, j in axial_pairs(d)])


def moment_matrix_along(
    geometry: BandGeometry, manifold: tuple[int, ...], field_at_x: Float[Array, " c"]
) -> Complex[Array, "na na"]:
    """M . B = sum_c M^c B_c (Na, Na), Hermitian, in eigh's basis of the manifold."""
    return jnp.einsum(
        "c,cnm->nm", field_at_x.astype(complex), geometry.manifold_orbital_moment(manifold)
    )


def manifold_magnetic_velocity(
    model, x, k, manifold: tuple[int, ...], chi, electric_field, magnetic: Any
) -> tuple[Float[Array, " 2d"], BandGeometry, Complex[Array, "na na"]]:
    """(dlambda/dt = (dx/dt, dk/dt) (2d,), the geometry at (x, k), M . B (Na, Na)) of the
    manifold state chi in E and B (module docstring; ``magnetic`` a checked field)."""
    d = x.shape[0]
    field_at_x = magnetic_field_at(magnetic, x, d)

    def moment_energy(kk):  # <c|M . B|c> at fixed chi: gauge invariant
        geometry = band_geometry_unchecked(model, x, kk)
        _require_uniform(geometry)
        moment_b = moment_matrix_along(geometry, manifold, field_at_x)
        c = _manifold_state(geometry, manifold, chi)
        return jnp.real(jnp.vdot(c, moment_b @ c)), (geometry, moment_b, c)

    d_moment_energy, (geometry, moment_b, c) = jax.jacfwd(moment_energy, has_aux=True)(k)
    a = jnp.array(manifold)
    electric = electric_field
    if callable(magnetic):  # q E' = q E - d eps~/dx = q E + <M> . dB/dx
        moments = jnp.real(
            jnp.einsum("n,cnm,m->c", jnp.conj(c), geometry.manifold_orbital_moment(manifold), c)
        )
        d_field = jax.jacfwd(lambda xx: magnetic_field_at(magnetic, xx, d))(x)  # (c, d)
        electric = electric + (moments @ d_field) / CHARGE
    dh = geometry.dH[d:][:, a][:, :, a]  # covariant derivative of eps_a in the manifold
    velocity = jnp.real(jnp.einsum("n,lnm,m->l", jnp.conj(c), dh, c)) - d_moment_energy
    omega = _mean_curvature_vector(geometry, manifold, c)
    return solved_rates(velocity, omega, electric, field_at_x), geometry, moment_b


def manifold_observables(
    geometry: BandGeometry, manifold: tuple[int, ...], chi, magnetic: Any, x
) -> tuple[Array, Array]:
    """(<c|M . B|c>, D = 1 + B . <c|Omega|c>) at one saved state (scalars)."""
    d = x.shape[0]
    field_at_x = magnetic_field_at(magnetic, x, d)
    c = _manifold_state(geometry, manifold, chi)
    moment_b = moment_matrix_along(geometry, manifold, field_at_x)
    omega = _mean_curvature_vector(geometry, manifold, c)
    return jnp.real(jnp.vdot(c, moment_b @ c)), 1.0 + omega @ field_at_x
