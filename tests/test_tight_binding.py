"""TightBinding and its importers (PythTB, Wannier90 _hr.dat, hopping lists) vs independent oracles.

Oracles: PythTB 1.8.0 (its own Hamiltonian, eigen-solver and Berry flux), Haldane/Kane-Mele written
out by hand here (bond lists in numpy), and closed forms (Haldane phase diagram). The built-in
models are compared only after they have been pinned to PythTB in this file.

k conventions: PythTB takes k in REDUCED coordinates (units of the reciprocal vectors b_i); our
models take Cartesian k = k_red @ reciprocal, reciprocal = 2 pi inv(lattice).T (rows b_i). Both
use the orbital-position convention H_ij(k) = sum_R t_ij(R) exp(i k.(R + tau_j - tau_i)), so the
Hamiltonians (not only the spectra) must agree.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import pythtb

import semiclassical_jax as sj
from semiclassical_jax.models import Haldane, KaneMele, TightBinding

LATTICE = np.array([[1.0, 0.0], [0.5, np.sqrt(3.0) / 2.0]])
ORBITALS = np.array([[1.0 / 3.0, 1.0 / 3.0], [2.0 / 3.0, 2.0 / 3.0]])
RECIPROCAL = 2 * np.pi * np.linalg.inv(LATTICE).T

# Haldane bonds (i, j, R): t1 on NEAREST, t2 e^{+i phi} on PLUS, t2 e^{-i phi} on MINUS.
NEAREST = [(0, 1, (0, 0)), (1, 0, (1, 0)), (1, 0, (0, 1))]
PLUS = [(0, 0, (1, 0)), (1, 1, (1, -1)), (1, 1, (0, 1))]
MINUS = [(1, 1, (1, 0)), (0, 0, (1, -1)), (0, 0, (0, 1))]


# ---------------------------------------------------------------------------------------------
# helpers (all numpy / PythTB, none from the package under test)
# ---------------------------------------------------------------------------------------------


def pythtb_haldane(t1, t2, phi, mass):
    model = pythtb.tb_model(2, 2, LATTICE.tolist(), ORBITALS.tolist())
    model.set_onsite([mass, -mass])
    for i, j, r in NEAREST:
        model.set_hop(t1, i, j, list(r))
    for i, j, r in PLUS:
        model.set_hop(t2 * np.exp(1j * phi), i, j, list(r))
    for i, j, r in MINUS:
        model.set_hop(t2 * np.exp(-1j * phi), i, j, list(r))
    return model


def haldane_table(t1, t2, phi, mass):
    """{R: t(R)} with t(R)[m, n] = <m, 0|H|n, R>, Hermitian partners included (plain numpy)."""
    table = {}

    def add(r, i, j, amp):
        table.setdefault(r, np.zeros((2, 2), complex))[i, j] += amp

    add((0, 0), 0, 0, mass)
    add((0, 0), 1, 1, -mass)
    bonds = [(i, j, r, t1) for i, j, r in NEAREST]
    bonds += [(i, j, r, t2 * np.exp(1j * phi)) for i, j, r in PLUS]
    bonds += [(i, j, r, t2 * np.exp(-1j * phi)) for i, j, r in MINUS]
    for i, j, r, amp in bonds:
        add(r, i, j, amp)
        add((-r[0], -r[1]), j, i, np.conj(amp))
    return table


def numpy_hamiltonian(table, k_red, orbitals=ORBITALS):
    """H(k) = sum_R t(R) exp(2 pi i k_red.(R + tau_j - tau_i)), k in reduced coordinates."""
    n = orbitals.shape[0]
    h = np.zeros((n, n), complex)
    for r, t in table.items():
        sep = np.asarray(r)[None, None, :] + orbitals[None, :, :] - orbitals[:, None, :]
        h += t * np.exp(2j * np.pi * sep @ k_red)
    return h


def pythtb_hamiltonian(model, k_red):
    """PythTB's own H(k_red) (private _gen_ham, PythTB 1.8.0), as an (N, N) matrix."""
    h = model._gen_ham(np.asarray(k_red))
    n = model._nsta
    return h.reshape(n, n)


