"""3D topology and k-grids (issue 17, item 5): Weyl-point chirality, Chern numbers of 2D slices of
a 3D Brillouin zone, adaptive refinement in 3D.

References, independent of the package:
- chirality of H = sum_a v_a q_a sigma_a (+ tilt): sign(v_x v_y v_z) (the degree of q -> d/|d|);
  for the lattice model, the sign of det(dd/dk) at each node from the d-vector written here in
  NumPy (central differences). Nielsen-Ninomiya: the chiralities of a lattice model add to zero.
- slice Chern numbers: the massive-Dirac count C = (1/2) sum_D sgn det d(d_x, d_y)/dk sgn d_z of the
  slice's d-vector (as tests/test_topology.py), and Gauss's law: C jumps by the node's chirality
  as k_perp crosses it.
- adaptive 3D: a layered Chern insulator (each k_z slice a QWZ model with C = 1, never closing)
  has int d^3k/(2 pi)^3 Omega^{kx ky} = C / (2 pi) exactly (per lattice constant along z).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import grids, models

RUNTIME_ERRORS = (ValueError, eqx.EquinoxRuntimeError, jax.errors.JaxRuntimeError)
K0 = 1.2  # WeylLattice nodes at (0, 0, -+K0)
WEYL = models.WeylLattice(K0)
NODES = [np.array([0.0, 0.0, -K0]), np.array([0.0, 0.0, K0])]


def _weyl_d(kz):
    """The d-vector of WeylLattice(K0) at fixed kz, by hand from its docstring's H(k)."""
    return lambda k: np.array(
        [np.sin(k[0]), np.sin(k[1]), np.cos(k[0]) + np.cos(k[1]) + np.cos(kz) - np.cos(K0) - 2]
    )


def _node_chirality(node):
    """sign det(dd/dk) at a node of d(k) (central differences): the lower band's chirality."""
    h = 1e-6

    def d_of_k(k):
        return _weyl_d(k[2])(k)

    assert np.allclose(d_of_k(node), 0.0, atol=1e-12)
    columns = [(d_of_k(node + h * e) - d_of_k(node - h * e)) / (2 * h) for e in np.eye(3)]
    return np.sign(np.linalg.det(np.stack(columns, axis=1)))


def _dirac_count(d_of_k):
    """(1/2) sum_D sgn(det d(d_x, d_y)/dk) sgn(d_z) over the nodes D of (sin kx, sin ky)."""
    total = 0.0
    for node in [np.array([a, b]) for a in (0.0, np.pi) for b in (0.0, np.pi)]:
        h = 1e-6
        columns = [(d_of_k(node + h * e) - d_of_k(node - h * e))[:2] / (2 * h) for e in np.eye(2)]
        total += np.sign(np.linalg.det(np.stack(columns, axis=1))) * np.sign(d_of_k(node)[2])
    return total / 2


def _reduced_k(message):
    text = message.split("(reduced (")[1].split(")")[0]
    return np.array([float(v) for v in text.split(",")])


# ---------------------------------------------------------------------------------------------
# Weyl chirality


def test_weyl_lattice_node_chiralities_and_their_sum():
    """Chirality +1 at (0, 0, -K0), -1 at (0, 0, +K0) (sign det dd/dk), to 1e-9; total zero."""
    expected = [_node_chirality(node) for node in NODES]
    assert expected == [1.0, -1.0]
    chirality = [float(sj.weyl_chirality(WEYL, [0], node, 0.3)) for node in NODES]
    np.testing.assert_allclose(chirality, expected, atol=1e-9)
    assert abs(sum(chirality)) < 1e-9


def _continuum_weyl(p, x, k):
    """H = sum_a v_a q_a sigma_a + (w . q) 1, q = k - k0."""
    q = k - p["k0"]
    dx, dy, dz = p["v"] * q
    tilt = p["w"] @ q
    return jnp.array([[tilt + dz, dx - 1j * dy], [dx + 1j * dy, tilt - dz]])


