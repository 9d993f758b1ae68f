"""Berry curvature of spatially textured models, every phase-space block, against references that
do not use the package's geometry code.

References:

* a finite-difference Berry phase around a small plaquette in each (lambda_a, lambda_b) plane,
  built only from ``numpy.linalg.eigh`` of the model's matrix H(x, k);
* for the two-band Dirac models, the closed form of a d . sigma Hamiltonian,
  Omega_lower^{ab} = d . (d_a d x d_b d) / (2 |d|^3)  (Omega_upper = -Omega_lower),
  with d(x, k) = (valley v(x) kx, v(x) ky, Delta(x)) and the textures' derivatives written out
  by hand in numpy below; its k-k block is the documented
  Omega^{kx ky} = valley Delta v^2 / (2 (v^2 k^2 + Delta^2)^{3/2});
* band energies eps = w kx -+ sqrt(v^2 k^2 + Delta^2) in closed form, for velocity and force.

Conventions (PHYSICS.md section 1): lambda = (x_1, x_2, k_1, k_2); A = i <u|du>;
Omega^{ab} = d_a A_b - d_b A_a. A plaquette traversed counter-clockwise in the (a, b) plane,
corners (0,0) -> (h,0) -> (h,h) -> (0,h), has the Berry phase
gamma = -Im log(<u1|u2><u2|u3><u3|u4><u4|u1>) = Omega^{ab} h^2 + O(h^4) (centred plaquette).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import textures
from semiclassical_jax.models import FunctionModel, MassiveDirac

# O(side^2) error of the centred plaquette: <= 1.4e-6 relative for these models at side 5e-4
# (5.8e-6 at 1e-3); the Berry phase itself is ~Omega side^2 ~ 1e-7, far above rounding.
PLAQUETTE_SIDE = 5e-4
# Plaquette tolerance: |Omega_pkg - Omega_fd| <= PLAQUETTE_TOL * max(1, |Omega_pkg|) (elementwise).
PLAQUETTE_TOL = 1e-5
# Closed-form tolerance: |Omega_pkg - Omega_cf| <= CLOSED_TOL * max(1, max|Omega_cf|).
CLOSED_TOL = 1e-10


# ---------------------------------------------------------------------------------------------
# Numpy versions of the textures, with their gradients written out by hand (independent of the
# package's texture classes, whose values are only compared, never reused).
# ---------------------------------------------------------------------------------------------


def wall_np(amplitude, width, center=0.0, direction=(1.0, 0.0)):
    n = np.asarray(direction, float) / np.linalg.norm(direction)

    def value_and_grad(x):
        s = (n @ x - center) / width
        return amplitude * np.tanh(s), amplitude / width / np.cosh(s) ** 2 * n

    return value_and_grad


def cosine_np(amplitude, wavevector, offset=0.0):
    g = np.asarray(wavevector, float)

    def value_and_grad(x):
        return offset + amplitude * np.cos(g @ x), -amplitude * np.sin(g @ x) * g

    return value_and_grad


def sine_tilt_np(scale):
    def value_and_grad(x):
        return scale * np.sin(x[1]), np.array([0.0, scale * np.cos(x[1])])

    return value_and_grad


def constant_np(value):
    return lambda x: (float(value), np.zeros(2))


# ---------------------------------------------------------------------------------------------
# Models. Each Dirac case carries numpy (value, gradient) functions for v, Delta and w.
# ---------------------------------------------------------------------------------------------

DIRAC_CASES = {
    # Only the mass depends on x, along x_1: the x-x block vanishes identically.
    "domain_wall": dict(
        model=MassiveDirac(0.8, textures.DomainWall(0.3, 2.0)),
        valley=1,
        v=constant_np(0.8),
        delta=wall_np(0.3, 2.0),
        w=constant_np(0.0),
    ),
    "domain_wall_valley_minus_tilted": dict(
        model=MassiveDirac(
            0.8,
            textures.DomainWall(0.3, 2.0, center=0.4, direction=(0.6, 0.8)),
            valley=-1,
            tilt=0.2,
        ),
        valley=-1,
        v=constant_np(0.8),
        delta=wall_np(0.3, 2.0, center=0.4, direction=(0.6, 0.8)),
        w=constant_np(0.2),
    ),
    "cosine_mass": dict(
        model=MassiveDirac(1.0, textures.CosineModulation(0.25, (0.7, -0.4), offset=0.05)),
        valley=1,
        v=constant_np(1.0),
        delta=cosine_np(0.25, (0.7, -0.4), offset=0.05),
        w=constant_np(0.0),
    ),
    # Velocity, mass and tilt all textured, along different directions. The x-x block still
    # vanishes: d(x, k) = (valley v kx, v ky, Delta) always lies in the plane spanned by
    # (valley kx, ky, 0) and (0, 0, 1), so d . (d_x1 d x d_x2 d) = 0.
    "textured_velocity": dict(
        model=MassiveDirac(
            velocity=textures.CosineModulation(0.3, (0.5, 0.9), offset=1.0),
            mass=textures.DomainWall(0.3, 2.0, direction=(1.0, 0.5)),
            valley=-1,
            tilt=lambda x: 0.1 * jnp.sin(x[1]),
        ),
        valley=-1,
        v=cosine_np(0.3, (0.5, 0.9), offset=1.0),
        delta=wall_np(0.3, 2.0, direction=(1.0, 0.5)),
        w=sine_tilt_np(0.1),
    ),
}


def _three_band(p, x, k):
    """3 bands, d = 2, with x in several matrix elements (so that dH/dx_1 and dH/dx_2 do not
    commute and the x-x curvature is non-zero)."""
    delta = p["m"] * jnp.tanh(x[0] / p["w"])
    v = 1.0 + 0.2 * jnp.cos(x[1])
    g = p["g"] * (1.0 + 0.3 * jnp.sin(x[0] + 0.5 * x[1]))
    phase = jnp.exp(1j * p["q"] * x[1])
    km, kp = k[0] - 1j * k[1], k[0] + 1j * k[1]
    upper = jnp.array(
        [
            [0.5 * (delta + 0.1 * k[0] ** 2), v * km, g * phase],
            [0.0, -0.5 * delta, 0.4 * kp + 0.2 * x[0]],
            [0.0, 0.0, 0.5 * (p["er"] + 0.1 * x[1])],
        ]
    )
    return upper + jnp.conj(upper.T)


FUNCTION_MODEL = FunctionModel(
    _three_band, {"m": 0.4, "w": 1.5, "g": 0.35, "q": 0.6, "er": 1.2}, dim=2, n_bands=3
)


def _spin_texture(p, x, k):
    """2 bands, H = d . sigma + 0.05 k^2, with an in-plane exchange field that rotates in space:
    d = (kx + m cos(q x_2), ky + m sin(q x_1), Delta0 tanh(x_1 / w) + c x_2)."""
    d1 = k[0] + p["m"] * jnp.cos(p["q"] * x[1])
    d2 = k[1] + p["m"] * jnp.sin(p["q"] * x[0])
    d3 = p["delta"] * jnp.tanh(x[0] / p["w"]) + p["c"] * x[1]
    e0 = 0.05 * (k[0] ** 2 + k[1] ** 2)
    return jnp.array([[e0 + d3, d1 - 1j * d2], [d1 + 1j * d2, e0 - d3]])


SPIN_PARAMS = {"m": 0.3, "q": 0.8, "delta": 0.25, "w": 1.5, "c": 0.1}
SPIN_TEXTURE = FunctionModel(_spin_texture, SPIN_PARAMS, dim=2, n_bands=2)


def spin_texture_vector(x, k):
    """numpy d(x, k) of :func:`_spin_texture` and its (4, 3) Jacobian, derivatives by hand."""
    p = SPIN_PARAMS
    vec = np.array(
        [
            k[0] + p["m"] * np.cos(p["q"] * x[1]),
            k[1] + p["m"] * np.sin(p["q"] * x[0]),
            p["delta"] * np.tanh(x[0] / p["w"]) + p["c"] * x[1],
        ]
    )
    jac = np.zeros((4, 3))
    jac[0, 1] = p["m"] * p["q"] * np.cos(p["q"] * x[0])
    jac[0, 2] = p["delta"] / p["w"] / np.cosh(x[0] / p["w"]) ** 2
    jac[1, 0] = -p["m"] * p["q"] * np.sin(p["q"] * x[1])
    jac[1, 2] = p["c"]
    jac[2, 0] = 1.0
    jac[3, 1] = 1.0
    return vec, jac


PLAQUETTE_MODELS = {name: case["model"] for name, case in DIRAC_CASES.items()}
PLAQUETTE_MODELS["spin_texture"] = SPIN_TEXTURE
PLAQUETTE_MODELS["function_three_band"] = FUNCTION_MODEL

# Models whose x-x block must be non-zero (so that the x-x comparison is not 0 == 0).
NONZERO_XX = {"spin_texture", "function_three_band"}

POINTS = [
    (np.array([0.5, -0.3]), np.array([0.2, -0.35])),
    (np.array([-1.2, 0.7]), np.array([-0.4, 0.15])),
    (np.array([2.0, 1.0]), np.array([0.1, 0.5])),
]


# ---------------------------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------------------------


def model_matrices(model, points):
    """H at many phase-space points (P, 2d) -> (P, N, N) numpy, straight from the model."""
    d = model.dim
    pts = jnp.asarray(points)
    return np.asarray(jax.vmap(model)(pts[:, :d], pts[:, d:]))


def plaquette_curvature(model, x, k, side=PLAQUETTE_SIDE):
    """(N, 2d, 2d) Berry curvature of every band from Berry phases of centred plaquettes.

    Every ordered pair (a, b), a != b, gets its own plaquette (counter-clockwise in the (a, b)
    plane), so the k-x block is measured, not inferred from antisymmetry."""
    d = model.dim
    centre = np.concatenate([x, k]).astype(float)
    pairs = [(a, b) for a in range(2 * d) for b in range(2 * d) if a != b]
    corners = []
    for a, b in pairs:
        for sa, sb in [(-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)]:
            point = centre.copy()
            point[a] += sa * side
            point[b] += sb * side
            corners.append(point)
    _, vectors = np.linalg.eigh(model_matrices(model, np.array(corners)))
    vectors = vectors.reshape(len(pairs), 4, *vectors.shape[1:])  # (pair, corner, N, N)
    n_bands = vectors.shape[-1]
    omega = np.zeros((n_bands, 2 * d, 2 * d))
    for p, (a, b) in enumerate(pairs):
        u = vectors[p]
        loop = np.ones(n_bands, complex)
        for c in range(4):
            loop *= np.einsum("in,in->n", np.conj(u[c]), u[(c + 1) % 4])
        omega[:, a, b] = -np.angle(loop) / side**2
    return omega


def dirac_vector(case, x, k):
    """d(x, k) = (valley v kx, v ky, Delta) and its (2d = 4, 3) Jacobian in lambda = (x, k)."""
    valley = case["valley"]
    v, dv = case["v"](x)
    delta, ddelta = case["delta"](x)
    vec = np.array([valley * v * k[0], v * k[1], delta])
    jac = np.zeros((4, 3))
    jac[:2, 0] = valley * dv * k[0]
    jac[:2, 1] = dv * k[1]
    jac[:2, 2] = ddelta
    jac[2, 0] = valley * v
    jac[3, 1] = v
    return vec, jac


def two_band_closed_form_curvature(vec, jac):
    """(2, 4, 4): Omega_lower^{ab} = d . (d_a d x d_b d) / (2|d|^3), Omega_upper = -Omega_lower."""
    lower = np.einsum("i,aj,bk,ijk->ab", vec, jac, jac, _levi_civita()) / (
        2 * np.linalg.norm(vec) ** 3
    )
    return np.stack([lower, -lower])


def _levi_civita():
    eps = np.zeros((3, 3, 3))
    for i, j, k_ in [(0, 1, 2), (1, 2, 0), (2, 0, 1)]:
        eps[i, j, k_], eps[i, k_, j] = 1.0, -1.0
    return eps


def _scaled_error(actual, expected):
    return np.max(np.abs(actual - expected)) / max(1.0, np.max(np.abs(expected)))


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PLAQUETTE_MODELS))
def test_every_block_matches_plaquette_berry_phase(name):
    """All four blocks (k-k, x-k, k-x, x-x) of every band vs centred-plaquette Berry phases.

    Tolerance: elementwise |Omega_pkg - Omega_fd| <= 1e-5 * max(1, |Omega_pkg|) (the plaquette's
    O(side^2) error is <= 1.4e-6 here, see PLAQUETTE_SIDE)."""
    model = PLAQUETTE_MODELS[name]
    d = model.dim
    largest_xx = 0.0
    for x, k in POINTS:
        package = np.asarray(sj.berry_curvature(model, x, k))
        reference = plaquette_curvature(model, x, k)
        assert np.all(np.isfinite(package))
        bound = PLAQUETTE_TOL * np.maximum(1.0, np.abs(package))
        for block, (rows, cols) in {
            "x-x": (slice(None, d), slice(None, d)),
            "x-k": (slice(None, d), slice(d, None)),
            "k-x": (slice(d, None), slice(None, d)),
            "k-k": (slice(d, None), slice(d, None)),
        }.items():
            err = np.abs(package[:, rows, cols] - reference[:, rows, cols])
            assert np.all(err <= bound[:, rows, cols]), (
                f"{name}, {block} block at x={x}, k={k}: max error {err.max():.3e}\n"
                f"package=\n{package[:, rows, cols]}\nplaquette=\n{reference[:, rows, cols]}"
            )
        largest_xx = max(largest_xx, np.max(np.abs(package[:, :d, :d])))
        # The x-k and k-k blocks carry real signal for every model (non-trivial comparison).
        assert np.max(np.abs(package[:, :d, d:])) > 1e-3
        assert np.max(np.abs(package[:, d:, d:])) > 1e-3
    if name in NONZERO_XX:
        assert largest_xx > 1e-3, f"{name}: x-x block unexpectedly ~0 ({largest_xx:.2e})"
    else:
        # MassiveDirac: d(x, k) stays in a fixed plane as x varies (see DIRAC_CASES), so the x-x
        # block vanishes identically.
        assert largest_xx < 1e-12


@pytest.mark.parametrize("name", list(DIRAC_CASES) + ["spin_texture"])
def test_two_band_all_blocks_match_closed_form(name):
    """Every block of both bands of the two-band models vs d . (d_a d x d_b d) / (2|d|^3), to
    1e-10 relative to max(1, max|Omega|). (spin_texture has a non-zero x-x block.)"""
    if name == "spin_texture":
        model, vector = SPIN_TEXTURE, spin_texture_vector
    else:
        case = DIRAC_CASES[name]
        model, vector = case["model"], lambda x, k: dirac_vector(case, x, k)
    for x, k in POINTS + [(np.array([0.0, 0.0]), np.array([0.05, -0.02]))]:
        package = np.asarray(sj.berry_curvature(model, x, k))
        expected = two_band_closed_form_curvature(*vector(x, k))
        assert _scaled_error(package, expected) <= CLOSED_TOL, (name, x, k, package, expected)


@pytest.mark.parametrize("valley", [1, -1])
def test_dirac_kk_curvature_closed_form_with_domain_wall(valley):
    """Lower band, mass Delta(x) = 0.3 tanh((x_1 - 0.3)/2):
    Omega^{kx ky} = valley Delta v^2 / (2 (v^2 k^2 + Delta^2)^{3/2}), to 1e-10 relative to
    max(1, |Omega|); the upper band has the opposite sign. Includes the wall's centre (Delta = 0,
    Omega = 0 at k != 0) and both signs of the mass."""
    v, amplitude, width, center = 0.8, 0.3, 2.0, 0.3
    model = MassiveDirac(
        v, textures.DomainWall(amplitude, width, center=center), valley=valley, tilt=0.15
    )
    for x1 in [-4.0, -0.5, center, 1.0, 3.0]:
        for k in [(0.2, -0.35), (-0.05, 0.02), (0.7, 0.4)]:
            x, k = np.array([x1, 0.9]), np.array(k)
            delta = amplitude * np.tanh((x1 - center) / width)
            expected = valley * delta * v**2 / (2 * (v**2 * (k @ k) + delta**2) ** 1.5)
            omega = np.asarray(sj.berry_curvature(model, x, k))
            scale = max(1.0, abs(expected))
            assert abs(omega[0, 2, 3] - expected) <= CLOSED_TOL * scale, (
                x1,
                k,
                omega[0, 2, 3],
                expected,
            )
            assert abs(omega[1, 2, 3] + expected) <= CLOSED_TOL * scale
            assert abs(omega[0, 3, 2] + expected) <= CLOSED_TOL * scale


@pytest.mark.parametrize("valley", [1, -1])
def test_dirac_force_and_velocity_closed_form(valley):
    """eps_lower = w kx - sqrt(v^2 k^2 + Delta(x)^2), Delta = 0.3 tanh((n.x - 0.4)/2):
    band_force = -d eps/dx (analytic derivative to 1e-10; central finite difference of the closed
    form, step 1e-5, to 1e-8), band_velocity = d eps/dk (analytic, to 1e-10). Absolute
    tolerances (all quantities are O(0.1-1))."""
    v, w, direction = 0.8, 0.2, (0.6, 0.8)
    model = MassiveDirac(
        v, textures.DomainWall(0.3, 2.0, center=0.4, direction=direction), valley=valley, tilt=w
    )
    delta_fn = wall_np(0.3, 2.0, center=0.4, direction=direction)

    def eps_lower(x, k):
        return w * k[0] - np.sqrt(v**2 * (k @ k) + delta_fn(x)[0] ** 2)

    h = 1e-5
    for x, k in POINTS + [(np.array([0.64, -0.2]), np.array([0.3, 0.1]))]:
        delta, grad = delta_fn(x)
        root = np.sqrt(v**2 * (k @ k) + delta**2)
        force_lower = delta * grad / root  # -d eps_lower/dx
        velocity_lower = np.array([w, 0.0]) - v**2 * k / root
        fd_force = np.array(
            [-(eps_lower(x + h * e, k) - eps_lower(x - h * e, k)) / (2 * h) for e in np.eye(2)]
        )
        force = np.asarray(sj.band_force(model, x, k))
        velocity = np.asarray(sj.band_velocity(model, x, k))
        np.testing.assert_allclose(force[0], force_lower, rtol=0, atol=1e-10)
        np.testing.assert_allclose(force[1], -force_lower, rtol=0, atol=1e-10)
        np.testing.assert_allclose(force[0], fd_force, rtol=0, atol=1e-8)
        np.testing.assert_allclose(velocity[0], velocity_lower, rtol=0, atol=1e-10)
        np.testing.assert_allclose(
            velocity[1], 2 * np.array([w, 0.0]) - velocity_lower, rtol=0, atol=1e-10
        )


def test_textured_velocity_force_closed_form():
    """Velocity, mass and tilt all textured: band_force of both bands vs the analytic
    -d/dx [w kx -+ sqrt(v(x)^2 k^2 + Delta(x)^2)], to 1e-10 absolute."""
    case = DIRAC_CASES["textured_velocity"]
    for x, k in POINTS:
        v, dv = case["v"](x)
        delta, ddelta = case["delta"](x)
        w, dw = case["w"](x)
        root = np.sqrt(v**2 * (k @ k) + delta**2)
        droot = (v * dv * (k @ k) + delta * ddelta) / root
        force = np.asarray(sj.band_force(case["model"], x, k))
        np.testing.assert_allclose(force[0], -(dw * k[0] - droot), rtol=0, atol=1e-10)
        np.testing.assert_allclose(force[1], -(dw * k[0] + droot), rtol=0, atol=1e-10)


def test_texture_values_match_numpy_versions():
    """The numpy texture twins used as references agree with the package's textures (so the
    closed-form references describe the same model); to 1e-14 absolute."""
    pairs = [
        (
            textures.DomainWall(0.3, 2.0, center=0.4, direction=(0.6, 0.8)),
            wall_np(0.3, 2.0, 0.4, (0.6, 0.8)),
        ),
        (
            textures.CosineModulation(0.25, (0.7, -0.4), offset=0.05),
            cosine_np(0.25, (0.7, -0.4), 0.05),
        ),
    ]
    for texture, twin in pairs:
        for x, _ in POINTS:
            value, grad = twin(x)
            assert abs(float(texture(jnp.asarray(x))) - value) < 1e-14
            np.testing.assert_allclose(
                np.asarray(jax.grad(texture)(jnp.asarray(x))), grad, atol=1e-14
            )
