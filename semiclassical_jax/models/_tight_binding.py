"""Generic tight-binding models in the orbital-position convention, and importers."""

import os
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
from jax import lax
import numpy as np

from .._guards import fail
from .._types import Array, Complex, Float
from ._base import AbstractLatticeModel


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
    """

    lattice: Float[Array, "d d"]
    orbital_positions: Float[Array, "n d"]
    vectors: Float[Array, "r d"]
    hoppings: Complex[Array, "r n n"]

    def __init__(self, lattice: Any, orbital_positions: Any, vectors: Any, hoppings: Any):
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
        hr_path: str | os.PathLike,
        positions: Any,
        lattice: Any,
        *,
        cartesian: bool = False,
    ) -> "TightBinding":
        """From a Wannier90 ``seedname_hr.dat`` plus the Wannier centres.

        ``positions``: (N, d) Wannier centres, reduced coordinates (or Cartesian, same length unit
        as ``lattice``, with ``cartesian=True``). ``lattice``: (d, d) primitive vectors as rows.
        For d < 3 the file's extra components of R must vanish (a 2D model stored as 3D).
        Wannier90 writes H_mn(R) = <m, 0|H|n, R> with degeneracy weights; we divide by them and
        attach the orbital-position phases of PHYSICS.md's convention.
        """
        lat = _as_lattice(lattice)
        dim = lat.shape[0]
        pos = np.asarray(positions, dtype=float)
        if cartesian:
            pos = _as_positions(pos, dim, "positions") @ np.linalg.inv(lat)
        pos = _as_positions(pos, dim, "positions")
        try:
            with open(hr_path) as handle:
                handle.readline()  # comment line
                n_wann = int(handle.readline().split()[0])
                n_rpts = int(handle.readline().split()[0])
                weights: list[int] = []
                while len(weights) < n_rpts:
                    line = handle.readline()
                    if not line:
                        fail(f"it ends after {len(weights)} of nrpts = {n_rpts} degeneracy weights")
                    weights.extend(int(w) for w in line.split())
                rows = np.loadtxt(handle, ndmin=2)
        except (OSError, ValueError, IndexError) as error:
            raise ValueError(
                f"hr_path {os.fspath(hr_path)!r} is not a readable Wannier90 _hr.dat file: {error}"
            ) from None
        if rows.shape != (n_rpts * n_wann * n_wann, 7):
            fail(
                f"hr_path: expected {n_rpts * n_wann * n_wann} rows of 7 columns, got {rows.shape}"
            )
        if len(weights) != n_rpts or any(w <= 0 for w in weights):
            fail(
                f"hr_path: expected nrpts = {n_rpts} positive degeneracy weights, "
                f"got {len(weights)} with minimum {min(weights, default=None)}"
            )
        if pos.shape[0] != n_wann:
            fail(f"positions has {pos.shape[0]} centres but the file has num_wann = {n_wann}")
        r_all = rows[:, :3].astype(int)
        if np.any(r_all[:, dim:] != 0):
            fail(f"hr_path has hoppings along dimensions beyond d = {dim} of lattice")
        values = (rows[:, 5] + 1j * rows[:, 6]) / np.repeat(
            np.asarray(weights, float), n_wann * n_wann
        )
        m = rows[:, 3].astype(int) - 1
        n = rows[:, 4].astype(int) - 1
        if np.any((m < 0) | (m >= n_wann) | (n < 0) | (n >= n_wann)):
            fail(f"hr_path has orbital indices (m, n) outside 1..num_wann = {n_wann}")
        vectors, index = np.unique(r_all[:, :dim], axis=0, return_inverse=True)
        dense = np.zeros((len(vectors), n_wann, n_wann), dtype=complex)
        np.add.at(dense, (index.ravel(), m, n), values)
        return cls(lat, pos, vectors, dense)