def test_continuum_weyl_chirality_is_the_sign_of_the_velocity_product():
    """All eight sign patterns of anisotropic velocities (0.5, 1.3, 2), with a tilt larger than
    one of them (type II along z), in one jit(vmap): chi = sign(v_x v_y v_z). A traced negative
    radius (which would turn the sphere inside out) raises at run time."""
    signs = np.array([[a, b, c] for a in (1, -1) for b in (1, -1) for c in (1, -1)], float)
    k0 = jnp.array([0.3, -0.2, 0.1])

    def chirality(v, radius):
        params = {"v": v, "w": jnp.array([0.2, -0.1, 0.7]), "k0": k0}
        model = models.FunctionModel(_continuum_weyl, params, dim=3, n_bands=2)
        return sj.weyl_chirality(model, [0], k0 + 0.01, radius, n_theta=8)

    sweep = eqx.filter_jit(jax.vmap(chirality))
    velocities = jnp.asarray(signs * np.array([0.5, 1.3, 2.0]))
    radii = jnp.full(8, 0.2)
    values = sweep(velocities, radii)
    np.testing.assert_allclose(np.asarray(values), np.prod(signs, axis=1), atol=1e-9)
    with pytest.raises(RUNTIME_ERRORS, match="radius must be a positive finite number"):
        jax.block_until_ready(sweep(velocities, radii.at[3].set(-0.2)))


def test_weyl_chirality_refuses_a_sphere_through_a_node_or_too_coarse():
    """The node on the sphere, between grid points: the gap search finds it (k to 1e-8); a node
    just inside the sphere (0.003 from it, open gap): the 12x24 grid does not resolve its flux."""
    direction = np.array([np.sin(1.0) * np.cos(0.7), np.sin(1.0) * np.sin(0.7), np.cos(1.0)])
    with pytest.raises(
        ValueError, match="closes on the 12x24 .theta, phi. grid of the sphere"
    ) as info:
        sj.weyl_chirality(WEYL, [0], NODES[1] + 0.3 * direction, 0.3)
    message = str(info.value)
    assert "the chirality is undefined" in message and "radius = 0.3" in message
    quoted = np.array(
        [float(v) for v in message.split("meet at k = (")[1].split(")")[0].split(",")]
    )
    np.testing.assert_allclose(quoted, NODES[1], atol=1e-8)
    with pytest.raises(
        ValueError, match="grid of the sphere .* does not resolve.*increase n_theta"
    ):
        sj.weyl_chirality(WEYL, [0], NODES[1] + 0.297 * direction, 0.3)


def test_weyl_chirality_bad_arguments():
    with pytest.raises(ValueError, match="needs a 3D model"):
        sj.weyl_chirality(models.QWZ(1.0), [0], jnp.zeros(2), 0.1)
    with pytest.raises(ValueError, match="radius must be a positive"):
        sj.weyl_chirality(WEYL, [0], NODES[0], -0.1)
    with pytest.raises(ValueError, match=r"k0 must have shape \(3,\)"):
        sj.weyl_chirality(WEYL, [0], jnp.zeros(2), 0.1)
    with pytest.raises(ValueError, match="n_theta must be an integer"):
        sj.weyl_chirality(WEYL, [0], NODES[0], 0.1, n_theta=1)
    with pytest.raises(ValueError, match="holds every band"):
        sj.weyl_chirality(WEYL, [0, 1], NODES[0], 0.1)


# ---------------------------------------------------------------------------------------------
# Chern numbers of slices


def test_slice_chern_numbers_jump_by_the_chirality_at_the_nodes():
    """Plane (0, 1) at k_z = 2 pi k_perp: C = 1 between the nodes, 0 outside (the slice's Dirac
    count); the jump at each node equals its chirality (Gauss); the orientation (1, 0) flips the
    sign; the integral method agrees to 1e-3 away from the nodes."""
    node = K0 / (2 * np.pi)
    k_perp = np.array([-0.45, -0.25, -node - 0.01, -node + 0.01, 0.0, node - 0.01, node + 0.01])
    expected = [_dirac_count(_weyl_d(2 * np.pi * t)) for t in k_perp]
    assert expected == [0, 0, 0, 1, 1, 1, 0]  # |k_z| < K0 = 1.2 (reduced 0.19)
    chern = [float(sj.chern_number(WEYL, [0], 12, k_perp=t)) for t in k_perp]
    np.testing.assert_allclose(chern, expected, atol=1e-9)
    jumps = [round(chern[3] - chern[2]), round(chern[6] - chern[5])]  # C above - C below a node
    assert jumps == [_node_chirality(NODES[0]), _node_chirality(NODES[1])]
    flipped = sj.chern_number(WEYL, [0], 12, plane=(1, 0), k_perp=0.1)
    assert abs(float(flipped) + 1.0) < 1e-9
    integral = sj.chern_number(WEYL, [0], 24, k_perp=0.0, method="integral")
    assert abs(float(integral) - 1.0) < 1e-3