def pythtb_flux(model, band_indices, n):
    """Total Berry flux of the bands through the BZ on PythTB's n x n plaquette grid.

    PythTB's sign convention (pythtb.py, berry_flux -> _one_flux_plane -> _one_berry_loop): each
    plaquette's phase is -angle(det(M01 M12 M23 M30)), M_ab = <u_a|u_b>, around the loop
    k -> k + d1 -> k + d1 + d2 -> k + d2 -> k (d1, d2 along the reduced directions 0 then 1). As
    <u_k|u_{k+d}> ~ exp(-i A.d) with A = i<u|du>, this is the Berry phase oint A.dk, i.e. the flux
    of Omega_{k1 k2} = -2 Im <d1 u|d2 u> counter-clockwise in the (k1, k2) plane. For a right-handed
    lattice (det(lattice) > 0, ours) that orientation is the Cartesian kx -> ky one, so
    C = flux / (2 pi) with NO extra sign, the same C as PHYSICS.md's (1/2pi) int Omega^{kx ky}.
    """
    w = pythtb.wf_array(model, [n + 1, n + 1])  # endpoints included: n plaquettes a side
    w.solve_on_grid([0.0, 0.0])
    return w.berry_flux(list(band_indices))


def batched_hamiltonian(model, k_cart):
    return np.asarray(jax.vmap(model, in_axes=(None, 0))(jnp.zeros(2), jnp.asarray(k_cart)))


def batched_energies(model, k_cart):
    batched = jax.vmap(sj.eigensystem, in_axes=(None, None, 0))
    energies, _ = batched(model, None, jnp.asarray(k_cart))
    return np.asarray(energies)


HALDANE_PARAMS = [(1.0, 0.15, 0.7, 0.2), (-0.8, 0.31, -2.1, -0.45), (1.3, 0.0, 0.0, 0.9)]


# ---------------------------------------------------------------------------------------------
# 1. Haldane: PythTB import, built-in model, Chern numbers against PythTB's Berry flux
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", HALDANE_PARAMS)
def test_haldane_from_pythtb_matches_pythtb_and_builtin(rng, params):
    """from_pythtb(Haldane): energies = PythTB solve_one/solve_all (1e-10); H = PythTB's H and the
    built-in Haldane's H and a hand-written numpy H (1e-12), on random k (reduced -> Cartesian)."""
    ptb = pythtb_haldane(*params)
    model = TightBinding.from_pythtb(ptb)
    assert model.n_bands == 2 and model.dim == 2
    np.testing.assert_allclose(model.lattice, LATTICE, atol=1e-15)
    np.testing.assert_allclose(model.orbital_positions, ORBITALS, atol=1e-15)

    k_red = rng.uniform(-1.0, 1.0, size=(24, 2))
    k_cart = k_red @ RECIPROCAL
    ours = batched_energies(model, k_cart)
    np.testing.assert_allclose(ours, ptb.solve_all(k_red).T, atol=1e-10, rtol=0)
    for n in range(4):
        np.testing.assert_allclose(ours[n], ptb.solve_one(k_red[n]), atol=1e-10, rtol=0)

    h_import = batched_hamiltonian(model, k_cart)
    h_builtin = batched_hamiltonian(Haldane(*params), k_cart)
    table = haldane_table(*params)
    for n in range(len(k_red)):
        np.testing.assert_allclose(h_import[n], pythtb_hamiltonian(ptb, k_red[n]), atol=1e-12)
        np.testing.assert_allclose(h_import[n], numpy_hamiltonian(table, k_red[n]), atol=1e-12)
    np.testing.assert_allclose(h_builtin, h_import, atol=1e-12, rtol=0)
    np.testing.assert_allclose(batched_energies(Haldane(*params), k_cart), ours, atol=1e-10, rtol=0)


def test_haldane_import_is_periodic_up_to_orbital_phases(rng):
    """H(k + G) = V^dagger H(k) V, V = diag(exp(i G.tau)) (closed form of the convention)."""
    model = TightBinding.from_pythtb(pythtb_haldane(1.0, 0.2, 0.9, 0.1))
    k = rng.uniform(-3, 3, size=(6, 2))
    for g_red in ([1, 0], [0, 1], [2, -1]):
        g = np.asarray(g_red, float) @ RECIPROCAL
        v = np.diag(np.exp(1j * (ORBITALS @ LATTICE) @ g))
        h, h_shift = batched_hamiltonian(model, k), batched_hamiltonian(model, k + g)
        np.testing.assert_allclose(h_shift, v.conj().T @ h @ v, atol=1e-12)


