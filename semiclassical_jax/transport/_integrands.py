"""Per-point integrands of the kinetic theories (PHYSICS.md section 3), before the k-sum.

Each function maps one phase-space point (x, k) to the contribution of int dk (...) at that point;
:mod:`._integrate` sums them with the grid weights. Carrier charge q = -1, so J = -int dk f dx/dt.

Band touchings. Occupation-weighted sums of curvature-like pair terms are taken in the Fermi-sea
form sum_n f_n Omega_n = sum_{n<m} (f_n - f_m) Omega_nm: pairs of bands at the same occupation level
(both exactly full or both exactly empty, ``_distribution.occupation_levels``) are dropped before
any division (``dropped`` masks of :class:`~semiclassical_jax.geometry.BandGeometry`), and so are
Fermi-surface pair terms whose weights f0' both vanish. A touching of such bands is harmless. Every
integrand also returns the (N, N) mask of the pairs it still divides by (``relevant``): the callers
raise where one of them closes on a grid point (:mod:`._cores`).
"""

import numpy as np
import jax
import jax.numpy as jnp

from .._degenerate import divide_by_gaps, weighted_trace
from .._eigh import degeneracy_tolerance, eigh
from .._linalg import matmul_small, unrolled_sum
from .._types import Array, Bool, Float
from ..geometry._kernel import BandGeometry, depends_on_position, geometry_with_diagnostics
from ..models import AbstractModel
from ._distribution import (
    equal_occupation,
    fermi_dirac,
    fermi_dirac_derivative,
    inactive_pairs,
    occupation_levels,
)

Manifolds = tuple[tuple[int, ...], ...]
Pairs = Bool[Array, "n n"]


def _cross_pairs(manifolds: Manifolds, n_bands: int) -> np.ndarray:
    """[n, m] True where bands n and m lie in different manifolds (static)."""
    label = np.zeros(n_bands, int)
    for i, manifold in enumerate(manifolds):
        label[list(manifold)] = i
    return label[:, None] != label[None, :]


def _single_band(manifolds: Manifolds, n_bands: int) -> np.ndarray:
    """[n, m] True where bands n and m are both one-band manifolds (static)."""
    single = np.zeros(n_bands, bool)
    for manifold in manifolds:
        single[list(manifold)] = len(manifold) == 1
    return single[:, None] & single[None, :]


def ssct_current(
    geometry: BandGeometry, field: Array, mu: Array, temperature: Array, tau: Array
) -> tuple[Float[Array, " d"], Pairs]:
    """SSCT (paper Eqs. 46-47): f_n = f0 - tau [d_x f0 . dx_n/dt + d_k f0 . dk_n/dt], J = -sum_n f_n dx_n/dt.

    (dx_n/dt, dk_n/dt) from the full Abelian EOM with all four curvature blocks; d_lambda f0(eps_n)
    = f0'(eps_n) <u_n|dH_lambda|u_n> (Hellmann-Feynman). Returns (J, relevant pairs). Dropped
    pairs: both bands exactly empty (they contribute nothing), and for a uniform H, where dx/dt is
    linear in Omega, also both exactly full (their anomalous terms cancel pairwise).
    """
    d = geometry.dim
    levels = occupation_levels(geometry.energies, mu, temperature)
    empty = levels == 0.0
    dropped = empty[:, None] & empty[None, :]
    if geometry.uniform:
        dropped = equal_occupation(levels) & inactive_pairs(levels)
    rates = geometry.phase_space_velocity(field, dropped)  # (N, 2d)
    gradient = geometry.gradient()  # (N, 2d) = d eps_n / d lambda
    eps = geometry.energies
    deviation = (
        -tau * fermi_dirac_derivative(eps, mu, temperature) * jnp.sum(gradient * rates, axis=-1)
    )
    occupation = fermi_dirac(eps, mu, temperature) + deviation
    return -jnp.sum(occupation[:, None] * rates[:, :d], axis=0), ~dropped


