"""Wannier90 readers behind TightBinding.from_wannier90: _tb.dat, _hr.dat + centres/.win, wsvec, .gz.

Oracles: an independent NumPy reader and Fourier sum written here from the format's definition
(H_mn(k) = sum_R exp(i k.R) <0m|H|Rn> / ndegen(R), Wannier90 phase convention; the package uses
the orbital-position convention, a unitary transform with the same spectrum), closed-form bands of a
hand-written two-orbital chain, and from_hoppings for the same hopping list.
"""

import gzip
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax.models import TightBinding

GAAS = Path(__file__).parent / "data" / "GaAs_tb.dat.gz"
BOHR = 0.529177210903

# Two-orbital chain along a1 in a 3D cell (orthorhombic, Angstrom), centres reduced.
CELL = np.diag([2.0, 3.0, 4.0])
CENTRES = np.array([[0.1, 0.2, 0.3], [0.45, 0.25, 0.35]])
DELTA, T1, T2, TZ = 0.4, 1.1, -0.6, 0.15
CHAIN_HOPS = [(T1, 0, 1, (0, 0, 0)), (T2, 1, 0, (1, 0, 0)), (TZ, 0, 0, (0, 0, 1))]
CHAIN_HOPS += [(TZ, 1, 1, (0, 0, 1))]
DEGEN = {(0, 0, 0): 1, (1, 0, 0): 2, (-1, 0, 0): 2, (0, 0, 1): 3, (0, 0, -1): 3}


def chain_energies(k_cart):
    """E = 2 tz cos(k.a3) -/+ sqrt(Delta^2 + t1^2 + t2^2 + 2 t1 t2 cos(k.a1)) (closed form)."""
    ka1, ka3 = k_cart @ CELL[0], k_cart @ CELL[2]
    root = np.sqrt(DELTA**2 + T1**2 + T2**2 + 2 * T1 * T2 * np.cos(ka1))
    return np.stack([2 * TZ * np.cos(ka3) - root, 2 * TZ * np.cos(ka3) + root], axis=-1)


def dense_table(hops, onsite, n=2):
    """{R: <0m|H|Rn>} with the Hermitian partners (numpy, independent of the package)."""
    table = {r: np.zeros((n, n), complex) for r in DEGEN}
    table[(0, 0, 0)] += np.diag(onsite)
    for amp, i, j, r in hops:
        table[tuple(r)][i, j] += amp
        table[tuple(-c for c in r)][j, i] += np.conj(amp)
    return table


def chain_position(r):
    """A position matrix r(R) (Angstrom): centres on the R = 0 diagonal, arbitrary elsewhere."""
    out = np.zeros((2, 2, 3), complex)
    if r == (0, 0, 0):
        out[0, 0], out[1, 1] = CENTRES @ CELL
        out[0, 1] = [0.01 + 0.02j, -0.03j, 0.04]
        out[1, 0] = np.conj(out[0, 1])
    elif r == (1, 0, 0):
        out[1, 0] = [0.05, 0.06j, -0.07]
    elif r == (-1, 0, 0):
        out[0, 1] = np.conj([0.05, 0.06j, -0.07])
    return out


