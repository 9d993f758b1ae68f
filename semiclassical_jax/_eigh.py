"""Hermitian eigensolver for the small matrices of band theory.

``eigh(h)`` returns ascending eigenvalues and the eigenvectors as columns, like
``jnp.linalg.eigh``, with three differences that matter here:

* N = 2 uses the closed form of H = d0 + d.sigma in pure jnp.
* 3 <= N <= ``JACOBI_MAX_SIZE`` uses a batched solver in pure jnp (below): under ``vmap`` on CPU
  it is faster than the batched LAPACK call (benchmarks/RESULTS.md), and it avoids the LAPACK
  custom call, whose batched CPU form can deadlock when two such calls run concurrently inside a
  long ``lax.scan`` / ``lax.map`` (jaxlib 0.10.2, see the developers' guide).
* Larger N calls LAPACK (cuSOLVER on GPU), ``jnp.linalg.eigh``. ``eigh(h, method="lapack")``
  forces it for any N > 2 (tests and benchmarks); so does lowering ``JACOBI_MAX_SIZE``.

Every path shares one custom JVP that drops the terms between (numerically) degenerate
eigenvalues. JAX's own rule divides by eps_m - eps_n and returns inf/NaN there; ours stays
finite. When a perturbation splits a degeneracy, no rule for (eps, U) alone gives gauge-invariant
outputs their exact derivative in an arbitrary basis of the degenerate subspace (the split energies
are the eigenvalues of the block P dH P, which a vector of energy tangents cannot carry); the
geometry layer carries that block separately (``_degenerate.py``) and is exact for outputs that see
a degenerate set only through its projector, e.g. d Tr F / d mass and d sigma_xy / d rashba of
Kane-Mele at mass = rashba = 0 (tests/test_gradients.py).

Derivative rule (first-order perturbation theory, dH' = U^dagger dH U):
    d eps_n = Re dH'_nn,   dU = U (G o dH'),   G_mn = 1/(eps_n - eps_m) for |eps_n - eps_m| > tol, else 0.

Small-N solver (batched; the batch is the last axis of every array, processed in cache-sized
chunks by a ``custom_vmap`` rule, so ``vmap(eigh)`` is one vectorised loop):

1. Householder tridiagonalisation, H = Q T' Q^dagger, then a diagonal phase D makes T = D^dagger T' D
   real symmetric tridiagonal (sub-diagonal |beta_i|).
2. Cyclic Jacobi on the real T with the odd-even (parallel) ordering: step E rotates the index
   pairs (0, 1), (2, 3), ..., step O the pairs (1, 2), (3, 4), ...; each rotation
   [[c, s], [-s, c]], t = s / c = sign(theta) x / (|theta| + sqrt(theta^2 + x^2)),
   theta = (T_qq - T_pp) / 2, x = T_pq, zeroes T_pq and swaps p and q, so that after N steps every
   pair has met once (one sweep). One loop iteration applies E and O together as the banded
   transform W = W_E W_O: T <- W^T T W (two passes), V <- V W (one pass). Sweeps repeat
   (``lax.while_loop``) until sum_{i != j} T_ij^2 <= (50 eps)^2 sum_ij T_ij^2 for every matrix of
   the chunk, at most ``JACOBI_MAX_SWEEPS`` (random 8 x 8 matrices need 5 to 6).
3. eps_n = T_nn, eigenvectors Q D V, sorted ascending. Odd N is padded with a decoupled zero row
   and column that is never rotated. Each matrix is first scaled by max |Re H_ij|, |Im H_ij|.

Jacobi is backward stable and exact degeneracies need no special care; eigenvalues and
projectors match LAPACK to ~1e-14 relative to the spectral scale (tests/test_eigh.py).
"""

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_batching import custom_vmap

from ._guards import fail
from ._linalg import UNROLLED_MAX, matmul_small, unrolled_max
from ._types import Array, Complex, Float

