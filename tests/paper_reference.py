"""A plain NumPy/SciPy implementation of the paper's core, written from its equations alone.

Nothing here imports semiclassical_jax: the tests compare the package with these functions
(``tests/test_paper_references.py``). Conventions are PHYSICS.md's: hbar = e = k_B = 1, carrier
charge -1, lambda = (x_1..x_d, k_1..k_d). Every function takes batches: leading axes ``...`` of x
and k are carried through (np.linalg.eigh works on stacks).

Independent of the package's code path by construction:
* the models are written here with their analytic dH/dlambda (no autodiff);
* band-basis quantities come from numpy.linalg.eigh; the projector derivative is the
  sum-over-states formula of PHYSICS.md section 1 in the ORBITAL basis and the non-Abelian
  curvature the operator F^{ab} = i P [dP_a, dP_b] P (paper Eqs. 40-41), not band-basis
  couplings G as in the package;
* the MSCT hybridised bands diagonalise Hbar at finite field (all orders, paper Eqs. 54-55, 61),
  and d E_i / d lambda is a 6th-order central finite difference of these energies;
* trajectories are integrated with scipy's DOP853 from PHYSICS.md section 2 (paper Eqs. 34, 42, 43).
"""

import numpy as np
from scipy.integrate import solve_ivp

