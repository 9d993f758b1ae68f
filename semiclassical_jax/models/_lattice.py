"""Built-in lattice models: QWZ, Haldane and Kane-Mele (d = 2)."""

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._types import Array, Complex, Float, ParameterLike
from ._base import AbstractLatticeModel, as_parameter, bond_hamiltonian, evaluate

_SQUARE = np.eye(2)
# nearest-neighbour distance 1/sqrt(3)
_HONEYCOMB = np.array([[1.0, 0.0], [0.5, np.sqrt(3.0) / 2.0]])
_HONEYCOMB_SITES = np.array([[1.0 / 3.0, 1.0 / 3.0], [2.0 / 3.0, 2.0 / 3.0]])  # A, B (reduced)

# Honeycomb bonds as (i, j, R) with R reduced; amplitude t_ij(R) goes to H_ij, conj to H_ji(-R).
_NEAREST = [(0, 1, (0, 0)), (1, 0, (1, 0)), (1, 0, (0, 1))]
# Next-nearest bonds that carry exp(+i phi) (counter-clockwise around a hexagon), and their partners.
_NEXT_PLUS = [(0, 0, (1, 0)), (1, 1, (1, -1)), (1, 1, (0, 1))]
_NEXT_MINUS = [(1, 1, (1, 0)), (0, 0, (1, -1)), (0, 0, (0, 1))]

_VECTORS = sorted(
    {(0, 0)}
    | {r for _, _, r in _NEAREST + _NEXT_PLUS}
    | {tuple(-c for c in r) for _, _, r in _NEAREST + _NEXT_PLUS}
)
_VECTOR_INDEX = {r: n for n, r in enumerate(_VECTORS)}

_PAULI = {
    "0": np.eye(2, dtype=complex),
    "x": np.array([[0, 1], [1, 0]], dtype=complex),
    "y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "z": np.array([[1, 0], [0, -1]], dtype=complex),
}


def _dense_table(block: int, onsite: list, bonds: list) -> Complex[Array, "r n n"]:
    """Dense t(R) over _VECTORS from on-site and bond amplitudes (as for bond_hamiltonian), h.c. added.

    Written as coefficient x constant one-hot tables (no scatter); not on the H(k) hot path.
    """
    n = block * len(onsite)
    table = jnp.zeros((len(_VECTORS), n, n), dtype=jnp.result_type(float, 1j))
    zero = _VECTOR_INDEX[(0, 0)]
    for i, amplitude in enumerate(onsite):
        for coefficient, matrix in amplitude:
            constant = np.zeros((len(_VECTORS), n, n), complex)
            constant[zero, block * i : block * (i + 1), block * i : block * (i + 1)] = matrix
            table = table + coefficient * constant
    for i, j, r, amplitude in bonds:
        forward, backward = _VECTOR_INDEX[r], _VECTOR_INDEX[tuple(-c for c in r)]
        rows, cols = slice(block * i, block * (i + 1)), slice(block * j, block * (j + 1))
        for coefficient, matrix in amplitude:
            matrix = np.broadcast_to(np.asarray(matrix, complex), (block, block))
            there, back = np.zeros((2, len(_VECTORS), n, n), complex)
            there[forward, rows, cols] = matrix
            back[backward, cols, rows] = matrix.conj().T
            table = table + coefficient * there + jnp.conj(coefficient) * back
    return table


class QWZ(AbstractLatticeModel):
    """Qi-Wu-Zhang two-band Chern insulator on the square lattice (a = 1).

    H(k) = sin kx sx + sin ky sy + (m + cos kx + cos ky) sz.
    Chern number of the lower band: 0 for |m| > 2, +-1 for 0 < |m| < 2 (opposite signs), with
    PHYSICS.md's C = (1/2 pi) int Tr F^{k1 k2} d^2k (section 1). Orbitals at the origin.
    ``m`` may be a texture.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> model = models.QWZ(1.0)
        >>> # at k = 0: H = (m + 2) sz, energies -+3
        >>> print(np.round(sj.eigensystem(model, None, [0.0, 0.0])[0], 6))
        [-3.  3.]
    """

    m: ParameterLike = eqx.field(converter=as_parameter)

    dim: ClassVar[int] = 2
    n_bands: ClassVar[int] = 2

    @property
    def lattice(self) -> Float[Array, "2 2"]:
        return jnp.asarray(_SQUARE)

    @property
    def orbital_positions(self) -> Float[Array, "2 2"]:
        return jnp.zeros((2, 2))

    def __call__(self, x: Float[Array, "2"], k: Float[Array, "2"]) -> Complex[Array, "2 2"]:
        m = evaluate(self.m, x)
        dx, dy = jnp.sin(k[0]), jnp.sin(k[1])
        dz = m + jnp.cos(k[0]) + jnp.cos(k[1])
        return jnp.array([[dz, dx - 1j * dy], [dx + 1j * dy, -dz]])


