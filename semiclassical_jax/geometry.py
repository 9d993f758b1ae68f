"""Band geometry at a phase-space point lambda = (x, k), from autodiff (PHYSICS.md section 1).

One kernel, :func:`band_geometry`, diagonalises H(x, k) and rotates dH/dlambda (from autodiff)
into the band basis. Everything else is a cheap contraction of its output:

* velocity v_n = (dH_k)_nn, force F_n = -(dH_x)_nn (Hellmann-Feynman);
* inter-band Berry connection R_lambda,nm = i (dH_lambda)_nm / (eps_m - eps_n);
* Abelian curvature (paper Eq. 44), all four blocks of the 2d x 2d phase-space tensor,
  Omega_n^{ab} = -2 Im sum_{m != n} (dH_a)_nm (dH_b)_mn / (eps_n - eps_m)^2;
* projector derivative of a manifold a with remote bands r,
  dP_lambda = sum_{n in a, l in r} (|u_l> (dH_lambda)_ln <u_n| + h.c.) / (eps_n - eps_l);
* non-Abelian curvature (paper Eqs. 40-41) F^{ab} = i P [dP_a, dP_b] P, in the band basis of a:
  F^{ab}_nm = i sum_{l in r} [G_a,nl conj(G_b,ml) - G_b,nl conj(G_a,ml)],
  G_lambda,nl = (dH_lambda)_nl / (eps_n - eps_l).

Only energy differences between the manifold and its remote bands appear in dP and F, so band
crossings inside a manifold are harmless; eigenvectors are never differentiated to get geometry.
Units: natural (hbar = e = 1); with H in energy units and k in inverse length, Omega^{kk} has units
of length^2, Omega^{xk} is dimensionless, Omega^{xx} has units of 1/length^2.
Index order everywhere: lambda = (x_1..x_d, k_1..k_d).
"""

import functools
from collections.abc import Sequence
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Var

from . import _checks
from ._degenerate import degenerate_splitting, divide_by_gaps
from ._eigh import degeneracy_tolerance, eigh
from ._linalg import (
    UNROLLED_MAX,
    implicit_solve,
    levi_civita,
    matmul_small,
    unrolled_max,
    unrolled_sum,
)
from ._types import Array, Complex, Float

# A manifold is gapped at a point only if its gap to the remote bands exceeds this fraction of
# the spectral scale max|eps|.
GAP_RTOL = 1e-8


