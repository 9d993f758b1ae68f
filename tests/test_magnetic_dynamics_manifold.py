"""Non-Abelian (manifold) wavepacket dynamics in a magnetic field (PHYSICS.md section 5, q = -1).

Oracles: two decoupled massive Dirac valleys H_K (+) H_K' (same Delta, opposite valley) with the
manifold of the two degenerate upper bands. A state started in one valley stays there (dH never
couples the blocks) and must run that valley's Abelian orbit, whose period with eps~ and D is the
closed form T = 2 pi D k / |eps~'(k) B| (tests/test_magnetic_dynamics.py derives it; moment
m_z = -valley Delta v^2 / (2 r^2), curvature Omega_z = -valley Delta v^2 / (2 r^3)). At k = 0
both valleys are stationary and a superposition precesses under -M . B: the relative phase of
the valley amplitudes is exp(-i (eps~_K - eps~_K') t) = exp(-i v^2 B t / Delta). In a static B
(E = 0) <chi|H - M . B|chi> is conserved for a genuinely non-Abelian (mixed, non-degenerate)
manifold state. A one-band manifold is the Abelian run (3D, generic E and B: every term).
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax.geometry._kernel import band_geometry_unchecked

DELTA, V = 0.5, 1.0


def _two_valleys(p, x, k):
    """H_K (+) H_K' + t kx tau_x (4 x 4), both valleys with mass Delta. At t = 0 the bands are
    (-r, -r, r, r) and the manifold (2, 3) of the upper bands is degenerate and decoupled; t != 0
    splits and mixes it (one compiled model for every test here)."""
    h_k = sj.models.MassiveDirac(V, p["delta"], valley=1)(x, k)
    h_kp = sj.models.MassiveDirac(V, p["delta"], valley=-1)(x, k)
    coupling = p["t"] * k[0] * jnp.eye(2, dtype=complex)
    return jnp.block([[h_k, coupling], [coupling, h_kp]])


TWO_VALLEYS = sj.models.FunctionModel(
    _two_valleys, {"delta": jnp.asarray(DELTA), "t": jnp.asarray(0.0)}, dim=2, n_bands=4
)


def _upper_state(k, valley):
    """The upper eigenvector of one valley's H at k, embedded in the 4-band orbital basis."""
    h = np.asarray(sj.models.MassiveDirac(V, DELTA, valley=valley)(np.zeros(2), k))
    state = np.linalg.eigh(h)[1][:, 1]
    return np.concatenate([state, np.zeros(2)] if valley == 1 else [np.zeros(2), state])


def _dirac_closed_forms(k, b, valley):
    """(eps~, D, period) of the upper band of one valley on the circle |k| (module docstring)."""
    r = np.sqrt(DELTA**2 + V**2 * k**2)
    moment = -valley * DELTA * V**2 / (2 * r**2)
    omega = -valley * DELTA * V**2 / (2 * r**3)
    slope = V**2 * k / r - b * valley * DELTA * V**4 * k / r**4
    factor = 1 + b * omega
    return r - b * moment, factor, 2 * np.pi * factor * k / abs(slope * b)


@pytest.mark.parametrize("valley", [1, -1])
def test_valley_state_runs_the_closed_form_orbit(valley):
    """Degenerate manifold (2, 3), chi0 in one valley: back at k0 after the closed-form period
    (1e-7), half-way at -k0, at a quarter at +-(0, |k0|) (the sense of rotation), |k| constant (1e-9), eps~ and D their closed forms (1e-9, 1e-12).
    The two valleys' moments and curvatures have opposite signs, so the moment shift and D
    (up to 12 % here) change T far beyond the tolerance and a wrong valley is caught."""
    k0 = np.array([0.8, 0.0])
    for b in (0.6, -0.9):
        eps_t, factor, period = _dirac_closed_forms(0.8, b, valley)
        times = np.array([0.25, 0.5, 1.0]) * period
        traj = sj.evolve(
            TWO_VALLEYS, np.zeros(2), k0, t1=period, field=np.zeros(2), magnetic_field=b,
            method="nonabelian", manifold=(2, 3), chi0=_upper_state(k0, valley), saveat=times,
        )  # fmt: skip
        np.testing.assert_allclose(traj.k[-1], k0, atol=1e-7)
        np.testing.assert_allclose(traj.k[1], -k0, atol=1e-7)
        # sense of rotation: dk/dt = q v~ x B / D, counter-clockwise when eps~' B / D > 0
        quarter = np.sign(b * factor) * np.array([0.0, 0.8])
        np.testing.assert_allclose(traj.k[0], quarter, atol=1e-7)
        np.testing.assert_allclose(np.linalg.norm(traj.k, axis=1), 0.8, atol=1e-9)
        np.testing.assert_allclose(traj.energy, eps_t, atol=1e-9)
        np.testing.assert_allclose(traj.phase_space_factor, factor, atol=1e-12)
        other = slice(2, 4) if valley == 1 else slice(0, 2)
        np.testing.assert_allclose(np.asarray(traj.chi)[:, other], 0.0, atol=1e-8)


