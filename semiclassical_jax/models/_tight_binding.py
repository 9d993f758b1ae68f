"""Generic tight-binding models in the orbital-position convention, and importers."""

import os
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jax import lax
import numpy as np

from .._guards import fail
from .._types import Array, Complex, Float
from ._base import AbstractLatticeModel
from ._wannier90 import (
    WannierFile,
    apply_wsvec,
    read_centres_xyz,
    read_hr,
    read_tb,
    read_win_lattice,
    read_wsvec,
    sniff,
)


def _as_lattice(lattice: Any, name: str = "lattice") -> np.ndarray:
    lat = np.asarray(lattice, dtype=float)
    if lat.ndim != 2 or lat.shape[0] != lat.shape[1] or lat.shape[0] not in (1, 2, 3):
        fail(
            f"{name} must be a (d, d) array of primitive vectors (rows), d = 1, 2 or 3; got shape {lat.shape}"
        )
    if abs(np.linalg.det(lat)) < 1e-12:
        fail(f"{name} is singular: its primitive vectors are linearly dependent")
    return lat


def _as_positions(positions: Any, dim: int, name: str = "orbital_positions") -> np.ndarray:
    pos = np.asarray(positions, dtype=float)
    if pos.ndim == 1 and dim == 1:
        pos = pos[:, None]
    if pos.ndim != 2 or pos.shape[1] != dim:
        fail(
            f"{name} must have shape (n_orbitals, {dim}) in reduced coordinates; got shape {pos.shape}"
        )
    return pos


def _hopping_table(
    dim: int, n: int, onsite: Any, hoppings: Sequence[tuple[Any, int, int, Sequence[int]]]
) -> tuple[np.ndarray, np.ndarray]:
    """Dense (vectors, matrices) from onsite energies and a PythTB-style hopping list.

    Each hopping (amplitude, i, j, R) adds t to H_ij(R) and conj(t) to H_ji(-R); amplitude may be a
    number or, for spinful lists, an (s, s) block (then n counts orbitals times spin).
    """
    table: dict[tuple[int, ...], np.ndarray] = {}

    def block(r: tuple[int, ...]) -> np.ndarray:
        if r not in table:
            table[r] = np.zeros((n, n), dtype=complex)
        return table[r]

    zero = (0,) * dim
    onsite = np.asarray(onsite, dtype=complex)
    if onsite.shape not in ((n,), (n, n)):
        fail(f"onsite must have shape ({n},) or ({n}, {n}); got {onsite.shape}")
    if onsite.ndim == 1:
        onsite = np.diag(onsite)
    if not np.allclose(onsite, onsite.conj().T, atol=1e-12):
        fail("onsite matrix is not Hermitian")
    block(zero)[...] += onsite
    for index, hop in enumerate(hoppings):
        try:
            amplitude, i, j, r = hop
        except (TypeError, ValueError):
            raise ValueError(
                f"hoppings[{index}] must be (amplitude, i, j, R); got {hop!r}"
            ) from None
        r = tuple(int(c) for c in np.atleast_1d(r))
        if len(r) != dim:
            fail(f"hoppings[{index}]: lattice vector R={r} must have {dim} components")
        if not (0 <= i < n and 0 <= j < n):
            fail(f"hoppings[{index}]: orbital indices ({i}, {j}) out of range for {n} orbitals")
        if r == zero and i == j:
            fail(f"hoppings[{index}]: an on-site term (i = j, R = 0) belongs in onsite")
        amp = np.asarray(amplitude, dtype=complex)
        block(r)[i, j] += amp
        block(tuple(-c for c in r))[j, i] += np.conj(amp)
    vectors = np.array(sorted(table), dtype=float).reshape(-1, dim)
    matrices = np.stack([table[tuple(int(c) for c in v)] for v in vectors])
    return vectors, matrices


