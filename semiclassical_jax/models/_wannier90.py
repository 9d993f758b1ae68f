"""Readers for Wannier90 output files (pure NumPy, no JAX).

``seedname_tb.dat`` (lattice, H(R), r(R)), ``seedname_hr.dat`` (H(R)), ``seedname_centres.xyz``
(Wannier centres), the ``unit_cell_cart`` block of ``seedname.win`` and ``seedname_wsvec.dat``
(the minimal-distance replica shifts of ``use_ws_distance``). Files ending in ``.gz`` are read
through gzip. Energies stay in the file's unit (eV), lengths in Angstrom. Every malformed file
raises ValueError naming the file, the line and what was expected.

Wannier90's interpolation (phase convention exp(i k.R)):
H_mn(k) = sum_R exp(i k.R) <0m|H|Rn> / ndegen(R); the files store <0m|H|Rn> NOT divided by
ndegen(R). The readers below return the matrix elements already divided by ndegen(R).
"""

import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BOHR_ANGSTROM",
    "WannierFile",
    "apply_wsvec",
    "read_centres_xyz",
    "read_hr",
    "read_tb",
    "read_win_lattice",
    "read_wsvec",
    "sniff",
]

BOHR_ANGSTROM = 0.529177210903  # Angstrom per bohr (CODATA 2018)


@dataclass(frozen=True)
class WannierFile:
    """One Wannier90 tight-binding file, matrix elements divided by ndegen(R).

    ``vectors``: (n_R, 3) integer R (reduced). ``hamiltonian``: (n_R, N, N) complex, eV,
    ``hamiltonian[r, m, n]`` = <0m|H|R_r n> / ndegen(R_r). ``position``: (n_R, N, N, 3) complex,
    Angstrom, <0m|r_a|R_r n> / ndegen(R_r), or None (``_hr.dat``). ``lattice``: (3, 3) Cartesian
    rows, Angstrom, or None (``_hr.dat``).
    """

    vectors: np.ndarray
    hamiltonian: np.ndarray
    position: np.ndarray | None
    lattice: np.ndarray | None


class _Lines:
    """The lines of a text file (gzip by suffix) with 1-based numbers for error messages."""

    def __init__(self, path: str | os.PathLike, head: int | None = None):
        self.name = os.fspath(path)
        opener: Callable[..., Any] = gzip.open if self.name.endswith(".gz") else open
        try:
            with opener(self.name, "rt") as handle:
                if head is None:
                    self.lines = handle.read().splitlines()
                else:  # only the first ``head`` lines (format detection)
                    self.lines = [line.rstrip("\r\n") for line, _ in zip(handle, range(head))]
        except (OSError, UnicodeDecodeError, EOFError) as error:
            raise ValueError(f"{self.name}: cannot be read as a text file ({error})") from None
        self.index = 0

    def fail(self, line: int, what: str, got: str) -> None:
        raise ValueError(f"{self.name} line {line}: expected {what}, got {got!r}")

    def next(self, what: str, skip_blank: bool = False) -> tuple[int, str]:
        """The next line (1-based number, text); skip blank ones if asked; fail at end of file."""
        while self.index < len(self.lines):
            self.index += 1
            text = self.lines[self.index - 1]
            if not (skip_blank and not text.strip()):
                return self.index, text
        self.fail(self.index + 1, what, "end of file")
        raise AssertionError  # unreachable

    def fields(self, what: str, kinds: str, skip_blank: bool = False) -> list[Any]:
        """The next line parsed as exactly len(kinds) fields, 'i' integer and 'f' float."""
        line, text = self.next(what, skip_blank)
        tokens = text.split()
        if len(tokens) != len(kinds):
            self.fail(line, what, text)
        try:
            return [int(t) if k == "i" else float(t) for t, k in zip(tokens, kinds)]
        except ValueError:
            self.fail(line, what, text)
            raise AssertionError from None  # unreachable

    def integer(self, what: str) -> int:
        return int(self.fields(what, "i")[0])


def _kind(lines: _Lines) -> str | None:
    """'tb' if line 2 holds three fields (a lattice vector), 'hr' if one (num_wann), else None."""
    tokens = lines.lines[1].split() if len(lines.lines) > 1 else []
    return {3: "tb", 1: "hr"}.get(len(tokens))


