"""Per-point integrands of the kinetic theories (PHYSICS.md section 3), before the k-sum.

Each function maps one phase-space point (x, k) to the contribution of int dk (...) at that point;
:mod:`._integrate` sums them with the grid weights. Carrier charge q = -1, so J = -int dk f dx/dt.

Fermi-level scans. ``mu`` and ``temperature`` are (L,) arrays of L levels (mu_l, T_l): the geometry
of the point (eigensystem, dH, curvature, the MSCT hybridisation, none of which depends on mu or T)
is computed once, and only the occupation-weighted sums are taken per level, vectorised. Every
value gets a leading level axis (L, ...).

Band touchings. Occupation-weighted sums of curvature-like pair terms are taken in the Fermi-sea
form sum_n f_n Omega_n = sum_{n<m} (f_n - f_m) Omega_nm: pairs of bands at the same occupation level
(both exactly full or both exactly empty, ``_distribution.occupation_levels``) are dropped before
any division (``dropped`` masks of :class:`~semiclassical_jax.geometry.BandGeometry`), and so are
Fermi-surface pair terms whose weights f0' both vanish. With several levels a pair is dropped from
the shared geometry only if it is droppable at every level (``_distribution.at_every_level``); at
the other levels its terms cancel in the sum. A touching of such bands is harmless. Every
integrand also returns the (L, N, N) mask of the pairs each level still divides by (``relevant``,
as a one-level call at that level would): the callers raise where one of them closes on a grid
point, naming the level (:mod:`._cores`).
"""

import numpy as np
import jax
import jax.numpy as jnp

from .._degenerate import divide_by_gaps, weighted_trace
from .._eigh import degeneracy_tolerance, eigh
from .._linalg import matmul_small, unrolled_sum
from .._types import Array, Bool, Complex, Float
from ..geometry._kernel import BandGeometry, depends_on_position, geometry_with_diagnostics
from ..models import AbstractModel
from ._distribution import (
    at_every_level,
    equal_occupation,
    inactive_pairs,
    level_occupations,
)

Manifolds = tuple[tuple[int, ...], ...]
Pairs = Bool[Array, "n n"]
# The relevant pairs of each of L levels.
LevelPairs = Bool[Array, "L n n"]


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
    geometry: BandGeometry,
    field: Float[Array, " d"],
    mu: Float[Array, " L"],
    temperature: Float[Array, " L"],
    tau: Float[Array, ""],
) -> tuple[Float[Array, "L d"], LevelPairs]:
    """SSCT (paper Eqs. 46-47): f_n = f0 - tau [d_x f0 . dx_n/dt + d_k f0 . dk_n/dt], J = -sum_n f_n dx_n/dt.

    (dx_n/dt, dk_n/dt) from the full Abelian EOM with all four curvature blocks; d_lambda f0(eps_n)
    = f0'(eps_n) <u_n|dH_lambda|u_n> (Hellmann-Feynman); the rates are shared by the L levels.
    Returns (J of each level, relevant pairs of each level). Dropped pairs: both bands exactly
    empty (they contribute nothing), and for a uniform H, where dx/dt is linear in Omega, also
    both exactly full (their anomalous terms cancel pairwise).
    """
    d = geometry.dim
    f0, slope, levels = level_occupations(geometry.energies, mu, temperature)  # (L, N)
    empty = levels == 0.0
    per_level = empty[:, :, None] & empty[:, None, :]
    if geometry.uniform:
        per_level = equal_occupation(levels) & inactive_pairs(levels)
    rates = geometry.phase_space_velocity(field, at_every_level(per_level))  # (N, 2d)
    gradient = geometry.gradient()  # (N, 2d) = d eps_n / d lambda
    occupation = f0 - tau * slope * jnp.sum(gradient * rates, axis=-1)  # (L, N)
    return -occupation @ rates[:, :d], ~per_level