# t2 = 0.2, phi = +-pi/2 (and a generic phi): boundary |mass| = 3 sqrt(3) t2 |sin phi|.
CHERN_CASES = [
    (0.2, np.pi / 2, 0.7, 1),  # topological, just inside (boundary 1.039)
    (0.2, np.pi / 2, 1.4, 0),  # trivial, just outside
    (0.2, -np.pi / 2, 0.7, 1),  # topological, opposite chirality
    (0.2, -np.pi / 2, -1.4, 0),  # trivial, negative mass
    (0.2, 1.1, -0.6, 1),  # topological, generic phi (boundary 0.925)
    (0.2, 1.1, 1.2, 0),  # trivial, generic phi
]


@pytest.mark.parametrize("t2, phi, mass, abs_chern", CHERN_CASES)
def test_haldane_chern_number_matches_pythtb_berry_flux(t2, phi, mass, abs_chern):
    """chern_number(link) of band 0 = PythTB berry_flux/(2 pi) to 1e-6 on both sides of the phase
    boundary; |C| follows the closed-form phase diagram; the sign flips with phi (PythTB's sign)."""
    boundary = 3 * np.sqrt(3) * t2 * abs(np.sin(phi))
    assert (abs(mass) < boundary) == bool(abs_chern)  # the case table is right
    n = 18
    ptb = pythtb_haldane(1.0, t2, phi, mass)
    expected = pythtb_flux(ptb, [0], n) / (2 * np.pi)
    assert abs(expected - round(expected)) < 1e-8 and abs(round(expected)) == abs_chern
    imported = TightBinding.from_pythtb(ptb)
    for model in (imported, Haldane(1.0, t2, phi, mass)):
        assert abs(float(sj.chern_number(model, [0], n)) - expected) < 1e-6
    # the upper band (PythTB again; -C by the sum rule)
    upper = pythtb_flux(ptb, [1], n) / (2 * np.pi)
    assert abs(upper + expected) < 1e-8
    assert abs(float(sj.chern_number(imported, [1], n)) - upper) < 1e-6
    if abs_chern:
        flipped = pythtb_flux(pythtb_haldane(1.0, t2, -phi, mass), [0], n) / (2 * np.pi)
        assert abs(flipped + expected) < 1e-8


def test_haldane_curvature_integral_matches_pythtb_flux():
    """chern_number(method="integral") (curvature from autodiff, PHYSICS.md Eq. 44 sign) equals
    PythTB's Berry flux / 2 pi to 1e-3 at a well-gapped point; this pins the curvature's sign."""
    ptb = pythtb_haldane(1.0, 0.3, np.pi / 2, 0.0)
    expected = pythtb_flux(ptb, [0], 18) / (2 * np.pi)
    assert abs(abs(expected) - 1) < 1e-8
    integral = float(sj.chern_number(TightBinding.from_pythtb(ptb), [0], 24, method="integral"))
    assert abs(integral - expected) < 1e-3


# ---------------------------------------------------------------------------------------------
# 2. Spinful import: PythTB's Kane-Mele model
# ---------------------------------------------------------------------------------------------


