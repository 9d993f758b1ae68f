"""chern_number near topological transitions (issue 16, item 2).

A gap that closes between grid points must raise, naming the bands, k and the gap; a small but open
gap must give the phase diagram's integer. References, independent of the package: the massive-
Dirac counting C = (1/2) sum_D chi_D sgn(m_D) over the points D where (d_x, d_y) = 0 (chi_D: the
sign of det d(d_x, d_y)/dk there, m_D = d_z(D)), from a d-vector written here in NumPy. For a
two-band H = d.sigma the lower band's C in PHYSICS.md's convention is this degree (see
tests/test_geometry.py::_d_vector_chern, which checks it against exact solid angles).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import models

RUNTIME_ERRORS = (ValueError, eqx.EquinoxRuntimeError, jax.errors.JaxRuntimeError)
T2, PHI = 0.15, np.pi / 2
CRITICAL = 3 * np.sqrt(3) * T2 * np.sin(PHI)  # Haldane: the gap closes at K or K' at |M| = this
HONEYCOMB = np.array([[1.0, 0.0], [0.5, np.sqrt(3) / 2]])


def _dirac_count(d_of_k, nodes):
    """(1/2) sum_D sgn(det d(d_x, d_y)/dk) sgn(d_z) at the nodes D of (d_x, d_y) (central diff.)."""
    total = 0.0
    for node in nodes:
        h = 1e-6
        columns = [(d_of_k(node + h * e) - d_of_k(node - h * e))[:2] / (2 * h) for e in np.eye(2)]
        assert np.allclose(d_of_k(node)[:2], 0.0, atol=1e-12)
        total += np.sign(np.linalg.det(np.stack(columns, axis=1))) * np.sign(d_of_k(node)[2])
    return total / 2


def _qwz_d(m):
    return lambda k: np.array([np.sin(k[0]), np.sin(k[1]), m + np.cos(k[0]) + np.cos(k[1])])


QWZ_NODES = [np.array([a, b]) for a in (0.0, np.pi) for b in (0.0, np.pi)]


def _haldane_d(mass):
    """Haldane's d-vector by hand (PythTB layout, as tests/test_geometry.py::_haldane_d_vector)."""
    a1, a2 = HONEYCOMB
    nn = [np.array(r) / 3 @ HONEYCOMB for r in ([1, 1], [-2, 1], [1, -2])]

    def d_of_k(k):
        f = sum(np.exp(1j * k @ delta) for delta in nn)
        g = sum(np.sin(k @ b) for b in (a1, a2 - a1, -a2))
        return np.array([f.real, -f.imag, mass - 2 * T2 * np.sin(PHI) * g])

    return d_of_k


K_POINTS = [np.array(r) @ (2 * np.pi * np.linalg.inv(HONEYCOMB).T) for r in ([1, 2], [2, 1])]
K_POINTS = [k / 3 for k in K_POINTS]


def _reduced_k(message):
    """The reduced k quoted in an error message."""
    text = message.split("(reduced (")[1].split(")")[0]
    return np.array([float(v) for v in text.split(",")])


@pytest.mark.parametrize(
    "model, n_k, nodes",
    [
        (models.QWZ(0.0), 31, [(0.0, 0.5), (0.5, 0.0)]),
        (models.QWZ(2.0), 31, [(0.5, 0.5)]),
        (models.Haldane(1.0, T2, PHI, CRITICAL), 31, [(1 / 3, 2 / 3), (2 / 3, 1 / 3)]),
    ],
    ids=["QWZ(0)", "QWZ(2)", "Haldane-critical"],
)
def test_gap_closing_between_grid_points_is_found(model, n_k, nodes):
    """The nodes lie between the points of the 31x31 grid (0.5 and 1/3 are not multiples of
    1/31), where the grid-point check missed them (C = -1 for QWZ(0)); the error names the bands,
    the node's k to 1e-8 (analytic: where d = 0) and a gap below 1e-12."""
    grid = np.arange(n_k) / n_k
    assert min(max(abs(grid - r).min() for r in node) for node in nodes) > 0.01
    with pytest.raises(ValueError, match="closes on the 31x31 grid or between its points") as info:
        sj.chern_number(model, [0], n_k)
    message = str(info.value)
    assert "bands 0 and 1 meet at k = (" in message
    reduced = _reduced_k(message)
    assert min(np.abs(reduced - np.array(node)).max() for node in nodes) < 1e-8
    assert float(message.split("gap = ")[1].split(" ")[0]) < 1e-12