def _hybridised_manifold(
    geometry: BandGeometry, manifold: tuple[int, ...], field: Array, dropped: Pairs
) -> tuple[Array, Array, Array]:
    """Steps 1-3 of MSCT (paper Eqs. 54-55, 61-63) for one manifold.

    Returns the hybridised energies E_i (Na,), velocities v_i (Na, d) and forces Ft_i (Na, d):
    Hbar_nm = eps_n delta_nm + E . R_k,nm on the manifold, v_i = <u_i|dH_k|u_i> + <F^{kk}>_i E,
    Ft_i = -<u_i|dH_x|u_i> - <F^{xk}>_i E (Eq. 62), F the manifold's non-Abelian curvature.
    R between degenerate bands of the manifold is set to zero (a gauge choice there: traces over
    the degenerate set, hence currents of a fully occupied degenerate manifold, do not depend on it).
    ``dropped``: (manifold, remote) pairs left out of F (see :func:`msct_current`).
    """
    d = geometry.dim
    n_bands = geometry.n_bands
    index = jnp.array(manifold)
    eps = geometry.energies[index]
    dh = geometry.dH[:, index][:, :, index]  # (2d, Na, Na)
    if len(manifold) == 1:
        energies, mixing = eps, jnp.ones((1, 1), dh.dtype)
    else:
        splitting = geometry.splitting_block(index)
        tolerance = degeneracy_tolerance(geometry.energies)
        # R_k,nm = i (dH_k)_nm / (eps_m - eps_n), (d, Na, Na)
        connection = -1j * divide_by_gaps(dh[d:], eps, eps, splitting, splitting, tolerance)
        hybridisation = jnp.diag(eps).astype(dh.dtype) + jnp.tensordot(field, connection, axes=1)
        if splitting is not None:  # zero here; its derivative is P dH P on degenerate pairs
            hybridisation = hybridisation + splitting
        energies, mixing = eigh(hybridisation)  # column i: eta^(i)
    expectation = _diagonal_in(mixing, dh).T  # (Na, 2d)
    velocity, force = expectation[:, d:], -expectation[:, :d]
    if len(manifold) < n_bands:
        curvature = geometry.nonabelian_curvature(manifold, dropped)  # (2d, 2d, Na, Na)
        projected = jnp.moveaxis(_diagonal_in(mixing, curvature), -1, 0)  # (Na, 2d, 2d)
        velocity = velocity + projected[:, d:, d:] @ field
        force = force - projected[:, :d, d:] @ field
    return energies, velocity, force


def _diagonal_in(basis: Array, matrices: Array) -> Float[Array, "... i"]:
    """Re (V^dagger M V)_ii for each matrix M (leading axes) and basis columns V_:,i (small N:
    unrolled, see _linalg.matmul_small)."""
    right = matmul_small(matrices, basis)  # (..., n, i)
    conj = jnp.conj(basis)
    return jnp.real(unrolled_sum([conj[n] * right[..., n, :] for n in range(basis.shape[0])]))


def msct_current(
    model: AbstractModel,
    x: Array,
    k: Array,
    field: Array,
    mu: Array,
    temperature: Array,
    tau: Array,
    manifolds: Manifolds,
) -> tuple[Float[Array, " d"], BandGeometry, Float[Array, ""], Pairs]:
    """MSCT, the paper's non-adiabatic theory (PHYSICS.md section 3 steps 1-5, Eqs. 54-62).

    g_i = f0(E_i) - tau [d_x f0(E_i) . v_i + d_k f0(E_i) . (-E + Ft_i)], J = -sum_i g_i v_i.
    d_lambda E_i is Hellmann-Feynman for one-band manifolds and forward-mode autodiff of the
    (gauge-invariant) hybridised energies otherwise. Returns (J, the geometry at (x, k), its
    relative non-Hermiticity, the relevant pairs). Between two one-band manifolds, pairs of bands
    both exactly full or both exactly empty are dropped from F (g_i = f0 there and v_i is linear in
    F, so their terms cancel); a multi-band manifold keeps every pair to its remote bands.
    """
    d = x.shape[0]
    n_bands = sum(len(manifold) for manifold in manifolds)  # a complete partition
    cross = _cross_pairs(manifolds, n_bands)
    single = _single_band(manifolds, n_bands)

    def hybridised(point):
        geometry, non_hermiticity, _ = geometry_with_diagnostics(model, point[:d], point[d:])
        levels = occupation_levels(geometry.energies, mu, temperature)
        dropped = single & equal_occupation(levels) & inactive_pairs(levels)
        parts = [_hybridised_manifold(geometry, m, field, dropped) for m in manifolds]
        energies, velocity, force = (jnp.concatenate(p, axis=0) for p in zip(*parts))
        return energies, (energies, velocity, force, geometry, non_hermiticity, cross & ~dropped)

    point = jnp.concatenate([x, k])
    if all(len(manifold) == 1 for manifold in manifolds):
        _, (energies, velocity, force, geometry, non_hermiticity, relevant) = hybridised(point)
        order = jnp.array([m[0] for m in manifolds])
        gradient = geometry.gradient()[order]  # d eps_n / d lambda
    elif depends_on_position(model, x, k):
        gradient, aux = jax.jacfwd(hybridised, has_aux=True)(point)
        energies, velocity, force, geometry, non_hermiticity, relevant = aux
    else:  # x-independent H: d E_i / dx = 0, so only the k tangents
        gradient_k, aux = jax.jacfwd(lambda kk: hybridised(jnp.concatenate([x, kk])), has_aux=True)(
            k
        )
        energies, velocity, force, geometry, non_hermiticity, relevant = aux
        gradient = jnp.concatenate([jnp.zeros_like(gradient_k), gradient_k], axis=-1)
    slope = fermi_dirac_derivative(energies, mu, temperature)
    drive = jnp.concatenate([velocity, force - field[None, :]], axis=-1)  # (v_i, -E + Ft_i)
    occupation = fermi_dirac(energies, mu, temperature) - tau * slope * jnp.sum(
        gradient * drive, axis=-1
    )
    return -jnp.sum(occupation[:, None] * velocity, axis=0), geometry, non_hermiticity, relevant