def write_tb(path, table, degen, position=chain_position, lattice=CELL):
    """seedname_tb.dat in Wannier90's layout, stored values multiplied by ndegen (as the file is)."""
    vectors = list(degen)
    n = next(iter(table.values())).shape[0]
    lines = ["written by test_wannier90.py"]
    lines += ["".join(f"{x:22.12f}" for x in row) for row in lattice]
    lines += [f"{n:12d}", f"{len(vectors):12d}"]
    w = [degen[r] for r in vectors]
    lines += ["".join(f"{x:5d}" for x in w[s : s + 15]) for s in range(0, len(w), 15)]
    for r in vectors:
        lines += ["", "".join(f"{c:5d}" for c in r)]
        for b in range(n):
            for a in range(n):
                v = degen[r] * table[r][a, b]
                lines.append(f"{a + 1:5d}{b + 1:5d}   {v.real:22.15e} {v.imag:22.15e}")
    for r in vectors:
        lines += ["", "".join(f"{c:5d}" for c in r)]
        for b in range(n):
            for a in range(n):
                v = degen[r] * position(r)[a, b]
                nums = " ".join(f"{x.real:22.15e} {x.imag:22.15e}" for x in v)
                lines.append(f"{a + 1:5d}{b + 1:5d}   {nums}")
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def write_hr(path, table, degen):
    vectors = list(degen)
    n = next(iter(table.values())).shape[0]
    lines = ["written by test_wannier90.py", f"{n:12d}", f"{len(vectors):12d}"]
    w = [degen[r] for r in vectors]
    lines += ["".join(f"{x:5d}" for x in w[s : s + 15]) for s in range(0, len(w), 15)]
    for r in vectors:
        for b in range(n):
            for a in range(n):
                v = degen[r] * table[r][a, b]
                lines.append(
                    "".join(f"{c:5d}" for c in (*r, a + 1, b + 1)) + f" {v.real:.15e} {v.imag:.15e}"
                )
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def write_xyz(path, centres_cart):
    lines = [f"{len(centres_cart) + 2}", "Wannier centres, written by test_wannier90.py"]
    lines += [f"X {x:16.10f} {y:16.10f} {z:16.10f}" for x, y, z in centres_cart]
    lines += ["Ga 0.0 0.0 0.0", "As 1.0 1.0 1.0"]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def chain_table():
    return dense_table(CHAIN_HOPS, [DELTA, -DELTA])


def chain_reference():
    return TightBinding.from_hoppings(CELL, CENTRES, [DELTA, -DELTA], CHAIN_HOPS)


@jax.jit
def _hamiltonians(model, k_cart):
    return jax.vmap(model, in_axes=(None, 0))(jnp.zeros(3), k_cart)


@jax.jit
def _energies(model, k_cart):
    return jax.vmap(sj.eigensystem, in_axes=(None, None, 0))(model, None, k_cart)[0]


def k_points(n, seed=3):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 3)) @ (2 * np.pi * np.linalg.inv(CELL).T)


# ---------------------------------------------------------------------------------------------
# (a) real GaAs _tb.dat against an independent NumPy reader + Fourier sum
# ---------------------------------------------------------------------------------------------


def numpy_read_tb(path):
    """Independent reader: all tokens after the header as numbers, blocks sliced by size."""
    with gzip.open(path, "rt") as handle:
        lines = handle.read().splitlines()
    lattice = np.array([[float(x) for x in line.split()] for line in lines[1:4]])
    n, nrpts = int(lines[4]), int(lines[5])
    tokens = " ".join(lines[6:]).split()
    degen = np.array(tokens[:nrpts], dtype=float)
    body = np.array(tokens[nrpts:], dtype=float)
    h_size, r_size = 3 + 4 * n * n, 3 + 8 * n * n
    h_part = body[: nrpts * h_size].reshape(nrpts, h_size)
    r_part = body[nrpts * h_size :].reshape(nrpts, r_size)
    vectors = h_part[:, :3]
    rows = h_part[:, 3:].reshape(nrpts, n * n, 4)  # m fastest: row = (n-1) N + (m-1)
    h = (rows[..., 2] + 1j * rows[..., 3]).reshape(nrpts, n, n).transpose(0, 2, 1)
    r_rows = r_part[:, 3:].reshape(nrpts, n * n, 8)
    r = (r_rows[..., 2::2] + 1j * r_rows[..., 3::2]).reshape(nrpts, n, n, 3).transpose(0, 2, 1, 3)
    return lattice, vectors, degen, h, r


@pytest.fixture(scope="module")
def gaas():
    return TightBinding.from_wannier90(GAAS)