def test_moment_matrix_precesses_the_manifold_state():
    """At k = 0 (a stationary point of both valleys) chi0 = (|K, up> + |K', up>) / sqrt 2: x and k
    stay put and chi_K / chi_K' = exp(-i v^2 B t / Delta) (the moment splitting
    eps~_K - eps~_K' = (m_K' - m_K) B = v^2 B / Delta); tolerance 1e-8."""
    b = 0.7
    times = np.array([1.0, 2.5, 4.0])
    chi0 = np.array([1.0, 0.0, 1.0, 0.0]) / np.sqrt(2)  # Delta > 0: the upper states are s_z = +1
    traj = sj.evolve(
        TWO_VALLEYS, np.zeros(2), np.zeros(2), t1=4.0, field=np.zeros(2), magnetic_field=b,
        method="nonabelian", manifold=(2, 3), chi0=chi0, saveat=times,
    )  # fmt: skip
    chi = np.asarray(traj.chi)
    np.testing.assert_allclose(traj.k, 0.0, atol=1e-12)
    np.testing.assert_allclose(
        chi[:, 0] / chi[:, 2], np.exp(-1j * V**2 * b * times / DELTA), atol=1e-8
    )
    # eps~ of the equal superposition: Delta - (m_K + m_K') B / 2 = Delta
    np.testing.assert_allclose(traj.energy, DELTA, atol=1e-10)


def _initial_moment_energy(model, k, chi, b):
    """<chi|H - M . B|chi> at (0, k): M in the kernel's manifold basis, chi projected on it."""
    geometry = band_geometry_unchecked(model, jnp.zeros(2), jnp.asarray(k))
    states = np.asarray(geometry.states)[:, 2:]
    c = np.conj(states.T) @ chi
    h = (
        np.diag(np.asarray(geometry.energies)[2:])
        - b * np.asarray(geometry.manifold_orbital_moment((2, 3)))[0]
    )
    return np.real(np.conj(c) @ h @ c)


def test_mixed_manifold_conserves_the_moment_energy():
    """Coupled valleys (t = 0.3: the manifold (2, 3) split and mixed by dH), E = 0, static B:
    <chi|H - M . B|chi> of a superposition is conserved to 1e-8 (integrator tolerance) along a
    non-circular orbit; D = 1 + B <F> is reported and not 1."""
    model = sj.models.FunctionModel(
        _two_valleys, {"delta": jnp.asarray(DELTA), "t": jnp.asarray(0.3)}, dim=2, n_bands=4
    )
    k0 = np.array([0.8, 0.0])
    states = np.linalg.eigh(np.asarray(model(np.zeros(2), k0)))[1]
    chi0 = (states[:, 2] + (0.6 + 0.3j) * states[:, 3]) / np.sqrt(1.45)
    traj = sj.evolve(
        model, np.zeros(2), k0, t1=6.0, field=np.zeros(2), magnetic_field=0.6,
        method="nonabelian", manifold=(2, 3), chi0=chi0, saveat=np.array([2.0, 4.0, 6.0]),
    )  # fmt: skip
    k = np.asarray(traj.k)
    assert np.ptp(np.linalg.norm(np.vstack([k0, k]), axis=1)) > 2e-3  # not the t = 0 circle
    np.testing.assert_allclose(traj.energy, _initial_moment_energy(model, k0, chi0, 0.6), atol=1e-8)
    assert np.min(np.abs(np.asarray(traj.phase_space_factor) - 1.0)) > 1e-3


def _anisotropic_3d(p, x, k):
    """A generic gapped 3D two-band model (every Omega and m component nonzero)."""
    dx = 0.9 * k[0] + 0.2 * k[1] * k[2]
    dy = 1.1 * k[1] - 0.3 * k[0] * k[2]
    dz = p["delta"] + 0.7 * k[2] + 0.4 * k[0] ** 2
    d0 = 0.2 * k[0] + 0.1 * k[2] ** 2
    return jnp.array([[d0 + dz, dx - 1j * dy], [dx + 1j * dy, d0 - dz]])