def test_gap_closing_is_found_by_the_integral_method_and_under_jit_and_vmap():
    """The integral method runs the same check; under filter_jit(vmap) over a mass sweep the QWZ
    phase diagram comes out at once, and a sweep through m = 0 raises (static message)."""
    with pytest.raises(ValueError, match=r"meet at k = .*reduced \((0, 0\.5|0\.5, 0)\)"):
        sj.chern_number(models.QWZ(0.0), [0], 31, method="integral")
    sweep = eqx.filter_jit(jax.vmap(lambda m: sj.chern_number(models.QWZ(m), [0], 31)))
    masses = [-3.0, -1.0, 1.0, 3.0]
    expected = [_dirac_count(_qwz_d(m), QWZ_NODES) for m in masses]
    np.testing.assert_allclose(np.asarray(sweep(jnp.array(masses))), expected, atol=1e-9)
    with pytest.raises(RUNTIME_ERRORS, match="closes on the 31x31 grid or between its points"):
        jax.block_until_ready(sweep(jnp.array([-3.0, -1.0, 0.0, 3.0])))


@pytest.mark.parametrize(
    "m, n_k",
    [(1.999, 32), (-1.999, 32), (0.01, 31), (-0.01, 31), (2.001, 32), (1.0, 31)],
)
def test_small_open_qwz_gap_gives_the_phase_diagram_integer(m, n_k):
    """Gap 2 |m| or 2 (2 - |m|) down to 0.002: the link integer equals the Dirac count to 1e-6.
    At m = +-0.01 the near-nodes (0, pi), (pi, 0) lie between the 31x31 grid's points, so the
    minimiser runs there and must not mistake the open gap for a closed one."""
    expected = _dirac_count(_qwz_d(m), QWZ_NODES)
    assert expected == (0 if abs(m) > 2 else -np.sign(m))  # the known phase diagram
    assert abs(float(sj.chern_number(models.QWZ(m), [0], n_k)) - expected) < 1e-6


@pytest.mark.parametrize("offset", [-1e-3, 1e-3, -1e-2, 1e-2])
def test_haldane_next_to_its_critical_mass(offset):
    """M = M_c +- 1e-3 (gap 2e-3 at K): C = -1 inside, 0 outside (Dirac count), n_k = 48."""
    mass = CRITICAL + offset
    expected = _dirac_count(_haldane_d(mass), K_POINTS)
    assert expected == (-1 if offset < 0 else 0)
    chern = float(sj.chern_number(models.Haldane(1.0, T2, PHI, mass), [0], 48))
    assert abs(chern - expected) < 1e-6


def test_under_resolved_small_gap_is_refused():
    """QWZ(1.999) on 31x31: the node (pi, pi) sits inside a plaquette (flux 0.92 pi) and the link
    sum gave 0 instead of -1; the error names the plaquette and asks for a finer grid."""
    with pytest.raises(ValueError, match="31x31 grid does not resolve") as info:
        sj.chern_number(models.QWZ(1.999), [0], 31)
    assert np.allclose(_reduced_k(str(info.value)), 0.5, atol=1 / 31)
    assert "increase n_k" in str(info.value)


def _quadratic_touching(p, x, k):
    """d = (cos kx' - cos ky', sin kx' sin ky', 0), k' = k - shift: quadratic band touchings
    (winding 2) at k' = (0, 0) and (pi, pi), |d|^2 = |k'|^4 / 4 + O(k'^6), so the gap ~ |k'|^2."""
    kx, ky = k[0] - p["shift"], k[1] - p["shift"]
    dx, dy = jnp.cos(kx) - jnp.cos(ky), jnp.sin(kx) * jnp.sin(ky)
    return jnp.array([[0.0, dx - 1j * dy], [dx + 1j * dy, 0.0]])


def test_quadratic_band_touching_between_grid_points_is_found():
    """At a quadratic touching gap^2 ~ |q|^4 (first-order model J ~ q): the step 2 q lands on the
    node (a step q only halves the distance); the node k = (0.1, 0.1) or (pi + 0.1, pi + 0.1) is
    named to 1e-8 in reduced units."""
    model = models.FunctionModel(
        _quadratic_touching, {"shift": 0.1}, dim=2, n_bands=2, lattice=jnp.eye(2)
    )
    with pytest.raises(ValueError, match="bands 0 and 1 meet at k") as info:
        sj.chern_number(model, [0], 15)
    nodes = [np.full(2, 0.1 / (2 * np.pi)), np.full(2, 0.5 + 0.1 / (2 * np.pi))]
    reduced = _reduced_k(str(info.value))
    assert min(np.abs(reduced - node).max() for node in nodes) < 1e-8
