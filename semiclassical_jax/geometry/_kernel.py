"""The per-point geometry kernel (PHYSICS.md section 1): one evaluation at lambda = (x, k).

:func:`geometry_with_diagnostics` diagonalises H(x, k) and rotates dH/dlambda (forward-mode
autodiff) into the band basis; :class:`BandGeometry` holds the result, and every band quantity is a
contraction of it:

* velocity v_n = (dH_k)_nn, force F_n = -(dH_x)_nn (Hellmann-Feynman);
* inter-band Berry connection R_lambda,nm = i (dH_lambda)_nm / (eps_m - eps_n);
* Abelian curvature (paper Eq. 44), all four blocks of the 2d x 2d phase-space tensor,
  Omega_n^{ab} = -2 Im sum_{m != n} (dH_a)_nm (dH_b)_mn / (eps_n - eps_m)^2;
* projector derivative of a manifold a with remote bands r,
  dP_lambda = sum_{n in a, l in r} (|u_l> (dH_lambda)_ln <u_n| + h.c.) / (eps_n - eps_l);
* non-Abelian curvature (paper Eqs. 40-41) F^{ab} = i P [dP_a, dP_b] P, in the band basis of a:
  F^{ab}_nm = i sum_{l in r} [G_a,nl conj(G_b,ml) - G_b,nl conj(G_a,ml)],
  G_lambda,nl = (dH_lambda)_nl / (eps_n - eps_l).

Only energy differences between a manifold and its remote bands appear in dP and F, so crossings
inside a manifold are harmless; eigenvectors are never differentiated.

Position terms (issue 17; Wang, Yates, Souza, Vanderbilt, PRB 74, 195118 (2006), Eqs. 21-32): a
model whose Bloch basis is not point-like carries the intra-cell position operator A^W(x, k)
(:meth:`AbstractModel.intracell_position`, (d, N, N)). The full Berry connection is then
A = A^H + U^dagger A^W U. Everything above follows from one replacement: dH_k is the covariant
derivative U^dagger (dH_k - i [A^W_k, H]) U, whose inter-band quotient is
i (R^H + U^dagger A^W U)_nm, plus the Wannier curvature
Fbar^{k_a k_b} = U^dagger (d_a A^W_b - d_b A^W_a - i [A^W_a, A^W_b]) U added to Omega_n (its
diagonal) and to F (its manifold block). Without A^W (every model but a Wannier90 model read with
its r(R)) nothing changes. Units: natural (hbar = e =
1); Omega^{kk} has units of length^2, Omega^{xk} is dimensionless, Omega^{xx} has units of
1/length^2. Index order everywhere: lambda = (x_1..x_d, k_1..k_d).

This module is the package's internal API for the layers above (dynamics, transport, grids): they
call :func:`band_geometry_unchecked` (or :func:`geometry_with_diagnostics`) inside their own
compiled code and do their checks through ``_guards``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.extend.core import Var

from .._degenerate import degenerate_splitting, divide_by_gaps
from .._eigh import degeneracy_tolerance, eigh
from .._linalg import UNROLLED_MAX, matmul_small, unrolled_max, unrolled_sum
from .._types import Array, Bool, Complex, Float
from ..models import AbstractModel
from ._symplectic import symplectic_solve

# Two bands are "closed" (touch) at a point when |eps_n - eps_m| <= GAP_RTOL x the MODEL's energy
# scale: for a k-integral the largest max_n |eps_n| over every evaluated point, for a single point
# the largest Frobenius norm of H over the point and fixed probe points (geometry._public). Never
# the local energies, which vanish at a Dirac node. An inter-band quantity that needs such a pair
# is an error; pairs within the eigensolver's degeneracy tolerance (_eigh.DEGENERACY_RTOL, relative
# to the local energies: exact degeneracies such as Kramers pairs) keep their documented treatment.
GAP_RTOL = 1e-8


def energy_scale(energies: Float[Array, " n"]) -> Float[Array, ""]:
    """max_n |eps_n| at one point (the k-integrals reduce it to the model's energy scale)."""
    n = energies.shape[0]
    if n > UNROLLED_MAX:
        return jnp.max(jnp.abs(energies))
    return unrolled_max([jnp.abs(energies[i]) for i in range(n)])


def complement(manifold: tuple[int, ...], n_bands: int) -> tuple[int, ...]:
    """The band indices of an n_bands-band model that are not in ``manifold``."""
    return tuple(n for n in range(n_bands) if n not in manifold)


class BandGeometry(eqx.Module):
    """Everything the geometry needs at one phase-space point (PHYSICS.md section 1).

    ``energies``: (N,) ascending. ``states``: (N, N), column n is u_n in the orbital basis.
    ``dH``: (2d, N, N), ``dH[a, n, m]`` = <u_n| dH/dlambda_a |u_m>, lambda = (x, k).
    ``splitting``: (N, N) zeros whose derivative is P dH P on degenerate pairs (``_degenerate.py``):
    it makes derivatives of gauge-invariant outputs exact when a perturbation splits a degeneracy.
    ``None`` (a geometry built by hand) leaves that correction out.
    ``uniform`` (static): H does not depend on x, so the x blocks of dH are zero and the
    contractions skip them.
    Position terms (None without): ``position_curvature`` (2d, 2d, N, N) = U^dagger F^W U (k-k
    block only); ``dH`` is then the covariant derivative (module docstring).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> g = sj.band_geometry(m, None, [0.0, 0.0])
        >>> type(g).__name__, g.n_bands
        ('BandGeometry', 2)
        >>> # k-k block of the lower band's curvature: v^2 / (2 Delta^2) = 1 / 0.18
        >>> round(float(g.berry_curvature()[0, 2, 3]), 4)
        5.5556
    """

    energies: Float[Array, " n"]
    states: Complex[Array, "n n"]
    dH: Complex[Array, "2d n n"]
    splitting: Complex[Array, "n n"] | None = None
    uniform: bool = eqx.field(static=True, default=False)
    position_curvature: Complex[Array, "2d 2d n n"] | None = None

    @property
    def dim(self) -> int:
        return self.dH.shape[0] // 2

    @property
    def n_bands(self) -> int:
        return self.energies.shape[0]

    def velocity(self) -> Float[Array, "n d"]:
        """v_n = <u_n| dH/dk |u_n> (units energy x length)."""
        return jnp.real(jnp.diagonal(self.dH[self.dim :], axis1=-2, axis2=-1)).T

    def force(self) -> Float[Array, "n d"]:
        """F_n = -<u_n| dH/dx |u_n> (units energy / length)."""
        return -jnp.real(jnp.diagonal(self.dH[: self.dim], axis1=-2, axis2=-1)).T

    def gradient(self) -> Float[Array, "n 2d"]:
        """d eps_n / dlambda = <u_n| dH/dlambda |u_n> (Hellmann-Feynman), lambda = (x, k)."""
        return jnp.real(jnp.diagonal(self.dH, axis1=-2, axis2=-1)).T

    def closest_pair(
        self, relevant: Bool[Array, "n n"], straddling: Bool[Array, "n n"] | None = None
    ) -> tuple[Float[Array, ""], Array]:
        """(min |eps_n - eps_m|, the bands (n, m), n < m) over the ``relevant`` (a symmetric mask)
        non-degenerate pairs, and the relevant ``straddling`` pairs even when degenerate (bands
        on either side of a T = 0 Fermi level: a touching there is never harmless).

        The gap an inter-band quantity divides by: compared with GAP_RTOL x the model's energy
        scale to find a band touching. (inf, (0, 0)) when no pair is relevant. Small N: unrolled
        comparisons (a reduction per point is its own slow XLA CPU kernel under vmap).
        """
        e = self.energies
        tolerance = degeneracy_tolerance(e)
        if straddling is None:
            straddling = jnp.zeros(relevant.shape, bool)
        pairs = [(n, m) for n in range(self.n_bands) for m in range(n + 1, self.n_bands)]
        best, first, second = jnp.asarray(jnp.inf, e.dtype), jnp.asarray(0), jnp.asarray(0)
        if self.n_bands > UNROLLED_MAX:
            gaps = jnp.abs(e[:, None] - e[None, :])
            upper = jnp.triu(jnp.ones(gaps.shape, bool), 1)
            keep = relevant & upper & ((gaps > tolerance) | straddling)
            flat = jnp.argmin(jnp.where(keep, gaps, jnp.inf).reshape(-1))
            return jnp.where(keep, gaps, jnp.inf).reshape(-1)[flat], jnp.stack(
                [flat // self.n_bands, flat % self.n_bands]
            )
        for n, m in pairs:
            gap = jnp.abs(e[n] - e[m])
            counts = relevant[n, m] & ((gap > tolerance) | straddling[n, m])
            closer = counts & (gap < best)
            best = jnp.where(closer, gap, best)
            first, second = jnp.where(closer, n, first), jnp.where(closer, m, second)
        return best, jnp.stack([first, second])

    def gap_quotients(
        self, components: slice = slice(None), dropped: Bool[Array, "n n"] | None = None
    ) -> Complex[Array, "c n n"]:
        """Q_lambda,nm = (dH_lambda)_nm / (eps_n - eps_m) for the lambda in ``components``.

        Zero on the diagonal, between degenerate bands and on the ``dropped`` pairs (a mask: no
        division is evaluated there, so values and derivatives stay finite where they touch).
        """
        e, s = self.energies, self.splitting
        tolerance = degeneracy_tolerance(e)
        if dropped is not None:
            tolerance = jnp.where(dropped, jnp.inf, tolerance)
        return divide_by_gaps(self.dH[components], e, e, s, s, tolerance)

    def berry_connection(self) -> Complex[Array, "2d n n"]:
        """Inter-band Berry connection R_lambda,nm = i <u_n|d_lambda u_m> = i dH_nm / (eps_m - eps_n).

        Zero on the diagonal (the intra-band connection is gauge dependent and not returned) and
        between degenerate bands.
        """
        return -1j * self.gap_quotients()

    def berry_curvature(self, dropped: Bool[Array, "n n"] | None = None) -> Float[Array, "n 2d 2d"]:
        """Abelian curvature Omega_n^{ab} of every band, paper Eq. 44.

        At an exact degeneracy the terms between the degenerate bands are dropped: each band's
        value is then gauge dependent, but their sum over the degenerate set is the
        gauge-invariant trace of the non-Abelian curvature (use :meth:`nonabelian_curvature`).
        ``dropped``: further pairs (n, m) left out of both Omega_n and Omega_m (the pair terms
        are antisymmetric, so occupation-weighted sums lose (f_n - f_m) Omega_nm).
        """
        # -2 Im dH_a,nm dH_b,mn / (eps_n - eps_m)^2 = 2 Im Q_a,nm Q_b,mn. For a uniform H only the
        # k-k block is non-zero.
        omega = self._pair_curvature(dropped)
        if self.position_curvature is None:
            return omega
        return omega + jnp.real(
            jnp.diagonal(self.position_curvature, axis1=-2, axis2=-1)
        ).transpose(2, 0, 1)

    def _pair_curvature(self, dropped: Bool[Array, "n n"] | None) -> Float[Array, "n 2d 2d"]:
        """2 Im sum_m Q_a,nm Q_b,mn: paper Eq. 44 (the whole Omega_n without position terms)."""
        n2d = self.dH.shape[0]
        first = self.dim if self.uniform else 0
        quotients = self.gap_quotients(slice(first, None), dropped)
        if self.n_bands > UNROLLED_MAX:
            live = 2.0 * jnp.imag(jnp.einsum("anm,bmn->nab", quotients, quotients))
            return jnp.zeros((self.n_bands, n2d, n2d), live.dtype).at[:, first:, first:].set(live)
        # Small N: unrolled products and sums, a < b only (Omega^{ba} = -Omega^{ab}). Q_b is
        # anti-Hermitian, so Im(Q_a,nm Q_b,mn) = Re Q_a,nm Im Q_b,nm - Im Q_a,nm Re Q_b,nm.
        re, im = jnp.real(quotients), jnp.imag(quotients)
        zero = jnp.zeros(self.energies.shape, re.dtype)
        upper = {}
        for a in range(n2d):
            for b in range(a + 1, n2d):
                if a < first:
                    upper[a, b] = zero
                else:
                    i, j = a - first, b - first
                    upper[a, b] = 2.0 * unrolled_sum(
                        [
                            re[i][:, m] * im[j][:, m] - im[i][:, m] * re[j][:, m]
                            for m in range(self.n_bands)
                        ]
                    )
        rows = [
            jnp.stack(
                [zero if a == b else upper[a, b] if a < b else -upper[b, a] for b in range(n2d)],
                axis=-1,
            )
            for a in range(n2d)
        ]
        return jnp.stack(rows, axis=-2)

    def phase_space_velocity(
        self, electric_field: Float[Array, " d"], dropped: Bool[Array, "n n"] | None = None
    ) -> Float[Array, "n 2d"]:
        """(dx/dt, dk/dt) of every band from the Abelian EOM (PHYSICS.md section 2, paper Eq. 43).

        Uniform field E, carrier charge -1; each band with its own four-block curvature (without
        the ``dropped`` pairs, see :meth:`berry_curvature`).
        """
        omega = self.berry_curvature(dropped)
        return jax.vmap(symplectic_solve, in_axes=(0, 0, None))(
            omega, self.gradient(), electric_field
        )

    def manifold_gap(self, manifold: tuple[int, ...]) -> Float[Array, ""]:
        """min |eps_n - eps_l| over n in the manifold and l in the remote bands."""
        remote = complement(manifold, self.n_bands)
        e = self.energies
        return jnp.min(jnp.abs(e[jnp.array(manifold)][:, None] - e[jnp.array(remote)][None, :]))

    def remote_couplings(
        self, manifold: tuple[int, ...], dropped: Bool[Array, "n n"] | None = None
    ) -> Complex[Array, "2d na nr"]:
        """G_lambda,nl = (dH_lambda)_nl / (eps_n - eps_l), n in the manifold, l in the remote bands.

        Zero on the ``dropped`` pairs (no division evaluated there).
        """
        a, r = jnp.array(manifold), jnp.array(complement(manifold, self.n_bands))
        e = self.energies
        tolerance = None if dropped is None else jnp.where(dropped[a][:, r], jnp.inf, 0.0)
        return divide_by_gaps(
            self.dH[:, a][:, :, r],
            e[a],
            e[r],
            self.splitting_block(a),
            self.splitting_block(r),
            tolerance,
        )

    def splitting_block(self, bands: Array) -> Complex[Array, "b b"] | None:
        """``splitting`` restricted to the given bands (rows and columns); None if it is None."""
        return None if self.splitting is None else self.splitting[bands][:, bands]

    def projector_derivative(self, manifold: tuple[int, ...]) -> Complex[Array, "2d n n"]:
        """dP/dlambda of the manifold's projector, in the orbital basis (with position terms the
        covariant derivative dP - i [A^W, P])."""
        a, r = jnp.array(manifold), jnp.array(complement(manifold, self.n_bands))
        g = self.remote_couplings(manifold)  # (2d, na, nr)
        ua, ur = self.states[:, a], self.states[:, r]
        # |u_l> dH_ln <u_n| / (e_n - e_l)
        half = jnp.einsum("il,anl,jn->aij", ur, jnp.conj(g), jnp.conj(ua))
        return half + jnp.conj(jnp.swapaxes(half, -1, -2))

    def nonabelian_curvature(
        self, manifold: tuple[int, ...], dropped: Bool[Array, "n n"] | None = None
    ) -> Complex[Array, "2d 2d na na"]:
        """F^{ab}_nm = <u_n| i P [dP_a, dP_b] P |u_m>, n, m in the manifold (paper Eqs. 40-41).

        Without the ``dropped`` (manifold, remote) pairs: F_nn = sum_l Omega_nl, so an
        occupation-weighted sum over all manifolds loses (f_n - f_l) Omega_nl per dropped pair.
        """
        if len(manifold) == self.n_bands:  # no remote bands: only the Wannier curvature
            n2d, na = self.dH.shape[0], len(manifold)
            curvature = jnp.zeros((n2d, n2d, na, na), self.dH.dtype)
        else:
            g = self.remote_couplings(manifold, dropped)
            # (P dP_a dP_b P)_nm = (G_a G_b^dagger)_nm
            gg = matmul_small(g[:, None], jnp.conj(jnp.swapaxes(g, -1, -2))[None, :])
            curvature = 1j * (gg - jnp.swapaxes(gg, 0, 1))
        if self.position_curvature is None:
            return curvature
        a = jnp.array(manifold)
        return curvature + self.position_curvature[:, :, a][:, :, :, a]

    def orbital_moment(self, dropped: Bool[Array, "n n"] | None = None) -> Float[Array, "n c"]:
        """Orbital magnetic moment of every band (PHYSICS.md section 5, charge -1), shape (N, c):
        c = 1 (m_z) in 2D, c = 3 in 3D,

        m_n^c = (1/2) eps_abc Im sum_{l != n} (dH_k_a)_nl (dH_k_b)_ln / (eps_l - eps_n),

        the sum-over-states form of m = (i q / 2) <d u| x (H - eps) |d u> (q = -1; Xiao, Chang,
        Niu, RMP 82, 1959, Eq. 3.7). PHYSICS.md leaves the overall sign to the massive Dirac
        closed forms: this sign gives the exact n = 0 Landau level, and for that model
        m_z = -valley Delta v^2 / (2 (Delta^2 + v^2 k^2)) in both bands (= eps_c Omega_c of the
        upper band). Units: energy x length^2 (natural units, hbar = e = 1). Terms between
        exactly degenerate bands are dropped, as in :meth:`berry_curvature`, and so are the
        ``dropped`` pairs (a symmetric mask; no division is evaluated there).
        """
        self._require_no_position_terms("the orbital moment")
        d = self.dim
        quotients = self.gap_quotients(
            slice(d, None), dropped
        )  # Q_b,nl = dH_b,nl / (eps_n - eps_l)
        # (dH_a)_nl (dH_b)_ln / (eps_l - eps_n) = (dH_a)_nl Q_b,ln; summed over (a, b) with eps_abc
        # the two orders are complex conjugates, so m^c = Im sum_l (dH_a)_nl Q_b,ln, (a, b, c) cyclic.
        dh = self.dH[d:]
        pairs = axial_pairs(d)
        return jnp.stack(
            [
                jnp.imag(jnp.sum(dh[a] * jnp.swapaxes(quotients[b], -1, -2), axis=-1))
                for a, b in pairs
            ],
            axis=-1,
        )

    def manifold_orbital_moment(self, manifold: tuple[int, ...]) -> Complex[Array, "c na na"]:
        """Moment matrix of a manifold (PHYSICS.md section 5, non-Abelian), shape (c, Na, Na):

        M^c_nm = -(i/2) eps_abc sum_{l remote} G_a,nl conj(G_b,ml) (eps_l - (eps_n + eps_m) / 2),

        G_a,nl = (dH_k_a)_nl / (eps_n - eps_l): the projection of (i q / 2) <d u_n| x (H - eps)
        |d u_m> onto the remote bands with the symmetric energy reference, Hermitian; for a
        degenerate manifold the standard moment matrix, for one band :meth:`orbital_moment` with
        only the remote bands in its sum. c = 1 in 2D, 3 in 3D.
        """
        self._require_no_position_terms("the orbital moment")
        d = self.dim
        a = jnp.array(manifold)
        e = self.energies
        if len(manifold) == self.n_bands:
            return jnp.zeros((len(axial_pairs(d)), len(manifold), len(manifold)), self.dH.dtype)
        r = jnp.array(complement(manifold, self.n_bands))
        g = self.remote_couplings(manifold)[d:]  # (d, na, nr)
        weight = e[r][None, None, :] - 0.5 * (e[a][:, None, None] + e[a][None, :, None])
        components = []
        for first, second in axial_pairs(d):
            term = jnp.einsum("nl,ml,nml->nm", g[first], jnp.conj(g[second]), weight)
            components.append(-0.5j * (term - jnp.conj(term.T)))  # eps_abc: S_ba = S_ab^dagger
        return jnp.stack(components)

    def curvature_vector(self, dropped: Bool[Array, "n n"] | None = None) -> Float[Array, "n c"]:
        """Omega_n^c = eps_abc Omega_n^{k_a k_b} / 2 (PHYSICS.md section 5), shape (N, c): c = 1
        (Omega^{kx ky}) in 2D, c = 3 in 3D. Units length^2. ``dropped``: as in
        :meth:`berry_curvature`."""
        d = self.dim
        omega = self.berry_curvature(dropped)[:, d:, d:]
        return jnp.stack([omega[:, a, b] for a, b in axial_pairs(d)], axis=-1)

    def phase_space_factor(self, magnetic_field: Float[Array, " c"]) -> Float[Array, " n"]:
        """D_n = 1 - q B . Omega_n = 1 + B . Omega_n (charge q = -1; PHYSICS.md section 5), the
        modified phase-space density of every band; ``magnetic_field`` as (c,) components."""
        return 1.0 + self.curvature_vector() @ magnetic_field

    def moment_energy(self, magnetic_field: Float[Array, " c"]) -> Float[Array, " n"]:
        """eps~_n = eps_n - m_n . B (PHYSICS.md section 5); ``magnetic_field`` as (c,) components."""
        return self.energies - self.orbital_moment() @ magnetic_field

    def _require_no_position_terms(self, what: str) -> None:
        if self.position_curvature is not None:
            raise ValueError(
                f"{what} of a model with intra-cell positions (Wannier90 r(R)) also needs <r H r> "
                "matrix elements that _tb.dat does not hold; use model.without_position_terms() "
                "for the tight-binding approximation"
            )

    def curvature_matrix(
        self, dropped: Bool[Array, "n n"] | None = None
    ) -> Complex[Array, "d d n n"]:
        """The k-k block of the Hermitian matrices -i [Q_a, Q_b] + Fbar^{ab} (N, N), whose
        diagonal is Omega_n^{k_a k_b} (:meth:`berry_curvature`); the whole matrix enters the
        derivative where a degeneracy splits (``_degenerate.weighted_trace``)."""
        d = self.dim
        quotients = self.gap_quotients(slice(d, None), dropped)
        product = jnp.einsum("anm,bml->abnl", quotients, quotients)
        curvature = -1j * (product - jnp.swapaxes(product, 0, 1))
        if self.position_curvature is None:
            return curvature
        return curvature + self.position_curvature[d:, d:]


def axial_pairs(dim: int) -> tuple[tuple[int, int], ...]:
    """The (a, b) of each axial component c (moment, curvature vector Omega_c = Omega^{ab}) with
    (a, b, c) cyclic: ((0, 1),) in 2D (the z component), the three in 3D."""
    if dim == 2:
        return ((0, 1),)
    if dim == 3:
        return ((1, 2), (2, 0), (0, 1))
    raise ValueError(f"the orbital moment needs a 2D or 3D model (got dim={dim})")


def depends_on_position(model: AbstractModel, x: Array, k: Array) -> bool:
    """Whether model(x, k) depends on x: read at trace time from the jaxpr of x -> model(x, k).

    Conservative (an operation with any x-dependent input counts as x-dependent); True if the
    model cannot be traced on its own.
    """
    try:
        closed = jax.make_jaxpr(lambda xx: jnp.asarray(model(xx, k)))(x)
    except Exception:  # noqa: BLE001 - fall back to the general path, which reports real errors
        return True
    dependent = set(closed.jaxpr.invars)
    for equation in closed.jaxpr.eqns:
        if any(isinstance(v, Var) and v in dependent for v in equation.invars):
            dependent.update(equation.outvars)
    return any(isinstance(v, Var) and v in dependent for v in closed.jaxpr.outvars)


def _hamiltonian_and_derivative(
    model: AbstractModel, x: Array, k: Array
) -> tuple[Array, Array, bool]:
    """H(x, k) (N, N), dH/dlambda and whether H is uniform (independent of x).

    dH has shape (2d, N, N), lambda = (x, k), or (d, N, N) (k only) for a uniform H, whose x blocks
    are zero. Two forward-mode Jacobians, over x and over k (jacfwd also traces inside shard_map).
    """

    def hamiltonian(xx, kk):
        h = jnp.asarray(model(xx, kk))
        return h.astype(jnp.result_type(h.dtype, 1j))

    dh_k, h = jax.jacfwd(lambda kk: (hamiltonian(x, kk),) * 2, has_aux=True)(k)
    dh_k = jnp.moveaxis(dh_k, -1, 0)
    if not depends_on_position(model, x, k):
        return h, dh_k, True
    dh_x = jnp.moveaxis(jax.jacfwd(lambda xx: hamiltonian(xx, k))(x), -1, 0)
    return h, jnp.concatenate([dh_x, dh_k], axis=0), False


def intracell_position(model: AbstractModel, x: Array, k: Array) -> Array | None:
    """The model's intra-cell position operator A^W(x, k) (d, N, N), Hermitian part; None if it
    has none (point-like orbitals: the tight-binding approximation)."""
    method = getattr(model, "intracell_position", None)
    position = None if method is None else method(x, k)
    if position is None:
        return None
    position = jnp.asarray(position).astype(jnp.result_type(float, 1j))
    return 0.5 * (position + jnp.conj(jnp.swapaxes(position, -1, -2)))


def _position_terms(
    model: AbstractModel, x: Array, k: Array, energies: Array, states: Array
) -> tuple[Array, Array] | None:
    """(U^dagger F^W U (d, d, N, N), -i [Abar, eps] (d, N, N)) or None, Abar = U^dagger A^W U.

    F^W_ab = d_a A^W_b - d_b A^W_a - i [A^W_a, A^W_b] (forward mode over k); the second item is
    what turns U^dagger dH_k U into the covariant derivative (module docstring).
    """
    if intracell_position(model, x, k) is None:
        return None
    d_position, position = jax.jacfwd(
        lambda kk: (intracell_position(model, x, kk),) * 2, has_aux=True
    )(k)  # d_position[a, i, j, b] = d A^W_a,ij / dk_b
    curl = jnp.moveaxis(d_position, -1, 0)  # [a, b] = d_a A^W_b
    product = matmul_small(position[:, None], position[None, :])  # [a, b] = A^W_a A^W_b
    curvature = curl - jnp.swapaxes(curl, 0, 1) - 1j * (product - jnp.swapaxes(product, 0, 1))
    connection = _to_band_basis(states, position)
    commutator = -1j * connection * (energies[None, None, :] - energies[None, :, None])
    return _to_band_basis(states, curvature), commutator


def _to_band_basis(
    states: Complex[Array, "n n"], dh: Complex[Array, "2d n n"]
) -> Complex[Array, "2d n n"]:
    """dH'_a = U^dagger dH_a U."""
    return matmul_small(jnp.conj(states).T, matmul_small(dh, states))


def _entry_sum(a: Complex[Array, "... n n"]) -> Float[Array, ""]:
    """Sum of the real and imaginary parts of all entries: finite iff every entry is (short of
    overflow at ~1e308)."""
    re, im = jnp.real(a).reshape(-1), jnp.imag(a).reshape(-1)
    if a.shape[-1] > UNROLLED_MAX:
        return jnp.sum(re) + jnp.sum(im)
    return unrolled_sum([re[i] + im[i] for i in range(re.shape[0])])


def _max_norm(a: Complex[Array, "n n"]) -> Float[Array, ""]:
    """max_ij max(|Re a_ij|, |Im a_ij|) (within sqrt 2 of max |a_ij|, without a complex abs)."""
    re, im = jnp.abs(jnp.real(a)), jnp.abs(jnp.imag(a))
    n = a.shape[0]
    if n > UNROLLED_MAX:
        return jnp.maximum(jnp.max(re), jnp.max(im))
    return unrolled_max([jnp.maximum(re[i, j], im[i, j]) for i in range(n) for j in range(n)])


def geometry_with_diagnostics(
    model: AbstractModel, x: Array, k: Array
) -> tuple[BandGeometry, Array, Array]:
    """The kernel: (geometry, relative non-Hermiticity, whether H and dH are finite) at (x, k).

    The non-Hermiticity is max|H - H^dagger| / max|H| (over real and imaginary parts); the geometry
    is that of the Hermitian part of H. No Python checks: ``x``, ``k`` are (d,) arrays.
    """
    h, dh, uniform = _hamiltonian_and_derivative(model, x, k)
    size = _max_norm(h)
    scale = jnp.maximum(size, jnp.finfo(jnp.real(h).dtype).tiny)
    non_hermiticity = _max_norm(h - jnp.conj(h.T)) / scale
    finite = jnp.isfinite(size + _entry_sum(dh))
    h = 0.5 * (h + jnp.conj(h.T))
    energies, states = eigh(h)
    splitting = degenerate_splitting(energies, states, h)
    rotated = _to_band_basis(states, dh)
    if uniform:
        rotated = jnp.concatenate([jnp.zeros_like(rotated), rotated], axis=0)
    terms = _position_terms(model, x, k, energies, states)
    if terms is None:
        return BandGeometry(energies, states, rotated, splitting, uniform), non_hermiticity, finite
    curvature, commutator = terms
    d = k.shape[0]
    rotated = rotated.at[d:].add(commutator)
    finite = finite & jnp.isfinite(_entry_sum(commutator) + _entry_sum(curvature))
    full = jnp.zeros((2 * d, 2 * d) + curvature.shape[2:], curvature.dtype)
    geometry = BandGeometry(
        energies, states, rotated, splitting, uniform, full.at[d:, d:].set(curvature)
    )
    return geometry, non_hermiticity, finite


def band_geometry_unchecked(model: AbstractModel, x: Array, k: Array) -> BandGeometry:
    """The :class:`BandGeometry` at (x, k), without checks (for use inside compiled code)."""
    return geometry_with_diagnostics(model, x, k)[0]