def test_gaas_tb_matches_numpy_fourier_sum(gaas):
    """GaAs bands at 4 generic k: package (orbital-position convention) = numpy eigvalsh of
    sum_R exp(i k.R) H(R) / ndegen(R) (Wannier90 convention), 1e-10 eV; centres = Re diag r(0)."""
    lattice, vectors, degen, h, r = numpy_read_tb(GAAS)
    assert set(degen.tolist()) == {1.0, 2.0, 6.0}
    np.testing.assert_allclose(gaas.lattice, lattice, rtol=0, atol=0)
    assert (gaas.energy_unit, gaas.length_unit) == ("eV", "Angstrom")
    zero = int(np.flatnonzero(np.all(vectors == 0, axis=1))[0])
    centres = np.real(np.einsum("nna->na", r[zero])) / degen[zero]
    np.testing.assert_allclose(gaas.orbital_positions @ lattice, centres, atol=1e-12)
    np.testing.assert_allclose(gaas.position_matrix, r / degen[:, None, None, None], atol=1e-15)
    reciprocal = 2 * np.pi * np.linalg.inv(lattice).T
    k_cart = np.array([[0.1, 0.2, 0.3], [0.5, 0.0, 0.0], [-0.31, 0.27, 0.44], [0.0, 0.0, 0.0]])
    k_cart = k_cart @ reciprocal
    phases = np.exp(1j * k_cart @ (vectors @ lattice).T)  # (k, R)
    h_k = np.einsum("kr,rmn->kmn", phases, h / degen[:, None, None])
    expected = np.linalg.eigvalsh(h_k)
    np.testing.assert_allclose(_energies(gaas, jnp.asarray(k_cart)), expected, atol=1e-10, rtol=0)


# ---------------------------------------------------------------------------------------------
# (b) hand-written files of a chain with a closed form; (c) _hr.dat + centres.xyz/.win; (e) .gz
# ---------------------------------------------------------------------------------------------


def test_chain_tb_dat_matches_closed_form_and_from_hoppings(tmp_path):
    """_tb.dat (ndegen 1/2/3 in the file) alone: H = from_hoppings H (1e-12), bands = closed form
    (1e-12), centres from the r(0) diagonal, r(R)/ndegen stored unchanged."""
    model = TightBinding.from_wannier90(write_tb(tmp_path / "chain_tb.dat", chain_table(), DEGEN))
    np.testing.assert_allclose(model.orbital_positions, CENTRES, atol=1e-12)
    k = jnp.asarray(k_points(6))
    np.testing.assert_allclose(
        _hamiltonians(model, k), _hamiltonians(chain_reference(), k), atol=1e-12
    )
    np.testing.assert_allclose(_energies(model, k), chain_energies(np.asarray(k)), atol=1e-12)
    stored = np.asarray(model.position_matrix)
    for index, r in enumerate(np.asarray(model.vectors).astype(int).tolist()):
        np.testing.assert_allclose(stored[index], chain_position(tuple(r)), atol=1e-14)


def test_chain_hr_with_centres_xyz_and_win_equals_arrays(tmp_path):
    """_hr.dat + centres.xyz (atoms skipped) + .win (bohr) = _hr.dat + arrays = _tb.dat model."""
    hr = write_hr(tmp_path / "chain_hr.dat", chain_table(), DEGEN)
    xyz = write_xyz(tmp_path / "chain_centres.xyz", CENTRES @ CELL)
    win = tmp_path / "chain.win"
    rows = "\n".join(" ".join(f"{x / BOHR:.15f}" for x in row) for row in CELL)
    win.write_text(f"num_wann = 2\nBegin Unit_Cell_Cart\nbohr\n{rows}\nEnd Unit_Cell_Cart\n")
    from_arrays = TightBinding.from_wannier90(hr, CENTRES, CELL)
    from_files = TightBinding.from_wannier90(hr, centres=xyz, lattice=win)
    cartesian = TightBinding.from_wannier90(hr, CENTRES @ CELL, CELL, cartesian=True)
    assert from_files.length_unit == "Angstrom" and from_arrays.length_unit is None
    np.testing.assert_allclose(from_files.lattice, CELL, atol=1e-12)
    k = jnp.asarray(k_points(5))
    reference = _hamiltonians(chain_reference(), k)
    for model in (from_arrays, from_files, cartesian):
        np.testing.assert_allclose(model.orbital_positions, CENTRES, atol=1e-9)
        np.testing.assert_allclose(_hamiltonians(model, k), reference, atol=1e-9)
        assert model.position_matrix is None and model.energy_unit == "eV"