def hybridisation(
    geometry: BandGeometry, manifold: tuple[int, ...], field: Array
) -> tuple[Float[Array, " na"], Complex[Array, "na na"]]:
    """Steps 1-2 of MSCT (paper Eq. 55) for one manifold: the hybridised energies E_i (Na,),
    ascending, and the mixing matrix (Na, Na) whose column i is eta^(i), the eigenvectors of
    Hbar_nm = eps_n delta_nm + E . R_k,nm, R_k,nm = i (dH_k)_nm / (eps_m - eps_n) on the manifold
    (zero between degenerate bands of the manifold, see :func:`_hybridised_manifold`)."""
    index = jnp.array(manifold)
    eps = geometry.energies[index]
    dh_k = geometry.dH[geometry.dim :, index][:, :, index]  # (d, Na, Na)
    if len(manifold) == 1:
        return eps, jnp.ones((1, 1), dh_k.dtype)
    splitting = geometry.splitting_block(index)
    tolerance = degeneracy_tolerance(geometry.energies)
    connection = -1j * divide_by_gaps(dh_k, eps, eps, splitting, splitting, tolerance)
    matrix = jnp.diag(eps).astype(dh_k.dtype) + jnp.tensordot(field, connection, axes=1)
    if splitting is not None:  # zero here; its derivative is P dH P on degenerate pairs
        matrix = matrix + splitting
    return eigh(matrix)  # column i: eta^(i)


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
    dh = geometry.dH[:, index][:, :, index]  # (2d, Na, Na)
    energies, mixing = hybridisation(geometry, manifold, field)
    expectation = _diagonal_in(mixing, dh).T  # (Na, 2d)
    velocity, force = expectation[:, d:], -expectation[:, :d]
    if len(manifold) < n_bands or geometry.position_curvature is not None:
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
    mu: Float[Array, " L"],
    temperature: Float[Array, " L"],
    tau: Float[Array, ""],
    manifolds: Manifolds,
) -> tuple[Float[Array, "L d"], BandGeometry, Float[Array, ""], LevelPairs]:
    """MSCT, the paper's non-adiabatic theory (PHYSICS.md section 3 steps 1-5, Eqs. 54-62).

    g_i = f0(E_i) - tau [d_x f0(E_i) . v_i + d_k f0(E_i) . (-E + Ft_i)], J = -sum_i g_i v_i.
    d_lambda E_i is Hellmann-Feynman for one-band manifolds and forward-mode autodiff of the
    (gauge-invariant) hybridised energies otherwise. The hybridisation (E_i, v_i, Ft_i and the
    derivatives of E_i) does not depend on mu or T: it is computed once for the L levels, and only
    g_i per level. Returns (J of each level (L, d), the geometry at (x, k), its relative
    non-Hermiticity, the relevant pairs of each level). Between two one-band manifolds, pairs of
    bands both exactly full or both exactly empty (at every level) are dropped from F (g_i = f0
    there and v_i is linear in F, so their terms cancel); a multi-band manifold keeps every pair
    to its remote bands.
    """
    d = x.shape[0]
    n_bands = sum(len(manifold) for manifold in manifolds)  # a complete partition
    cross = _cross_pairs(manifolds, n_bands)
    single = _single_band(manifolds, n_bands)

    def hybridised(point):
        geometry, non_hermiticity, _ = geometry_with_diagnostics(model, point[:d], point[d:])
        levels = level_occupations(geometry.energies, mu, temperature)[2]
        per_level = single & equal_occupation(levels) & inactive_pairs(levels)  # (L, N, N)
        dropped = at_every_level(per_level)
        parts = [_hybridised_manifold(geometry, m, field, dropped) for m in manifolds]
        energies, velocity, force = (jnp.concatenate(p, axis=0) for p in zip(*parts))
        return energies, (energies, velocity, force, geometry, non_hermiticity, cross & ~per_level)

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
    g0, slope, _ = level_occupations(energies, mu, temperature)  # (L, N) of the E_i
    drive = jnp.concatenate([velocity, force - field[None, :]], axis=-1)  # (v_i, -E + Ft_i)
    occupation = g0 - tau * slope * jnp.sum(gradient * drive, axis=-1)
    return -occupation @ velocity, geometry, non_hermiticity, relevant


def nonabelian_hall_current(
    geometry: BandGeometry,
    field: Float[Array, " d"],
    mu: Float[Array, " L"],
    temperature: Float[Array, " L"],
    manifolds: Manifolds,
) -> tuple[Float[Array, "L d"], LevelPairs]:
    """Paper Eq. 53, J_a = -sum_b Tr F^{k_a k_b} E_b per manifold, with each band's diagonal
    element F_nn weighted by f0(eps_n) (exactly Eq. 53 for a degenerate, fully occupied manifold;
    the intrinsic anomalous Hall current for one-band manifolds).

    F_nn = sum_{l remote} Omega_nl, so the sum over manifolds is the Fermi-sea form
    sum (f_n - f_l) Omega_nl over pairs in different manifolds: pairs at the same occupation level
    (at every level) are dropped. Returns (J of each level (L, d), relevant pairs of each level).
    """
    d = geometry.dim
    f0, slopes, levels = level_occupations(geometry.energies, mu, temperature)  # (L, N)
    per_level = equal_occupation(levels)
    dropped = at_every_level(per_level)
    total = jnp.zeros((mu.shape[0], d))
    for manifold in manifolds:
        if len(manifold) == geometry.n_bands and geometry.position_curvature is None:
            continue  # no remote bands and no position terms: F = 0
        index = jnp.array(manifold)
        curvature = geometry.nonabelian_curvature(manifold, dropped)[d:, d:]  # (d, d, Na, Na)
        splitting = geometry.splitting_block(index)
        driven = jnp.einsum("abnm,b->anm", curvature, field)
        total = total - weighted_trace(f0[:, index], slopes[:, index], splitting, driven)
    return total, _cross_pairs(manifolds, geometry.n_bands) & ~per_level