class BandGeometry(eqx.Module):
    """Everything the geometry needs at one phase-space point.

    ``energies``: (N,) ascending. ``states``: (N, N), column n is u_n in the orbital basis.
    ``dH``: (2d, N, N), ``dH[a, n, m]`` = <u_n| dH/dlambda_a |u_m>, lambda = (x, k).
    ``splitting``: (N, N) zeros whose derivative is P dH P on degenerate pairs (``_degenerate.py``):
    it makes derivatives of gauge-invariant outputs exact when a perturbation splits a degeneracy.
    ``None`` (a geometry built by hand) leaves that correction out.
    ``uniform`` (static): H does not depend on x, so the x blocks of dH are zero and the
    contractions skip them.
    """

    energies: Float[Array, " n"]
    states: Complex[Array, "n n"]
    dH: Complex[Array, "2d n n"]
    splitting: Complex[Array, "n n"] | None = None
    uniform: bool = eqx.field(static=True, default=False)

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

    def _gap_quotients(self, components: slice = slice(None)) -> Complex[Array, "c n n"]:
        """Q_lambda,nm = (dH_lambda)_nm / (eps_n - eps_m), 0 on the diagonal and between degenerate
        bands, for the lambda in ``components``."""
        e, s = self.energies, self.splitting
        return divide_by_gaps(self.dH[components], e, e, s, s, degeneracy_tolerance(e))

    def berry_connection(self) -> Complex[Array, "2d n n"]:
        """Inter-band Berry connection R_lambda,nm = i <u_n|d_lambda u_m> = i dH_nm / (eps_m - eps_n).

        Zero on the diagonal (the intra-band connection is gauge dependent and not returned) and
        between degenerate bands.
        """
        return -1j * self._gap_quotients()

    def berry_curvature(self) -> Float[Array, "n 2d 2d"]:
        """Abelian curvature Omega_n^{ab} of every band, paper Eq. 44.

        At an exact degeneracy the terms between the degenerate bands are dropped: each band's
        value is then gauge dependent, but their sum over the degenerate set is the
        gauge-invariant trace of the non-Abelian curvature (use :meth:`nonabelian_curvature`).
        """
        # -2 Im dH_a,nm dH_b,mn / (eps_n - eps_m)^2 = 2 Im Q_a,nm Q_b,mn. For a uniform H only the
        # k-k block is non-zero.
        n2d = self.dH.shape[0]
        first = self.dim if self.uniform else 0
        quotients = self._gap_quotients(slice(first, None))
        if self.n_bands > UNROLLED_MAX:
            live = 2.0 * jnp.imag(jnp.einsum("anm,bmn->nab", quotients, quotients))
            return jnp.zeros((self.n_bands, n2d, n2d), live.dtype).at[:, first:, first:].set(live)
        # Small N: unrolled products and sums (tiny batched dot_generals are slow on XLA CPU). Only
        # a < b is computed, Omega^{ba} = -Omega^{ab}. Q_b is anti-Hermitian (dH_b Hermitian), so
        # Im(Q_a,nm Q_b,mn) = -Im(Q_a,nm conj(Q_b,nm)) = Re Q_a,nm Im Q_b,nm - Im Q_a,nm Re Q_b,nm:
        # one row of each, no transposes.
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

    def phase_space_velocity(self, electric_field: Float[Array, " d"]) -> Float[Array, "n 2d"]:
        """(dx/dt, dk/dt) of every band from the Abelian EOM (PHYSICS.md section 2, paper Eq. 43).

        Uniform field E, carrier charge -1; each band with its own four-block curvature.
        """
        omega = self.berry_curvature()
        gradient = jnp.real(jnp.diagonal(self.dH, axis1=-2, axis2=-1)).T  # (N, 2d)
        return jax.vmap(symplectic_solve, in_axes=(0, 0, None))(omega, gradient, electric_field)

    def manifold_gap(self, manifold: tuple[int, ...]) -> Float[Array, ""]:
        """min |eps_n - eps_l| over n in the manifold and l in the remote bands."""
        remote = _complement(manifold, self.n_bands)
        e = self.energies
        return jnp.min(jnp.abs(e[jnp.array(manifold)][:, None] - e[jnp.array(remote)][None, :]))

    def _remote_couplings(self, manifold: tuple[int, ...]) -> Complex[Array, "2d na nr"]:
        """G_lambda,nl = (dH_lambda)_nl / (eps_n - eps_l), n in a, l in r."""
        a, r = jnp.array(manifold), jnp.array(_complement(manifold, self.n_bands))
        e = self.energies
        return divide_by_gaps(
            self.dH[:, a][:, :, r], e[a], e[r], self.splitting_block(a), self.splitting_block(r)
        )

    def splitting_block(self, bands: Array) -> Complex[Array, "b b"] | None:
        """``splitting`` restricted to the given bands (rows and columns); None if it is None."""
        return None if self.splitting is None else self.splitting[bands][:, bands]

    def projector_derivative(self, manifold: tuple[int, ...]) -> Complex[Array, "2d n n"]:
        """dP/dlambda of the manifold's projector, in the orbital basis."""
        a, r = jnp.array(manifold), jnp.array(_complement(manifold, self.n_bands))
        g = self._remote_couplings(manifold)  # (2d, na, nr)
        ua, ur = self.states[:, a], self.states[:, r]
        half = jnp.einsum(
            "il,anl,jn->aij", ur, jnp.conj(g), jnp.conj(ua)
        )  # |u_l> dH_ln <u_n| / (e_n - e_l)
        return half + jnp.conj(jnp.swapaxes(half, -1, -2))

    def nonabelian_curvature(self, manifold: tuple[int, ...]) -> Complex[Array, "2d 2d na na"]:
        """F^{ab}_nm = <u_n| i P [dP_a, dP_b] P |u_m>, n, m in the manifold (paper Eqs. 40-41)."""
        g = self._remote_couplings(manifold)
        # (P dP_a dP_b P)_nm = (G_a G_b^dagger)_nm
        gg = matmul_small(g[:, None], jnp.conj(jnp.swapaxes(g, -1, -2))[None, :])
        return 1j * (gg - jnp.swapaxes(gg, 0, 1))