def test_gz_equals_plain(tmp_path):
    """A gzip-compressed _tb.dat gives the same model as the plain file (bitwise)."""
    plain = write_tb(tmp_path / "chain_tb.dat", chain_table(), DEGEN)
    packed = tmp_path / "chain_tb.dat.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = TightBinding.from_wannier90(plain), TightBinding.from_wannier90(packed)
    for field in ("lattice", "orbital_positions", "vectors", "hoppings", "position_matrix"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def write_wsvec(path, degen, special):
    """wsvec.dat: T = [(0, 0, 0)] for every (R, m, n) except those in ``special``."""
    lines = ["## written by test_wannier90.py with use_ws_distance=.true."]
    for r in degen:
        for m in range(1, 3):
            for n in range(1, 3):
                shifts = special.get((*r, m, n), [(0, 0, 0)])
                lines.append("".join(f"{c:5d}" for c in (*r, m, n)))
                lines.append(f"{len(shifts):5d}")
                lines += ["".join(f"{c:5d}" for c in t) for t in shifts]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def test_wsvec_shares_hopping_among_shifted_vectors(tmp_path):
    """wsvec: <0m|H|Rn>/ndegen moves to R + T_i, 1/n_T each. Orbital 1's z-hopping 2 tz written at
    R = +-a3 with T = {0, +-a3} becomes tz at +-a3 and tz at +-2 a3 (= from_hoppings, 1e-12);
    t2 written at R = -a1 with T = {2 a1} lands at a1."""
    hops = [h for h in CHAIN_HOPS if h[1:3] != (0, 0)] + [(2 * TZ, 0, 0, (0, 0, 1))]
    hops = [h for h in hops if h[3] != (1, 0, 0)]
    table = dense_table(hops, [DELTA, -DELTA])
    table[(-1, 0, 0)][1, 0] += T2  # t_10(a1) written at R = -a1, moved back by T = 2 a1
    table[(1, 0, 0)][0, 1] += np.conj(T2)  # its partner t_01(-a1) written at a1, T = -2 a1
    special = {
        (0, 0, 1, 1, 1): [(0, 0, 0), (0, 0, 1)],
        (0, 0, -1, 1, 1): [(0, 0, 0), (0, 0, -1)],
        (-1, 0, 0, 2, 1): [(2, 0, 0)],
        (1, 0, 0, 1, 2): [(-2, 0, 0)],
    }
    hr = write_hr(tmp_path / "ws_hr.dat", table, DEGEN)
    wsvec = write_wsvec(tmp_path / "ws_wsvec.dat", DEGEN, special)
    model = TightBinding.from_wannier90(hr, CENTRES, CELL, wsvec=wsvec)
    expected_hops = [(T1, 0, 1, (0, 0, 0)), (T2, 1, 0, (1, 0, 0)), (TZ, 1, 1, (0, 0, 1))]
    expected_hops += [(TZ, 0, 0, (0, 0, 1)), (TZ, 0, 0, (0, 0, 2))]
    expected = TightBinding.from_hoppings(CELL, CENTRES, [DELTA, -DELTA], expected_hops)
    k = jnp.asarray(k_points(6))
    np.testing.assert_allclose(_hamiltonians(model, k), _hamiltonians(expected, k), atol=1e-12)
    plain = TightBinding.from_wannier90(hr, CENTRES, CELL)
    assert np.max(np.abs(_hamiltonians(plain, k) - _hamiltonians(expected, k))) > 0.1


# ---------------------------------------------------------------------------------------------
# (d) malformed files: ValueError naming the file, the line and what was expected
# ---------------------------------------------------------------------------------------------


def _mangle_line(number, text):
    def mangle(lines):
        lines[number - 1] = text
        return lines

    return mangle


TB_CASES = {
    "lattice_two_numbers": (_mangle_line(3, "1.0 2.0"), r"line 3: expected lattice vector a2"),
    "nrpts_text": (_mangle_line(6, "abc"), r"line 6: expected nrpts \(one integer\), got 'abc'"),
    "degen_zero": (_mangle_line(7, "    0    2    2    3    3"), r"line 7: expected degeneracy"),
    "r_not_integer": (_mangle_line(9, "  0.5 0 0"), r"line 9: expected a lattice vector R"),
    "h_row_short": (_mangle_line(10, "    1    1   0.4"), r"line 10: expected 'm n' and 2"),
    "truncated": (lambda lines: lines[:-3], r"line \d+: expected 'm n' and 6 numbers.*end of file"),
    "trailing": (lambda lines: [*lines, "junk"], r"line \d+: expected end of file, got 'junk'"),
}


@pytest.mark.parametrize("case", sorted(TB_CASES))
def test_malformed_tb_dat_names_file_and_line(tmp_path, case):
    mangle, message = TB_CASES[case]
    good = write_tb(tmp_path / "good_tb.dat", chain_table(), DEGEN).read_text().splitlines()
    bad = tmp_path / "bad_tb.dat"
    bad.write_text("\n".join(mangle(good)) + "\n")
    with pytest.raises(ValueError, match=r"bad_tb\.dat " + message):
        TightBinding.from_wannier90(bad)


def test_wrong_kind_and_missing_arguments(tmp_path):
    """_tb.dat given a lattice, _hr.dat without centres/lattice, .win as centres, bad xyz/wsvec."""
    tb = write_tb(tmp_path / "c_tb.dat", chain_table(), DEGEN)
    hr = write_hr(tmp_path / "c_hr.dat", chain_table(), DEGEN)
    with pytest.raises(ValueError, match=r"c_tb\.dat is a _tb\.dat file.*drop lattice"):
        TightBinding.from_wannier90(tb, CENTRES, CELL)
    with pytest.raises(ValueError, match=r"c_hr\.dat looks like a Wannier90 _hr\.dat.*lattice="):
        TightBinding.from_wannier90(hr)
    with pytest.raises(ValueError, match=r"give the Wannier centres once"):
        TightBinding.from_wannier90(hr, CENTRES, CELL, centres=CENTRES)
    win = tmp_path / "c.win"
    win.write_text("begin unit_cell_cart\n2 0 0\n0 3 0\n0 0 4\nend unit_cell_cart\n")
    with pytest.raises(ValueError, match=r"a \.win file holds no Wannier centres"):
        TightBinding.from_wannier90(hr, centres=win, lattice=win)
    xyz = tmp_path / "c_centres.xyz"
    xyz.write_text("4\ncomment\nX 0.1 0.2\nX 1 2 3\nGa 0 0 0\nAs 1 1 1\n")
    with pytest.raises(ValueError, match=r"c_centres\.xyz line 3: expected 'Symbol x y z'"):
        TightBinding.from_wannier90(hr, centres=xyz, lattice=CELL)
    win.write_text("num_wann = 2\n")
    with pytest.raises(ValueError, match=r"c\.win: no 'begin unit_cell_cart' block"):
        TightBinding.from_wannier90(hr, centres=CENTRES, lattice=win)
    wsvec = write_wsvec(tmp_path / "c_wsvec.dat", DEGEN, {})
    lines = wsvec.read_text().splitlines()
    wsvec.write_text("\n".join(lines[:-2]) + "\n")  # the last (R, m, n) entry is cut
    with pytest.raises(ValueError, match=r"c_wsvec\.dat line \d+: expected the number of shifts"):
        TightBinding.from_wannier90(hr, CENTRES, CELL, wsvec=wsvec)
    wsvec.write_text("\n".join(lines[:-3]) + "\n")  # the last entry is missing entirely
    with pytest.raises(ValueError, match=r"c_wsvec\.dat has no entry for R = \[0, 0, -1\], m = 2"):
        TightBinding.from_wannier90(hr, CENTRES, CELL, wsvec=wsvec)