def pythtb_kane_mele(esite, t, soc, rashba):
    """PythTB's own Kane-Mele example (pythtb docs, examples/kane_mele.py), same lattice.

    Bonds 0 -> 1 at R = (0,0), (-1,0), (0,-1) with unit vectors (r3h, 1/2), (-r3h, 1/2), (0, -1);
    Rashba 1j rashba (sigma x d)_z = 1j rashba (d_y sx - d_x sy); SOC 1j soc sz on the NNN bonds
    listed.
    Spin matrices given in PythTB's 4-vector form [s0, sx, sy, sz].
    """
    model = pythtb.tb_model(2, 2, LATTICE.tolist(), ORBITALS.tolist(), nspin=2)
    model.set_onsite([esite, -esite])
    sx, sy, sz = np.array([0.0, 1, 0, 0]), np.array([0.0, 0, 1, 0]), np.array([0.0, 0, 0, 1])
    r3h = np.sqrt(3.0) / 2.0
    for r in ([0, 0], [-1, 0], [0, -1]):
        model.set_hop(t, 0, 1, r)
    for r in ([1, 0], [-1, 1], [0, -1]):
        model.set_hop(soc * 1j * sz, 0, 0, r)
    for r in ([-1, 0], [1, -1], [0, 1]):
        model.set_hop(soc * 1j * sz, 1, 1, r)
    model.set_hop(1j * rashba * (0.5 * sx - r3h * sy), 0, 1, [0, 0], mode="add")
    model.set_hop(1j * rashba * (-1.0 * sx), 0, 1, [0, -1], mode="add")
    model.set_hop(1j * rashba * (0.5 * sx + r3h * sy), 0, 1, [-1, 0], mode="add")
    return model


KANE_MELE_PARAMS = [(0.1, 1.0, 0.06, 0.05), (-0.7, 0.9, 0.11, 0.23), (0.0, 1.0, 0.0, 0.3)]


@pytest.mark.parametrize("esite, t, soc, rashba", KANE_MELE_PARAMS)
def test_kane_mele_from_pythtb_spinful(rng, esite, t, soc, rashba):
    """nspin = 2 import: energies = PythTB's (1e-10), H = PythTB's H in its orbital-major,
    spin-minor order (1e-12), and the import equals KaneMele(t, soc, rashba, mass=esite) (1e-12)."""
    ptb = pythtb_kane_mele(esite, t, soc, rashba)
    model = TightBinding.from_pythtb(ptb)
    assert model.n_bands == 4
    np.testing.assert_allclose(model.orbital_positions, np.repeat(ORBITALS, 2, axis=0), atol=1e-15)

    k_red = rng.uniform(-1.0, 1.0, size=(20, 2))
    k_cart = k_red @ RECIPROCAL
    ours = batched_energies(model, k_cart)
    np.testing.assert_allclose(ours, ptb.solve_all(k_red).T, atol=1e-10, rtol=0)
    np.testing.assert_allclose(ours[0], ptb.solve_one(k_red[0]), atol=1e-10, rtol=0)

    h_import = batched_hamiltonian(model, k_cart)
    for n in range(len(k_red)):
        np.testing.assert_allclose(h_import[n], pythtb_hamiltonian(ptb, k_red[n]), atol=1e-12)
    builtin = KaneMele(t, soc, rashba=rashba, mass=esite)
    np.testing.assert_allclose(batched_hamiltonian(builtin, k_cart), h_import, atol=1e-12, rtol=0)


def test_kane_mele_import_manifold_chern_matches_pythtb():
    """The lower two-band manifold of the imported Kane-Mele model (with and without Rashba):
    chern_number = PythTB's berry_flux([0, 1]) / 2 pi (0 by time reversal) to 1e-6."""
    n = 12
    for params in ((0.1, 1.0, 0.06, 0.05), (0.0, 1.0, 0.1, 0.0)):
        ptb = pythtb_kane_mele(*params)
        expected = pythtb_flux(ptb, [0, 1], n) / (2 * np.pi)
        assert abs(expected) < 1e-8
        chern = float(sj.chern_number(TightBinding.from_pythtb(ptb), [0, 1], n))
        assert abs(chern - expected) < 1e-6


# ---------------------------------------------------------------------------------------------
# 3. Wannier90 _hr.dat importer
# ---------------------------------------------------------------------------------------------