# Eigenvalues closer than this (relative to the spectral scale) count as degenerate.
DEGENERACY_RTOL = 1e-10
# eigh uses the pure-jnp solver for 3 <= N <= JACOBI_MAX_SIZE and LAPACK / cuSOLVER above: its
# cost grows like N^3 x sweeps while LAPACK's per-call overhead dominates at small N, and on a CPU
# the two cross between N = 8 and 12 (benchmarks/berry_curvature.py, benchmarks/RESULTS.md).
JACOBI_MAX_SIZE = 8
JACOBI_MAX_SWEEPS = 16
# Matrices per vectorised chunk on CPU: the working set (about 4 N^2 doubles per matrix) stays in
# the L1/L2 cache. Elsewhere (GPU) the whole batch is one chunk.
_CHUNK_DOUBLES = 4096


def degeneracy_tolerance(energies: Float[Array, "... n"]) -> Float[Array, "..."]:
    """Absolute splitting below which two eigenvalues are treated as degenerate."""
    n = energies.shape[-1]
    if n <= UNROLLED_MAX:  # an elementwise maximum XLA fuses; a reduction is its own CPU kernel
        scale = unrolled_max([jnp.abs(energies[..., i]) for i in range(n)])
    else:
        scale = jnp.max(jnp.abs(energies), axis=-1)
    return DEGENERACY_RTOL * jnp.maximum(scale, jnp.finfo(energies.dtype).tiny)


def safe_inverse(delta: Array, tol: Array) -> Array:
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


def _perturbation_jvp(solver):
    """The degeneracy-safe JVP rule (module docstring) for an eigensolver h -> (energies, states)."""

    def jvp(primals, tangents):
        (h,) = primals
        (dh,) = tangents
        energies, states = solver(h)
        dh = 0.5 * (dh + jnp.conj(dh.T))
        dh_band = matmul_small(matmul_small(jnp.conj(states.T), dh), states)
        delta = energies[None, :] - energies[:, None]  # eps_n - eps_m at [m, n]
        g = safe_inverse(delta, degeneracy_tolerance(energies))
        d_energies = jnp.real(jnp.diagonal(dh_band))
        d_states = matmul_small(states, g * dh_band)
        return (energies, states), (d_energies, d_states)

    return jvp


@jax.custom_jvp
def _eigh_lapack(h: Complex[Array, "n n"]) -> tuple[Float[Array, " n"], Complex[Array, "n n"]]:
    energies, states = jnp.linalg.eigh(h)
    return energies, states


_eigh_lapack.defjvp(_perturbation_jvp(_eigh_lapack))


# ---------------------------------------------------------------------------------------------
# Small-N solver. Arrays carry the batch last: a matrix is (n, n, b), a vector (n, b). Complex
# numbers are kept as separate real and imaginary arrays (faster on XLA CPU than complex128).