def test_one_band_manifold_is_the_abelian_run_in_3d_and_differentiable_in_b():
    """Manifold (1,) of a generic 3D model with generic E and B (every term of the equations,
    including (v~ . Omega) B and (E . B) Omega, nonzero): x, k, energy and D equal the Abelian
    run's (tests/test_magnetic_dynamics.py pins those against the coupled equations) to 1e-8
    (breakdown monitor off: the field-driven eta ~ 1 is not what is tested here).

    Gradient: the manifold run is differentiated w.r.t. the field's scale s (B = s B0) by forward
    mode (jax.jvp, diffrax.ForwardMode(); one compiled program gives the values above as its
    primal), and d(x, k)(t1)/ds equals central differences of the same program (step 1e-4,
    O(h^2) ~ 1e-8; tolerance 1e-6 absolute on entries of order 1). Every term's B dependence
    (eps~, v~ through dM/dk, D, the Lorentz and anomaly terms) is differentiated; with one band
    the moment matrix is 1 x 1 (a mixed two-band manifold compiles ~2x longer)."""
    model = sj.models.FunctionModel(_anisotropic_3d, {"delta": jnp.asarray(0.3)}, dim=3, n_bands=2)
    b0 = np.array([0.3, -0.5, 0.4])
    common = dict(
        t1=2.0, field=np.array([0.2, 0.1, -0.3]), saveat=np.array([1.0, 2.0]),
        adiabaticity_limit=None,
    )  # fmt: skip
    k0 = np.array([0.3, -0.2, 0.1])

    def manifold_run(scale):
        traj = sj.evolve(
            model, np.zeros(3), k0, method="nonabelian", manifold=(1,), magnetic_field=scale * b0,
            adjoint=diffrax.ForwardMode(), **common,
        )  # fmt: skip
        return traj.k, traj.x, traj.energy, traj.phase_space_factor

    def end_and_slope(scale):
        values, tangents = jax.jvp(manifold_run, (jnp.asarray(scale),), (jnp.asarray(1.0),))
        return values, np.concatenate([tangents[0][-1], tangents[1][-1]])

    (k, x, energy, factor), slope = end_and_slope(1.0)
    abelian = sj.evolve(
        model, np.zeros(3), k0, magnetic_field=b0, method="abelian", band=1, **common
    )
    np.testing.assert_allclose(k, abelian.k, atol=1e-8)
    np.testing.assert_allclose(x, abelian.x, atol=1e-8)
    np.testing.assert_allclose(energy, abelian.energy, atol=1e-8)
    np.testing.assert_allclose(factor, abelian.phase_space_factor, atol=1e-10)
    assert np.ptp(np.asarray(abelian.phase_space_factor)) > 1e-3
    h = 1e-4
    ends = [np.concatenate([v[0][-1], v[1][-1]]) for v, _ in map(end_and_slope, (1 + h, 1 - h))]
    np.testing.assert_allclose(slope, (ends[0] - ends[1]) / (2 * h), atol=1e-6)
    assert np.max(np.abs(slope)) > 0.5


def test_textured_manifold_is_refused():
    """A position-dependent model in B is refused by name (uniform models only)."""
    textured = sj.models.MassiveDirac(1.0, lambda x: 0.5 + 0.1 * jnp.cos(x[0]))
    with pytest.raises(NotImplementedError, match="uniform"):
        sj.evolve(
            textured, np.zeros(2), np.ones(2), t1=1.0, field=np.zeros(2), magnetic_field=0.5,
            method="nonabelian", manifold=(1,),
        )  # fmt: skip


def test_position_dependent_field_conserves_the_moment_energy():
    """B(x) = 0.6 + 0.2 sin(x): the force <M> . dB/dx joins dk/dt; with E = 0, the conserved
    energy is <chi|H - M . B(x)|chi> (1e-8), reported by ``energy``, on the valley-K orbit of
    the degenerate two-valley manifold (the moment energy at B(x0), closed form, at t = 0)."""
    k0 = np.array([0.8, 0.0])
    eps_t0, _, _ = _dirac_closed_forms(0.8, 0.6, 1)
    traj = sj.evolve(
        TWO_VALLEYS, np.zeros(2), k0, t1=6.0, field=np.zeros(2),
        magnetic_field=lambda x: 0.6 + 0.2 * jnp.sin(x[0]), method="nonabelian",
        manifold=(2, 3), chi0=_upper_state(k0, 1), saveat=np.array([2.0, 4.0, 6.0]),
    )  # fmt: skip
    assert np.ptp(np.asarray(traj.x)[:, 0]) > 0.1  # B(x) changes along the path
    np.testing.assert_allclose(traj.energy, eps_t0, atol=1e-8)