def symplectic_solve(
    omega: Float[Array, "2d 2d"], gradient: Float[Array, " 2d"], electric_field: Float[Array, " d"]
) -> Float[Array, " 2d"]:
    """Solve the Abelian / non-Abelian EOM (PHYSICS.md section 2), linear in dlambda/dt:

        dx/dt = <dH_k> - Omega^{kx} dx/dt - Omega^{kk} dk/dt
        dk/dt = -E - <dH_x> + Omega^{xx} dx/dt + Omega^{xk} dk/dt

    i.e. (1 + S Omega) dlambda/dt = S <dH> - (0, E). ``gradient`` = <dH/dlambda>, ``omega`` the
    curvature (expectation value) in the order lambda = (x, k). With the Berry-modified symplectic
    form K = Omega - S (antisymmetric, as Omega is; S^2 = -1) this is K dlambda/dt = <dH> + (E, 0).

    For d <= 2 the inverse of K is closed form, K^-1 = -(*K) / Pf(K), with the dual
    (*K)_ij = sum_{k<l} eps_ijkl K_kl and the Pfaffian Pf(K) = K_01 K_23 - K_02 K_13 + K_03 K_12
    (d = 1: (*K) = eps, Pf = K_01): a handful of elementwise products with as short derivatives,
    no pivoting to differentiate (the VJP of the 4 x 4 solve: 7 XLA kernels; pivoted elimination:
    55), which matters inside the ODE solver's reverse pass. Pf(K)^2 = det(1 + S Omega) is the
    phase-space density factor, so the formula is exact wherever the equations of motion are
    regular. The dual is a sum of six scalar-times-constant terms rather than one contraction with
    the Levi-Civita tensor, which XLA CPU hands to a slow library kernel under vmap. d = 3:
    pivoted elimination with the implicit-function derivative (``_linalg.implicit_solve``).
    """
    d = electric_field.shape[0]
    s_matrix = np.block([[np.zeros((d, d)), np.eye(d)], [-np.eye(d), np.zeros((d, d))]])
    form = omega - jnp.asarray(s_matrix, dtype=omega.dtype)
    rhs = gradient + jnp.concatenate([electric_field, jnp.zeros_like(electric_field)])
    if d > 2:
        return implicit_solve(form, rhs)
    if d == 1:
        dual, pfaffian = jnp.asarray(levi_civita(2), dtype=omega.dtype), form[0, 1]
    else:
        eps = levi_civita(4)
        dual = sum(form[i, j] * eps[:, :, i, j] for i in range(4) for j in range(i + 1, 4))
        pfaffian = form[0, 1] * form[2, 3] - form[0, 2] * form[1, 3] + form[0, 3] * form[1, 2]
    return -jnp.sum(dual * rhs[None, :], axis=1) / pfaffian


def _complement(manifold: tuple[int, ...], n_bands: int) -> tuple[int, ...]:
    return tuple(n for n in range(n_bands) if n not in manifold)


def _depends_on_position(model: Any, x: Array, k: Array) -> bool:
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


def _hamiltonian_and_derivative(model: Any, x: Array, k: Array) -> tuple[Array, Array, bool]:
    """H(x, k), dH/dlambda and whether H is uniform (independent of x).

    dH has shape (2d, N, N), lambda = (x, k), or (d, N, N) (k only) for a uniform H: its x blocks
    are zero, and carrying them through the rotation and the contractions costs ~40 % of a
    two-band curvature. Two forward-mode Jacobians, over x and over k, rather than one over (x, k)
    (the primal H traced in both is one computation after XLA's CSE). jacfwd (not linearize +
    vmap over a basis) also traces inside shard_map.
    """

    def hamiltonian(xx, kk):
        h = jnp.asarray(model(xx, kk))
        return h.astype(jnp.result_type(h.dtype, 1j))

    dh_k, h = jax.jacfwd(lambda kk: (hamiltonian(x, kk),) * 2, has_aux=True)(k)
    dh_k = jnp.moveaxis(dh_k, -1, 0)
    if not _depends_on_position(model, x, k):
        return h, dh_k, True
    dh_x = jnp.moveaxis(jax.jacfwd(lambda xx: hamiltonian(xx, k))(x), -1, 0)
    return h, jnp.concatenate([dh_x, dh_k], axis=0), False