def _householder(
    hr: Float[Array, "n n b"], hi: Float[Array, "n n b"]
) -> tuple[
    Float[Array, "n b"], Float[Array, "n-1 b"], Float[Array, "n n b"], Float[Array, "n n b"]
]:
    """H = U T U^dagger with T real symmetric tridiagonal: (diag T, sub-diagonal of T, Re U, Im U).

    Step k reflects column k below the diagonal onto e_{k+1}: x = H_{>k, k},
    v = x + (x_0 / |x_0|) |x| e_1, P = 1 - tau v v^dagger, tau = 2 / |v|^2; with w = tau B v and
    q = w - (tau / 2)(v^dagger w) v the trailing block B = H_{>k, >k} becomes
    B - v q^dagger - q v^dagger, column k becomes -(x_0 / |x_0|) |x| e_1, and U_{:, >k} <- U_{:, >k} P.
    Finally U <- U D with the phases D that make the sub-diagonal real and non-negative.
    """
    n, _, b = hr.shape
    ur = jnp.broadcast_to(jnp.eye(n, dtype=hr.dtype)[:, :, None], (n, n, b))
    ui = jnp.zeros_like(ur)
    ar, ai = hr, hi
    for k in range(n - 2):
        rows = slice(k + 1, n)
        xr, xi = ar[rows, k], ai[rows, k]
        norm = jnp.sqrt(jnp.sum(xr * xr + xi * xi, axis=0))
        modulus = jnp.sqrt(xr[0] * xr[0] + xi[0] * xi[0])
        ok = modulus > 0
        safe = jnp.where(ok, modulus, 1.0)
        pr, pi = jnp.where(ok, xr[0] / safe, 1.0), jnp.where(ok, xi[0] / safe, 0.0)
        vr, vi = xr.at[0].add(pr * norm), xi.at[0].add(pi * norm)
        v2 = jnp.sum(vr * vr + vi * vi, axis=0)
        tau = jnp.where(v2 > 0, 2.0 / jnp.where(v2 > 0, v2, 1.0), 0.0)
        br, bi = ar[rows, rows], ai[rows, rows]
        wr = tau * jnp.sum(br * vr[None] - bi * vi[None], axis=1)
        wi = tau * jnp.sum(br * vi[None] + bi * vr[None], axis=1)
        half = 0.5 * tau * jnp.sum(vr * wr + vi * wi, axis=0)
        qr, qi = wr - half * vr, wi - half * vi
        br = (
            br
            - (vr[:, None] * qr[None] + vi[:, None] * qi[None])
            - (qr[:, None] * vr[None] + qi[:, None] * vi[None])
        )
        bi = (
            bi
            - (vi[:, None] * qr[None] - vr[:, None] * qi[None])
            - (qi[:, None] * vr[None] - qr[:, None] * vi[None])
        )
        column_r = jnp.zeros_like(xr).at[0].set(-pr * norm)
        column_i = jnp.zeros_like(xi).at[0].set(-pi * norm)
        ar = ar.at[rows, rows].set(br).at[rows, k].set(column_r).at[k, rows].set(column_r)
        ai = ai.at[rows, rows].set(bi).at[rows, k].set(column_i).at[k, rows].set(-column_i)
        cr, ci = ur[:, rows], ui[:, rows]
        zr = tau * jnp.sum(cr * vr[None] - ci * vi[None], axis=1)
        zi = tau * jnp.sum(cr * vi[None] + ci * vr[None], axis=1)
        ur = ur.at[:, rows].set(cr - (zr[:, None] * vr[None] + zi[:, None] * vi[None]))
        ui = ui.at[:, rows].set(ci - (zi[:, None] * vr[None] - zr[:, None] * vi[None]))
    diagonal = jnp.stack([ar[i, i] for i in range(n)])
    sub_r = jnp.stack([ar[i + 1, i] for i in range(n - 1)])
    sub_i = jnp.stack([ai[i + 1, i] for i in range(n - 1)])
    sub = jnp.sqrt(sub_r * sub_r + sub_i * sub_i)
    ok = sub > 0
    safe = jnp.where(ok, sub, 1.0)
    phase_r, phase_i = jnp.where(ok, sub_r / safe, 1.0), jnp.where(ok, sub_i / safe, 0.0)
    # D_0 = 1, D_i+1 = D_i phase_i
    dr, di = [jnp.ones_like(diagonal[0])], [jnp.zeros_like(diagonal[0])]
    for i in range(n - 1):
        dr.append(dr[i] * phase_r[i] - di[i] * phase_i[i])
        di.append(dr[i] * phase_i[i] + di[i] * phase_r[i])
    dr, di = jnp.stack(dr), jnp.stack(di)
    return diagonal, sub, ur * dr[None] - ui * di[None], ur * di[None] + ui * dr[None]


def _rotation(d0: Array, d1: Array, x: Array) -> tuple[Array, Array, Array]:
    """Jacobi rotation zeroing x = T_pq: (c, s, t x), new T_pp = d0 - t x, T_qq = d1 + t x."""
    theta = 0.5 * (d1 - d0)
    denominator = jnp.abs(theta) + jnp.sqrt(x * x + theta * theta)
    ok = denominator > 0
    t = jnp.where(ok, jnp.where(theta >= 0, 1.0, -1.0) * x / jnp.where(ok, denominator, 1.0), 0.0)
    c = lax.rsqrt(1.0 + t * t)
    return c, c * t, t * x


