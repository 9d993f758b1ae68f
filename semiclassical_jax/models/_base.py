"""The model abstraction: a local Hamiltonian H(x, k) as an equinox Module.

A model is a pytree. Its numeric fields are the parameters (differentiable, vmappable); its
static fields (``dim``, ``n_bands``, ...) fix shapes. Any scalar parameter may instead be a
texture, a callable of the position x (see :mod:`semiclassical_jax.textures`), which is how
spatial structure enters (PHYSICS.md section 4).
"""

import abc
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jax import lax
import numpy as np

from .._guards import fail
from .._types import Array, Complex, Float, ParameterLike


def as_parameter(value: Any) -> Any:
    """Converter for parameter fields: numbers become float arrays, textures stay callables."""
    if callable(value):
        return value
    if isinstance(value, (bool, np.bool_)):
        fail(f"a model parameter must be a real number or a texture, got {value!r}", TypeError)
    array = jnp.asarray(value)
    if jnp.iscomplexobj(array):
        return array
    return array.astype(jnp.result_type(float))


def evaluate(parameter: ParameterLike, x: Float[Array, " d"]) -> Array:
    """A parameter's value at position x: call it if it is a texture, else return it."""
    if callable(parameter):
        return jnp.asarray(parameter(x))
    return jnp.asarray(parameter)


class AbstractModel(eqx.Module):
    """A local Hamiltonian H(x, k), PHYSICS.md conventions.

    Subclasses set the class variables / static fields ``dim`` (spatial dimension d) and
    ``n_bands`` (N) and implement ``__call__(x, k) -> (N, N)`` complex Hermitian, with x and k
    Cartesian arrays of shape (d,) in natural units (hbar = e = 1).

    Examples:
        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> from semiclassical_jax import models
        >>> class TwoLevel(models.AbstractModel):
        ...     gap: float
        ...     dim = 1
        ...     n_bands = 2
        ...     def __call__(self, x, k):
        ...         return jnp.array([[self.gap / 2, k[0]], [k[0], -self.gap / 2]], dtype=complex)
        >>> # eps = -+sqrt(k^2 + (gap / 2)^2) = -+0.5 at k = 0.4, gap = 0.6
        >>> print(np.round(sj.eigensystem(TwoLevel(0.6), None, [0.4])[0], 6))
        [-0.5  0.5]
    """

    dim: eqx.AbstractVar[int]
    n_bands: eqx.AbstractVar[int]

    @abc.abstractmethod
    def __call__(self, x: Float[Array, " d"], k: Float[Array, " d"]) -> Complex[Array, "n n"]:
        """The local Hamiltonian H^c(x, k) of paper Eq. 22."""

    def intracell_position(
        self, x: Float[Array, " d"], k: Float[Array, " d"]
    ) -> Complex[Array, "d n n"] | None:
        """The intra-cell position operator A^W_a,ij(k) = i <chi_i|d_{k_a} chi_j> of the model's
        Bloch basis (cell-periodic parts; Cartesian, units of length), Hermitian, or None.

        None (the default) is the tight-binding approximation: point-like orbitals at the
        positions the Hamiltonian's phases use, A^W = 0. A model that returns it has the full
        Berry connection A = A^H + U^dagger A^W U in every geometric quantity (geometry._kernel).
        """
        del x, k
        return None


class AbstractLatticeModel(AbstractModel):
    """A lattice model in PHYSICS.md's orbital-position convention (convention II).

    ``lattice``: (d, d), rows are the primitive vectors a_i (Cartesian).
    ``orbital_positions``: (N, d), orbital centres tau_j in reduced coordinates (units of a_i).
    H_ij(k) = sum_R t_ij(R) exp(i k.(R + tau_j - tau_i)), so that H(k + G) = V^dagger H(k) V with
    V = diag(exp(i G.tau)); :func:`semiclassical_jax.chern_number` uses this to close the torus.

    Examples:
        >>> import numpy as np
        >>> from semiclassical_jax import models
        >>> model = models.QWZ(1.0)
        >>> isinstance(model, models.AbstractLatticeModel)
        True
        >>> np.asarray(model.lattice).tolist(), np.asarray(model.orbital_positions).shape
        ([[1.0, 0.0], [0.0, 1.0]], (2, 2))
    """

    lattice: eqx.AbstractVar[Array]
    orbital_positions: eqx.AbstractVar[Array]

    @property
    def reciprocal_lattice(self) -> Float[Array, "d d"]:
        """(d, d), rows are b_i with a_i . b_j = 2 pi delta_ij."""
        return 2 * jnp.pi * jnp.linalg.inv(jnp.asarray(self.lattice)).T


