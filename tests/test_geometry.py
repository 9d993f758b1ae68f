"""Band geometry against closed forms, sum rules and Chern numbers (PHYSICS.md section 1)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import models, textures

BUILT_IN = {
    "MassiveDirac": models.MassiveDirac(1.3, 0.4, valley=-1, tilt=0.2),
    "MassiveDirac-moire": models.MassiveDirac(0.9, textures.HexagonalMoire(0.2, 7.0)),
    "DiracWithRemoteBand": models.DiracWithRemoteBand(1.0, 0.3, 2.5, 0.6),
    "QWZ": models.QWZ(-1.2),
    "Haldane": models.Haldane(1.0, 0.15, 0.7, 0.2),
    "KaneMele-rashba": models.KaneMele(1.0, 0.06, rashba=0.05, mass=0.1),
    "TightBinding": models.TightBinding.from_hoppings(
        [[1.0, 0.0], [0.3, 1.2]],
        [[0.0, 0.0], [0.5, 0.2], [0.1, 0.6]],
        [0.3, -0.2, 0.05],
        [
            (0.7, 0, 1, (0, 0)),
            (0.4j, 1, 2, (1, 0)),
            (0.25 - 0.1j, 2, 0, (0, 1)),
            (0.1, 0, 0, (1, 0)),
        ],
    ),
    "FunctionModel": models.FunctionModel(
        lambda p, x, k: jnp.array(
            [
                [p[0] * jnp.cos(k[0] + x[1]), jnp.sin(k[1]) - 1j * x[0] * k[0]],
                [jnp.sin(k[1]) + 1j * x[0] * k[0], -p[0] * jnp.cos(k[0] + x[1]) + p[1] * k[1] ** 2],
            ]
        ),
        jnp.array([0.8, 0.3]),
        dim=2,
        n_bands=2,
    ),
}


def _dirac_lower_curvature(v, delta, valley, k):
    """Closed form Omega^{kx ky} of the lower massive-Dirac band (package convention)."""
    return valley * delta * v**2 / (2 * (v**2 * np.sum(k**2, axis=-1) + delta**2) ** 1.5)


@pytest.mark.parametrize("valley", [1, -1])
@pytest.mark.parametrize("delta", [0.4, -0.05])
def test_massive_dirac_curvature_closed_form(rng, valley, delta):
    """Omega^{kxky} = valley Delta v^2 / (2 (v^2 k^2 + Delta^2)^{3/2}) to 1e-10 rel; tilt changes nothing."""
    v = 1.7
    ks = rng.uniform(-2, 2, size=(64, 2))
    for tilt in (0.0, 0.8):
        model = models.MassiveDirac(v, delta, valley=valley, tilt=tilt)
        omega = jax.vmap(sj.berry_curvature, in_axes=(None, None, 0))(model, None, jnp.asarray(ks))
        expected = _dirac_lower_curvature(v, delta, valley, ks)
        np.testing.assert_allclose(omega[:, 0, 2, 3], expected, rtol=1e-10)
        np.testing.assert_allclose(omega[:, 1, 2, 3], -expected, rtol=1e-10)


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_sum_rule_and_antisymmetry_for_every_built_in_model(rng, name):
    """sum_n Omega_n^{ab} = 0 and Omega^{ab} = -Omega^{ba}, to 1e-10 of max|Omega|."""
    model = BUILT_IN[name]
    xs = jnp.asarray(rng.uniform(-3, 3, size=(16, 2)))
    ks = jnp.asarray(rng.uniform(-2, 2, size=(16, 2)))
    omega = jax.vmap(sj.berry_curvature, in_axes=(None, 0, 0))(model, xs, ks)
    assert omega.shape == (16, model.n_bands, 4, 4)
    scale = np.max(np.abs(omega))
    assert scale > 1e-3  # the check is not vacuous
    assert np.max(np.abs(omega.sum(axis=1))) < 1e-10 * scale
    assert np.max(np.abs(omega + np.swapaxes(omega, -1, -2))) < 1e-10 * scale


def test_velocity_is_closed_form_dirac_velocity(rng):
    """v_n = d eps_n / dk with eps = w kx -+ sqrt(v^2 k^2 + Delta^2) (closed form), to 1e-12."""
    v, delta, w = 1.3, 0.4, 0.25
    model = models.MassiveDirac(v, delta, tilt=w)
    for k in rng.uniform(-1, 1, size=(5, 2)):
        root = np.sqrt(v**2 * k @ k + delta**2)
        lower = np.array([w, 0.0]) - v**2 * k / root
        upper = np.array([w, 0.0]) + v**2 * k / root
        np.testing.assert_allclose(sj.band_velocity(model, None, k), [lower, upper], atol=1e-12)
        np.testing.assert_allclose(sj.band_force(model, None, k), 0.0, atol=1e-14)


def test_berry_connection_closed_form_massive_dirac():
    """|R^{kx}_{01}|^2 + |R^{ky}_{01}|^2 = quantum metric trace: v^2 (v^2 k^2 + 2 Delta^2) / (4 E^4) ... at k=0: v^2/(2 Delta^2)."""
    v, delta = 1.1, 0.3
    model = models.MassiveDirac(v, delta)
    r = sj.berry_connection(model, None, jnp.zeros(2))
    # at k = 0 the states are orbital eigenstates; |<0|sx|1>| = 1 -> |R| = v / (2 |Delta|) per direction
    np.testing.assert_allclose(np.abs(r[2, 0, 1]), v / (2 * delta), rtol=1e-12)
    np.testing.assert_allclose(np.abs(r[3, 0, 1]), v / (2 * delta), rtol=1e-12)
    np.testing.assert_allclose(np.diagonal(r, axis1=1, axis2=2), 0.0)
    np.testing.assert_allclose(r, np.conj(np.swapaxes(r, 1, 2)), atol=1e-14)  # Hermitian


def _d_vector_chern(d_of_k, lattice, n):
    """Degree of k -> d/|d| on the BZ torus from exact triangle solid angles (Oosterom-Strackee).

    Independent of the package: no eigenvectors, no autodiff. For H = d.sigma the lower band's
    Chern number in the package's convention (PHYSICS.md, Omega = -2 Im ...) equals this degree,
    fixed by the massive-Dirac closed form (lower band Omega = +Delta v^2/2E^3 -> C = +1/2 sgn Delta).
    """
    reciprocal = 2 * np.pi * np.linalg.inv(lattice).T
    f = np.arange(n + 1) / n
    red = np.stack(np.meshgrid(f, f, indexing="ij"), -1)
    d = d_of_k(red @ reciprocal)
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)

    def solid_angle(a, b, c):
        num = np.einsum("...i,...i", a, np.cross(b, c))
        den = (
            1
            + np.einsum("...i,...i", a, b)
            + np.einsum("...i,...i", b, c)
            + np.einsum("...i,...i", c, a)
        )
        return 2 * np.arctan2(num, den)

    p00, p10, p11, p01 = d[:-1, :-1], d[1:, :-1], d[1:, 1:], d[:-1, 1:]
    total = solid_angle(p00, p10, p11) + solid_angle(p00, p11, p01)
    return np.sign(np.linalg.det(lattice)) * total.sum() / (4 * np.pi)


@pytest.mark.parametrize("m", [-3.0, -1.0, 1.0, 3.0])
def test_qwz_chern_numbers_over_phase_diagram(m):
    """QWZ: link-method C is an integer to 1e-6 on 48x48 and equals the d-vector degree."""

    def d_of_k(k):
        kx, ky = k[..., 0], k[..., 1]
        return np.stack([np.sin(kx), np.sin(ky), m + np.cos(kx) + np.cos(ky)], -1)

    expected = _d_vector_chern(d_of_k, np.eye(2), 200)
    assert abs(expected - round(expected)) < 1e-9
    chern = float(sj.chern_number(models.QWZ(m), [0], 48))
    assert abs(chern - round(expected)) < 1e-6
    assert abs(float(sj.chern_number(models.QWZ(m), [1], 48)) + round(expected)) < 1e-6
    assert (round(expected) != 0) == (abs(m) < 2)


def _haldane_d_vector(t1, t2, phi, mass):
    """Haldane's H = d0 + d.sigma written out by hand from its bonds (Cartesian k)."""
    lattice = np.array([[1.0, 0.0], [0.5, np.sqrt(3) / 2]])
    a1, a2 = lattice
    nn = [
        (np.array([1, 1]) / 3) @ lattice,
        (np.array([-2, 1]) / 3) @ lattice,
        (np.array([1, -2]) / 3) @ lattice,
    ]
    nnn_plus = [a1, a2 - a1, -a2]  # A-A bonds carrying exp(+i phi) ... see models/_lattice.py

    def d_of_k(k):
        f = sum(t1 * np.exp(1j * k @ delta) for delta in nn)
        g = sum(np.sin(k @ b) for b in nnn_plus)
        return np.stack([f.real, -f.imag, mass - 2 * t2 * np.sin(phi) * g], -1)

    return d_of_k, lattice