def write_hr(path, table, n_wann, weights):
    """Write a Wannier90 seedname_hr.dat (its real layout), 2D model stored with R3 = 0.

    Line 1 comment; line 2 num_wann; line 3 nrpts; degeneracy weights 15 per line; then for each R,
    for n in 1..num_wann, for m in 1..num_wann: "R1 R2 R3 m n Re Im" with the value
    weight(R) * H_mn(R), H_mn(R) = <m, 0|H|n, R> (Wannier90 writes ham_r before dividing by ndegen).
    """
    vectors = sorted(weights)
    lines = ["written by test_tight_binding.py", f"{n_wann:12d}", f"{len(vectors):12d}"]
    w = [weights[r] for r in vectors]
    for start in range(0, len(w), 15):
        lines.append("".join(f"{x:5d}" for x in w[start : start + 15]))
    for r in vectors:
        t = table.get(r, np.zeros((n_wann, n_wann), complex))
        for n in range(n_wann):
            for m in range(n_wann):
                value = weights[r] * t[m, n]
                indices = f"{r[0]:5d}{r[1]:5d}{0:5d}{m + 1:5d}{n + 1:5d}"
                lines.append(f"{indices}  {value.real:.17e}  {value.imag:.17e}")
    path.write_text("\n".join(lines) + "\n")
    return path


def hr_weights():
    """All R in [-2, 2]^2 (25 points: weights span two lines), degeneracies != 1 on some of them."""
    weights = {}
    for a in range(-2, 3):
        for b in range(-2, 3):
            weights[(a, b)] = 1 + (abs(a) + 2 * abs(b)) % 3  # 1, 2 or 3; (1, 0) -> 2, (0, 1) -> 3
    assert len(set(weights.values())) == 3
    return weights


HALDANE_W90 = (1.0, 0.23, 0.8, 0.17)


@pytest.fixture
def haldane_hr(tmp_path):
    return write_hr(tmp_path / "haldane_hr.dat", haldane_table(*HALDANE_W90), 2, hr_weights())


@pytest.mark.parametrize("cartesian", [False, True])
def test_wannier90_haldane_matches_builtin_and_numpy(rng, haldane_hr, cartesian):
    """from_wannier90 (reduced or Cartesian centres, weights 1/2/3 divided out): H = hand-written
    numpy H and built-in Haldane H (1e-12), energies = PythTB's for the same model (1e-10)."""
    positions = ORBITALS @ LATTICE if cartesian else ORBITALS
    model = TightBinding.from_wannier90(haldane_hr, positions, LATTICE, cartesian=cartesian)
    assert model.n_bands == 2
    np.testing.assert_allclose(model.orbital_positions, ORBITALS, atol=1e-14)

    k_red = rng.uniform(-1.0, 1.0, size=(20, 2))
    k_cart = k_red @ RECIPROCAL
    h = batched_hamiltonian(model, k_cart)
    table = haldane_table(*HALDANE_W90)
    for n in range(len(k_red)):
        np.testing.assert_allclose(h[n], numpy_hamiltonian(table, k_red[n]), atol=1e-12)
    h_builtin = batched_hamiltonian(Haldane(*HALDANE_W90), k_cart)
    np.testing.assert_allclose(h_builtin, h, atol=1e-12, rtol=0)
    expected = pythtb_haldane(*HALDANE_W90).solve_all(k_red).T
    np.testing.assert_allclose(batched_energies(model, k_cart), expected, atol=1e-10, rtol=0)


def test_wannier90_weights_are_divided_out(tmp_path, rng):
    """Same model written with all weights 1 and with weights 1/2/3 imports to the same H; the
    H with the weights NOT divided out (numpy) differs, so the check can fail."""
    table = haldane_table(*HALDANE_W90)
    ones = {r: 1 for r in hr_weights()}
    plain = TightBinding.from_wannier90(
        write_hr(tmp_path / "a_hr.dat", table, 2, ones), ORBITALS, LATTICE
    )
    weighted = TightBinding.from_wannier90(
        write_hr(tmp_path / "b_hr.dat", table, 2, hr_weights()), ORBITALS, LATTICE
    )
    k_red = rng.uniform(-1, 1, size=(8, 2))
    k_cart = k_red @ RECIPROCAL
    np.testing.assert_allclose(
        batched_hamiltonian(weighted, k_cart), batched_hamiltonian(plain, k_cart), atol=1e-12
    )
    undivided = {r: hr_weights()[r] * t for r, t in table.items()}
    difference = numpy_hamiltonian(undivided, k_red[0]) - numpy_hamiltonian(table, k_red[0])
    assert np.max(np.abs(difference)) > 0.1