# A bond amplitude, or an on-site block, as a sum of (coefficient, constant s x s matrix) terms: the
# coefficients are the (possibly traced, possibly complex) parameters, the matrices NumPy constants.
# Writing the amplitude this way lets the evaluation skip, at trace time, every matrix element that
# is structurally zero and reuse one coefficient for all the phases it multiplies.
Amplitude = Sequence[tuple[Any, Any]]


def _displacement_key(vector: np.ndarray) -> tuple[tuple[float, ...], int]:
    """(key of +-vector, sign): vector = sign * canonical, canonical's first non-zero entry > 0."""
    rounded = np.round(vector, 9) + 0.0  # + 0.0: no negative zeros in the key
    nonzero = np.flatnonzero(rounded)
    sign = -1 if nonzero.size and rounded[nonzero[0]] < 0 else 1
    return tuple(sign * rounded + 0.0), sign


# A plane wave that is a product of two others costs 6 flops instead of a cos and a sin (those are
# the bulk of a small model's H(k)); each product adds ~1 ulp, so chains are kept this short.
_MAX_PRODUCT_DEPTH = 3


def plane_waves(
    k: Float[Array, " d"], displacements: np.ndarray, lattice: np.ndarray
) -> list[tuple[Array, Array]]:
    """[(cos k.r_u, sin k.r_u)] for r_u = displacements[u] @ lattice (displacements: reduced,
    static, shape (u, d); k: Cartesian (d,)).

    At trace time each displacement that is a sum or difference of two earlier (shorter) ones,
    e^{i k.(p +- q)} = e^{i k.p} e^{+-i k.q}, is planned as that product; only the others are
    evaluated with cos and sin, in one vectorised call.
    """
    displacements = np.asarray(displacements, float).reshape(len(displacements), -1)
    index = {_displacement_key(d)[0]: u for u, d in enumerate(displacements)}
    plan: dict[int, tuple] = {}  # u -> ("direct", position) | ("product", p, sign_p, q, sign_q)
    depth: dict[int, int] = {}
    direct: list[int] = []
    for u in np.argsort(np.linalg.norm(displacements @ lattice, axis=1), kind="stable"):
        for p in list(plan):
            for sign_p in (1, -1):
                key, sign_q = _displacement_key(displacements[u] - sign_p * displacements[p])
                q = index.get(key)
                if q in plan and max(depth[p], depth[q]) < _MAX_PRODUCT_DEPTH:
                    plan[u] = ("product", p, sign_p, q, sign_q)
                    depth[u] = max(depth[p], depth[q]) + 1
                    break
            if u in plan:
                break
        else:
            plan[u], depth[u] = ("direct", len(direct)), 0
            direct.append(u)
    cartesian = displacements[direct] @ lattice
    theta = sum(cartesian[:, a] * k[a] for a in range(cartesian.shape[1]))
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    waves: dict[int, tuple[Array, Array]] = {}
    for u, step in plan.items():  # insertion order: operands come first
        if step[0] == "direct":
            waves[u] = cos[step[1]], sin[step[1]]
        else:
            _, p, sign_p, q, sign_q = step
            (cp, sp), (cq, sq) = waves[p], waves[q]
            sp, sq = (sp if sign_p > 0 else -sp), (sq if sign_q > 0 else -sq)
            waves[u] = cp * cq - sp * sq, sp * cq + cp * sq
    return [waves[u] for u in range(len(displacements))]


def _real_imag(value: Any, real_dtype: Any) -> tuple[Array, Array | None]:
    """(Re, Im) of a scalar parameter; Im is None (known zero at trace time) for a real one."""
    value = jnp.reshape(jnp.asarray(value), ())
    if jnp.iscomplexobj(value):
        return jnp.real(value).astype(real_dtype), jnp.imag(value).astype(real_dtype)
    return value.astype(real_dtype), None


def _total(terms: list) -> Any:
    return sum(terms[1:], terms[0]) if terms else None