@pytest.mark.parametrize(
    "mass, topological", [(0.2, True), (0.6, True), (0.95, False), (-0.95, False), (-0.6, True)]
)
def test_haldane_chern_both_sides_of_boundary(mass, topological):
    """|C| = 1 iff |M| < 3 sqrt(3) t2 |sin phi| (0.779 here); integer to 1e-6 on 48x48,
    equal to the hand-written d-vector degree; curvature integral agrees with the link method."""
    t1, t2, phi = 1.0, 0.15, np.pi / 2
    assert (abs(mass) < 3 * np.sqrt(3) * t2) == topological
    model = models.Haldane(t1, t2, phi, mass)
    d_of_k, lattice = _haldane_d_vector(t1, t2, phi, mass)
    # the hand-written d-vector is the package's H (checked), and its degree is the reference
    k = np.array([0.31, -1.7])
    d = d_of_k(k[None])[0]
    h_ref = np.array([[d[2], d[0] - 1j * d[1]], [d[0] + 1j * d[1], -d[2]]])
    h = np.asarray(model(jnp.zeros(2), jnp.asarray(k)))
    np.testing.assert_allclose(h - np.trace(h) / 2 * np.eye(2), h_ref, atol=1e-12)
    expected = round(_d_vector_chern(d_of_k, lattice, 240))
    assert (expected != 0) == topological
    link = float(sj.chern_number(model, [0], 48))
    assert abs(link - expected) < 1e-6
    integral = float(sj.chern_number(model, [0], 96, method="integral"))
    assert abs(integral - link) < 2e-3