def test_wannier90_chern_number_matches_pythtb(haldane_hr):
    """The imported model's Chern number equals PythTB's Berry flux of the same Haldane model."""
    model = TightBinding.from_wannier90(haldane_hr, ORBITALS, LATTICE)
    expected = pythtb_flux(pythtb_haldane(*HALDANE_W90), [0], 12) / (2 * np.pi)
    assert abs(abs(expected) - 1) < 1e-8
    assert abs(float(sj.chern_number(model, [0], 12)) - expected) < 1e-6


def test_wannier90_wrong_number_of_positions(haldane_hr):
    with pytest.raises(ValueError, match=r"positions has 3 centres.*num_wann = 2"):
        TightBinding.from_wannier90(haldane_hr, np.zeros((3, 2)), LATTICE)
    with pytest.raises(ValueError, match=r"positions has 1 centres.*num_wann = 2"):
        TightBinding.from_wannier90(haldane_hr, np.zeros((1, 2)), LATTICE, cartesian=True)
    with pytest.raises(ValueError, match=r"positions must have shape \(n_orbitals, 2\)"):
        TightBinding.from_wannier90(haldane_hr, np.zeros((2, 3)), LATTICE)


def _lines(path):
    return path.read_text().splitlines()


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "mangle, message",
    [
        ("drop_last_row", r"bad_hr\.dat line 105: expected 'R1 R2 R3 m n Re Im'.*end of file"),
        ("extra_column", r"bad_hr\.dat line 6: expected 'R1 R2 R3 m n Re Im'"),
        ("ragged_row", r"bad_hr\.dat line 105: expected 'R1 R2 R3 m n Re Im'"),
        ("text_num_wann", r"bad_hr\.dat line 2: expected num_wann \(one integer\), got 'two'"),
        ("text_in_rows", r"bad_hr\.dat line 10: expected 'R1 R2 R3 m n Re Im'.* x "),
        ("truncated_in_weights", r"line 5: expected degeneracy weights \(15 of nrpts = 25 read"),
        ("zero_weight", r"line 4: expected degeneracy weights.*positive integers"),
        ("too_many_weights", r"line 5: expected degeneracy weights \(15 of nrpts = 25"),
        ("empty", r"bad_hr\.dat line 2: expected num_wann.*end of file"),
        ("orbital_index_too_large", r"line 6: expected orbital indices m, n in 1\.\.num_wann = 2"),
        ("orbital_index_zero", r"line 6: expected orbital indices m, n in 1\.\.num_wann = 2"),
        ("nonzero_R3", r"beyond d = 2"),
        ("missing_file", r"does_not_exist_hr\.dat: cannot be read"),
    ],
)
def test_wannier90_malformed_file_raises(haldane_hr, tmp_path, mangle, message):
    """Each kind of malformed file gives ValueError naming the problem (never a hang, never a silent
    wrong model)."""
    lines = _lines(haldane_hr)
    first_row = 3 + 2  # comment, num_wann, nrpts, two lines of weights
    bad = tmp_path / "bad_hr.dat"
    if mangle == "drop_last_row":
        lines = lines[:-1]
    elif mangle == "extra_column":
        lines[first_row:] = [line + " 0.0" for line in lines[first_row:]]
    elif mangle == "ragged_row":
        lines[-1] += " 0.0"
    elif mangle == "text_num_wann":
        lines[1] = "two"
    elif mangle == "text_in_rows":
        lines[first_row + 4] = lines[first_row + 4].replace("    1", "    x", 1)
    elif mangle == "truncated_in_weights":
        lines = lines[:4]  # only the first 15 of 25 weights, then end of file
    elif mangle == "zero_weight":
        lines[3] = "    0" + lines[3][5:]
    elif mangle == "too_many_weights":
        lines[4] += "    1"
    elif mangle == "empty":
        lines = []
    elif mangle in ("orbital_index_too_large", "orbital_index_zero"):
        fields = lines[first_row].split()
        fields[3] = "3" if mangle == "orbital_index_too_large" else "0"
        lines[first_row] = " ".join(fields)
    elif mangle == "nonzero_R3":  # the whole first R block (num_wann^2 = 4 rows) at R3 = 1
        for row in range(first_row, first_row + 4):
            fields = lines[row].split()
            fields[2] = "1"
            lines[row] = " ".join(fields)
    if mangle == "missing_file":
        bad = tmp_path / "does_not_exist_hr.dat"
    else:
        bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=message):
        TightBinding.from_wannier90(bad, ORBITALS, LATTICE)