class _UpperTerms:
    """The upper triangle (row <= col) of a bond Hamiltonian as terms, collected at trace time.

    ``elements[(row, col)][(id, conjugate, twice_real)] = [(m, phase index or None, sign), ...]``:
    the element is the sum over groups of f(coefficient) * sum m exp(i sign theta_phase), f = conj
    if conjugate, and 2 Re(...) of that for a bond on the diagonal (it is its own h.c.'s element).
    ``coefficients[id]``: (Re, Im) of each distinct coefficient (``alive`` holds the coefficients
    themselves, so that their ids stay unique); ``directions``: the distinct +-(R + tau_j - tau_i)
    (reduced), in the order of their phase indices.
    """

    def __init__(self, real: Any) -> None:
        self.real = real
        self.coefficients: dict[int, tuple[Array, Array | None]] = {}
        self.alive: list = []
        self.elements: dict[tuple[int, int], dict[tuple[int, bool, bool], list]] = {}
        self.phase_index: dict[tuple[float, ...], int] = {}
        self.directions: list[np.ndarray] = []

    def add(
        self, row: int, col: int, coefficient: Any, conjugate: bool, twice: bool, term: tuple
    ) -> None:
        """Add the term (m, phase, sign) of ``coefficient`` to the upper element (row, col)."""
        if id(coefficient) not in self.coefficients:
            self.alive.append(coefficient)
            self.coefficients[id(coefficient)] = _real_imag(coefficient, self.real)
        group = (id(coefficient), conjugate, twice)
        self.elements.setdefault((row, col), {}).setdefault(group, []).append(term)

    def phase(self, vector: np.ndarray) -> tuple[int | None, int]:
        """(phase index of +-vector, sign); the index is None for a zero displacement."""
        key, sign = _displacement_key(vector)
        if not any(key):  # exp(i k.0) = 1
            return None, sign
        phase = self.phase_index.setdefault(key, len(self.directions))
        if phase == len(self.directions):
            self.directions.append(sign * vector)
        return phase, sign


def _collect_onsite(terms: _UpperTerms, block: int, onsite: Sequence[Amplitude]) -> None:
    """The upper-triangle terms of the on-site blocks (only their upper triangles are read)."""
    for i, amplitude in enumerate(onsite):
        for coefficient, matrix in amplitude:
            matrix = np.broadcast_to(np.asarray(matrix, complex), (block, block))
            for a, b in zip(*np.nonzero(np.triu(matrix))):
                row, col = block * i + a, block * i + b
                terms.add(row, col, coefficient, False, False, (matrix[a, b], None, 1))


def _collect_bonds(
    terms: _UpperTerms,
    block: int,
    positions: np.ndarray,
    bonds: Sequence[tuple[int, int, Sequence[int], Amplitude]],
) -> None:
    """The upper-triangle terms of the bonds: A_ab exp(i k.d) where it lies in the upper
    triangle, else its Hermitian conjugate conj(A_ab) exp(-i k.d), which does."""
    for i, j, r, amplitude in bonds:
        vector = np.asarray(r, float) + positions[j] - positions[i]  # reduced
        phase, sign = terms.phase(vector)
        for coefficient, matrix in amplitude:
            matrix = np.broadcast_to(np.asarray(matrix, complex), (block, block))
            for a, b in zip(*np.nonzero(matrix)):
                row, col = block * i + a, block * j + b
                if row <= col:  # A_ab exp(i k.d)
                    terms.add(row, col, coefficient, False, row == col, (matrix[a, b], phase, sign))
                else:  # its h.c., conj(A_ab) exp(-i k.d), is the upper-triangle element
                    terms.add(
                        col, row, coefficient, True, False, (np.conj(matrix[a, b]), phase, -sign)
                    )


def _scaled(constant: Any, value: Array) -> Array:
    """constant * value, without a multiplication when constant is +-1."""
    return value if constant == 1 else -value if constant == -1 else constant * value


def _phase_sum(terms: list, waves: list[tuple[Array, Array]]) -> tuple[Any, Any]:
    """(Re, Im) of sum m exp(i sign theta): (mr c - sign mi s, sign mr s + mi c); None if zero.

    ``waves[phase]`` = (cos theta, sin theta) (:func:`plane_waves`); a term without a phase is m.
    """
    re, im = [], []
    for m, phase, sign in terms:
        if phase is None:  # no phase: m itself
            re += [m.real] if m.real else []
            im += [m.imag] if m.imag else []
            continue
        c, s = waves[phase]
        for constant, value, target in (
            (m.real, c, re),
            (-sign * m.imag, s, re),
            (sign * m.real, s, im),
            (m.imag, c, im),
        ):
            if constant:
                target.append(_scaled(constant, value))
    return _total(re), _total(im)