def _to_band_basis(
    states: Complex[Array, "n n"], dh: Complex[Array, "2d n n"]
) -> Complex[Array, "2d n n"]:
    """dH'_a = U^dagger dH_a U."""
    return matmul_small(jnp.conj(states).T, matmul_small(dh, states))  # unrolled for small N


def _entry_sum(a: Complex[Array, "... n n"]) -> Float[Array, ""]:
    """Sum of the real and imaginary parts of all entries: finite iff every entry is (short of
    overflow at ~1e308). Small N: additions that XLA fuses into the loop computing ``a``."""
    re, im = jnp.real(a).reshape(-1), jnp.imag(a).reshape(-1)
    if a.shape[-1] > UNROLLED_MAX:
        return jnp.sum(re) + jnp.sum(im)
    return unrolled_sum([re[i] + im[i] for i in range(re.shape[0])])


def _max_norm(a: Complex[Array, "n n"]) -> Float[Array, ""]:
    """max_ij max(|Re a_ij|, |Im a_ij|) (within sqrt 2 of max |a_ij|, without a complex abs).

    Small N: an elementwise maximum over the N^2 entries, which XLA fuses into the surrounding
    loop; a reduction there is its own kernel and made the public two-band curvature ~15 % slower.
    """
    re, im = jnp.abs(jnp.real(a)), jnp.abs(jnp.imag(a))
    n = a.shape[0]
    if n > UNROLLED_MAX:
        return jnp.maximum(jnp.max(re), jnp.max(im))
    return unrolled_max([jnp.maximum(re[i, j], im[i, j]) for i in range(n) for j in range(n)])


def _band_geometry(model: Any, x: Array, k: Array) -> tuple[BandGeometry, Array, Array]:
    """Core kernel: (geometry, relative non-Hermiticity, whether H and dH are finite). No Python checks."""
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
    return BandGeometry(energies, states, rotated, splitting, uniform), non_hermiticity, finite


def _guard(value: Any, bad: Array, short: str, detail: str, concrete: bool) -> Any:
    """Raise ValueError(short + detail) now if we can see the values, else attach eqx.error_if(short)."""
    if concrete:
        if bool(bad):
            raise ValueError(short + detail)
        return value
    return eqx.error_if(value, bad, short)


class _Guards:
    """The checks of one public call: raised at once when the values are concrete, otherwise one
    eqx.branched_error_if on a scalar zero added to the call's output (below). Wrapping the whole
    BandGeometry put all of dH through XLA conditionals (~25 % of a vmapped two-band curvature);
    wrapping the output still cost ~30 % where a user keeps one component of it."""

    def __init__(self, concrete: bool):
        self.concrete = concrete
        self.checks: list[tuple[Array, str]] = []

    def add(self, bad: Array, short: str, detail: str) -> None:
        if self.concrete:
            _guard(None, bad, short, detail, True)  # raises now if bad
        else:
            self.checks.append((bad, short))

    def __call__(self, value: Any) -> Any:
        checks = self.checks
        if self.concrete or not checks:
            return value
        leaves = jax.tree_util.tree_leaves(value)
        # One conditional for all checks (each eqx.error_if is its own): the first failing message.
        # It guards a scalar zero that is then added to the output, not the output itself: a
        # conditional on the output materialises all of it and blocks XLA's fusion and dead-code
        # elimination (a user's jit(vmap) of one component then computed every component).
        bad = functools.reduce(jnp.logical_or, [b for b, _ in checks])
        index = jnp.argmax(jnp.stack([jnp.any(b) for b, _ in checks]))
        dtype = jnp.result_type(*[jnp.real(leaf).dtype for leaf in leaves])
        zero = eqx.branched_error_if(
            jnp.zeros((), dtype), bad, index, [short for _, short in checks]
        )
        return jax.tree_util.tree_map(lambda leaf: leaf + zero.astype(jnp.real(leaf).dtype), value)


_band_geometry_jit = eqx.filter_jit(_band_geometry)


