"""Wavepacket dynamics in a magnetic field (PHYSICS.md section 5, charge q = -1, issue 18 item 1).

Oracles: the parabolic band's cyclotron motion k(t) = R(omega_c t) k0, omega_c = B / m*, and its
E x B / B^2 drift (closed forms); the massive Dirac orbit's period with eps~ and D from the
closed-form moment and curvature (derived below); eps~ conservation in a static B; the implicit
(coupled) equations dx/dt = v~ - (dk/dt) x Omega, dk/dt = q E + q (dx/dt) x B at random 3D
points with v~ from central differences of the public moment (independent of the solved form).

Massive Dirac, band s = +1 (upper), H = v (valley kx sx + ky sy) + Delta sz, r = sqrt(Delta^2 +
v^2 k^2): m_z = -valley Delta v^2 / (2 r^2) (tests/test_orbital_moment.py pins it by the exact
n = 0 Landau level), Omega_z = -valley Delta v^2 / (2 r^3). eps~(k) = r - B m_z is isotropic, so
v~ = eps~'(k) k^ with eps~' = v^2 k / r - B valley Delta v^4 k / r^4, and with E = 0
D dk/dt = q v~ x B is tangential: the orbit is the circle |k| = k0, run at angular speed
|v~ B| / (D k); the period is T = 2 pi D k / |eps~'(k) B|, D = 1 + B Omega_z.
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax.dynamics._vector_fields import AbelianField, join_state
from semiclassical_jax.geometry._kernel import band_geometry_unchecked

MASS = 0.7  # m* of the parabolic band


def _parabolic(p, x, k):
    """Band 0: eps = k^2 / (2 m*); a flat-offset band 1 uncoupled to it (Omega = m = 0)."""
    eps = jnp.sum(k**2) / (2.0 * p["m"])
    return jnp.diag(jnp.stack([eps, eps + 5.0])).astype(complex)


PARABOLIC = sj.models.FunctionModel(_parabolic, {"m": jnp.asarray(MASS)}, dim=2, n_bands=2)


def _rotation(angle):
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


@pytest.mark.parametrize("method", ["abelian", "full"])
def test_parabolic_cyclotron_and_drift(method):
    """k(t) = R(omega_c t) k0 with omega_c = B / m* (counter-clockwise for B > 0: dk/dt =
    -v x B); with E the mean velocity over one period is E x B / B^2 (in 2D (E_y, -E_x) / B_z,
    from v x B = -E). Tolerance 1e-8: the integrator's (rtol 1e-10)."""
    k0 = np.array([0.6, -0.3])
    for b, e in [(0.9, (0.0, 0.0)), (-1.3, (0.0, 0.0)), (0.9, (0.05, -0.02)), (-1.3, (0.03, 0.04))]:
        omega_c = b / MASS
        period = 2 * np.pi / abs(omega_c)
        times = np.array([0.25, 0.5, 1.0]) * period
        traj = sj.evolve(
            PARABOLIC,
            np.zeros(2),
            k0,
            t1=period,
            field=np.array(e),
            magnetic_field=b,
            method=method,
            band=0,
            saveat=times,
        )
        # drift: k(t) = k_d + R(omega t)(k0 - k_d), m* v_d = k_d, v_d = E x B / B^2
        drift = np.array([e[1], -e[0]]) / b
        rotations = np.stack([_rotation(angle) for angle in omega_c * times])
        expected = drift * MASS + rotations @ (k0 - drift * MASS)
        np.testing.assert_allclose(traj.k, expected, atol=1e-8)
        np.testing.assert_allclose(traj.x[-1] / period, drift, atol=1e-8)
        if method == "abelian":
            np.testing.assert_allclose(traj.phase_space_factor, 1.0, atol=1e-14)
        else:
            assert traj.phase_space_factor is None


def _dirac_closed_forms(k, delta, b, v=1.0, valley=1):
    """(eps~, D, period) of the upper massive Dirac band on the circle |k| (module docstring)."""
    r = np.sqrt(delta**2 + v**2 * k**2)
    moment = -valley * delta * v**2 / (2 * r**2)
    omega = -valley * delta * v**2 / (2 * r**3)
    slope = v**2 * k / r - b * valley * delta * v**4 * k / r**4
    factor = 1 + b * omega
    return r - b * moment, factor, 2 * np.pi * factor * k / abs(slope * b)