def _complex_product(c_re: Any, c_im: Any, p_re: Any, p_im: Any) -> tuple[list, list]:
    """(c_re + i c_im)(p_re + i p_im) as lists of real and imaginary terms (None: a known zero)."""
    value_re = [c_re * p_re] if p_re is not None else []
    value_re += [-(c_im * p_im)] if p_im is not None and c_im is not None else []
    value_im = [c_re * p_im] if p_im is not None else []
    value_im += [c_im * p_re] if p_re is not None and c_im is not None else []
    return value_re, value_im


def _element_terms(
    groups: dict[tuple[int, bool, bool], list],
    coefficients: dict[int, tuple[Array, Array | None]],
    waves: list[tuple[Array, Array]],
) -> tuple[list, list]:
    """The real and imaginary terms of one upper-triangle element (see :class:`_UpperTerms`)."""
    re, im = [], []
    for (key, conjugate, twice), terms in groups.items():
        c_re, c_im = coefficients[key]
        if c_im is not None and conjugate:
            c_im = -c_im
        p_re, p_im = _phase_sum(terms, waves)
        value_re, value_im = _complex_product(c_re, c_im, p_re, p_im)
        re += [2.0 * v for v in value_re] if twice else value_re
        im += [] if twice else value_im
    return re, im


def _hermitian_from_upper(
    n: int,
    re_upper: dict[tuple[int, int], Array],
    im_upper: dict[tuple[int, int], Array],
    zero: Array,
) -> Complex[Array, "n n"]:
    """The (n, n) matrix whose upper triangle is re_upper + i im_upper and lower its conjugate."""
    rows_re, rows_im = [], []
    for row in range(n):
        for col in range(n):
            upper_element = (row, col) if row <= col else (col, row)
            rows_re.append(re_upper.get(upper_element, zero))
            im = im_upper.get(upper_element, zero)
            rows_im.append(im if row <= col else -im)
    return lax.complex(jnp.stack(rows_re).reshape(n, n), jnp.stack(rows_im).reshape(n, n))


def bond_hamiltonian(
    k: Float[Array, " d"],
    lattice: np.ndarray,
    site_positions: np.ndarray,
    block: int,
    onsite: Sequence[Amplitude],
    bonds: Sequence[tuple[int, int, Sequence[int], Amplitude]],
) -> Complex[Array, "n n"]:
    """H(k) = sum_i onsite_i + sum_bonds [A exp(i k.(R + tau_j - tau_i)) + h.c.] (convention II).

    ``lattice`` (d, d) and ``site_positions`` (n_sites, d, reduced) are NumPy constants; each site
    carries ``block`` states (n = block * n_sites, site-major). ``onsite[i]``: the Hermitian (block,
    block) matrix of site i as an :data:`Amplitude` (only its upper triangle is read). ``bonds``:
    (i, j, R, A) puts A exp(i k.d) in the (i, j) block and its Hermitian conjugate in (j, i),
    d = (R + tau_j - tau_i) @ lattice, like a PythTB hopping.

    Only the upper triangle is built, from the non-zero elements of the constant matrices, with one
    plane wave per distinct +-d (:func:`plane_waves`: cos and sin, or a product of two others; no
    complex exponentials, no scatter); real and imaginary parts are summed separately and combined
    once. The lower triangle is the conjugate of the upper, so H is exactly Hermitian, except for
    the imaginary part of a complex on-site coefficient, which is kept on the diagonal so that the
    geometry's Hermiticity check still reports such an input.
    """
    real = jnp.result_type(float)
    n = block * len(onsite)
    lattice = np.asarray(lattice, float)
    positions = np.asarray(site_positions, float)
    terms = _UpperTerms(real)
    _collect_onsite(terms, block, onsite)
    _collect_bonds(terms, block, positions, bonds)
    waves = plane_waves(k, np.asarray(terms.directions), lattice) if terms.directions else []
    zero = jnp.zeros((), real)
    re_upper, im_upper = {}, {}
    for element, groups in terms.elements.items():
        re, im = _element_terms(groups, terms.coefficients, waves)
        re_upper[element] = jnp.asarray(_total(re), real) if re else zero
        im_upper[element] = jnp.asarray(_total(im), real) if im else zero
    return _hermitian_from_upper(n, re_upper, im_upper, zero)