SIGMA = np.array(
    [[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=complex
)
# Five mutually anticommuting Hermitian 4x4 matrices: sigma_{x,y,z} (x) tau_x, 1 (x) tau_{y,z}.
GAMMA = np.array(
    [np.kron(SIGMA[i], SIGMA[1]) for i in (1, 2, 3)]
    + [np.kron(SIGMA[0], SIGMA[2]), np.kron(SIGMA[0], SIGMA[3])]
)
# splits the degenerate pairs of GammaModel: sigma_z (x) tau_0
GAMMA_SPLIT = np.kron(SIGMA[3], SIGMA[0])
# central first-derivative stencil, 6th order: offsets -3..3
_STENCIL = np.array([-1 / 60, 3 / 20, -3 / 4, 0.0, 3 / 4, -3 / 20, 1 / 60])


# ---------------------------------------------------------------------------------------------
# models with analytic derivatives (d = 2)


class CosineMass:
    """Delta(x) = offset + amplitude cos(G . x) and its gradient (textures.CosineModulation)."""

    def __init__(self, offset, amplitude, wavevector):
        self.offset, self.amplitude = float(offset), float(amplitude)
        self.wavevector = np.asarray(wavevector, dtype=float)

    def __call__(self, x):
        return self.offset + self.amplitude * np.cos(x @ self.wavevector)

    def gradient(self, x):
        return -self.amplitude * np.sin(x @ self.wavevector)[..., None] * self.wavevector


class TexturedDirac:
    """H = v (valley kx sx + ky sy) + Delta(x) sz + w kx (models.MassiveDirac with a texture)."""

    n_bands, dim = 2, 2

    def __init__(self, velocity, mass: CosineMass, tilt=0.0, valley=1):
        self.v, self.mass, self.w, self.valley = float(velocity), mass, float(tilt), valley

    def hamiltonian(self, x, k):
        kx, ky = k[..., 0, None, None], k[..., 1, None, None]
        delta = self.mass(x)[..., None, None]
        return (
            self.v * (self.valley * kx * SIGMA[1] + ky * SIGMA[2])
            + delta * SIGMA[3]
            + self.w * kx * SIGMA[0]
        )

    def derivatives(self, x, k):
        """dH/dlambda, (..., 4, 2, 2), lambda = (x, y, kx, ky)."""
        grad = self.mass.gradient(x)
        shape = k.shape[:-1] + (2, 2)
        return np.stack(
            [
                grad[..., 0, None, None] * SIGMA[3],
                grad[..., 1, None, None] * SIGMA[3],
                np.broadcast_to(self.v * self.valley * SIGMA[1] + self.w * SIGMA[0], shape),
                np.broadcast_to(self.v * SIGMA[2], shape),
            ],
            axis=-3,
        )


class TexturedDiracRemote:
    """models.DiracWithRemoteBand with a textured mass (and optionally coupling): orbitals (A, B, C),
    k_pm = kx +- i ky, H = [[Delta, v k_-, g k_+], [v k_+, -Delta, g k_-], [g k_-, g k_+, E_r]].
    Two textures along different directions make the x-x curvature block non-zero (with one
    scalar texture Delta(G . x) it vanishes identically)."""

    n_bands, dim = 3, 2
    _E = [np.outer(np.eye(3)[i], np.eye(3)[j]).astype(complex) for i in range(3) for j in range(3)]

    def __init__(self, velocity, mass: CosineMass, remote_energy, coupling):
        self.v, self.mass, self.e_r = float(velocity), mass, float(remote_energy)
        self.coupling = coupling if callable(coupling) else CosineMass(coupling, 0.0, [0.0, 0.0])

    def _coupling_matrix(self, kp, km):
        e = self._E
        return kp * e[2] + km * e[5] + km * e[6] + kp * e[7]

    def hamiltonian(self, x, k):
        kp = (k[..., 0] + 1j * k[..., 1])[..., None, None]
        km = np.conj(kp)
        delta = self.mass(x)[..., None, None]
        g = self.coupling(x)[..., None, None]
        e = self._E
        return (
            delta * (e[0] - e[4])
            + self.e_r * e[8]
            + self.v * (km * e[1] + kp * e[3])
            + g * self._coupling_matrix(kp, km)
        )

    def derivatives(self, x, k):
        kp = (k[..., 0] + 1j * k[..., 1])[..., None, None]
        km = np.conj(kp)
        v, e = self.v, self._E
        g = self.coupling(x)[..., None, None]
        sz = e[0] - e[4]
        gm, dm = self.coupling.gradient(x), self.mass.gradient(x)
        c = self._coupling_matrix(kp, km)
        # d/dkx: k_pm -> 1; d/dky: k_pm -> +-i
        d_kx = v * (e[1] + e[3]) + g * self._coupling_matrix(1.0, 1.0)
        d_ky = v * (-1j * e[1] + 1j * e[3]) + g * self._coupling_matrix(1j, -1j)
        return np.stack(
            [
                dm[..., 0, None, None] * sz + gm[..., 0, None, None] * c,
                dm[..., 1, None, None] * sz + gm[..., 1, None, None] * c,
                d_kx,
                d_ky,
            ],
            axis=-3,
        )


class GammaModel:
    """H = c |k|^2 + sum_a d_a Gamma_a + beta S, d = (v kx, v ky, Delta(x), a(x) (kx^2 - ky^2),
    2 a(x) kx ky), S = sigma_z (x) tau_0. For beta = 0 the bands are +-|d| + c |k|^2, each exactly
    (Kramers-like) doubly degenerate, and with all five Gamma matrices the lower pair's holonomy
    is a genuinely non-Abelian SU(2) element; beta != 0 splits the pairs. Delta and a are
    CosineMass textures (along different directions: the x-x curvature block is non-zero)."""

    n_bands, dim = 4, 2

    def __init__(self, velocity, mass: CosineMass, quadratic: CosineMass, dispersion, splitting):
        self.v, self.mass, self.a = float(velocity), mass, quadratic
        self.c, self.beta = float(dispersion), float(splitting)

    def hamiltonian(self, x, k):
        kx, ky = k[..., 0], k[..., 1]
        a = self.a(x)
        d = [self.v * kx, self.v * ky, self.mass(x), a * (kx**2 - ky**2), 2 * a * kx * ky]
        h = np.einsum("a...,aij->...ij", np.stack(np.broadcast_arrays(*d)), GAMMA)
        scalar = self.c * (kx**2 + ky**2)[..., None, None] * np.eye(4)
        return h + scalar + self.beta * GAMMA_SPLIT

    def derivatives(self, x, k):
        kx, ky = k[..., 0], k[..., 1]
        zero, one = np.zeros_like(kx), np.ones_like(kx)
        dm, da, a = self.mass.gradient(x), self.a.gradient(x), self.a(x)
        q1, q2 = kx**2 - ky**2, 2 * kx * ky
        rows = [
            np.stack(np.broadcast_arrays(zero, zero, dm[..., i], da[..., i] * q1, da[..., i] * q2))
            for i in (0, 1)
        ]
        rows.append(np.stack(np.broadcast_arrays(self.v * one, zero, zero, 2 * a * kx, 2 * a * ky)))
        rows.append(
            np.stack(np.broadcast_arrays(zero, self.v * one, zero, -2 * a * ky, 2 * a * kx))
        )
        scalars = [zero, zero, 2 * self.c * kx, 2 * self.c * ky]
        eye = np.eye(4)
        return np.stack(
            [
                np.einsum("a...,aij->...ij", r, GAMMA) + s[..., None, None] * eye
                for r, s in zip(rows, scalars)
            ],
            axis=-3,
        )


# ---------------------------------------------------------------------------------------------
# geometry (PHYSICS.md section 1)


def dagger(a):
    return np.conj(np.swapaxes(a, -1, -2))


def bands(model, x, k):
    """(eps (..., N), U (..., N, N) columns u_n, dH (..., 2d, N, N) orbital, dHb band basis)."""
    eps, states = np.linalg.eigh(model.hamiltonian(x, k))
    dh = model.derivatives(x, k)
    dhb = dagger(states)[..., None, :, :] @ dh @ states[..., None, :, :]
    return eps, states, dh, dhb


def projector_derivative(eps, states, dhb, manifold):
    """dP_lambda = sum_{n in a, r remote} (|u_r> (dH_lambda)_rn <u_n| + h.c.) / (eps_n - eps_r),
    orbital basis, (..., 2d, N, N)."""
    n_bands = eps.shape[-1]
    remote = [r for r in range(n_bands) if r not in manifold]
    total = 0.0
    for n in manifold:
        for r in remote:
            u_n, u_r = states[..., :, n], states[..., :, r]
            outer = u_r[..., None, :, None] * np.conj(u_n)[..., None, None, :]
            term = dhb[..., r, n][..., None, None] * outer
            total = total + term / (eps[..., n] - eps[..., r])[..., None, None, None]
    return total + dagger(total)


def projector(states, manifold):
    u = states[..., :, list(manifold)]
    return u @ dagger(u)


def curvature_operator(p, dp):
    """F^{ab} = i P [dP_a, dP_b] P (paper Eqs. 40-41), orbital basis, (..., 2d, 2d, N, N)."""
    a, b = dp[..., :, None, :, :], dp[..., None, :, :, :]
    pp = p[..., None, None, :, :]
    return 1j * pp @ (a @ b - b @ a) @ pp


def abelian_curvature(eps, dhb):
    """Omega_n^{ab} = -2 Im sum_{m != n} (dH_a)_nm (dH_b)_mn / (eps_n - eps_m)^2 (paper Eq. 44),
    (..., N, 2d, 2d)."""
    gap = eps[..., :, None] - eps[..., None, :]
    off = ~np.eye(eps.shape[-1], dtype=bool)
    inverse = np.where(off, 1.0 / np.where(off, gap, 1.0) ** 2, 0.0)  # (..., n, m)
    a = dhb[..., :, None, :, :]  # (..., a, 1, n, m)
    b = np.swapaxes(dhb, -1, -2)[..., None, :, :, :]  # (..., 1, b, n, m) = dH_b,mn
    terms = np.imag(a * b) * inverse[..., None, None, :, :]
    return -2 * np.moveaxis(np.sum(terms, axis=-1), -1, -3)


def phase_space_velocity(omega, gradient, field):
    """Solve PHYSICS.md section 2's linear system for dlambda/dt = (dx/dt, dk/dt):
    dx_a = d_k_a eps - sum_b (O^{k_a x_b} dx_b + O^{k_a k_b} dk_b),
    dk_a = -E_a - d_x_a eps + sum_b (O^{x_a x_b} dx_b + O^{x_a k_b} dk_b)."""
    d = gradient.shape[-1] // 2
    matrix = np.eye(2 * d) + np.concatenate([omega[d:], -omega[:d]], axis=0)
    rhs = np.concatenate([gradient[d:], -np.asarray(field) - gradient[:d]])
    return np.linalg.solve(matrix, rhs)


# ---------------------------------------------------------------------------------------------
# MSCT (paper Eqs. 54-62; PHYSICS.md section 3 steps 1-5)


def fermi(e, mu, temperature):
    """f0 = 1 / (exp((e - mu) / T) + 1)."""
    return 0.5 * (1.0 - np.tanh((e - mu) / (2 * temperature)))


def fermi_derivative(e, mu, temperature):
    """df0/de = -exp(-|s|) / (1 + exp(-|s|))^2 / T, s = (e - mu) / T (no overflow)."""
    decay = np.exp(-np.abs(e - mu) / temperature)
    return -decay / (1.0 + decay) ** 2 / temperature


def hybridised_bands(model, x, k, field, manifold):
    """Steps 1-3 for one manifold: (E_i (..., Na), v_i (..., Na, d), Ft_i (..., Na, d)).

    Hbar_nm = eps_n delta_nm + E . R_k,nm, R_k,nm = i (dH_k)_nm / (eps_m - eps_n) (Eq. 55, q = -1),
    diagonalised at finite field; u_i = sum_n eta^(i)_n u_n; v_i = <u_i|dH_k|u_i> + <u_i|F^{kk}|u_i> E,
    Ft_i = -<u_i|dH_x|u_i> - <u_i|F^{xk}|u_i> E (Eq. 62a, b).
    """
    d = model.dim
    eps, states, dh, dhb = bands(model, x, k)
    m = list(manifold)
    ea = eps[..., m]
    if len(m) == 1:
        energies, eta = ea, np.ones(ea.shape + (1,), complex)
    else:
        gap = ea[..., None, :] - ea[..., :, None]  # eps_m - eps_n at [n, m]
        off = ~np.eye(len(m), dtype=bool)
        dk = dhb[..., d:, :, :][..., m][..., m, :]  # (..., d, Na, Na)
        connection = 1j * np.where(off, dk / np.where(off, gap, 1.0)[..., None, :, :], 0.0)
        hbar = np.einsum("...n,nm->...nm", ea, np.eye(len(m))) + np.einsum(
            "b,...bnm->...nm", field, connection
        )
        energies, eta = np.linalg.eigh(hbar)
    u = states[..., :, m] @ eta  # (..., N, Na), column i: u_i
    expect = np.real(np.einsum("...ni,...lnm,...mi->...il", np.conj(u), dh, u))  # (..., Na, 2d)
    velocity, force = expect[..., d:], -expect[..., :d]
    if len(m) < model.n_bands:
        p = projector(states, m)
        dp = projector_derivative(eps, states, dhb, m)
        f = curvature_operator(p, dp)
        fi = np.real(np.einsum("...ni,...abnm,...mi->...iab", np.conj(u), f, u))
        velocity = velocity + fi[..., d:, d:] @ field
        force = force - fi[..., :d, d:] @ field
    return energies, velocity, force


def _energies(model, point, field, manifolds):
    d = model.dim
    return np.concatenate(
        [hybridised_bands(model, point[..., :d], point[..., d:], field, m)[0] for m in manifolds],
        axis=-1,
    )


def energy_gradient(model, x, k, field, manifolds, step):
    """d E_i / d lambda by the 6th-order central difference of the hybridised energies,
    (..., Na_total, 2d)."""
    point = np.concatenate([x, k], axis=-1)
    columns = []
    for a in range(point.shape[-1]):
        shift = np.zeros(point.shape[-1])
        shift[a] = step
        total = sum(
            c * _energies(model, point + j * shift, field, manifolds)
            for j, c in zip(range(-3, 4), _STENCIL)
            if c != 0.0
        )
        columns.append(total / step)
    return np.stack(columns, axis=-1)


def msct_current_density(model, x, k, field, mu, temperature, tau, manifolds, step=1e-3):
    """The MSCT integrand at (x, k): j = -sum_i g_i v_i, g_i = f0(E_i) - tau f0'(E_i)
    [d_x E_i . v_i + d_k E_i . (-E + Ft_i)] (paper Eqs. 57, 60), (..., d)."""
    field = np.asarray(field, dtype=float)
    parts = [hybridised_bands(model, x, k, field, m) for m in manifolds]
    energies = np.concatenate([p[0] for p in parts], axis=-1)
    velocity = np.concatenate([p[1] for p in parts], axis=-2)
    force = np.concatenate([p[2] for p in parts], axis=-2)
    d = model.dim
    grad = energy_gradient(model, x, k, field, manifolds, step)
    drive = np.sum(grad[..., :d] * velocity, -1) + np.sum(grad[..., d:] * (force - field), -1)
    g = fermi(energies, mu, temperature) - tau * fermi_derivative(energies, mu, temperature) * drive
    return -np.sum(g[..., None] * velocity, axis=-2)


# ---------------------------------------------------------------------------------------------
# wavepacket dynamics (PHYSICS.md section 2)


def abelian_rate(model, x, k, field, band):
    """(dx/dt, dk/dt) of band n from Eq. 43 (all four curvature blocks)."""
    eps, _, _, dhb = bands(model, x, k)
    omega = abelian_curvature(eps, dhb)[band]
    gradient = np.real(dhb[:, band, band])
    return phase_space_velocity(omega, gradient, field)


def nonabelian_rate(model, x, k, chi, field, manifold):
    """(dlambda/dt, dchi/dt) of Eqs. 34, 42: expectations in the projected state P chi / |P chi|,
    chi moved by -i H chi + (dP/dt) chi (Kato)."""
    eps, states, dh, dhb = bands(model, x, k)
    p = projector(states, manifold)
    dp = projector_derivative(eps, states, dhb, manifold)
    inside = p @ chi
    inside = inside / np.linalg.norm(inside)
    f = curvature_operator(p, dp)
    omega = np.real(np.einsum("n,abnm,m->ab", np.conj(inside), f, inside))
    gradient = np.real(np.einsum("n,lnm,m->l", np.conj(inside), dh, inside))
    rate = phase_space_velocity(omega, gradient, field)
    h = model.hamiltonian(x, k)
    return rate, -1j * h @ chi + np.einsum("lij,l->ij", dp, rate) @ chi


def integrate(rate, y0, t1, rtol=1e-12, atol=1e-12):
    solution = solve_ivp(
        lambda t, y: rate(t, y), (0.0, t1), y0, method="DOP853", rtol=rtol, atol=atol
    )
    assert solution.success, solution.message
    return solution.y[:, -1]


def abelian_trajectory(model, x0, k0, field, band, t1):
    """(x(t1), k(t1)) of the Abelian EOM for a uniform field."""
    d = model.dim

    def rate(t, y):
        return abelian_rate(model, y[:d], y[d:], field, band)

    y = integrate(rate, np.concatenate([x0, k0]), t1)
    return y[:d], y[d:]


def nonabelian_trajectory(model, x0, k0, chi0, field, manifold, t1):
    """(x(t1), k(t1), chi(t1)) of the non-Abelian EOM for a uniform field."""
    d, n = model.dim, model.n_bands

    def rate(t, y):
        chi = y[2 * d : 2 * d + n] + 1j * y[2 * d + n :]
        dl, dchi = nonabelian_rate(model, y[:d], y[d : 2 * d], chi, field, manifold)
        return np.concatenate([dl, np.real(dchi), np.imag(dchi)])

    y0 = np.concatenate([x0, k0, np.real(chi0), np.imag(chi0)])
    y = integrate(rate, y0, t1)
    return y[:d], y[d : 2 * d], y[2 * d : 2 * d + n] + 1j * y[2 * d + n :]


def wilson_loop(model, ks, manifold):
    """P(k_M) ... P(k_1) P(k_0) along the discretised loop ks (M+1, d) (ks[-1] = ks[0]): the
    parallel transport (Kato) around the loop as the product of projectors, orbital basis."""
    _, states = np.linalg.eigh(model.hamiltonian(np.zeros_like(ks), ks))
    ps = projector(states, manifold)
    total = ps[0]
    for p in ps[1:]:
        total = p @ total
    return total