def nonabelian_hall_current(
    geometry: BandGeometry, field: Array, mu: Array, temperature: Array, manifolds: Manifolds
) -> tuple[Float[Array, " d"], Pairs]:
    """Paper Eq. 53, J_a = -sum_b Tr F^{k_a k_b} E_b per manifold, with each band's diagonal
    element F_nn weighted by f0(eps_n) (exactly Eq. 53 for a degenerate, fully occupied manifold;
    the intrinsic anomalous Hall current for one-band manifolds).

    F_nn = sum_{l remote} Omega_nl, so the sum over manifolds is the Fermi-sea form
    sum (f_n - f_l) Omega_nl over pairs in different manifolds: pairs at the same occupation level
    are dropped. Returns (J, relevant pairs).
    """
    d = geometry.dim
    dropped = equal_occupation(occupation_levels(geometry.energies, mu, temperature))
    total = jnp.zeros(d)
    for manifold in manifolds:
        if len(manifold) == geometry.n_bands:
            continue  # no remote bands: F = 0
        index = jnp.array(manifold)
        curvature = geometry.nonabelian_curvature(manifold, dropped)[d:, d:]  # (d, d, Na, Na)
        eps = geometry.energies[index]
        splitting = geometry.splitting_block(index)
        driven = jnp.einsum("abnm,b->anm", curvature, field)
        slopes = fermi_dirac_derivative(eps, mu, temperature)
        total = total - weighted_trace(fermi_dirac(eps, mu, temperature), slopes, splitting, driven)
    return total, _cross_pairs(manifolds, geometry.n_bands) & ~dropped


def hall_conductivity(
    geometry: BandGeometry, mu: Array, temperature: Array
) -> tuple[Float[Array, "d d"], Pairs]:
    """sigma_ab = -sum_n f0(eps_n) Omega_n^{k_a k_b} (intrinsic; Kubo/TKNN, sigma_xy = -C e^2/h).

    In the Fermi-sea form -sum_{n<m} (f_n - f_m) Omega_nm: pairs at the same occupation level are
    dropped. Returns (sigma, relevant pairs).
    """
    dropped = equal_occupation(occupation_levels(geometry.energies, mu, temperature))
    # Omega_n^{ab} is the diagonal of a Hermitian matrix (geometry.BandGeometry.curvature_matrix);
    # the whole matrix enters the derivative where a degeneracy splits (_degenerate.weighted_trace).
    curvature = geometry.curvature_matrix(dropped)  # (d, d, N, N)
    eps = geometry.energies
    occupation = fermi_dirac(eps, mu, temperature)
    slopes = fermi_dirac_derivative(eps, mu, temperature)
    return -weighted_trace(occupation, slopes, geometry.splitting, curvature), ~dropped


def drude_conductivity(
    geometry: BandGeometry, mu: Array, temperature: Array, tau: Array
) -> tuple[Float[Array, "d d"], Pairs]:
    """sigma_ab = -tau sum_n f0'(eps_n) v_n,a v_n,b (the linear SSCT term without curvature).

    No inter-band term: no relevant pairs.
    """
    velocity = geometry.velocity()
    slope = fermi_dirac_derivative(geometry.energies, mu, temperature)
    n = geometry.n_bands
    return -tau * jnp.einsum("n,na,nb->ab", slope, velocity, velocity), np.zeros((n, n), bool)


def berry_curvature_dipole(
    geometry: BandGeometry, mu: Array, temperature: Array
) -> Float[Array, "d d d"]:
    """D_cab = sum_n int f0 d_c Omega_n^{k_a k_b} = -sum_n int f0'(eps_n) v_n,c Omega_n^{k_a k_b}.

    (The Fermi-surface form; it equals the Fermi-sea form when f0 Omega vanishes on the grid's
    boundary, always for a Brillouin zone.) Pairs whose weights f0' both vanish (both bands
    exactly full or empty) are dropped. Returns (D, relevant pairs).
    """
    d = geometry.dim
    dropped = inactive_pairs(occupation_levels(geometry.energies, mu, temperature))
    curvature = geometry.berry_curvature(dropped)[:, d:, d:]
    slope = fermi_dirac_derivative(geometry.energies, mu, temperature)
    return -jnp.einsum("n,nc,nab->cab", slope, geometry.velocity(), curvature), ~dropped