def _band_transform(a: Float[Array, "m m b"], padded: bool) -> dict:
    """Non-zero entries of W = W_E W_O for the current T (m even).

    W_E and W_O are rotation-and-swap blocks [[s, c], [c, -s]] on the E and O pairs; W_O's
    parameters come from T after W_E, whose needed entries are evaluated here directly. Column 0 of
    W has rows 0, 1; column m - 1 rows m - 2, m - 1; columns 2J + 1 and 2J + 2 rows 2J .. 2J + 3.
    With ``padded`` the last E pair holds the zero padding and is left alone: block diag(1, -1).
    """
    m = a.shape[0]
    k = m // 2
    d0 = jnp.stack([a[2 * j, 2 * j] for j in range(k)])
    d1 = jnp.stack([a[2 * j + 1, 2 * j + 1] for j in range(k)])
    x = jnp.stack([a[2 * j, 2 * j + 1] for j in range(k)])
    c, s, shift = _rotation(d0, d1, x)
    even = d1 + shift  # T_2J,2J after the E step (the pair is swapped)
    if padded:
        last = (np.arange(k) == k - 1)[:, None]
        c, s, shift = jnp.where(last, 0.0, c), jnp.where(last, 1.0, s), jnp.where(last, 0.0, shift)
        even = jnp.where(last, d0, even)
    c0, c1, s0, s1 = c[:-1], c[1:], s[:-1], s[1:]

    def entry(row, col):
        return jnp.stack([a[2 * j + row, 2 * j + col] for j in range(k - 1)])

    # T after W_E at (2J + 1, 2J + 2): rows c T_2J - s T_2J+1, columns s T_2J+2 + c T_2J+3
    x_odd = c0 * (s1 * entry(0, 2) + c1 * entry(0, 3)) - s0 * (s1 * entry(1, 2) + c1 * entry(1, 3))
    co, so, _ = _rotation(d0[:-1] - shift[:-1], even[1:], x_odd)
    return {
        "first": (s[0], c[0]),
        "last": (c[k - 1], -s[k - 1]),
        "odd": (c0 * so, -s0 * so, s1 * co, c1 * co),
        "even": (c0 * co, -s0 * co, -s1 * so, -c1 * so),
    }


def _columns(y: Float[Array, "r m b"], w: dict) -> Float[Array, "r m b"]:
    """y @ W for the banded W of :func:`_band_transform`."""
    rows, m, _ = y.shape
    first = y[:, 0] * w["first"][0][None] + y[:, 1] * w["first"][1][None]
    last = y[:, m - 2] * w["last"][0][None] + y[:, m - 1] * w["last"][1][None]
    sources = (y[:, 0 : m - 2 : 2], y[:, 1 : m - 1 : 2], y[:, 2::2], y[:, 3::2])
    odd = sum(src * coef[None] for src, coef in zip(sources, w["odd"]))
    even = sum(src * coef[None] for src, coef in zip(sources, w["even"]))
    middle = jnp.stack([odd, even], axis=2).reshape(rows, m - 2, -1)
    return jnp.concatenate([first[:, None], middle, last[:, None]], axis=1)


def _rows(y: Float[Array, "m r b"], w: dict) -> Float[Array, "m r b"]:
    """W^T @ y."""
    m, cols, _ = y.shape
    first = y[0] * w["first"][0] + y[1] * w["first"][1]
    last = y[m - 2] * w["last"][0] + y[m - 1] * w["last"][1]
    sources = (y[0 : m - 2 : 2], y[1 : m - 1 : 2], y[2::2], y[3::2])
    odd = sum(src * coef[:, None] for src, coef in zip(sources, w["odd"]))
    even = sum(src * coef[:, None] for src, coef in zip(sources, w["even"]))
    middle = jnp.stack([odd, even], axis=1).reshape(m - 2, cols, -1)
    return jnp.concatenate([first[None], middle, last[None]], axis=0)