# ---------------------------------------------------------------------------------------------
# 4. from_hoppings input checks (and from_pythtb type checks)
# ---------------------------------------------------------------------------------------------


def test_from_hoppings_builds_haldane(rng):
    """from_hoppings with the bond list gives the numpy Haldane H (1e-12): the valid path works."""
    t1, t2, phi, mass = 0.9, 0.2, 0.4, 0.3
    hops = [(t1, i, j, r) for i, j, r in NEAREST]
    hops += [(t2 * np.exp(1j * phi), i, j, r) for i, j, r in PLUS]
    hops += [(t2 * np.exp(-1j * phi), i, j, r) for i, j, r in MINUS]
    model = TightBinding.from_hoppings(LATTICE, ORBITALS, [mass, -mass], hops)
    k_red = rng.uniform(-1, 1, size=(6, 2))
    h = batched_hamiltonian(model, k_red @ RECIPROCAL)
    table = haldane_table(t1, t2, phi, mass)
    for n in range(len(k_red)):
        np.testing.assert_allclose(h[n], numpy_hamiltonian(table, k_red[n]), atol=1e-12)


@pytest.mark.parametrize(
    "onsite, hoppings, message",
    [
        (
            [0.0, 0.0],
            [(1.0, 0, 2, (0, 0))],
            r"hoppings\[0\].*orbital indices \(0, 2\) out of range for 2",
        ),
        ([0.0, 0.0], [(1.0, 0, 1, (0, 0)), (1.0, -1, 0, (1, 0))], r"hoppings\[1\].*out of range"),
        (
            [0.0, 0.0],
            [(1.0, 0, 1, (0, 0, 0))],
            r"hoppings\[0\].*R=\(0, 0, 0\) must have 2 components",
        ),
        ([0.0, 0.0], [(1.0, 0, 1, (1,))], r"hoppings\[0\].*must have 2 components"),
        (
            [0.0, 0.0, 0.0],
            [(1.0, 0, 1, (0, 0))],
            r"onsite must have shape \(2,\) or \(2, 2\); got \(3,\)$",
        ),
        (np.zeros((2, 3)), [(1.0, 0, 1, (0, 0))], r"onsite must have shape .*got \(2, 3\)"),
        ([[0.0, 1.0], [0.0, 0.0]], [], r"onsite matrix is not Hermitian"),
        ([0.0, 0.0], [(1.0, 1, 1, (0, 0))], r"hoppings\[0\].*on-site term"),
        ([0.0, 0.0], [(1.0, 0, 1)], r"hoppings\[0\] must be \(amplitude, i, j, R\)"),
    ],
)
def test_from_hoppings_input_errors(onsite, hoppings, message):
    with pytest.raises(ValueError, match=message):
        TightBinding.from_hoppings(LATTICE, ORBITALS, onsite, hoppings)


def test_from_hoppings_lattice_and_position_errors():
    with pytest.raises(ValueError, match=r"orbital_positions must have shape \(n_orbitals, 2\)"):
        TightBinding.from_hoppings(LATTICE, np.zeros((2, 3)), [0.0, 0.0], [])
    with pytest.raises(ValueError, match=r"lattice is singular"):
        TightBinding.from_hoppings([[1.0, 0.0], [2.0, 0.0]], ORBITALS, [0.0, 0.0], [])
    with pytest.raises(ValueError, match=re.escape("lattice must be a (d, d) array")):
        TightBinding.from_hoppings(np.eye(2)[:1], ORBITALS, [0.0, 0.0], [])


def test_from_pythtb_rejects_non_models_and_slabs():
    with pytest.raises(TypeError, match="pythtb.tb_model"):
        TightBinding.from_pythtb(object())
    ribbon = pythtb.tb_model(1, 2, LATTICE.tolist(), ORBITALS.tolist(), per=[0])
    ribbon.set_hop(1.0, 0, 1, [0, 0])
    with pytest.raises(ValueError, match=r"fully periodic.*dim_k=1, dim_r=2"):
        TightBinding.from_pythtb(ribbon)
