"""Band touchings, non-Hermitian models and non-finite arguments (issue 16, items 1, 3 and 5).

Facts pinned, each independent of the code under test:
- QWZ at m = 2 has its Dirac node at k = (pi, pi), on every odd Monkhorst-Pack grid: a node where the
  occupations differ (mu = 0 at the node) must raise, naming that k, the bands and the gap;
- a band touching between two fully occupied bands is harmless: Fermi-sea pairs cancel, so a
  direct sum of QWZ(1) and an occupied QWZ(2) block (node on the grid) has the Hall conductivity of
  QWZ(1) alone, as does the slightly gapped block QWZ(2.1), and QWZ(1)'s Chern number (|C| = 1) is
  approached on a fine grid;
- a model that is Hermitian except in a bump away from any fixed probe point is refused there.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import grids, models

# a run-time check fails as EquinoxRuntimeError / JaxRuntimeError, or, seen at block_until_ready,
# as ValueError("INTERNAL: CpuCallback ...") (tests/test_errors.py)
RUNTIME_ERRORS = (eqx.EquinoxRuntimeError, jax.errors.JaxRuntimeError, ValueError)
NODE = models.QWZ(2.0)
GRID = grids.brillouin_zone(NODE, 3)  # odd: holds k = (pi, pi)
NODE_TEXT = r"bands 0 and 1 at x=\[0\. 0\.\], k=\[3\.14159265 3\.14159265\], gap = \d\.\d+e-16"


def test_node_on_the_grid_raises_for_every_grid_function():
    """hall_conductivity eager and compiled, MSCT and SSCT currents, the dipole (nonlinear Hall)."""
    text = "hall_conductivity: two bands whose occupations differ touch.*" + NODE_TEXT
    with pytest.raises(ValueError, match=text):  # 3 chunks: the node (point 4) is in the second
        sj.hall_conductivity(NODE, GRID, mu=0.0, temperature=0.0, chunk_size=4)
    hall = jax.jit(lambda mu: sj.hall_conductivity(NODE, GRID, mu=mu, temperature=0.0))
    with pytest.raises(RUNTIME_ERRORS, match="hall_conductivity: two bands whose occupations"):
        hall(0.0).block_until_ready()
    for theory in ("msct", "ssct"):
        with pytest.raises(ValueError, match="current: two bands.*" + NODE_TEXT):
            sj.current(
                NODE, GRID, field=[0.0, 0.01], mu=0.0, temperature=0.01, tau=1.0, theory=theory
            )
    with pytest.raises(ValueError, match="berry_curvature_dipole: two bands.*" + NODE_TEXT):
        sj.nonlinear_hall_current(NODE, GRID, field=[0.01, 0.0], mu=0.0, temperature=0.05, tau=1.0)


def _direct_sum_hamiltonian(p, x, k):
    mass, shift = p
    zero = jnp.zeros((2, 2), complex)
    low = models.QWZ(mass)(x, k) + shift * jnp.eye(2)
    return jnp.block([[low, zero], [zero, models.QWZ(1.0)(x, k)]])


def _direct_sum(mass, shift=-6.0):
    """QWZ(1) (mu = 0 in its gap) plus a QWZ(mass) block shifted by ``shift`` (-6: both of its
    bands occupied)."""
    return models.FunctionModel(
        _direct_sum_hamiltonian, (mass, shift), dim=2, n_bands=4, lattice=jnp.eye(2)
    )


@pytest.fixture(scope="module")
def hall_of():
    return jax.jit(
        lambda model, grid, mu, t: sj.hall_conductivity(model, grid, mu=mu, temperature=t)[0, 1]
    )


def test_touching_of_occupied_bands_is_harmless(hall_of):
    """Masses 2 (node on the grid, an exact degeneracy to the eigensolver) and 2 + 1e-9 (gap 2e-9:
    closed relative to the energy scale, not degenerate: without the Fermi-sea form its pair terms
    ~1e17 cancel only to rounding) give the gapped block's and the trivial block's value."""
    grid = grids.brillouin_zone(NODE, 15)  # holds the node (pi, pi) of QWZ(2)
    alone = hall_of(_direct_sum(10.0), grid, 0.0, 0.0)  # a trivial block: QWZ(1) alone
    for temperature in (0.0, 0.01):  # 0.01: the occupied block saturates f = 1 exactly
        gapped = hall_of(_direct_sum(2.1), grid, 0.0, temperature)
        np.testing.assert_allclose(gapped, alone, rtol=0, atol=1e-12)
        for mass in (2.0, 2.0 + 1e-9):
            touching = hall_of(_direct_sum(mass), grid, 0.0, temperature)
            np.testing.assert_allclose(touching, gapped, rtol=0, atol=1e-12)
    # QWZ(1): |C| = 1, sigma_xy = -C / 2 pi; the 15 x 15 grid is within 1e-2 of it (the other
    # block's bands are both occupied: C_lower + C_upper = 0)
    np.testing.assert_allclose(abs(2 * np.pi * float(alone)), 1.0, atol=1e-2)
    # the same touching at the Fermi level (shift 0, mu = 0) raises, though the eigensolver sees it
    # as a degeneracy (gap 3e-16 < 1e-10 x the local |eps| ~ 1)
    with pytest.raises(RUNTIME_ERRORS, match="two bands whose occupations differ touch"):
        hall_of(_direct_sum(2.0, 0.0), grid, 0.0, 0.0).block_until_ready()


def test_node_inside_the_fermi_sea_of_a_metal_is_harmless():
    """mu = 0.5 above the node of QWZ(2) at T = 0: both bands are occupied at the node, so the
    pair is dropped there; elsewhere on the grid the bands differ and the gap is open."""
    value = sj.hall_conductivity(NODE, GRID, mu=0.5, temperature=0.0)
    assert np.all(np.isfinite(value)) and abs(float(value[0, 1])) < 1.0


def test_mass_sweep_through_the_transition_raises_at_the_node():
    with pytest.raises(ValueError, match=r"hall_conductivity at m=2: two bands.*" + NODE_TEXT):
        sj.sweep(
            models.QWZ(1.0),
            GRID,
            {"m": [1.5, 2.0, 2.5]},
            quantity="hall_conductivity",
            mu=0.0,
            temperature=0.0,
        )


def test_point_functions_at_the_node():
    node = jnp.array([np.pi, np.pi])
    text = r"bands 0 and 1 at x=\[0\. 0\.\], k=\[3\.14159265 3\.14159265\] \(gap = \d\.\d+e-16"
    with pytest.raises(ValueError, match="berry_curvature: two bands touch.*" + text):
        sj.berry_curvature(NODE, None, node)
    with pytest.raises(ValueError, match="berry_connection: two bands touch"):
        sj.berry_connection(NODE, None, node)
    with pytest.raises(ValueError, match=r"manifold \(0,\): its gap to the remote bands closes"):
        sj.nonabelian_curvature(NODE, None, node, [0])
    with pytest.raises(RUNTIME_ERRORS, match="berry_curvature: two bands touch"):
        jax.jit(sj.berry_curvature)(NODE, None, node).block_until_ready()
    # one grid step away the gap is open: Omega is finite and the closed form's size
    near = node + jnp.array([2 * np.pi / 9, 0.0])
    omega = float(sj.berry_curvature(NODE, None, near)[0, 2, 3])
    assert np.isfinite(omega) and abs(omega) < 10.0


def _bump_model():
    """QWZ(1) plus an anti-Hermitian term i 0.3 sigma_z times a Gaussian bump at k0 = (1.2, -0.4)
    (not a probe point): Hermitian to 1e-30 except within ~0.2 of k0."""
    base = models.QWZ(1.0)
    k0 = jnp.array([1.2, -0.4])

    def hamiltonian(p, x, k):
        bump = jnp.exp(-jnp.sum((k - k0) ** 2) / 0.01)
        return base(x, k) + 0.3j * bump * jnp.diag(jnp.array([1.0, -1.0]))

    return models.FunctionModel(hamiltonian, None, dim=2, n_bands=2, lattice=jnp.eye(2)), k0


def test_non_hermitian_away_from_probes_is_caught():
    model, k0 = _bump_model()
    far = jnp.array([-2.0, 2.0])
    jitted = jax.jit(sj.berry_curvature)
    assert np.all(np.isfinite(jitted(model, None, far)))
    with pytest.raises(RUNTIME_ERRORS, match="not Hermitian"):
        jitted(model, None, k0).block_until_ready()
    with pytest.raises(ValueError, match=r"not Hermitian: max\|H - H\^dagger\|"):
        sj.berry_curvature(model, None, k0)
    grid = grids.KGrid(jnp.stack([far, k0]), jnp.array([0.5, 0.5]))
    text = r"hall_conductivity: model\(x, k\) is not Hermitian on the grid: .* k=\[ 1\.2 -0\.4\]"
    with pytest.raises(ValueError, match=text):
        sj.hall_conductivity(model, grid, mu=0.0, temperature=0.0)


BAD_ARGUMENTS = [
    (dict(field=[np.nan, 0.0]), "field must be finite"),
    (dict(field=[np.inf, 0.0]), "field must be finite"),
    (dict(tau=np.inf), "tau must be > 0 and finite"),
    (dict(temperature=np.inf), "temperature must be > 0 and finite"),
]


@pytest.mark.parametrize("change, message", BAD_ARGUMENTS)
def test_nonlinear_hall_bad_arguments_eager(change, message):
    model = models.QWZ(1.0)
    arguments = dict(field=[0.01, 0.0], mu=0.0, temperature=0.1, tau=1.0) | change
    with pytest.raises(ValueError, match=message):
        sj.nonlinear_hall_current(model, grids.brillouin_zone(model, 4), **arguments)


def test_nonlinear_hall_bad_arguments_jitted():
    model = models.QWZ(1.0)
    grid = grids.brillouin_zone(model, 4)
    f = jax.jit(
        lambda field, tau, t: sj.nonlinear_hall_current(
            model, grid, field=field, mu=0.0, temperature=t, tau=tau
        )
    )
    good = (jnp.array([0.01, 0.0]), 1.0, 0.1)
    assert np.all(np.isfinite(f(*good)))
    for bad, message in [
        ((jnp.array([np.nan, 0.0]), 1.0, 0.1), "field must be finite"),
        ((good[0], np.inf, 0.1), "tau must be > 0 and finite"),
        ((good[0], 1.0, np.inf), "temperature must be > 0 and finite"),
    ]:
        with pytest.raises(RUNTIME_ERRORS, match=message):
            f(*bad).block_until_ready()


def test_non_finite_grid_is_refused():
    model = models.QWZ(1.0)
    grid = grids.brillouin_zone(model, 4)
    bad_weight = grids.KGrid(grid.points, grid.weights.at[3].set(np.nan))
    bad_point = grids.KGrid(grid.points.at[5, 1].set(np.inf), grid.weights)
    arguments = dict(field=[0.01, 0.0], mu=0.0, temperature=0.1, tau=1.0)
    with pytest.raises(ValueError, match="grid weights must be finite: entry 3 is nan"):
        sj.nonlinear_hall_current(model, bad_weight, **arguments)
    with pytest.raises(ValueError, match=r"grid points must be finite: entry 5 is \["):
        sj.current(model, bad_point, **arguments)
    with pytest.raises(ValueError, match="grid weights must be finite"):
        sj.sweep(model, bad_weight, {"mu": [0.0]}, quantity="hall_conductivity", temperature=0.0)


def test_zero_period_texture_is_named():
    with pytest.raises(ValueError, match="HexagonalMoire period must be finite and non-zero"):
        sj.textures.HexagonalMoire(amplitude=0.1, period=0.0)
    with pytest.raises(ValueError, match="DomainWall width must be finite and non-zero"):
        sj.textures.DomainWall(amplitude=0.1, width=0.0)
    grid = grids.disk(1.0, 3, 4)

    def j(period):
        mass = sj.textures.HexagonalMoire(amplitude=0.1, period=period)
        return sj.current(
            models.MassiveDirac(1.0, mass),
            grid,
            field=[0.0, 0.01],
            mu=0.0,
            temperature=0.1,
            tau=1.0,
            theory="ssct",
        )

    with pytest.raises(RUNTIME_ERRORS, match="HexagonalMoire period must be finite and non-zero"):
        jax.jit(j)(0.0).block_until_ready()


def _coupled(k, mass, xp=np):
    """3 orbitals: a QWZ(mass) block at energy -6 and an orbital at +1, coupled to the block's
    first orbital by 0.3 (sin kx + i sin ky) (zero at (pi, pi), its k-derivative is not)."""
    sx, sy = xp.sin(k[0]), xp.sin(k[1])
    dz = mass + xp.cos(k[0]) + xp.cos(k[1])
    g = 0.3 * (sx + 1j * sy)
    rows = [
        [dz - 6, sx - 1j * sy, xp.conj(g)],
        [sx + 1j * sy, -dz - 6, 0.0 * sx],
        [g, 0.0 * sx, 1.0 + 0.0 * sx],
    ]
    return xp.stack([xp.stack([xp.asarray(e, complex) for e in row]) for row in rows])


def test_fermi_sea_form_at_a_near_touching_of_occupied_bands():
    """At k = (pi, pi) with mass 2 + 1e-9 the occupied bands 0, 1 are 2e-9 apart (closed relative
    to the energy scale, not degenerate): their pair term is ~1e17, so the band-by-band sum loses
    everything to rounding. NumPy reference written from Eq. 44 in the pair form: sigma_xy =
    -sum_{n occupied, m empty} Omega_nm, Omega_nm = -2 Im v_x,nm v_y,mn / (eps_n - eps_m)^2."""
    mass, node = 2.0 + 1e-9, np.array([np.pi, np.pi])
    model = models.FunctionModel(lambda p, x, k: _coupled(k, p, jnp), mass, dim=2, n_bands=3)
    grid = grids.KGrid(jnp.asarray(node[None, :]), jnp.ones(1))
    value = float(sj.hall_conductivity(model, grid, mu=0.0, temperature=0.0)[0, 1])
    h = 1e-6
    eps, u = np.linalg.eigh(_coupled(node, mass))
    assert 1e-9 < eps[1] - eps[0] < 3e-9  # the near touching of the two occupied bands
    v = [
        u.conj().T @ ((_coupled(node + h * e, mass) - _coupled(node - h * e, mass)) / (2 * h)) @ u
        for e in np.eye(2)
    ]
    omega = [-2 * np.imag(v[0][n, 2] * v[1][2, n]) / (eps[n] - eps[2]) ** 2 for n in (0, 1)]
    np.testing.assert_allclose(value, -sum(omega), rtol=1e-7, atol=1e-9)


def test_zero_period_in_a_sweep_is_named():
    model = models.MassiveDirac(1.0, sj.textures.HexagonalMoire(amplitude=0.1, period=30.0))
    text = r"axes\['mass.period'\] = 0: HexagonalMoire period must be finite and non-zero"
    with pytest.raises(ValueError, match=text):
        sj.sweep(
            model,
            grids.disk(1.0, 3, 4),
            {"mass.period": [30.0, 0.0]},
            field=[0.0, 0.01],
            mu=0.0,
            temperature=0.1,
            tau=1.0,
        )


def test_command_line_mass_sweep_through_the_transition_exits_1(tmp_path, capsys):
    """The issue's reproduction on the command line: a QWZ mass sweep through m = 2 stops with
    exit status 1, a last line naming the sweep, the mass and the node, and writes nothing."""
    from semiclassical_jax import cli

    config = tmp_path / "mass.toml"
    config.write_text(
        '[model]\ntype = "QWZ"\nm = 1.0\n[grid]\ntype = "brillouin_zone"\nn = 3\n'
        '[[sweep]]\nname = "mass"\nquantity = "hall_conductivity"\nmu = 0.0\n'
        "temperature = 0.0\naxes.m = [1.5, 2.0, 2.5]\n"
    )
    out = tmp_path / "out"
    assert cli.main(["run", str(config), "--out", str(out), "--no-plots"]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert "sweep 'mass' failed" in line and "m=2" in line and "gap" in line, line
    assert not out.exists()