def test_slice_through_a_node_is_refused_naming_the_slice():
    """Plane (0, 2) at k_y = 0 holds both nodes, between the 12x12 grid's points (k_z reduced
    0.191): the error names the slice, k_perp and a node to 1e-8 (reduced)."""
    with pytest.raises(
        ValueError, match=r"12x12 grid of the slice k = u_1 b_0 \+ u_2 b_2 \+ k_perp b_1 or between"
    ) as info:
        sj.chern_number(WEYL, [0], 12, plane=(0, 2), k_perp=0.0)
    message = str(info.value)
    assert "(k_perp = 0)" in message and "the slice's Chern number is undefined" in message
    reduced = _reduced_k(message) % 1.0
    nodes = [np.array([0.0, 0.0, K0 / (2 * np.pi)]), np.array([0.0, 0.0, 1 - K0 / (2 * np.pi)])]
    assert min(np.abs(reduced - node).max() for node in nodes) < 1e-8


def test_slice_bad_arguments():
    for plane in [(0, 0), (0, 3), (1,), "xy", (0.5, 1)]:
        with pytest.raises(ValueError, match="plane must be two distinct reduced directions"):
            sj.chern_number(WEYL, [0], 8, plane=plane)
    with pytest.raises(ValueError, match="k_perp is for a 2D slice of a 3D model"):
        sj.chern_number(models.QWZ(1.0), [0], 8, k_perp=0.1)
    with pytest.raises(ValueError, match=r"plane must be \(0, 1\)"):
        sj.chern_number(models.QWZ(1.0), [0], 8, plane=(1, 0))
    chain = models.FunctionModel(
        lambda p, x, k: jnp.eye(2) * jnp.cos(k[0]), None, dim=1, n_bands=2, lattice=np.eye(1)
    )
    with pytest.raises(ValueError, match="defined for 2D models and 2D slices of 3D models"):
        sj.chern_number(chain, [0], 8)
    with pytest.raises(ValueError, match="k_perp must be a scalar"):
        sj.chern_number(WEYL, [0], 8, k_perp=[0.1, 0.2])


# ---------------------------------------------------------------------------------------------
# adaptive 3D


def _layered_chern_insulator(p, x, k):
    """QWZ slices with mass m + a (1 - cos kz): C = 1 for -2 < m + a (1 - cos kz) < 0 at all kz;
    the gap 2 (m + 2) is smallest at k = 0 and grows like a kz^2 (a point-like hot spot)."""
    dx, dy = jnp.sin(k[0]), jnp.sin(k[1])
    dz = p["m"] + jnp.cos(k[0]) + jnp.cos(k[1]) + p["a"] * (1 - jnp.cos(k[2]))
    return jnp.array([[dz, dx - 1j * dy], [dx + 1j * dy, -dz]])


PAD = 2**14  # every grid below is padded to this many points: one compilation for all


@jax.jit
def _padded_integral(params, points, weights):
    model = models.FunctionModel(
        _layered_chern_insulator, params, dim=3, n_bands=2, lattice=np.eye(3)
    )
    omega = jax.vmap(lambda k: sj.berry_curvature(model, jnp.zeros(3), k)[0, 3, 4])(points)
    return jnp.sum(weights * omega)


def _integral(params, grid):
    """int d^3k/(2 pi)^3 Omega_0^{kx ky} on ``grid`` (padded with zero weights to PAD points)."""
    n = grid.points.shape[0]
    assert n <= PAD
    points = jnp.concatenate([grid.points, jnp.zeros((PAD - n, 3))])
    weights = jnp.concatenate([grid.weights, jnp.zeros(PAD - n)])
    return float(_padded_integral(params, points, weights))