def test_massive_dirac_cyclotron_period():
    """The upper band returns to k0 after T = 2 pi D k / |eps~' B| (module docstring), |k| is
    constant, eps~ and D match their closed forms along the orbit. B and Delta are chosen so that
    D - 1 (up to 12 %) and the moment shift change T by far more than the tolerance (1e-7)."""
    k0 = np.array([0.8, 0.0])
    for delta, b in [(0.5, 0.6), (-0.5, 0.6), (0.3, -0.9)]:
        model = sj.models.MassiveDirac(1.0, delta)
        eps_t, factor, period = _dirac_closed_forms(0.8, delta, b)
        times = np.array([0.25, 0.5, 1.0]) * period
        traj = sj.evolve(
            model, np.zeros(2), k0, t1=period, field=np.zeros(2), magnetic_field=b,
            method="abelian", band=1, saveat=times,
        )  # fmt: skip
        np.testing.assert_allclose(traj.k[-1], k0, atol=1e-7)
        np.testing.assert_allclose(traj.k[1], -k0, atol=1e-7)
        np.testing.assert_allclose(np.linalg.norm(traj.k, axis=1), 0.8, atol=1e-9)
        np.testing.assert_allclose(traj.energy, eps_t, atol=1e-9)
        np.testing.assert_allclose(traj.phase_space_factor, factor, atol=1e-12)
        # sense of rotation: dk/dt = q v~ x B / D, counter-clockwise when eps~' B / D > 0
        quarter = np.sign(b * factor) * np.array([0.0, 0.8])
        np.testing.assert_allclose(traj.k[0], quarter, atol=1e-7)


def test_moment_energy_conserved_in_static_field():
    """E = 0: eps~ (the reported energy, checked against its closed form with the tilt w kx) is
    conserved along a non-circular orbit (tilted cone) to 1e-9; D follows 1 + B Omega_z(k)."""
    delta, b, tilt = 0.5, 0.6, 0.4
    model = sj.models.MassiveDirac(1.0, delta, tilt=tilt)
    traj = sj.evolve(
        model, np.zeros(2), np.array([0.8, 0.0]), t1=20.0, field=np.zeros(2), magnetic_field=b,
        method="abelian", band=1, saveat=np.array([5.0, 10.0, 20.0]),
    )  # fmt: skip
    k = np.asarray(traj.k)
    r = np.sqrt(delta**2 + np.sum(k**2, axis=1))
    closed = tilt * k[:, 0] + r + b * delta / (2 * r**2)
    np.testing.assert_allclose(traj.energy, closed, atol=1e-12)
    eps0 = 0.4 * 0.8 + np.sqrt(0.25 + 0.64) + b * delta / (2 * 0.89)
    np.testing.assert_allclose(traj.energy, eps0, atol=1e-9)
    np.testing.assert_allclose(traj.phase_space_factor, 1 - b * delta / (2 * r**3), atol=1e-12)
    assert np.ptp(np.linalg.norm(k, axis=1)) > 0.05  # the orbit is not a circle


def test_position_dependent_field_conserves_moment_energy():
    """B(x) = B0 + g x (a callable): eps~(x, k) = eps(k) - m(k) . B(x) is conserved (E = 0) only
    with the force -d eps~/dx = m . dB/dx; to 1e-9, with B(x) varying by ~30 % on the orbit."""
    delta, b0, g = 0.5, 0.6, 0.1
    model = sj.models.MassiveDirac(1.0, delta)

    def field(x):
        return b0 + g * x[0]

    traj = sj.evolve(
        model, np.zeros(2), np.array([0.8, 0.0]), t1=20.0, field=np.zeros(2),
        magnetic_field=field, method="abelian", band=1, saveat=np.array([5.0, 10.0, 20.0]),
    )  # fmt: skip
    k, x = np.asarray(traj.k), np.asarray(traj.x)
    r = np.sqrt(delta**2 + np.sum(k**2, axis=1))
    closed = r + (b0 + g * x[:, 0]) * delta / (2 * r**2)
    np.testing.assert_allclose(traj.energy, closed, atol=1e-12)
    eps0 = np.sqrt(0.89) + b0 * delta / (2 * 0.89)
    np.testing.assert_allclose(traj.energy, eps0, atol=1e-9)
    assert np.ptp(g * x[:, 0]) > 0.1 and np.ptp(r) > 0.01


