"""MSCT current in a uniform magnetic field B (PHYSICS.md sections 3 and 5), per k-point, q = -1.

MSCT hybridises the bands of each manifold a in the field E to all orders (paper Eqs. 54-62):
eta^(i) and E_i are the eigenvectors and eigenvalues of Hbar = diag(eps_n) + E . R_k on a, the
hybridised band i is the state u_i = sum_n eta^(i)_n u_n, and its velocity
v_i = <u_i|dH_k|u_i> + <u_i|F^{kk}|u_i> E carries all of the field's anomalous velocity (the
remote bands' through F, the manifold's own through the hybridisation). In B each hybridised
band is taken as an Abelian band with the geometry of the state u_i(k):

    Omega_i = <u_i|F^{kk}|u_i> + Omega_i^hyb,      m_i = eta^(i)dagger M eta^(i) + m_i^hyb,
    Omega_i^{ab,hyb} = -2 Im sum_{j != i} W_a,ij W_b,ji / (E_i - E_j)^2,
    m_i^{c,hyb} = (1/2) eps_abc Im sum_{j != i} W_a,ij W_b,ji / (E_j - E_i),
    W_a = eta^dagger (nabla_a Hbar) eta,   nabla_a Hbar = P dH_a P + sum_b E_b nabla_a R_b,

F the manifold's non-Abelian curvature and M its moment matrix (Roth's band-group form,
:meth:`~semiclassical_jax.geometry.BandGeometry.manifold_orbital_moment`; the package's moment
sign, fixed by the exact n = 0 Landau level, tests/test_orbital_moment.py). The first terms are
the remote bands' part: <u_i|F|u_i> is the Q-part of the curvature of u_i exactly, and
eta^dagger M eta the first-order B shift of the eigenvector eta^(i) of the band-group
Hamiltonian (symmetric energy reference of the Loewdin partition). The hyb terms are the
manifold's own part, the sum over the other hybridised states with the covariant derivative of
Hbar (Hellmann-Feynman: W_a,ii = dE_i / dk_a), from the second derivatives of H and sums over
states (no eigenvector derivatives; :func:`hybridisation_derivative`). Without them a two-band
manifold would lose, as E -> 0, the partner band's share of the curvature and of the moment
(a massive Dirac model as one manifold would have none at all).

With eps~_i = E_i - m_i . B, v~_i = d eps~_i / dk (forward autodiff), D_i = 1 + B . Omega_i,
a_i = v_i - dE_i / dk (the field's anomalous velocity; -q E x Omega for a one-band manifold) and
V_i = v~_i + a_i = v_i - d(m_i . B) / dk, eliminating dk/dt = q E + q dx/dt x B gives

    D_i dx/dt = V_i - q (V_i . Omega_i) B,        D_i dk/dt = q D_i E + q V_i x B,

and the Boltzmann equation in the relaxation-time approximation, with the field part of dk/dt
acting on g1 dropped as in MSCT and the Lorentz part to second order (Jones-Zener), is that of
:mod:`._magnetic` for these bands, evaluated by parts as there
(:func:`._magnetic.by_parts_current`):

    g_i = f0(eps~_i) + sum_{n <= 2} (tau L_i)^n g1_0,   L_i = -(q / D_i) (v~_i x B) . d_k,
    g1_0 = -tau q f0'(eps~_i) X_i,   X_i = dk/dt . v~_i / q = E . v~_i + (a_i x B) . v~_i / D_i,
    J = q sum_i int dk g_i R_i,   R_i = D_i dx/dt.

Limits: one-band manifolds give the equations of :mod:`._magnetic` (SSCT in B) term by term
(a_i = -q E x Omega);
B = 0 gives plain MSCT (:func:`._integrands.msct_current`); E -> 0 with the manifold's bands
split gives per-band SSCT in B at linear order in E (Omega_i -> Omega_n, m_i -> m_n, a_i ->
-q E x Omega_n). Beyond SSCT, m_i and Omega_i carry the field's corrections (O(E) where the
manifold's bands mix). In the Fermi-sea part f0(eps~_i) R_i their O(E B) terms are total
k-derivatives, -d_k [f0 dm . B] and -q B d_k . [F(eps~) dOmega] (dF/deps = f0; d_k . Omega = 0):
they vanish over a complete, gapped Fermi sea (a Brillouin zone, or a continuum grid with f0 = 0
on its edge), not on a grid that cuts the sea (a shell around a Fermi surface).

Where it does not carry over (errors, and the reasons):

* a textured model (H depends on x): the x-k and x-x curvature blocks, the texture-induced
  coupling that Hbar neglects and their interplay with B are not worked out: NotImplementedError.
* hybridised bands that touch (E_i = E_j in one manifold, including exactly degenerate bands of a
  manifold, e.g. a Kramers pair): the Abelian treatment of each hybridised band needs them split;
  W / (E_i - E_j) diverges and the split of a degenerate pair is a gauge choice there (a
  degenerate manifold needs the non-Abelian wavepacket in B). The gap check raises
  NotImplementedError (a run-time error under jit) naming magnetic_field, the bands (the
  hybridised descendants of bands n < m) and the point.
* a touching of the manifold's bands inside the occupied region (a Weyl node between them): the
  Fermi sea then contains the point above, and a grid that excises it (a shell) keeps the O(E B)
  sea terms as a boundary term at the excision, which depends on where it cuts (for one Weyl
  node at E perpendicular to B a tau-independent Hall part); only the tau-dependent (Fermi
  surface) part is meaningful there. Such bands belong in one-band manifolds (SSCT in B).
* nearly touching hybridised bands: the Lorentz force drives u_i across the small gap
  (magnetic breakdown inside the manifold) and the Abelian picture fails when |B . Omega_i^hyb|
  is no longer small (D_i far from 1); not checked, the caller's regime.
* position terms (Wannier90 r(R)): the moment needs <r H r>, as for SSCT (ValueError).
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .._guards import magnetic_field_at
from .._eigh import degeneracy_tolerance, safe_inverse
from .._linalg import matmul_small
from .._types import Array, Complex, Float
from ..geometry._kernel import BandGeometry, axial_pairs, geometry_with_diagnostics
from ..models import AbstractModel
from ._integrands import Manifolds, hybridisation
from ._magnetic import Local, by_parts_current


def _in_basis(basis: Complex[Array, "n i"], matrices: Complex[Array, "... n n"]) -> Array:
    """basis^dagger M basis for each matrix M (leading axes)."""
    return matmul_small(jnp.conj(basis).T, matmul_small(matrices, basis))


def _diagonal(basis: Complex[Array, "n i"], matrices: Complex[Array, "... n n"]) -> Array:
    """Re (basis^dagger M basis)_ii, shape (..., i)."""
    return jnp.real(jnp.diagonal(_in_basis(basis, matrices), axis1=-2, axis2=-1))


def field_hessian(
    model: AbstractModel, x: Array, k: Array, states: Array, field: Array
) -> Complex[Array, "d n n"]:
    """U^dagger d_a (E . d_k H) U (d, N, N): the k-Hessian of H contracted with the field E, in
    the band basis (forward autodiff of the model only; Hermitian part, as the kernel takes H)."""

    def hamiltonian(kk):
        h = jnp.asarray(model(x, kk))
        return h.astype(jnp.result_type(h.dtype, 1j))

    def directional(kk):
        return jax.jvp(hamiltonian, (kk,), (field.astype(kk.dtype),))[1]

    second = jnp.moveaxis(jax.jacfwd(directional)(k), -1, 0)  # (d, N, N)
    second = 0.5 * (second + jnp.conj(jnp.swapaxes(second, -1, -2)))
    return _in_basis(states, second)


def hybridisation_derivative(
    geometry: BandGeometry,
    manifold: tuple[int, ...],
    field: Float[Array, " d"],
    second: Complex[Array, "d n n"],
) -> Complex[Array, "d na na"]:
    """nabla_a Hbar = P dH_a P + nabla_a (E . R) on the manifold: the covariant k-derivative
    (with the manifold's connection) of the hybridisation matrix, by sums over states:

        nabla_a (E . R)_nm = i (v_a,n - v_a,m) (E . h)_nm / (eps_n - eps_m)^2
                             - i (w_a + [Q_a, E . h])_nm / (eps_n - eps_m) - [Q_a, E . R]_nm,

    n, m in the manifold; h = dH_k, v_n = h_nn, w_a = d_a (E . dH_k) (``second``),
    Q_a,np = h_a,np / (eps_n - eps_p) over all bands (in [Q_a, E . h]) or the manifold (in
    [Q_a, E . R]), E . R_nm = i (E . h)_nm / (eps_m - eps_n). Derivation: <u_n|d_a X|u_m> =
    d_a X_nm - i [A_a, X]_nm for an operator X on range(P); the band-diagonal (gauge) parts of
    the connection A cancel, its off-diagonal part is -i Q. Pairs of the manifold within the
    degeneracy tolerance are left out (the gap check refuses them).
    """
    d = geometry.dim
    index = jnp.array(manifold)
    eps = geometry.energies[index]
    h = geometry.dH[d:]  # (d, N, N)
    driven = jnp.tensordot(field.astype(h.dtype), h, axes=1)  # E . h (N, N)
    quotients = geometry.gap_quotients(slice(d, None))  # Q_a over all bands (d, N, N)
    inverse = safe_inverse(eps[:, None] - eps[None, :], degeneracy_tolerance(geometry.energies))
    block = driven[index][:, index]
    connection = -1j * inverse * block  # E . R
    velocity = jnp.real(jnp.diagonal(geometry.dH[d:, index][:, :, index], axis1=-2, axis2=-1))
    spread = velocity[:, :, None] - velocity[:, None, :]  # v_a,n - v_a,m  (d, Na, Na)
    commutator = matmul_small(quotients, driven) - matmul_small(driven, quotients)
    inner = (second + commutator)[:, index][:, :, index]
    q_a = quotients[:, index][:, :, index]
    rotation = matmul_small(q_a, connection) - matmul_small(connection, q_a)
    derivative = 1j * spread * (inverse**2 * block) - 1j * inverse * inner - rotation
    return geometry.dH[d:, index][:, :, index] + derivative


def _partner_terms(
    w: Complex[Array, "d i i"], energies: Float[Array, " i"], tolerance: Array
) -> tuple[Float[Array, "i c"], Float[Array, "i c"]]:
    """(Omega^hyb (Na, c), m^hyb (Na, c)) of the hybridised states from W (module docstring);
    pairs within ``tolerance`` are left out (the gap check refuses them)."""
    z = w * safe_inverse(energies[:, None] - energies[None, :], tolerance)  # W_ij / (E_i - E_j)
    pairs = axial_pairs(w.shape[0])
    curvature = [2.0 * jnp.imag(jnp.sum(z[a] * z[b].T, axis=-1)) for a, b in pairs]
    moment = [jnp.imag(jnp.sum(w[a] * z[b].T, axis=-1)) for a, b in pairs]
    return jnp.stack(curvature, axis=-1), jnp.stack(moment, axis=-1)


def hybridised_bands(
    geometry: BandGeometry,
    second: Complex[Array, "d n n"] | None,
    manifold: tuple[int, ...],
    field: Float[Array, " d"],
) -> tuple[Array, Array, Array, Array, Array, tuple[Array, Array]]:
    """The hybridised bands of one manifold in the field E as Abelian bands in B (module
    docstring): (E_i (Na,), v_i (Na, d), a_i = v_i - dE_i / dk (Na, d), Omega_i (Na, c),
    m_i (Na, c), (the smallest gap E_{i+1} - E_i, the bands (n, m) it descends from; inf for
    one band)). dE_i / dk = W_ii (Hellmann-Feynman on Hbar). ``second``: :func:`field_hessian`
    (None for a one-band manifold). Units: energy, energy x length (v, a), length^2,
    energy x length^2."""
    d = geometry.dim
    pairs = axial_pairs(d)
    index = jnp.array(manifold)
    energies, mixing = hybridisation(geometry, manifold, field)
    h_a = geometry.dH[d:, index][:, :, index]
    band_velocity = _diagonal(mixing, h_a).T  # <u_i|dH_k|u_i> (Na, d)
    curvature = geometry.nonabelian_curvature(manifold)[d:, d:]  # (d, d, Na, Na)
    projected = jnp.moveaxis(_diagonal(mixing, curvature), -1, 0)  # (Na, d, d)
    remote = projected @ field  # <u_i|F^{kk}|u_i> E
    omega = jnp.stack([projected[:, a, b] for a, b in pairs], axis=-1)
    moment = _diagonal(mixing, geometry.manifold_orbital_moment(manifold)).T  # (Na, c)
    if len(manifold) == 1:  # dE / dk = <u_n|dH_k|u_n>
        none = (jnp.asarray(jnp.inf), jnp.zeros(2, int))
        return energies, band_velocity + remote, remote, omega, moment, none
    w = _in_basis(mixing, hybridisation_derivative(geometry, manifold, field, second))
    slope = jnp.real(jnp.diagonal(w, axis1=-2, axis2=-1)).T  # dE_i / dk (Hellmann-Feynman)
    omega_hyb, moment_hyb = _partner_terms(w, energies, degeneracy_tolerance(geometry.energies))
    gaps = jnp.diff(energies)
    closest = jnp.argmin(gaps)
    pair = jnp.array(manifold)[jnp.stack([closest, closest + 1])]
    velocity = band_velocity + remote
    omega, moment = omega + omega_hyb, moment + moment_hyb
    return energies, velocity, velocity - slope, omega, moment, (gaps[closest], pair)


def _bands(
    model: AbstractModel, x: Array, b: Array, field: Array, manifolds: Manifolds
) -> Callable[[Array], Local]:
    """k -> the hybridised bands of every manifold at (x, k) as Abelian bands in B (:data:`Local`),
    concatenated in the order of ``manifolds``; v~ = d eps~ / dk by forward autodiff."""
    multi = any(len(manifold) > 1 for manifold in manifolds)

    def energy(k: Array) -> tuple[Array, tuple]:
        geometry, non_hermiticity, _ = geometry_with_diagnostics(model, x, k)
        if not geometry.uniform:
            raise NotImplementedError(
                "magnetic_field with theory='msct' needs a uniform model (H independent of x); "
                "this model depends on position: the texture's x-k and x-x curvature blocks and "
                "its coupling of the hybridised bands in B are not worked out"
            )
        second = field_hessian(model, x, k, geometry.states, field) if multi else None
        parts = [hybridised_bands(geometry, second, m, field) for m in manifolds]
        energies, anomalous, omega, moment = (
            jnp.concatenate([p[i] for p in parts]) for i in (0, 2, 3, 4)
        )
        gaps = jnp.stack([p[5][0] for p in parts])
        closest = jnp.argmin(gaps)
        pair = jnp.stack([p[5][1] for p in parts])[closest]
        shifted = energies - moment @ b
        extra = (geometry, non_hermiticity, (gaps[closest], pair))
        return shifted, (shifted, anomalous, omega, extra)

    def band(k: Array) -> Local:
        velocity, (shifted, anomalous, omega, extra) = jax.jacfwd(energy, has_aux=True)(k)
        return shifted, velocity, anomalous, 1.0 + omega @ b, omega, extra

    return band


def msct_magnetic_current(
    model: AbstractModel,
    x: Float[Array, " d"],
    k: Float[Array, " d"],
    field: Float[Array, " d"],
    magnetic_field: Float[Array, " c"],
    mu: Float[Array, " L"],
    temperature: Float[Array, " L"],
    tau: Float[Array, ""],
    manifolds: Manifolds,
) -> tuple[Float[Array, "L d"], tuple]:
    """The MSCT current integrand q sum_i g_i (D_i dx/dt) at one k-point in E and B (equations
    in the module docstring) at each of the L levels, and (geometry, relative non-Hermiticity,
    (smallest hybridised gap, its bands), D_i (N,)) of the point. ``magnetic_field`` (c,): B_z in 2D, (3,)
    in 3D. Units: natural (hbar = e = 1), as :func:`._integrands.msct_current`."""
    band = _bands(model, x, magnetic_field, field, manifolds)
    value, local = by_parts_current(band, k, field, magnetic_field, mu, temperature, tau)
    return value, (*local[5], local[3])


def magnetic_msct_current(
    model: AbstractModel,
    x: Float[Array, " d"],
    k: Float[Array, " d"],
    field: Float[Array, " d"],
    magnetic_field: Any,
    mu: Float[Array, " L"],
    temperature: Float[Array, " L"],
    tau: Float[Array, ""],
    manifolds: Manifolds,
) -> tuple[Float[Array, "L d"], BandGeometry, Array, Array, tuple[Array, Array], Array]:
    """:func:`msct_magnetic_current` at (x, k) for a checked ``magnetic_field`` ((c,) or B(x)):
    (J of each level, the point's geometry, its relative non-Hermiticity, the relevant pairs of
    each level (L, N, N): every pair, as the moment and the curvature divide by every gap,
    (the smallest gap between hybridised bands of one manifold, their bands), and the hybridised
    bands' phase-space factors D_i = 1 + B . Omega_i (N,))."""
    b = magnetic_field_at(magnetic_field, x, k.shape[0])
    value, (geometry, non_hermiticity, hybridised, factor) = msct_magnetic_current(
        model, x, k, field, b, mu, temperature, tau, manifolds
    )
    n = geometry.n_bands
    relevant = jnp.broadcast_to(~jnp.eye(n, dtype=bool), (mu.shape[0], n, n))
    return value, geometry, non_hermiticity, relevant, hybridised, factor