def test_curvature_integral_converges_to_link_method():
    """Well gapped QWZ: the BZ integral of Omega agrees with the link integer to 1e-8 on 48x48."""
    model = models.QWZ(-1.0)
    integral = float(sj.chern_number(model, [0], 48, method="integral"))
    assert abs(integral - float(sj.chern_number(model, [0], 48))) < 1e-8


def test_kane_mele_lower_manifold_total_chern_zero():
    """The time-reversal-symmetric Kane-Mele lower manifold has C = 0 (both methods)."""
    for model in (models.KaneMele(1.0, 0.06), models.KaneMele(1.0, 0.06, rashba=0.05, mass=0.1)):
        assert abs(float(sj.chern_number(model, [0, 1], 48))) < 1e-6
        assert abs(float(sj.chern_number(model, [0, 1], 48, method="integral"))) < 1e-6


def test_kane_mele_degenerate_manifold_equals_its_spin_sectors(rng):
    """Without Rashba, Kane-Mele = Haldane(phi = +pi/2) (+) Haldane(phi = -pi/2), one per spin.

    The lower pair is exactly degenerate (PT symmetry), so Tr F = 0 pointwise; the gauge-invariant
    content of F^{kx ky} is its spectrum, which must be {Omega_up, Omega_down}: the lower-band
    Abelian curvatures of the two Haldane models (an independent calculation), to 1e-10.
    The per-band Abelian formula would divide by zero here.
    """
    t, soc = 1.0, 0.2
    km = models.KaneMele(t, soc)
    up, down = models.Haldane(t, soc, np.pi / 2, 0.0), models.Haldane(t, soc, -np.pi / 2, 0.0)
    for k in rng.uniform(-3, 3, size=(6, 2)):
        k = jnp.asarray(k)
        energies, _ = sj.eigensystem(km, None, k)
        assert abs(energies[1] - energies[0]) < 1e-12  # exactly degenerate
        f = sj.nonabelian_curvature(km, None, k, [0, 1])
        assert np.all(np.isfinite(f))
        expected = np.sort(
            [sj.berry_curvature(up, None, k)[0, 2, 3], sj.berry_curvature(down, None, k)[0, 2, 3]]
        )
        assert np.max(np.abs(expected)) > 1e-5  # not a vacuous comparison
        np.testing.assert_allclose(
            np.linalg.eigvalsh(np.asarray(f[2, 3])), expected, rtol=1e-10, atol=1e-15
        )
        # per-band values stay finite and their sum is the trace (0 by PT symmetry)
        omega = sj.berry_curvature(km, None, k)
        assert np.all(np.isfinite(omega))
        np.testing.assert_allclose(
            omega[0, 2, 3] + omega[1, 2, 3], np.real(np.trace(f[2, 3])), atol=1e-12
        )