def hall_conductivity(
    geometry: BandGeometry, mu: Float[Array, " L"], temperature: Float[Array, " L"]
) -> tuple[Float[Array, "L d d"], LevelPairs]:
    """sigma_ab = -sum_n f0(eps_n) Omega_n^{k_a k_b} (intrinsic; Kubo/TKNN, sigma_xy = -C e^2/h).

    In the Fermi-sea form -sum_{n<m} (f_n - f_m) Omega_nm: pairs at the same occupation level (at
    every level) are dropped. The curvature matrix is shared by the L levels. Returns (sigma of
    each level (L, d, d), relevant pairs of each level).
    """
    occupation, slopes, levels = level_occupations(geometry.energies, mu, temperature)  # (L, N)
    per_level = equal_occupation(levels)
    dropped = at_every_level(per_level)
    # Omega_n^{ab} is the diagonal of a Hermitian matrix (geometry.BandGeometry.curvature_matrix);
    # the whole matrix enters the derivative where a degeneracy splits (_degenerate.weighted_trace).
    curvature = geometry.curvature_matrix(dropped)  # (d, d, N, N)
    return -weighted_trace(occupation, slopes, geometry.splitting, curvature), ~per_level


def drude_conductivity(
    geometry: BandGeometry,
    mu: Float[Array, " L"],
    temperature: Float[Array, " L"],
    tau: Float[Array, ""],
) -> tuple[Float[Array, "L d d"], LevelPairs]:
    """sigma_ab = -tau sum_n f0'(eps_n) v_n,a v_n,b (the linear SSCT term without curvature).

    One (L, d, d) value for the L levels. No inter-band term: no relevant pairs ((1, N, N) False).
    """
    velocity = geometry.velocity()
    slope = level_occupations(geometry.energies, mu, temperature)[1]  # (L, N)
    n = geometry.n_bands
    value = -tau * jnp.einsum("ln,na,nb->lab", slope, velocity, velocity)
    return value, np.zeros((1, n, n), bool)


def berry_curvature_dipole(
    geometry: BandGeometry, mu: Float[Array, " L"], temperature: Float[Array, " L"]
) -> tuple[Float[Array, "L d d d"], LevelPairs]:
    """D_cab = sum_n int f0 d_c Omega_n^{k_a k_b} = -sum_n int f0'(eps_n) v_n,c Omega_n^{k_a k_b}.

    (The Fermi-surface form; it equals the Fermi-sea form when f0 Omega vanishes on the grid's
    boundary, always for a Brillouin zone.) Pairs whose weights f0' both vanish (both bands
    exactly full or empty, at every level) are dropped; the curvature is shared by the L levels.
    Returns (D of each level (L, d, d, d), relevant pairs of each level).
    """
    d = geometry.dim
    _, slope, levels = level_occupations(geometry.energies, mu, temperature)  # (L, N)
    per_level = inactive_pairs(levels)
    curvature = geometry.berry_curvature(at_every_level(per_level))[:, d:, d:]
    return -jnp.einsum("ln,nc,nab->lcab", slope, geometry.velocity(), curvature), ~per_level


def orbital_magnetisation(
    geometry: BandGeometry, mu: Float[Array, " L"], temperature: Float[Array, " L"]
) -> tuple[Float[Array, "L c"], LevelPairs]:
    """M^c = sum_n [f0(eps_n) m_n^c + T log(1 + exp((mu - eps_n) / T)) Omega_n^c] (PHYSICS.md
    section 5; RMP 82, 1959, Eq. 3.29 with charge -1); at T = 0 the second weight is
    (mu - eps_n) theta(mu - eps_n). Pairs of bands both full or both empty cancel between the
    moment and the curvature term and are dropped (Fermi-sea form). Returns (M of each level
    (L, c), relevant pairs of each level); c = 1 (M_z) in 2D, 3 in 3D.
    """
    occupation, _, levels = level_occupations(geometry.energies, mu, temperature)  # (L, N)
    per_level = equal_occupation(levels)
    dropped = at_every_level(per_level)
    e, m, t = geometry.energies[None, :], mu[:, None], temperature[:, None]
    positive = t > 0
    safe = jnp.where(positive, t, 1.0)
    grand = jnp.where(positive, safe * jax.nn.softplus((m - e) / safe), jnp.maximum(m - e, 0.0))
    grand = jnp.where(levels == 1.0, m - e, jnp.where(levels == 0.0, 0.0, grand))
    # moment and curvature vector without the dropped pairs, whose terms cancel between them
    moment = geometry.orbital_moment(dropped)
    curvature = geometry.curvature_vector(dropped)
    return occupation @ moment + grand @ curvature, ~per_level