class _HoneycombModel(AbstractLatticeModel):
    """Shared layout of Haldane and Kane-Mele: honeycomb lattice, ``spin`` states per site."""

    spin: eqx.AbstractClassVar[int]
    dim: ClassVar[int] = 2

    @property
    def n_bands(self) -> int:
        return 2 * self.spin

    @property
    def lattice(self) -> Float[Array, "2 2"]:
        return jnp.asarray(_HONEYCOMB)

    @property
    def orbital_positions(self) -> Float[Array, "n 2"]:
        return jnp.asarray(np.repeat(_HONEYCOMB_SITES, self.spin, axis=0))

    @abc.abstractmethod
    def terms(self, x: Float[Array, "2"]) -> tuple[list, list]:
        """(onsite, bonds) at position x: ``onsite[i]`` the on-site block of site i and ``bonds``
        the list of (i, j, R, amplitude), each amplitude a list of (coefficient, constant block),
        as :func:`~semiclassical_jax.models._base.bond_hamiltonian` takes them (h.c. implied)."""

    def hopping_table(self, x: Float[Array, "2"]) -> Complex[Array, "r n n"]:
        """t(R) for every R in _VECTORS at position x, shape (r, n, n) (h.c. bonds included)."""
        return _dense_table(self.spin, *self.terms(x))

    def __call__(self, x: Float[Array, "2"], k: Float[Array, "2"]) -> Complex[Array, "n n"]:
        return bond_hamiltonian(k, _HONEYCOMB, _HONEYCOMB_SITES, self.spin, *self.terms(x))


class Haldane(_HoneycombModel):
    """Haldane's honeycomb Chern insulator, orbital positions included (PythTB's layout).

    Lattice a1 = (1, 0), a2 = (1/2, sqrt 3/2); A at (1/3, 1/3), B at (2/3, 2/3) (reduced).
    On-site +mass on A, -mass on B; nearest-neighbour hopping t1; next-nearest t2 exp(+-i phi).
    Topological (|C| = 1) for |mass| < 3 sqrt(3) |t2 sin phi|, trivial beyond. Bloch sums in
    PHYSICS.md's convention II (orbital positions in the phase), energies in the hopping unit.
    Every parameter may be a texture.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> model = models.Haldane(1.0, 0.1, np.pi / 2, 0.0)
        >>> model.n_bands, model.lattice.shape
        (2, (2, 2))
    """

    t1: ParameterLike = eqx.field(converter=as_parameter)
    t2: ParameterLike = eqx.field(converter=as_parameter)
    phi: ParameterLike = eqx.field(converter=as_parameter)
    mass: ParameterLike = eqx.field(converter=as_parameter)

    spin: ClassVar[int] = 1

    def terms(self, x: Float[Array, "2"]) -> tuple[list, list]:
        t1, t2 = evaluate(self.t1, x), evaluate(self.t2, x)
        phi, mass = evaluate(self.phi, x), evaluate(self.mass, x)
        plus = t2 * jnp.exp(1j * phi)
        minus = jnp.conj(plus)
        bonds = (
            [(i, j, r, [(t1, 1.0)]) for i, j, r in _NEAREST]
            + [(i, j, r, [(plus, 1.0)]) for i, j, r in _NEXT_PLUS]
            + [(i, j, r, [(minus, 1.0)]) for i, j, r in _NEXT_MINUS]
        )
        return [[(mass, 1.0)], [(mass, -1.0)]], bonds


class KaneMele(_HoneycombModel):
    """Kane-Mele model: the spinful honeycomb lattice with spin-orbit coupling (4 bands).

    States ordered (A up, A down, B up, B down), as PythTB's nspin = 2. Same lattice as
    :class:`Haldane`. H = t (nearest neighbours) + i soc nu_ij s_z (next-nearest, nu = +-1 as
    Haldane's exp(+-i pi/2)) + i rashba (s x d_ij)_z (nearest, d_ij the unit bond vector from i to
    j) + mass xi_i (staggered, +mass on A).
    With mass = 0 inversion and time reversal make every band doubly degenerate at every k: the
    lower two bands form the non-Abelian manifold {0, 1} with total Chern number 0 (PHYSICS.md
    section 1, paper Eqs. 40-41). Bloch sums in PHYSICS.md's convention II. Parameters may be
    textures.

    Examples:
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import grids, models
        >>> m = models.MassiveDirac(1.0, 0.3)
        >>> model = models.KaneMele(1.0, 0.06)
        >>> model.n_bands, model.dim
        (4, 2)
    """

    t: ParameterLike = eqx.field(converter=as_parameter)
    soc: ParameterLike = eqx.field(converter=as_parameter)
    rashba: ParameterLike = eqx.field(default=0.0, converter=as_parameter)
    mass: ParameterLike = eqx.field(default=0.0, converter=as_parameter)

    spin: ClassVar[int] = 2

    def terms(self, x: Float[Array, "2"]) -> tuple[list, list]:
        t, soc = evaluate(self.t, x), evaluate(self.soc, x)
        rashba, mass = evaluate(self.rashba, x), evaluate(self.mass, x)
        s0, sx, sy, sz = (_PAULI[c] for c in "0xyz")
        bonds = []
        for i, j, r in _NEAREST:
            d = (np.asarray(r) + _HONEYCOMB_SITES[j] - _HONEYCOMB_SITES[i]) @ _HONEYCOMB
            d = d / np.linalg.norm(d)
            bonds.append((i, j, r, [(t, s0), (rashba, 1j * (d[1] * sx - d[0] * sy))]))
        bonds += [(i, j, r, [(soc, 1j * sz)]) for i, j, r in _NEXT_PLUS]
        bonds += [(i, j, r, [(soc, -1j * sz)]) for i, j, r in _NEXT_MINUS]
        return [[(mass, s0)], [(mass, -s0)]], bonds