def _checked_geometry(model: Any, x: Any, k: Any) -> tuple[BandGeometry, Array, Array, _Guards]:
    _checks.check_model(model)
    x, k = _checks.check_point(model, x, k)
    _checks.check_output_shape(model, x, k)
    concrete = _checks.is_concrete(model, x, k)
    if concrete:
        _checks.check_finite_parameters(model)
    probed = not concrete and _checks.is_concrete(model)
    if probed:  # a traced point of a known model: check its Hermiticity once, here, not per point
        _checks.check_finite_parameters(model)
        _probe_hermiticity(model)
    geometry, non_hermiticity, finite = _band_geometry_jit(model, x, k)
    guards = _Guards(concrete)
    guards.add(
        ~finite,
        "model(x, k) or its derivative is not finite (check the parameters)",
        f" at x={x}, k={k}",
    )
    if not probed:
        guards.add(
            non_hermiticity > _checks.HERMITICITY_RTOL,
            "model(x, k) is not Hermitian",
            f": max|H - H^dagger| / max|H| (max over real and imaginary parts) = "
            f"{float(non_hermiticity) if concrete else 0:.3e} at x={x}, k={k}",
        )
    return geometry, x, k, guards


# Fixed probe points (x, k) in units of the model's own scales are not available, so O(1) values.
_PROBES = np.random.default_rng(20261127).uniform(-1.3, 1.3, size=(3, 2, 3))


def _probe_hermiticity(model: Any) -> None:
    """Raise ValueError if H(x, k) is not Hermitian at three fixed points (eager, one-off).

    Used when the model is concrete but the points are traced (jit / vmap over k): the per-point
    check inside the compiled kernel costs ~10 % of a two-band curvature, and a model that is not
    Hermitian is so almost everywhere.
    """
    d = int(model.dim)
    for x, k in _PROBES[:, :, :d]:
        with jax.ensure_compile_time_eval():  # concrete values under an outer jit / vmap
            h = np.asarray(model(jnp.asarray(x), jnp.asarray(k)))
        scale = max(np.max(np.abs(h)), np.finfo(float).tiny)
        error = np.max(np.abs(h - h.conj().T)) / scale
        if (
            np.all(np.isfinite(h)) and not error <= _checks.HERMITICITY_RTOL
        ):  # non-finite: per-point check
            raise ValueError(
                f"model(x, k) is not Hermitian: max|H - H^dagger| / max|H| = {error:.3e} at x={x}, k={k} "
                "(a probe point checked before tracing)"
            )


def band_geometry(model: Any, x: Any, k: Any) -> BandGeometry:
    """Energies, states and band-basis dH/dlambda at (x, k); see :class:`BandGeometry`.

    ``x``, ``k``: (d,) Cartesian, natural units; ``x = None`` means the origin.
    """
    geometry, _, _, guards = _checked_geometry(model, x, k)
    return guards(geometry)


def eigensystem(model: Any, x: Any, k: Any) -> tuple[Float[Array, " n"], Complex[Array, "n n"]]:
    """Ascending band energies eps_n (N,) and eigenvectors u_n as columns (N, N) of H(x, k)."""
    geometry, _, _, guards = _checked_geometry(model, x, k)
    return guards((geometry.energies, geometry.states))


def band_velocity(model: Any, x: Any, k: Any) -> Float[Array, "n d"]:
    """Band velocities v_n = d eps_n / dk = <u_n|dH/dk|u_n>, shape (N, d) (PHYSICS.md section 1)."""
    geometry, _, _, guards = _checked_geometry(model, x, k)
    return guards(geometry.velocity())


def band_force(model: Any, x: Any, k: Any) -> Float[Array, "n d"]:
    """Band forces F_n = -d eps_n / dx = -<u_n|dH/dx|u_n>, shape (N, d) (PHYSICS.md section 1)."""
    geometry, _, _, guards = _checked_geometry(model, x, k)
    return guards(geometry.force())


def berry_connection(model: Any, x: Any, k: Any) -> Complex[Array, "2d n n"]:
    """Inter-band Berry connection R_lambda,nm = i dH_nm / (eps_m - eps_n), shape (2d, N, N)."""
    geometry, _, _, guards = _checked_geometry(model, x, k)
    return guards(geometry.berry_connection())