def test_gradient_at_kane_mele_degeneracy_matches_finite_differences():
    """d/d(mass) of the lower-manifold Tr F at the exactly degenerate point mass = 0 (mass splits the
    Kramers pairs): finite and equal to a central difference to 1e-6 relative."""
    k = jnp.array([0.37, -0.52])

    def trace_f(mass):
        f = sj.nonabelian_curvature(models.KaneMele(1.0, 0.07, mass=mass), None, k, (0, 1))
        return jnp.real(jnp.trace(f[2, 3]))

    grad = jax.grad(trace_f)(0.0)
    step = 1e-5
    fd = (trace_f(step) - trace_f(-step)) / (2 * step)
    assert np.isfinite(grad) and abs(fd) > 1e-5
    np.testing.assert_allclose(grad, fd, rtol=1e-6)


def test_nonabelian_one_band_equals_abelian_and_remote_band_curvature(rng):
    """One-band manifold -> Abelian Omega (1e-12). DiracWithRemoteBand: the remote band induces a
    non-Abelian curvature on {0, 1} that vanishes for coupling 0 and scales as g^2 for small g."""
    model = models.DiracWithRemoteBand(1.0, 0.3, 2.5, 0.4)
    k = jnp.asarray(rng.uniform(-1, 1, size=2))
    omega = sj.berry_curvature(model, None, k)
    for band in range(3):
        f = sj.nonabelian_curvature(model, None, k, [band])
        np.testing.assert_allclose(np.real(f[..., 0, 0]), omega[band], atol=1e-12)
        np.testing.assert_allclose(np.imag(f), 0.0, atol=1e-14)
    np.testing.assert_allclose(
        sj.manifold_berry_curvature(model, None, k, [0, 1]), omega[0] + omega[1], atol=1e-12
    )
    norms = []
    for g in (0.0, 1e-3, 2e-3):
        f = sj.nonabelian_curvature(models.DiracWithRemoteBand(1.0, 0.3, 2.5, g), None, k, [0, 1])
        norms.append(np.max(np.abs(f)))
    assert norms[0] < 1e-14
    np.testing.assert_allclose(norms[2] / norms[1], 4.0, rtol=1e-2)


def test_geometry_works_under_jit_and_vmap(rng):
    """jit(vmap(...)) over k equals a Python loop, to 1e-12."""
    model = models.Haldane(1.0, 0.15, 0.7, 0.2)
    ks = jnp.asarray(rng.uniform(-3, 3, size=(20, 2)))
    batched = jax.jit(
        jax.vmap(sj.nonabelian_curvature, in_axes=(None, None, 0, None)), static_argnums=3
    )(model, None, ks, (0,))
    looped = np.stack([sj.nonabelian_curvature(model, None, k, [0]) for k in ks])
    np.testing.assert_allclose(batched, looped, atol=1e-12)


def _two_dirac_copies(valley_of_second):
    """H1 (+) H2 with two Dirac cones of equal spectra: the lower pair is exactly degenerate.

    valley_of_second = +1: F^{kx ky} = Omega 1 (Tr F = 2 Omega); -1: spectrum of F is {Omega, -Omega}.
    """
    first = models.MassiveDirac(1.2, 0.35)
    second = models.MassiveDirac(1.2, 0.35, valley=valley_of_second)

    def hamiltonian(params, x, k):
        zero = jnp.zeros((2, 2), complex)
        return jnp.block([[first(x, k), zero], [zero, second(x, k)]])

    return models.FunctionModel(hamiltonian, None, dim=2, n_bands=4)