def sniff(path: str | os.PathLike) -> str:
    """'tb' if line 2 holds three numbers (a lattice vector), 'hr' if one integer (num_wann)."""
    lines = _Lines(path, head=2)
    kind = _kind(lines)
    if kind is not None:
        return kind
    got = lines.lines[1] if len(lines.lines) > 1 else "end of file"
    lines.fail(2, "num_wann (a _hr.dat file) or lattice vector a1 (a _tb.dat file)", got)
    raise AssertionError  # unreachable


def _header(lines: _Lines) -> tuple[int, np.ndarray]:
    """num_wann, and ndegen(1..nrpts) 15 per line (positive integers)."""
    n_wann = lines.integer("num_wann (one integer)")
    if n_wann <= 0:
        lines.fail(lines.index, "num_wann > 0", lines.lines[lines.index - 1])
    n_rpts = lines.integer("nrpts (one integer)")
    if n_rpts <= 0:
        lines.fail(lines.index, "nrpts > 0", lines.lines[lines.index - 1])
    degeneracies: list[int] = []
    while len(degeneracies) < n_rpts:
        what = (
            f"degeneracy weights ({len(degeneracies)} of nrpts = {n_rpts} read, positive integers)"
        )
        line, text = lines.next(what)
        try:
            values = [int(t) for t in text.split()]
        except ValueError:
            values = []
        if not values or min(values) <= 0 or len(degeneracies) + len(values) > n_rpts:
            lines.fail(line, what, text)
        degeneracies.extend(values)
    return n_wann, np.asarray(degeneracies, dtype=float)