def test_gradient_reaches_the_field():
    """The derivative of k_x(t1) w.r.t. B (through eps~, D and the Lorentz force), forward mode
    (the package's choice for few parameters; it compiles in half the time of reverse mode),
    equals central differences (step 1e-4, O(h^2) ~ 1e-8) to 1e-6 relative."""
    model = sj.models.MassiveDirac(1.0, 0.5)

    def end(b, adjoint=None):  # the structure of the cyclotron-period runs (compiled solve reused)
        traj = sj.evolve(
            model, jnp.zeros(2), jnp.array([0.8, 0.0]), t1=3.0, field=jnp.zeros(2),
            magnetic_field=b, method="abelian", band=1, saveat=jnp.array([1.0, 2.0, 3.0]),
            adjoint=adjoint,
        )  # fmt: skip
        return traj.k[-1, 0]

    b, h = 0.6, 1e-4
    grad = jax.jacfwd(lambda field: end(field, diffrax.ForwardMode()))(b)
    central = (end(b + h) - end(b - h)) / (2 * h)
    np.testing.assert_allclose(grad, central, rtol=1e-6)
    assert abs(grad) > 0.1


def _dirac_3d(p, x, k):
    """The 2D massive Dirac model with kz^2 / 2 added (identity): Omega and m along z only."""
    h2 = sj.models.MassiveDirac(1.0, p["delta"])(x[:2], k[:2])
    return h2 + 0.5 * k[2] ** 2 * jnp.eye(2)


def test_three_dimensions_field_along_z_is_the_2d_orbit():
    """B = (0, 0, B_z) on a 3D model that is the 2D massive Dirac model plus kz^2/2: the same
    (kx, ky, x, y) as the 2D run (1e-9), kz stays 0."""
    model = sj.models.FunctionModel(_dirac_3d, {"delta": jnp.asarray(0.5)}, dim=3, n_bands=2)
    e2 = np.array([0.02, 0.01])
    common = dict(t1=4.0, method="abelian", band=1, saveat=np.array([1.0, 2.0, 4.0]))
    traj3 = sj.evolve(
        model, np.zeros(3), np.array([0.8, 0.1, 0.0]), field=np.append(e2, 0.0),
        magnetic_field=np.array([0.0, 0.0, 0.6]), **common,
    )  # fmt: skip
    traj2 = sj.evolve(
        sj.models.MassiveDirac(1.0, 0.5), np.zeros(2), np.array([0.8, 0.1]), field=e2,
        magnetic_field=0.6, **common,
    )  # fmt: skip
    np.testing.assert_allclose(traj3.k[:, :2], traj2.k, atol=1e-9)
    np.testing.assert_allclose(traj3.x[:, :2], traj2.x, atol=1e-9)
    np.testing.assert_allclose(traj3.k[:, 2], 0.0, atol=1e-12)
    np.testing.assert_allclose(traj3.phase_space_factor, traj2.phase_space_factor, atol=1e-12)


def _anisotropic_3d(p, x, k):
    """A generic gapped 3D two-band model (every Omega and m component nonzero)."""
    dx = 0.9 * k[0] + 0.2 * k[1] * k[2]
    dy = 1.1 * k[1] - 0.3 * k[0] * k[2]
    dz = p["delta"] + 0.7 * k[2] + 0.4 * k[0] ** 2
    d0 = 0.2 * k[0] + 0.1 * k[2] ** 2
    return jnp.array([[d0 + dz, dx - 1j * dy], [dx + 1j * dy, d0 - dz]])


def _anisotropic_3d_remote(p, x, k):
    """_anisotropic_3d coupled to a remote band at energy 2 (the eigenvector route, not the
    two-band closed form)."""
    h = jnp.zeros((3, 3), complex).at[:2, :2].set(_anisotropic_3d(p, x, k))
    coupling = 0.3 * (k[0] + 1j * k[2])
    return h.at[2, 2].set(2.0).at[1, 2].set(coupling).at[2, 1].set(jnp.conj(coupling))