class TightBinding(AbstractLatticeModel):
    """H_ij(k) = sum_R t_ij(R) exp(i k.(R + tau_j - tau_i)) (PHYSICS.md convention II).

    ``lattice``: (d, d) primitive vectors as rows (Cartesian). ``orbital_positions``: (N, d),
    reduced. ``vectors``: (n_R, d) lattice vectors R in reduced (integer) coordinates.
    ``hoppings``: (n_R, N, N) complex, ``hoppings[r, i, j]`` = t_ij(R_r) = <i, 0|H|j, R_r>, listed
    for both R and -R (Hermiticity: t(-R) = t(R)^dagger). ``hoppings`` is the differentiable
    parameter. Build one with :meth:`from_hoppings`, :meth:`from_pythtb` or :meth:`from_wannier90`.

    ``position_matrix``: (n_R, N, N, 3) complex or None, ``position_matrix[r, m, n, a]`` =
    <0m|r_a|R_r n> (Cartesian, Wannier90's convention, on the same R list as ``hoppings``) as read
    from a ``_tb.dat`` file. When present, the geometry uses the full Berry connection
    (:meth:`intracell_position`); :meth:`without_position_terms` drops it (the tight-binding
    approximation: only the orbital positions enter, through the phases of H).
    ``energy_unit``, ``length_unit``: the units of ``hoppings`` and of ``lattice`` when known from
    the source file (Wannier90: "eV", "Angstrom"), else None.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> # lattice (1, 1), one orbital at 0, hoppings t = -1 to R = +-1
        >>> hoppings = np.full((2, 1, 1), -1.0)
        >>> chain = models.TightBinding(np.eye(1), np.zeros((1, 1)), [[1], [-1]], hoppings)
        >>> # one-band chain, eps(k) = -2 t cos(k a) = -2 at k = 0
        >>> print(np.round(sj.eigensystem(chain, None, [0.0])[0], 6))
        [-2.]
    """

    lattice: Float[Array, "d d"]
    orbital_positions: Float[Array, "n d"]
    vectors: Float[Array, "r d"]
    hoppings: Complex[Array, "r n n"]
    position_matrix: Complex[Array, "r n n 3"] | None
    energy_unit: str | None = eqx.field(static=True)
    length_unit: str | None = eqx.field(static=True)

    def __init__(
        self,
        lattice: Any,
        orbital_positions: Any,
        vectors: Any,
        hoppings: Any,
        *,
        position_matrix: Any = None,
        energy_unit: str | None = None,
        length_unit: str | None = None,
    ):
        lat = _as_lattice(lattice)
        dim = lat.shape[0]
        pos = _as_positions(orbital_positions, dim)
        vec = np.asarray(vectors, dtype=float).reshape(-1, dim)
        hop = jnp.asarray(hoppings)
        n = pos.shape[0]
        if hop.shape != (vec.shape[0], n, n):
            fail(
                f"hoppings must have shape (n_R, N, N) = ({vec.shape[0]}, {n}, {n}); got {hop.shape}"
            )
        if not np.allclose(vec, np.round(vec)):
            fail("vectors must be integer lattice vectors in reduced coordinates")
        self.lattice = jnp.asarray(lat)
        self.orbital_positions = jnp.asarray(pos)
        self.vectors = jnp.asarray(vec)
        self.hoppings = hop.astype(jnp.result_type(hop.dtype, 1j))
        if position_matrix is not None:
            position_matrix = jnp.asarray(position_matrix)
            if position_matrix.shape != (vec.shape[0], n, n, 3):
                fail(
                    f"position_matrix must have shape (n_R, N, N, 3) = ({vec.shape[0]}, {n}, {n},"
                    f" 3); got {position_matrix.shape}"
                )
        self.position_matrix = position_matrix
        self.energy_unit = energy_unit
        self.length_unit = length_unit

    @property
    def dim(self) -> int:
        return self.lattice.shape[0]

    @property
    def n_bands(self) -> int:
        return self.orbital_positions.shape[0]

    def __call__(self, x: Float[Array, " d"], k: Float[Array, " d"]) -> Complex[Array, "n n"]:
        del x  # a plain tight-binding model has no texture
        # exp(i k.(R + tau_j - tau_i)) = exp(i k.R) exp(-i k.tau_i) exp(i k.tau_j): n_R + N cos/sin
        # pairs instead of n_R N^2 complex exponentials. The Bloch sum over R is then one real
        # matrix product [cos | sin] (n_R + n_R) @ [[Re t, Im t], [-Im t, Re t]] (n_R + n_R, 2 N^2),
        # which jit(vmap) over k turns into a single GEMM; the orbital phases follow elementwise.
        n = self.n_bands
        lattice = jnp.asarray(self.lattice)
        cartesian_r = jnp.asarray(self.vectors) @ lattice  # (n_R, d)
        cartesian_tau = jnp.asarray(self.orbital_positions) @ lattice  # (N, d)
        theta_r, theta_tau = cartesian_r @ k, cartesian_tau @ k
        hop = self.hoppings.reshape(-1, n * n)
        hop_re, hop_im = jnp.real(hop), jnp.imag(hop)
        weights = jnp.concatenate([jnp.cos(theta_r), jnp.sin(theta_r)])
        table = jnp.concatenate(
            [jnp.concatenate([hop_re, hop_im], axis=1), jnp.concatenate([-hop_im, hop_re], axis=1)],
            axis=0,
        )
        bloch = (weights @ table).reshape(2, n, n)  # sum_R t(R) exp(i k.R): (Re, Im)
        c, s = jnp.cos(theta_tau), jnp.sin(theta_tau)
        phase_re = c[:, None] * c[None, :] + s[:, None] * s[None, :]  # cos(k.(tau_j - tau_i))
        phase_im = c[:, None] * s[None, :] - s[:, None] * c[None, :]  # sin(k.(tau_j - tau_i))
        return lax.complex(
            phase_re * bloch[0] - phase_im * bloch[1], phase_re * bloch[1] + phase_im * bloch[0]
        )

    def intracell_position(
        self, x: Float[Array, " d"], k: Float[Array, " d"]
    ) -> Complex[Array, "d n n"] | None:
        """A^W_a,ij(k) = sum_R exp(i k.(R + tau_j - tau_i)) <0i|r_a|Rj> - tau_i,a delta_ij
        (Wang et al., PRB 74, 195118, Eq. 44, in the orbital-position convention; Cartesian
        components a < d, length unit of ``lattice``); None without ``position_matrix``.

        Zero for point-like orbitals (r(R) = tau delta_R0 on the diagonal); independent of the
        orbital positions tau in every physical result (they only choose the Bloch gauge).
        """
        del x
        if self.position_matrix is None:
            return None
        d = self.dim
        lattice = jnp.asarray(self.lattice)
        cartesian_tau = jnp.asarray(self.orbital_positions) @ lattice  # (N, d)
        phases = jnp.exp(1j * (jnp.asarray(self.vectors) @ lattice @ k))  # (n_R,)
        bloch = jnp.einsum("r,rija->aij", phases, self.position_matrix[..., :d])
        orbital = jnp.exp(1j * (cartesian_tau @ k))  # (N,)
        position = jnp.conj(orbital)[None, :, None] * bloch * orbital[None, None, :]
        return position - jnp.eye(self.n_bands)[None] * cartesian_tau.T[:, :, None]

    def without_position_terms(self) -> "TightBinding":
        """The same model without ``position_matrix``: the tight-binding approximation."""
        return TightBinding(
            self.lattice,
            self.orbital_positions,
            self.vectors,
            self.hoppings,
            energy_unit=self.energy_unit,
            length_unit=self.length_unit,
        )

    @classmethod
    def from_hoppings(
        cls,
        lattice: Any,
        orbital_positions: Any,
        onsite: Any,
        hoppings: Sequence[tuple[Any, int, int, Sequence[int]]],
    ) -> "TightBinding":
        """From on-site energies and a PythTB-style list of (amplitude, i, j, R).

        Each listed hopping also adds its Hermitian conjugate (j, i, -R), as in PythTB.
        """
        lat = _as_lattice(lattice)
        pos = _as_positions(orbital_positions, lat.shape[0])
        vectors, matrices = _hopping_table(lat.shape[0], pos.shape[0], onsite, hoppings)
        return cls(lat, pos, vectors, matrices)

    @classmethod
    def from_pythtb(cls, model: Any) -> "TightBinding":
        """From a ``pythtb.tb_model`` (PythTB 1.7/1.8), spinless or spinful (nspin = 2).

        Orbital order is PythTB's state order: orbital-major, spin-minor for nspin = 2.
        Only fully periodic models (dim_k = dim_r) are supported.
        """
        try:
            dim_k, dim_r = model._dim_k, model._dim_r
            lat, orb, nspin = np.asarray(model._lat), np.asarray(model._orb), model._nspin
            site_energies, hops = model._site_energies, model._hoppings
        except AttributeError:
            raise TypeError(
                f"model must be a pythtb.tb_model, got {type(model).__name__}"
            ) from None
        if dim_k != dim_r:
            fail(f"only fully periodic PythTB models are supported (dim_k={dim_k}, dim_r={dim_r})")
        n_orb = orb.shape[0]
        if nspin == 1:
            onsite = np.asarray(site_energies, dtype=complex)
            hoppings = [(h[0], h[1], h[2], h[3]) for h in hops]
            positions = orb
        else:
            n = 2 * n_orb
            onsite = np.zeros((n, n), dtype=complex)
            for i in range(n_orb):
                onsite[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = site_energies[i]
            hoppings = []
            for amp, i, j, r in hops:
                block = np.asarray(amp, dtype=complex)
                for s in range(2):
                    for t in range(2):
                        if block[s, t] != 0:
                            hoppings.append((block[s, t], 2 * i + s, 2 * j + t, r))
            positions = np.repeat(orb, 2, axis=0)
        return cls.from_hoppings(lat, positions, onsite, hoppings)

    @classmethod
    def from_wannier90(
        cls,
        path: str | os.PathLike,
        positions: Any = None,
        lattice: Any = None,
        *,
        centres: Any = None,
        cartesian: bool = False,
        wsvec: str | os.PathLike | None = None,
    ) -> "TightBinding":
        """From Wannier90 output: ``seedname_tb.dat`` alone, or ``seedname_hr.dat`` + centres + lattice.

        The format is recognised from the content (line 2: a lattice vector for ``_tb.dat``,
        num_wann for ``_hr.dat``); ``.gz`` files are read through gzip.

        ``_tb.dat``: lattice (Cartesian rows, Angstrom), H(R) (eV) and r(R) (Angstrom) from the
        file; the orbital positions are the Wannier centres, the real diagonal of r(R = 0), unless
        ``centres`` overrides them. r(R) is kept as ``position_matrix``: the geometry uses the
        full Berry connection (``.without_position_terms()`` gives the tight-binding
        approximation, where only the centres enter).

        ``_hr.dat``: ``lattice`` is a (d, d) array (rows) or a path to ``seedname.win`` (its
        ``unit_cell_cart`` block; the .win file holds no centres). ``centres`` (or the positional
        ``positions``) is an (N, d) array, reduced (Cartesian, same length unit as the lattice,
        with ``cartesian=True``), or a path to ``seedname_centres.xyz`` (Cartesian, Angstrom).
        For d < 3 the file's extra components of R must vanish (a 2D model stored as 3D).

        ``wsvec``: optional ``seedname_wsvec.dat`` (``use_ws_distance``): each <0m|H|Rn> is
        shared equally among R + T_i of its listed shifts T_i (r(R) likewise).

        Hoppings t_mn(R) = <0m|H|Rn> / ndegen(R) in PHYSICS.md's orbital-position convention
        H_mn(k) = sum_R t_mn(R) exp(i k.(R + tau_n - tau_m)): a unitary transform of Wannier90's
        sum_R exp(i k.R) t_mn(R), same spectrum. Units are recorded as ``energy_unit = "eV"`` and
        ``length_unit = "Angstrom"`` (None when the lattice is an array: its unit is the caller's).
        """
        if positions is not None and centres is not None:
            fail("give the Wannier centres once: positions (positional) or centres=, not both")
        name, given = ("positions", positions) if positions is not None else ("centres", centres)
        kind = sniff(path)
        where = os.fspath(path)
        if kind == "tb":
            if lattice is not None:
                fail(f"{where} is a _tb.dat file, which carries its own lattice: drop lattice")
            data = read_tb(path)
            lat, length_unit = data.lattice, "Angstrom"
        else:
            if lattice is None or given is None:
                fail(
                    f"{where} looks like a Wannier90 _hr.dat file (line 2 is num_wann): it needs "
                    "lattice= (array or seedname.win) and centres= (array or seedname_centres.xyz)"
                )
            data = read_hr(path)
            lat, length_unit = _wannier_lattice(lattice)
        return _wannier_model(cls, data, lat, (name, given), cartesian, wsvec, length_unit)


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def _wannier_lattice(lattice: Any) -> tuple[np.ndarray, str | None]:
    """(d, d) rows from an array (unit: the caller's) or a ``seedname.win`` file (Angstrom)."""
    if not _is_path(lattice):
        return _as_lattice(lattice), None
    if not os.fspath(lattice).endswith((".win", ".win.gz")):
        fail(f"lattice path {os.fspath(lattice)!r} must be a Wannier90 .win file (or an array)")
    return _as_lattice(read_win_lattice(lattice)), "Angstrom"


def _wannier_centres(
    data: WannierFile, lat: np.ndarray, name: str, given: Any, cartesian: bool
) -> np.ndarray:
    """Reduced (N, d) centres: the r(R = 0) diagonal, an array, or ``seedname_centres.xyz``."""
    dim = lat.shape[0]
    if given is None:  # _tb.dat: Wannier centres = Re <0n|r|0n> (Cartesian)
        zero = int(np.flatnonzero(np.all(data.vectors == 0, axis=1))[0])
        given, cartesian = np.real(np.diagonal(data.position[zero], axis1=0, axis2=1)).T, True
    elif _is_path(given):
        if os.fspath(given).endswith((".win", ".win.gz")):
            fail(f"{name}: a .win file holds no Wannier centres; pass seedname_centres.xyz")
        given, cartesian = read_centres_xyz(given)[:, :dim], True
    pos = np.asarray(given, dtype=float)
    if cartesian:
        pos = _as_positions(pos, dim, name) @ np.linalg.inv(lat)
    pos = _as_positions(pos, dim, name)
    n_wann = data.hamiltonian.shape[1]
    if pos.shape[0] != n_wann:
        fail(f"{name} has {pos.shape[0]} centres but the file has num_wann = {n_wann}")
    return pos


def _wannier_model(
    cls: type[TightBinding],
    data: WannierFile,
    lat: np.ndarray,
    centres: tuple[str, Any],
    cartesian: bool,
    wsvec: str | os.PathLike | None,
    length_unit: str | None,
) -> TightBinding:
    """Assemble the model: centres, optional wsvec shifts, R restricted to the lattice's d."""
    dim = lat.shape[0]
    pos = _wannier_centres(data, lat, *centres, cartesian)
    vectors, n = data.vectors, data.hamiltonian.shape[1]
    blocks = data.hamiltonian[..., None]
    if data.position is not None:
        blocks = np.concatenate([blocks, data.position], axis=-1)
    if wsvec is not None:
        vectors, blocks = apply_wsvec(os.fspath(wsvec), vectors, blocks, read_wsvec(wsvec, n))
    if np.any(vectors[:, dim:] != 0):
        fail(f"the file has hoppings along dimensions beyond d = {dim} of lattice")
    return cls(
        lat,
        pos,
        vectors[:, :dim],
        blocks[..., 0],
        position_matrix=None if data.position is None else blocks[..., 1:],
        energy_unit="eV",
        length_unit=length_unit,
    )