def test_adaptive_3d_layered_chern_insulator_closed_form_with_fewer_points():
    """Gap 0.01 at k = 0: int d^3k/(2 pi)^3 Omega_0^{kx ky} = 1 / (2 pi) (C = 1 per layer: every
    slice is a QWZ model with mass in (-2, 0)). The adaptive grid (default 3D indicator) meets the
    tolerance 1e-2; a uniform Monkhorst-Pack grid with at least as many points misses it, and one
    with twice the points is still less accurate than the adaptive grid."""
    params = {"m": -2 + 0.005, "a": 0.5}
    masses = params["m"] + params["a"] * (1 - np.cos(np.linspace(0, 2 * np.pi, 101)))
    assert np.all((masses > -2) & (masses < 0))  # QWZ: C = -sign(m) = 1 for every k_z
    model = models.FunctionModel(
        _layered_chern_insulator, params, dim=3, n_bands=2, lattice=np.eye(3)
    )
    exact, tolerance = 1 / (2 * np.pi), 1e-2
    grid = grids.adaptive(model, tolerance=tolerance, n_start=3, order=3)
    error = abs(_integral(params, grid) - exact)
    assert error <= tolerance
    n_same = int(np.ceil(grid.evaluations ** (1 / 3)))
    n_double = int(np.ceil((2 * grid.evaluations) ** (1 / 3)))
    for n, bound in [(n_same, tolerance), (n_double, error)]:
        assert abs(_integral(params, grids.brillouin_zone(model, n)) - exact) > bound


def test_adaptive_3d_region_weights_and_local_refinement():
    """bcc lattice (Fe's primitive vectors): a Gaussian peak (width 0.3, normalised to
    int d^3k/(2 pi)^3 = 1) inside the Brillouin-zone parallelepiped is integrated to the tolerance
    1e-2 on cells of at least three sizes (local refinement); every point lies in u in [0, 1)^3 and
    the weights sum to 1 / V_cell; the cube [-L, L]^3 integrates k_x^2 k_y^2 k_z^2 exactly
    ((2 L^3 / 3)^3 / (2 pi)^3, Gauss-Legendre of order 3); the budget counts (n_start order)^3."""
    bcc = 0.5 * np.array([[1.0, 1.0, 1.0], [-1.0, 1.0, 1.0], [-1.0, -1.0, 1.0]])
    flat = models.FunctionModel(
        lambda p, x, k: jnp.eye(2) * jnp.cos(k[0]), None, dim=3, n_bands=2, lattice=bcc
    )
    centre, width = np.array([0.4, 0.55, 0.45]) @ (2 * np.pi * np.linalg.inv(bcc).T), 0.3

    def peak(k):
        return (
            jnp.exp(-jnp.sum((k - centre) ** 2) / (2 * width**2))
            / (width / np.sqrt(2 * np.pi)) ** 3
        )

    grid = grids.adaptive(flat, tolerance=1e-2, n_start=3, order=3, indicator=peak)
    assert abs(float(grid.integrate(jax.vmap(peak)(grid.points))) - 1.0) <= 1e-2
    volumes = np.unique(
        np.round(np.log2(np.asarray(grid.weights) / float(jnp.max(grid.weights))) / 3)
    )
    assert len(volumes) >= 3
    np.testing.assert_allclose(
        float(jnp.sum(grid.weights)), 1 / abs(np.linalg.det(bcc)), rtol=1e-12
    )
    reduced = np.asarray(grid.points) @ bcc.T / (2 * np.pi)
    assert grid.points.shape[1] == 3 and np.all((reduced > -1e-12) & (reduced < 1 + 1e-12))
    half = 0.7
    cube = grids.adaptive(
        flat,
        half_width=half,
        tolerance=1e-9,
        n_start=1,
        order=3,
        indicator=lambda k: jnp.prod(k**2),
    )
    np.testing.assert_allclose(
        float(cube.integrate(jnp.prod(cube.points**2, axis=1))),
        (2 * half**3 / 3) ** 3 / (2 * np.pi) ** 3,
        rtol=1e-12,
    )
    with pytest.raises(ValueError, match=r"n_start\^3 order\^3 = 1728"):
        grids.adaptive(flat, n_start=4, order=3, max_points=1000)