def berry_curvature(model: Any, x: Any, k: Any) -> Float[Array, "n 2d 2d"]:
    """Abelian Berry curvature Omega_n^{ab} of every band, all four blocks (paper Eq. 44).

    Shape (N, 2d, 2d) with lambda = (x, k): ``[..., d:, d:]`` is k-k, ``[..., :d, d:]`` is x-k,
    ``[..., d:, :d]`` k-x, ``[..., :d, :d]`` x-x. Antisymmetric in (a, b); sum over n vanishes.
    For the massive Dirac lower band, Omega^{kx ky} = valley Delta v^2 / (2 (v^2 k^2 + Delta^2)^{3/2}).
    """
    geometry, _, _, guards = _checked_geometry(model, x, k)
    return guards(geometry.berry_curvature())


def _checked_manifold_geometry(model, x, k, manifold):
    _checks.check_model(model)
    manifold = _checks.check_manifold(manifold, int(model.n_bands))
    _checks.remote_bands(manifold, int(model.n_bands))
    geometry, x, k, guards = _checked_geometry(model, x, k)
    gap = geometry.manifold_gap(manifold)
    tolerance = GAP_RTOL * jnp.maximum(jnp.max(jnp.abs(geometry.energies)), 1e-300)
    gap_value = float(gap) if guards.concrete else float("nan")
    guards.add(
        gap <= tolerance,
        f"manifold {manifold}: its gap to the remote bands closes",
        f" at x={x}, k={k} (gap = {gap_value:.3e}); the non-Abelian geometry is undefined there",
    )
    return geometry, manifold, guards


def projector_derivative(
    model: Any, x: Any, k: Any, manifold: Sequence[int]
) -> Complex[Array, "2d n n"]:
    """dP/dlambda of the manifold's projector P = sum_{n in a} |u_n><u_n|, orbital basis, (2d, N, N)."""
    geometry, manifold, guards = _checked_manifold_geometry(model, x, k, manifold)
    return guards(geometry.projector_derivative(manifold))


def nonabelian_curvature(
    model: Any, x: Any, k: Any, manifold: Sequence[int]
) -> Complex[Array, "2d 2d na na"]:
    """Non-Abelian Berry curvature of a manifold (paper Eqs. 40-41), shape (2d, 2d, Na, Na).

    ``F[a, b, n, m]`` = <u_n| i P [dP_a, dP_b] P |u_m> for n, m the manifold's bands in ascending
    order; Hermitian in (n, m), antisymmetric in (a, b); its trace over (n, m) is gauge invariant
    and for a one-band manifold F equals :func:`berry_curvature` of that band. Raises if the gap to
    the remote bands closes at (x, k).
    """
    geometry, manifold, guards = _checked_manifold_geometry(model, x, k, manifold)
    return guards(geometry.nonabelian_curvature(manifold))


def manifold_berry_curvature(
    model: Any, x: Any, k: Any, manifold: Sequence[int]
) -> Float[Array, "2d 2d"]:
    """Tr F^{ab} of a manifold: its gauge-invariant (Abelian) Berry curvature, shape (2d, 2d)."""
    curvature = nonabelian_curvature(model, x, k, manifold)
    return jnp.real(jnp.trace(curvature, axis1=-2, axis2=-1))


def _brillouin_grid(lattice: Array, n_k: int) -> Float[Array, "n n 2"]:
    reciprocal = 2 * jnp.pi * jnp.linalg.inv(lattice).T
    fractions = jnp.arange(n_k) / n_k
    reduced = jnp.stack(jnp.meshgrid(fractions, fractions, indexing="ij"), axis=-1)
    return reduced @ reciprocal


@eqx.filter_jit
def _chern_link(model, x, manifold, n_k, lattice, positions):
    grid = _brillouin_grid(lattice, n_k)
    flat = grid.reshape(-1, 2)

    def states_and_gap(k):
        geometry, _, _ = _band_geometry(model, x, k)
        return (
            geometry.states[:, jnp.array(manifold)],
            geometry.manifold_gap(manifold),
            geometry.energies,
        )

    states, gaps, energies = jax.vmap(states_and_gap)(flat)
    states = states.reshape(n_k, n_k, *states.shape[1:])  # (n, n, N, Na)
    # u(k + b_mu) = V(b_mu)^dagger u(k), V = diag(exp(i b_mu . tau)) = diag(exp(2 pi i tau_mu)).
    wrap = jnp.exp(-2j * jnp.pi * positions)  # (N, 2)
    next1 = jnp.roll(states, -1, axis=0).at[-1].multiply(wrap[:, 0][:, None])
    next2 = jnp.roll(states, -1, axis=1).at[:, -1].multiply(wrap[:, 1][:, None])

    def link(u, v):
        return jnp.linalg.det(jnp.einsum("...in,...im->...nm", jnp.conj(u), v))

    u1, u2 = link(states, next1), link(states, next2)
    plaquette = u1 * jnp.roll(u2, -1, axis=0) * jnp.conj(jnp.roll(u1, -1, axis=1)) * jnp.conj(u2)
    orientation = jnp.sign(jnp.linalg.det(lattice))
    chern = -orientation * jnp.sum(jnp.angle(plaquette)) / (2 * jnp.pi)
    return chern, jnp.min(gaps), jnp.max(jnp.abs(energies))