def _jacobi_real(
    t: Float[Array, "m m b"], padded: bool
) -> tuple[Float[Array, "m m b"], Float[Array, "m m b"]]:
    """Sweeps of the odd-even cyclic Jacobi method on real symmetric t: (diagonalised t, V)."""
    m, _, b = t.shape
    v = jnp.broadcast_to(jnp.eye(m, dtype=t.dtype)[:, :, None], (m, m, b))

    def double_step(_, state):
        a, v = state
        w = _band_transform(a, padded)
        return _columns(_rows(a, w), w), _columns(v, w)

    off_diagonal = jnp.asarray(1.0 - np.eye(m), t.dtype)[:, :, None]
    tolerance = (50 * jnp.finfo(t.dtype).eps) ** 2 * jnp.sum(t * t, axis=(0, 1))

    def unconverged(state):
        sweeps, (a, _) = state
        return (sweeps < JACOBI_MAX_SWEEPS) & jnp.any(
            jnp.sum(a * a * off_diagonal, axis=(0, 1)) > tolerance
        )

    def sweep(state):
        sweeps, pair = state
        return sweeps + 1, lax.fori_loop(0, m // 2, double_step, pair)

    _, (t, v) = lax.while_loop(unconverged, sweep, (0, (t, v)))
    return t, v


def _ascending(energies: Float[Array, "n b"], v: Float[Array, "n n b"]) -> tuple[Array, Array]:
    """Sort eigenvalues ascending (ties by index) and permute the columns of v alike, elementwise."""
    n = energies.shape[0]
    index = np.arange(n)
    # [i, j]: eigenvalue j goes before eigenvalue i
    before = (energies[None, :] < energies[:, None]) | (
        (energies[None, :] == energies[:, None]) & (index[None, :, None] < index[:, None, None])
    )
    rank = sum(before[:, j].astype(jnp.int32) for j in range(n))  # (n, b)
    sorted_energies, sorted_v = 0.0, 0.0
    for i in range(n):
        hot = rank[i][None, :] == index[:, None]  # (n, b): [r] eigenvalue i has rank r
        sorted_energies = sorted_energies + jnp.where(hot, energies[i][None], 0.0)
        sorted_v = sorted_v + jnp.where(hot[None], v[:, i][:, None], 0.0)
    return sorted_energies, sorted_v


def _jacobi_chunk(
    h: Complex[Array, "b n n"],
) -> tuple[Float[Array, "b n"], Complex[Array, "b n n"]]:
    """The small-N solver on one chunk (module docstring, steps 1-3)."""
    n = h.shape[-1]
    h = jnp.moveaxis(h, 0, -1)
    h = 0.5 * (h + jnp.conj(jnp.swapaxes(h, 0, 1)))  # like jnp.linalg.eigh(symmetrize_input=True)
    hr, hi = jnp.real(h), jnp.imag(h)
    scale = jnp.max(jnp.maximum(jnp.abs(hr), jnp.abs(hi)), axis=(0, 1))
    scale = jnp.where(scale > 0, scale, 1.0)
    diagonal, sub, ur, ui = _householder(hr / scale, hi / scale)
    m = n + n % 2
    zero = jnp.zeros_like(diagonal[0])

    def tridiagonal(i, j):
        if max(i, j) >= n or abs(i - j) > 1:  # outside the band, or the padding of odd n
            return zero
        return diagonal[i] if i == j else sub[min(i, j)]

    tri = [[tridiagonal(i, j) for j in range(m)] for i in range(m)]
    t, v = _jacobi_real(jnp.stack([jnp.stack(row) for row in tri]), padded=m != n)
    energies, v = _ascending(jnp.stack([t[i, i] for i in range(n)]), v[:n, :n])
    vr = sum(ur[:, r][:, None] * v[r][None] for r in range(n))
    vi = sum(ui[:, r][:, None] * v[r][None] for r in range(n))
    return jnp.moveaxis(energies * scale, -1, 0), jnp.moveaxis(lax.complex(vr, vi), -1, 0)


def _chunk_size(n: int, batch: int) -> int:
    if jax.default_backend() != "cpu":
        return batch
    return max(1, min(batch, max(16, _CHUNK_DOUBLES // (n * n))))


@custom_vmap
@jax.jit  # one compilation per shape also when called outside jit (e.g. eager grad / finite differences)
def _jacobi_batch(
    h: Complex[Array, "b n n"],
) -> tuple[Float[Array, "b n"], Complex[Array, "b n n"]]:
    """The small-N solver on a batch, chunk by chunk (lax.map over chunks)."""
    batch, n, _ = h.shape
    chunk = _chunk_size(n, batch)
    chunks = -(-batch // chunk)
    padding = chunks * chunk - batch
    if padding:
        h = jnp.concatenate([h, jnp.broadcast_to(jnp.eye(n, dtype=h.dtype), (padding, n, n))])
    if chunks == 1:
        energies, states = _jacobi_chunk(h)
    else:
        energies, states = lax.map(_jacobi_chunk, h.reshape(chunks, chunk, n, n))
    return energies.reshape(-1, n)[:batch], states.reshape(-1, n, n)[:batch]


@_jacobi_batch.def_vmap
def _jacobi_batch_vmap(axis_size, in_batched, h):
    """vmap of the batched solver = the batched solver on the flattened batch (nests)."""
    (batched,) = in_batched
    if not batched:
        h = jnp.broadcast_to(h, (axis_size, *h.shape))
    energies, states = _jacobi_batch(h.reshape(-1, *h.shape[2:]))
    return (energies.reshape(*h.shape[:3]), states.reshape(h.shape)), (True, True)


@jax.custom_jvp
def _eigh_jacobi(h: Complex[Array, "n n"]) -> tuple[Float[Array, " n"], Complex[Array, "n n"]]:
    energies, states = _jacobi_batch(h[None])
    return energies[0], states[0]


_eigh_jacobi.defjvp(_perturbation_jvp(_eigh_jacobi))


def eigh(
    h: Complex[Array, "n n"], *, method: Literal["auto", "jacobi", "lapack"] = "auto"
) -> tuple[Float[Array, " n"], Complex[Array, "n n"]]:
    """Eigenvalues (ascending) and eigenvectors (columns) of one Hermitian matrix (the band
    convention of PHYSICS.md: H u_n = eps_n u_n, bands sorted ascending).

    ``h`` (N, N) -> (energies (N,), vectors (N, N)), h v_n = eps_n v_n.

    vmap it for batches. ``method="auto"``: closed form for N = 2, the pure-jnp small-N solver for
    3 <= N <= ``JACOBI_MAX_SIZE``, LAPACK above; ``"jacobi"`` / ``"lapack"`` force one of the
    latter two for N > 2. Only the Hermitian part (H + H^dagger)/2 is used. Gradients are finite at
    degeneracies (see module docstring).

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> energies, vectors = sj.eigh(np.array([[0.3, 0.4], [0.4, -0.3]], dtype=complex))
        >>> print(np.round(energies, 6))
        [-0.5  0.5]
    """
    h = jnp.asarray(h)
    if h.ndim != 2 or h.shape[0] != h.shape[1]:
        fail(f"eigh expects one square matrix, got shape {h.shape}")
    if method not in ("auto", "jacobi", "lapack"):
        fail(f"method must be 'auto', 'jacobi' or 'lapack', got {method!r}")
    if not jnp.iscomplexobj(h):
        h = h.astype(jnp.result_type(h.dtype, jnp.complex64))
    n = h.shape[0]
    if n == 1:
        return jnp.real(h[0]), jnp.ones((1, 1), h.dtype)
    if n == 2:
        return _eigh_2x2(h)
    if method == "jacobi" or (method == "auto" and n <= JACOBI_MAX_SIZE):
        return _eigh_jacobi(h)
    return _eigh_lapack(h)