@pytest.mark.parametrize("valley_of_second", [1, -1])
def test_nonabelian_curvature_gauge_covariance_in_degenerate_manifold(rng, valley_of_second):
    """Rotate the degenerate states by a random U(2): F -> W^dagger F W (1e-12) and Tr F and the
    spectrum of F are unchanged; both equal the closed-form Dirac values (independent, 1e-10)."""
    model = _two_dirac_copies(valley_of_second)
    k = jnp.array([0.21, -0.33])
    omega = _dirac_lower_curvature(1.2, 0.35, 1, np.asarray(k))
    expected_spectrum = np.sort([omega, valley_of_second * omega])
    geometry = sj.band_geometry(model, None, k)
    assert abs(geometry.energies[1] - geometry.energies[0]) < 1e-14
    f = geometry.nonabelian_curvature((0, 1))
    a = rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2))
    w2, _ = np.linalg.qr(a)
    w = np.eye(4, dtype=complex)
    w[:2, :2] = w2
    rotated = sj.BandGeometry(
        geometry.energies,
        geometry.states @ w,
        jnp.einsum("mn,anl,lp->amp", w.conj().T, geometry.dH, w),
    )
    f_rotated = rotated.nonabelian_curvature((0, 1))
    np.testing.assert_allclose(
        f_rotated, np.einsum("mn,abnl,lp->abmp", w2.conj().T, f, w2), atol=1e-12
    )
    for curvature in (f, f_rotated):
        np.testing.assert_allclose(
            np.linalg.eigvalsh(np.asarray(curvature[2, 3])), expected_spectrum, rtol=1e-10
        )
    np.testing.assert_allclose(
        sj.manifold_berry_curvature(model, None, k, [0, 1])[2, 3],
        expected_spectrum.sum(),
        rtol=1e-10,
        atol=1e-14,
    )
    if valley_of_second == -1:  # the rotation really changed the matrix
        assert np.max(np.abs(f_rotated - f)) > 1e-3


def test_float32_opt_in_from_the_environment():
    """SEMICLASSICAL_JAX_PRECISION=float32 gives float32 geometry that agrees to ~1e-5."""
    import os
    import subprocess
    import sys

    code = (
        "import jax.numpy as jnp, semiclassical_jax as sj;"
        "o = sj.berry_curvature(sj.models.MassiveDirac(1.0, 0.3), None, jnp.array([0.1, 0.2]));"
        "print(o.dtype, float(o[0, 2, 3]))"
    )
    env = dict(os.environ, SEMICLASSICAL_JAX_PRECISION="float32")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    dtype, value = out.stdout.split()
    assert dtype == "float32"
    np.testing.assert_allclose(
        float(value), _dirac_lower_curvature(1.0, 0.3, 1, np.array([0.1, 0.2])), rtol=1e-5
    )
    env["SEMICLASSICAL_JAX_PRECISION"] = "float16"
    bad = subprocess.run(
        [sys.executable, "-c", "import semiclassical_jax"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "SEMICLASSICAL_JAX_PRECISION" in bad.stderr


@pytest.mark.parametrize("d", [1, 2, 3])
def test_symplectic_solve_against_dense_solve_and_its_derivative(d):
    """The equations of motion (1 + S Omega) dlambda/dt = S <dH> - (0, E) (PHYSICS.md section 2):
    the closed-form Pfaffian solve (d <= 2) and the implicit-derivative elimination (d = 3) equal
    numpy's dense solve to 1e-12, and their reverse-mode derivative w.r.t. Omega (along antisymmetric
    directions) equals the implicit-function derivative through A = 1 + S Omega to 1e-10."""
    from semiclassical_jax.geometry import symplectic_solve

    rng = np.random.default_rng(d)
    a = rng.normal(size=(2 * d, 2 * d))
    omega, gradient, field = 0.4 * (a - a.T), rng.normal(size=2 * d), rng.normal(size=d)
    s = np.block([[np.zeros((d, d)), np.eye(d)], [-np.eye(d), np.zeros((d, d))]])
    matrix = np.eye(2 * d) + s @ omega
    rhs = s @ gradient - np.concatenate([np.zeros(d), field])
    expected = np.linalg.solve(matrix, rhs)
    got = symplectic_solve(jnp.asarray(omega), jnp.asarray(gradient), jnp.asarray(field))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.max(np.abs(expected)))
    weights = rng.normal(size=2 * d)
    d_omega = jax.grad(
        lambda o: jnp.dot(weights, symplectic_solve(o, jnp.asarray(gradient), jnp.asarray(field)))
    )(jnp.asarray(omega))
    adjoint = np.linalg.solve(matrix.T, weights)  # dL/d rhs; dL/dA = -adjoint y^T; A = 1 + S Omega
    expected_d_omega = s.T @ (-np.outer(adjoint, expected))
    # Omega is antisymmetric (the closed form reads its upper triangle): compare along antisymmetric
    # directions, i.e. the antisymmetric parts G - G^T
    along_antisymmetric = np.asarray(d_omega - d_omega.T)
    expected_antisymmetric = expected_d_omega - expected_d_omega.T
    np.testing.assert_allclose(
        along_antisymmetric,
        expected_antisymmetric,
        rtol=0,
        atol=1e-10 * np.max(np.abs(expected_antisymmetric)),
    )