def _matrix_rows(lines: _Lines, n_wann: int, n_values: int, r_line: str) -> np.ndarray:
    """num_wann^2 lines "m n v_1 .. v_n_values" (m fastest) -> (N, N, n_values // 2) complex."""
    kinds = "ii" + "f" * n_values
    what = f"'m n' and {n_values} numbers (a matrix element of the block at R = {r_line})"
    out = np.zeros((n_wann, n_wann, n_values // 2), dtype=complex)
    for _ in range(n_wann * n_wann):
        m, n, *values = lines.fields(what, kinds)
        if not (1 <= m <= n_wann and 1 <= n <= n_wann):
            lines.fail(lines.index, f"orbital indices m, n in 1..num_wann = {n_wann}", f"{m} {n}")
        out[m - 1, n - 1] = np.asarray(values[0::2]) + 1j * np.asarray(values[1::2])
    return out


def _blocks(lines: _Lines, n_wann: int, n_rpts: int, n_values: int) -> tuple[np.ndarray, list]:
    """nrpts blocks "(blank) R1 R2 R3" + num_wann^2 matrix lines -> R (n_R, 3), blocks."""
    vectors, blocks = [], []
    for _ in range(n_rpts):
        r = lines.fields("a lattice vector R (three integers)", "iii", skip_blank=True)
        vectors.append(r)
        blocks.append(_matrix_rows(lines, n_wann, n_values, " ".join(map(str, r))))
    return np.asarray(vectors, dtype=int).reshape(-1, 3), blocks


def _check_kind(path: str | os.PathLike, expected: str) -> None:
    """Refuse the other Wannier90 format by its line 2 (anything else: the reader's line errors)."""
    lines = _Lines(path, head=2)
    kind = _kind(lines)
    if kind is not None and kind != expected:
        raise ValueError(
            f"{lines.name} looks like a Wannier90 _{kind}.dat file, not _{expected}.dat (line 2 "
            + (
                "holds three numbers, a lattice vector)"
                if kind == "tb"
                else "holds one integer, num_wann)"
            )
        )


def _check_vectors(lines: _Lines, vectors: np.ndarray) -> None:
    if len(np.unique(vectors, axis=0)) != len(vectors):
        raise ValueError(f"{lines.name}: the R-vectors are not distinct")
    if not np.any(np.all(vectors == 0, axis=1)):
        raise ValueError(f"{lines.name}: no block for R = 0 0 0")


def _end(lines: _Lines) -> None:
    rest = [i for i in range(lines.index, len(lines.lines)) if lines.lines[i].strip()]
    if rest:
        lines.fail(rest[0] + 1, "end of file", lines.lines[rest[0]])


def read_tb(path: str | os.PathLike) -> WannierFile:
    """Read ``seedname_tb.dat`` (Wannier90's ``hamiltonian_write_tb``).

    Lines: header; a1, a2, a3 (Cartesian, Angstrom); num_wann; nrpts; ndegen 15 per line; for each
    R: blank, "R1 R2 R3", num_wann^2 lines "m n Re Im" of <0m|H|Rn> (eV); for each R again: blank,
    "R1 R2 R3", num_wann^2 lines "m n Re(x) Im(x) Re(y) Im(y) Re(z) Im(z)" of <0m|r|Rn> (Angstrom).
    """
    _check_kind(path, "tb")
    lines = _Lines(path)
    lines.next("a header line")
    lattice = np.asarray(
        [lines.fields(f"lattice vector a{i + 1} (three numbers)", "fff") for i in range(3)]
    )
    n_wann, degeneracies = _header(lines)
    vectors, h_blocks = _blocks(lines, n_wann, len(degeneracies), 2)
    _check_vectors(lines, vectors)
    r_vectors, r_blocks = _blocks(lines, n_wann, len(degeneracies), 6)
    if not np.array_equal(r_vectors, vectors):
        bad = int(np.argmax(np.any(r_vectors != vectors, axis=1)))
        raise ValueError(
            f"{lines.name}: the position block lists R = {r_vectors[bad].tolist()} where the "
            f"Hamiltonian block lists R = {vectors[bad].tolist()} (R-vector number {bad + 1})"
        )
    _end(lines)
    weights = degeneracies[:, None, None]
    hamiltonian = np.stack(h_blocks)[..., 0] / weights
    position = np.stack(r_blocks) / weights[..., None]
    return WannierFile(vectors, hamiltonian, position, lattice)


def read_hr(path: str | os.PathLike) -> WannierFile:
    """Read ``seedname_hr.dat``: header; num_wann; nrpts; ndegen 15 per line; then nrpts num_wann^2
    lines "R1 R2 R3 m n Re Im" of <0m|H|Rn> (eV), m fastest within each R."""
    _check_kind(path, "hr")
    lines = _Lines(path)
    lines.next("a header line")
    n_wann, degeneracies = _header(lines)
    n_rows = len(degeneracies) * n_wann * n_wann
    kinds = "iiiii" + "ff"
    what = "'R1 R2 R3 m n Re Im' (five integers, two numbers)"
    table: dict[tuple[int, int, int], np.ndarray] = {}
    order: list[tuple[int, int, int]] = []
    for row in range(n_rows):
        r1, r2, r3, m, n, re, im = lines.fields(what, kinds, skip_blank=True)
        if not (1 <= m <= n_wann and 1 <= n <= n_wann):
            lines.fail(lines.index, f"orbital indices m, n in 1..num_wann = {n_wann}", f"{m} {n}")
        r = (r1, r2, r3)
        if row % (n_wann * n_wann) == 0:
            if r in table:
                lines.fail(
                    lines.index, "a new R-vector (each R one block of num_wann^2 rows)", str(r)
                )
            table[r] = np.zeros((n_wann, n_wann), dtype=complex)
            order.append(r)
        elif r != order[-1]:
            block = " ".join(map(str, order[-1]))
            lines.fail(lines.index, f"R = {block} (num_wann^2 rows per R-vector)", str(r))
        table[r][m - 1, n - 1] = complex(re, im) / degeneracies[len(order) - 1]
    _end(lines)
    vectors = np.asarray(order, dtype=int).reshape(-1, 3)
    return WannierFile(vectors, np.stack([table[r] for r in order]), None, None)


def read_centres_xyz(path: str | os.PathLike) -> np.ndarray:
    """Wannier centres (N, 3), Cartesian Angstrom, from ``seedname_centres.xyz``.

    Line 1: number of entries; line 2: comment; then "X x y z" per Wannier centre, followed by
    the atoms ("Symbol x y z"), which are skipped.
    """
    lines = _Lines(path)
    count = lines.integer("the number of entries (one integer)")
    lines.next("a comment line")
    centres = []
    for _ in range(count):
        line, text = lines.next("'Symbol x y z'")
        tokens = text.split()
        try:
            xyz = [float(t) for t in tokens[1:]]
        except ValueError:
            xyz = []
        if len(tokens) != 4 or len(xyz) != 3:
            lines.fail(line, "'Symbol x y z' (a symbol and three numbers)", text)
        if tokens[0] == "X":
            centres.append(xyz)
    if not centres:
        raise ValueError(f"{lines.name}: no Wannier centre (no line 'X x y z')")
    return np.asarray(centres, dtype=float)


def read_win_lattice(path: str | os.PathLike) -> np.ndarray:
    """The ``begin unit_cell_cart ... end unit_cell_cart`` block of ``seedname.win``: (3, 3)
    Cartesian rows in Angstrom (an optional first line ``bohr`` converts, ``ang`` is the default).
    The .win file does not hold the Wannier centres."""
    lines = _Lines(path)
    lowered = [t.split("!")[0].split("#")[0].strip().lower() for t in lines.lines]
    start = [i for i, t in enumerate(lowered) if t.split() == ["begin", "unit_cell_cart"]]
    if not start:
        raise ValueError(f"{lines.name}: no 'begin unit_cell_cart' block")
    lines.index = start[0] + 1
    line, text = lines.next("a unit ('bohr'/'ang') or lattice vector a1")
    scale = 1.0
    if text.strip().lower() in ("bohr", "ang"):
        scale = BOHR_ANGSTROM if text.strip().lower() == "bohr" else 1.0
    else:
        lines.index -= 1
    lattice = [lines.fields(f"lattice vector a{i + 1} (three numbers)", "fff") for i in range(3)]
    line, text = lines.next("'end unit_cell_cart'")
    if text.split("!")[0].strip().lower().split() != ["end", "unit_cell_cart"]:
        lines.fail(line, "'end unit_cell_cart'", text)
    return scale * np.asarray(lattice, dtype=float)


def read_wsvec(path: str | os.PathLike, n_wann: int) -> dict[tuple[int, ...], np.ndarray]:
    """``seedname_wsvec.dat``: {(R1, R2, R3, m, n) (m, n 0-based): T (n_T, 3) integer shifts}.

    Line 1: header (``... use_ws_distance=.true.``); then per (R, m, n): "R1 R2 R3 m n", the
    number n_T of shifts, n_T lines "T1 T2 T3" (reduced). Wannier90 (use_ws_distance) then places
    <0m|H|Rn>/ndegen(R) at R + T_i, shared equally (1/n_T each).
    """
    lines = _Lines(path)
    lines.next("a header line")
    shifts: dict[tuple[int, ...], np.ndarray] = {}
    while any(t.strip() for t in lines.lines[lines.index :]):
        key = lines.fields("'R1 R2 R3 m n' (five integers)", "iiiii", skip_blank=True)
        if not (1 <= key[3] <= n_wann and 1 <= key[4] <= n_wann):
            lines.fail(lines.index, f"orbital indices m, n in 1..num_wann = {n_wann}", str(key))
        count = lines.integer("the number of shifts T (one integer)")
        if count <= 0:
            lines.fail(lines.index, "a positive number of shifts T", str(count))
        shifts[(*key[:3], key[3] - 1, key[4] - 1)] = np.asarray(
            [lines.fields("a shift 'T1 T2 T3' (three integers)", "iii") for _ in range(count)]
        )
    return shifts


def apply_wsvec(
    name: str,
    vectors: np.ndarray,
    blocks: np.ndarray,
    shifts: dict[tuple[int, ...], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Move each <0m|O|Rn> (blocks (n_R, N, N, ...), already / ndegen) to R + T_i, 1/n_T each.

    Returns the new (vectors (n_R', 3), blocks (n_R', N, N, ...)); every (R, m, n) of the
    model must have an entry in ``shifts``.
    """
    n = blocks.shape[1]
    moved: dict[tuple[int, ...], np.ndarray] = {}
    for index, r in enumerate(vectors.tolist()):
        for m in range(n):
            for j in range(n):
                key = (*r, m, j)
                if key not in shifts:
                    raise ValueError(
                        f"wsvec file {name} has no entry for R = {r}, m = {m + 1}, n = {j + 1}"
                    )
                share = blocks[index, m, j] / len(shifts[key])
                for t in shifts[key].tolist():
                    target = tuple(a + b for a, b in zip(r, t))
                    if target not in moved:
                        moved[target] = np.zeros(blocks.shape[1:], dtype=complex)
                    moved[target][m, j] += share
    order = sorted(moved)
    return np.asarray(order, dtype=int).reshape(-1, 3), np.stack([moved[t] for t in order])