@pytest.mark.parametrize("function, n_bands", [(_anisotropic_3d, 2), (_anisotropic_3d_remote, 3)])
def test_solved_equations_satisfy_the_coupled_ones_in_3d(function, n_bands):
    """At random 3D points with generic E, B: the solved (dx/dt, dk/dt) satisfy
    dx/dt = v~ - (dk/dt) x Omega and dk/dt = q E + q (dx/dt) x B (q = -1; PHYSICS.md section 5),
    with v~ = d(eps - m . B)/dk by central differences (h = 1e-4) of the kernel's eigenvalues and
    moment, Omega from its curvature: tolerance 1e-7 (the differences' error)."""
    model = sj.models.FunctionModel(function, {"delta": jnp.asarray(0.3)}, dim=3, n_bands=n_bands)
    rng = np.random.default_rng(3)
    b, e = np.array([0.3, -0.5, 0.4]), np.array([0.2, 0.1, -0.3])
    field = AbelianField(1)
    magnetic = sj._guards.magnetic_field(b, 3)
    uniform = sj.dynamics._fields.as_field(e, 3)

    def eps_tilde(k):
        geometry = band_geometry_unchecked(model, jnp.zeros(3), k)
        return geometry.energies[1] - geometry.orbital_moment()[1] @ b

    def berry(k):
        return band_geometry_unchecked(model, jnp.zeros(3), jnp.asarray(k)).berry_curvature()

    def rates(k):
        state = join_state(jnp.zeros(3), k, jnp.zeros(n_bands, complex))
        return field(0.0, state, (model, uniform, magnetic))[:2]

    ks = rng.normal(scale=0.4, size=(3, 3))
    h = 1e-4
    shifted = ks[:, None, None, :] + h * np.array([1, -1])[None, :, None, None] * np.eye(3)
    eps = jax.jit(jax.vmap(eps_tilde))(shifted.reshape(-1, 3)).reshape(3, 2, 3)
    velocities = (eps[:, 0] - eps[:, 1]) / (2 * h)
    all_dx, all_dk = jax.jit(jax.vmap(rates))(jnp.asarray(ks))
    for k, v, dx, dk in zip(ks, velocities, np.asarray(all_dx), np.asarray(all_dk)):
        curvature = np.asarray(berry(k))[1]
        omega = np.array([curvature[4, 5], curvature[5, 3], curvature[3, 4]])
        assert np.linalg.norm(omega) * np.linalg.norm(b) > 0.05
        np.testing.assert_allclose(dx, v - np.cross(dk, omega), atol=1e-7)
        np.testing.assert_allclose(dk, -e - np.cross(dx, b), atol=1e-7)


def test_errors():
    """Bad B shape names the argument; textured Abelian runs are refused."""
    model = sj.models.MassiveDirac(1.0, 0.5)
    kwargs = dict(t1=1.0, field=np.zeros(2), band=1)
    with pytest.raises(ValueError, match="magnetic_field"):
        sj.evolve(
            model, np.zeros(2), np.ones(2), magnetic_field=np.ones(3), method="abelian", **kwargs
        )
    with pytest.raises(ValueError, match="magnetic_field must be finite"):
        sj.evolve(model, np.zeros(2), np.ones(2), magnetic_field=np.nan, method="abelian", **kwargs)
    textured = sj.models.MassiveDirac(1.0, lambda x: 0.5 + 0.1 * jnp.cos(x[0]))
    with pytest.raises(NotImplementedError, match="uniform"):
        sj.evolve(textured, np.zeros(2), np.ones(2), magnetic_field=0.5, method="abelian", **kwargs)


def test_no_field_keeps_the_old_trajectory():
    """magnetic_field=None: phase_space_factor is None (the B = 0 dynamics are unchanged)."""
    traj = sj.evolve(
        PARABOLIC, np.zeros(2), np.ones(2), t1=1.0, field=np.array([0.1, 0.0]),
        method="abelian", band=0, solver=diffrax.Tsit5(),
    )  # fmt: skip
    assert traj.phase_space_factor is None
    np.testing.assert_allclose(traj.k[-1], [0.9, 1.0], atol=1e-9)