@eqx.filter_jit
def _chern_integral(model, x, manifold, n_k, lattice):
    grid = _brillouin_grid(lattice, n_k).reshape(-1, 2)
    d = 2

    def curvature_and_gap(k):
        geometry, _, _ = _band_geometry(model, x, k)
        trace = jnp.real(jnp.trace(geometry.nonabelian_curvature(manifold)[d, d + 1]))
        return trace, geometry.manifold_gap(manifold), jnp.max(jnp.abs(geometry.energies))

    curvature, gaps, scales = jax.vmap(curvature_and_gap)(grid)
    cell = jnp.abs(jnp.linalg.det(2 * jnp.pi * jnp.linalg.inv(lattice)))
    return jnp.sum(curvature) * cell / n_k**2 / (2 * jnp.pi), jnp.min(gaps), jnp.max(scales)


def chern_number(
    model: Any,
    manifold: Sequence[int],
    n_k: int,
    x: Any = None,
    *,
    method: Literal["link", "integral"] = "link",
) -> Float[Array, ""]:
    """Chern number C = (1/2 pi) int_BZ Tr F^{kx ky} d^2k of a 2D band or manifold.

    ``method="link"`` (default) uses the Fukui-Hatsugai-Suzuki link variables on an n_k x n_k
    Monkhorst-Pack grid: an integer to rounding on coarse grids whenever the manifold is gapped.
    ``method="integral"`` sums Tr F^{kx ky} on the same grid (a cross-check; converges exponentially
    in n_k for a gapped manifold). Needs ``model.lattice``; ``x`` picks the point of a texture
    (default: the origin). The torus is closed with the orbital-position phases of PHYSICS.md's
    convention, so ``model.orbital_positions`` (reduced) must be correct.
    """
    _checks.check_model(model)
    lattice = getattr(model, "lattice", None)
    if lattice is None:
        raise ValueError(
            f"chern_number needs a lattice model (model.lattice is missing on {type(model).__name__}); "
            "for a continuum model integrate manifold_berry_curvature over k instead"
        )
    if int(model.dim) != 2:
        raise ValueError(f"chern_number is defined for 2D models, got dim = {model.dim}")
    if method not in ("link", "integral"):
        raise ValueError(f"method must be 'link' or 'integral', got {method!r}")
    if isinstance(n_k, bool) or not isinstance(n_k, (int, np.integer)) or n_k < 2:
        raise ValueError(f"n_k must be an integer >= 2, got {n_k!r}")
    n_bands = int(model.n_bands)
    manifold = _checks.check_manifold(manifold, n_bands)
    _checks.remote_bands(manifold, n_bands)
    x, _ = _checks.check_point(model, x, jnp.zeros(2))
    _checks.check_output_shape(model, x, jnp.zeros(2))
    concrete = _checks.is_concrete(model, x)
    if concrete:
        _checks.check_finite_parameters(model)
    lattice = jnp.asarray(lattice, dtype=float)
    positions = getattr(model, "orbital_positions", None)
    positions = (
        jnp.zeros((n_bands, 2)) if positions is None else jnp.asarray(positions, dtype=float)
    )
    if method == "link":
        chern, gap, scale = _chern_link(model, x, manifold, int(n_k), lattice, positions)
    else:
        chern, gap, scale = _chern_integral(model, x, manifold, int(n_k), lattice)
    return _guard(
        chern,
        gap <= GAP_RTOL * scale,
        f"manifold {manifold}: its gap to the remote bands closes",
        f" on the {n_k}x{n_k} grid (min gap = {float(gap) if concrete else float('nan'):.3e}); "
        "the Chern number is undefined",
        concrete,
    )
