"""Every check of the package: arguments before tracing, values at run time.

Two kinds of check, one error per kind:

* static checks (types, shapes, band indices, integers, what a model must define) run in Python
  before anything is traced and raise ``ValueError`` (``TypeError`` for the wrong kind of object)
  naming the argument and what was given;
* value checks (finite, Hermitian, gapped, positive, for values that may be traced) are collected
  in a :class:`Guards`. A check whose values are concrete raises ``ValueError`` at once, naming the
  argument and the offending value. A traced one becomes part of a single
  ``eqx.branched_error_if`` attached to the call's output: its message names the argument and what
  is wrong with it (never a tracer), and a failure raises equinox's run-time error
  (``eqx.EquinoxRuntimeError``; ``jax.errors.JaxRuntimeError`` under a plain ``jax.jit``).
"""

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._pytree import leaf_name
from ._types import Array

# A Hamiltonian is Hermitian if max|H - H^dagger| / max|H| is at most this (both over the real and
# imaginary parts of the entries).
HERMITICITY_RTOL = 1e-10


def fail(message: str, error: type[Exception] = ValueError) -> NoReturn:
    """Raise ``error(message)``: the one way the package reports a bad argument."""
    raise error(message)


def is_concrete(*values: Any) -> bool:
    """True when no leaf is a tracer, i.e. the values can be inspected in Python."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(values))


def namespace(*values: Any) -> Any:
    """numpy when every value is concrete, else jax.numpy: an eager check computed with numpy
    dispatches no XLA program (each jax.numpy op on a new shape compiles one, ~0.1 s)."""
    return np if is_concrete(*values) else jnp


def integer(
    value: Any,
    name: str,
    minimum: int = 1,
    maximum: int | None = None,
    error: type[Exception] = ValueError,
) -> int:
    """``value`` as a Python int in [minimum, maximum) (maximum exclusive, None: unbounded).

    Booleans, floats and arrays are refused: an index or a count is an integer.
    """
    valid = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))
    if valid and value >= minimum and (maximum is None or value < maximum):
        return int(value)
    wanted = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum})"
    fail(f"{name} must be an integer {wanted}, got {value!r}", error)


def positive(value: Any, name: str, error: type[Exception] = ValueError) -> float:
    """``value`` as a positive, finite Python float."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number) or number <= 0:
        fail(f"{name} must be a positive finite number, got {value!r}", error)
    return number


def scalar(value: Any, name: str) -> Array:
    """A real scalar argument as a 0-d float array (it may be traced)."""
    if value is None:
        fail(f"{name} is required")
    array = jnp.asarray(value, dtype=float)
    if array.shape != ():
        fail(f"{name} must be a scalar, got shape {array.shape}")
    return array


def vector(value: Any, name: str, dim: int) -> Array:
    """A real (d,) argument as a float array (it may be traced)."""
    array = jnp.asarray(value, dtype=float)
    if array.shape != (dim,):
        fail(f"{name} must have shape ({dim},) for a model of dim = {dim}, got {array.shape}")
    return array


def magnetic_field(value: Any, dim: int, name: str = "magnetic_field") -> Any:
    """A uniform magnetic field as its (c,) components (PHYSICS.md section 5): c = 1 (B_z, given
    as a scalar) in 2D, c = 3 in 3D; it may be traced. A callable B(x) is returned as it is (its
    values are checked where it is evaluated, :func:`magnetic_field_at`). None stays None."""
    if value is None or callable(value):
        return value
    if dim not in (2, 3):
        fail(f"{name} needs a 2D or 3D model (got dim = {dim})")
    array = jnp.asarray(value, dtype=float)
    if dim == 2 and array.shape in ((), (1,)):
        return array.reshape(1)
    if dim == 3 and array.shape == (3,):
        return array
    wanted = "a scalar B_z" if dim == 2 else "shape (3,)"
    fail(f"{name} must be {wanted} for a model of dim = {dim}, got shape {array.shape}")


def magnetic_field_at(field: Any, x: Array, dim: int) -> Array:
    """The (c,) components of a checked :func:`magnetic_field` at position x (traced-safe)."""
    if callable(field):
        value = jnp.asarray(field(x), dtype=float)
        expected = ((), (1,)) if dim == 2 else ((3,),)
        if value.shape not in expected:
            fail(
                f"magnetic_field(x) must return {'a scalar' if dim == 2 else 'shape (3,)'}, got shape {value.shape}"
            )
        return value.reshape(-1)
    return field


def one_of(value: Any, name: str, allowed: Sequence[Any]) -> Any:
    """``value`` if it is one of ``allowed``."""
    if value not in tuple(allowed):
        fail(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def device_tuple(devices: Any, name: str = "devices") -> tuple[Any, ...]:
    """``devices`` (a sequence of distinct jax devices, e.g. ``jax.devices()``) as a tuple; None
    gives ()."""
    if devices is None:
        return ()
    if isinstance(devices, jax.Device):
        devices = (devices,)
    try:
        devices = tuple(devices)
    except TypeError:
        fail(f"{name} must be a sequence of jax devices (e.g. jax.devices()), got {devices!r}")
    if not devices:
        fail(f"{name} must name at least one device (e.g. jax.devices()), got an empty sequence")
    wrong = [device for device in devices if not isinstance(device, jax.Device)]
    if wrong:
        fail(f"{name} must hold jax devices (e.g. jax.devices()), got {wrong[0]!r}")
    if len(set(devices)) != len(devices):
        fail(f"{name} names a device twice: {[str(device) for device in devices]}")
    return devices


# ---------------------------------------------------------------------------------------------
# models, points, bands


def check_model(model: Any) -> None:
    """The model looks like a model: callable, with integer ``dim`` and ``n_bands``."""
    for attribute in ("dim", "n_bands"):
        if not hasattr(model, attribute):
            fail(f"model must define '{attribute}' (got {type(model).__name__})", TypeError)
    if not callable(model):
        fail(f"model must be callable as model(x, k) (got {type(model).__name__})", TypeError)


def check_point(model: Any, x: Any, k: Any) -> tuple[Array, Array]:
    """x, k as float arrays of shape (d,); x = None means the origin."""
    d = int(model.dim)
    x = jnp.zeros(d) if x is None else jnp.asarray(x, dtype=float)
    k = jnp.asarray(k, dtype=float)
    for name, value in (("x", x), ("k", k)):
        if value.shape != (d,):
            fail(f"{name} must have shape ({d},) for a model of dim = {d}, got {value.shape}")
    return x, k


def check_output_shape(model: Any, x: Array, k: Array) -> None:
    """model(x, k) must be an (N, N) array with N = model.n_bands."""
    n = int(model.n_bands)
    shape = getattr(jax.eval_shape(model, x, k), "shape", None)
    if shape != (n, n):
        fail(
            f"model(x, k) must return an (n_bands, n_bands) = ({n}, {n}) matrix, got shape {shape}"
        )


def check_finite_parameters(model: Any) -> None:
    """Raise if any concrete numeric parameter of the model (textures included) is NaN or inf.

    Traced parameters are skipped: the geometry kernel's finiteness guard catches them at run time.
    """
    leaves = jax.tree_util.tree_flatten_with_path(eqx.filter(model, eqx.is_inexact_array))[0]
    for path, leaf in leaves:
        if not isinstance(leaf, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(leaf))):
            fail(f"model parameter '{leaf_name(path)}' is not finite: {np.asarray(leaf)}")


def check_concrete_model(model: Any) -> None:
    """The static checks of a model that is concrete (its parameters are not traced)."""
    if is_concrete(model):
        check_finite_parameters(model)


def check_manifold(manifold: Any, n_bands: int, name: str = "manifold") -> tuple[int, ...]:
    """A manifold: a non-empty sequence of distinct band indices in [0, n_bands), returned sorted."""
    if isinstance(manifold, (int, np.integer)):
        manifold = (int(manifold),)
    try:
        bands = [int(b) for b in manifold]
    except (TypeError, ValueError):
        fail(f"{name} must be a sequence of band indices, got {manifold!r}", TypeError)
    if any(int(b) != b for b in manifold):
        fail(f"{name} must hold integer band indices, got {manifold!r}", TypeError)
    if not bands:
        fail(f"{name} is empty: give at least one band index")
    if len(set(bands)) != len(bands):
        fail(f"{name} {tuple(bands)} repeats a band index")
    bad = [b for b in bands if not 0 <= b < n_bands]
    if bad:
        fail(f"{name} {tuple(bands)}: band indices {bad} out of range for a {n_bands}-band model")
    return tuple(sorted(bands))


def check_partition(
    manifolds: Iterable[Sequence[int]] | None, n_bands: int, complete: bool = True
) -> tuple[tuple[int, ...], ...]:
    """Manifolds that do not overlap; with ``complete`` they must cover every band exactly once.

    A manifold is a set of band indices treated together (PHYSICS.md conventions, paper Fig. 1);
    the MSCT hybridises the bands inside each one (PHYSICS.md section 3, paper Eqs. 54-62).

    ``None`` means every band its own manifold. Returns the manifolds as tuples of band indices;
    raises ValueError naming the offending band otherwise.

    Examples:
        >>> import semiclassical_jax as sj
        >>> sj.check_partition([[0, 1], [2]], 3)
        ((0, 1), (2,))
    """
    if manifolds is None:
        return tuple((n,) for n in range(n_bands))
    parts = [check_manifold(m, n_bands, name=f"manifolds[{i}]") for i, m in enumerate(manifolds)]
    seen: dict[int, int] = {}
    for i, part in enumerate(parts):
        for band in part:
            if band in seen:
                fail(f"manifolds[{i}] overlaps manifolds[{seen[band]}]: band {band} is in both")
            seen[band] = i
    missing = [n for n in range(n_bands) if n not in seen]
    if complete and missing:
        fail(f"manifolds miss bands {missing} of the {n_bands}-band model")
    return tuple(parts)


def remote_bands(
    manifold: tuple[int, ...], n_bands: int, name: str = "manifold"
) -> tuple[int, ...]:
    """The bands outside ``manifold``; there must be at least one (else its geometry is trivial)."""
    remote = tuple(n for n in range(n_bands) if n not in manifold)
    if not remote:
        fail(
            f"{name} {manifold} holds every band of the model: there are no remote bands, "
            "so its projector is constant and its curvature vanishes"
        )
    return remote


# ---------------------------------------------------------------------------------------------
# value checks


class Guards:
    """The value checks of one call.

    ``add(bad, message, got=..., detail=...)``: if ``bad`` is concrete it raises at once when true,
    with ``message``, the offending value ``got`` and ``detail`` (a string or a callable giving
    one, evaluated only then). Otherwise it is recorded, and calling the guards on the call's output
    attaches all recorded checks as one ``eqx.branched_error_if`` whose message is ``message``
    alone (static text: what is wrong and with which argument). The conditional guards a scalar
    zero that is added to every output leaf, not the output itself, so XLA can still fuse and drop
    unused outputs.
    """

    def __init__(self) -> None:
        self.checks: list[tuple[Array, str]] = []

    def add(
        self,
        bad: Any,
        message: str,
        *,
        got: Any = None,
        detail: str | Callable[[], str] = "",
        error: type[Exception] = ValueError,
    ) -> None:
        if not is_concrete(bad):
            self.checks.append((jnp.any(bad), message))
            return
        if bool(np.any(np.asarray(bad))):
            text = message if got is None else f"{message}, got {_show(got)}"
            fail(text + (detail() if callable(detail) else detail), error)

    def finite(self, value: Any, name: str) -> None:
        """``value`` (any shape) must be finite."""
        xp = namespace(value)
        self.add(~xp.all(xp.isfinite(xp.asarray(value))), f"{name} must be finite", got=value)

    def failed(self) -> Array:
        """Whether a recorded (traced) check fails, as a traced boolean (False if none recorded):
        for a caller that reports the failure itself instead of attaching the error."""
        return functools.reduce(jnp.logical_or, [b for b, _ in self.checks], jnp.asarray(False))

    def __call__(self, value: Any) -> Any:
        if not self.checks:
            return value
        leaves = jax.tree_util.tree_leaves(value)
        bad = functools.reduce(jnp.logical_or, [b for b, _ in self.checks])
        index = jnp.argmax(jnp.stack([b for b, _ in self.checks]))
        dtype = jnp.result_type(*[jnp.real(leaf).dtype for leaf in leaves])
        zero = eqx.branched_error_if(jnp.zeros((), dtype), bad, index, [m for _, m in self.checks])
        return jax.tree_util.tree_map(lambda leaf: leaf + zero.astype(jnp.real(leaf).dtype), value)


def point_value_checks(
    guards: Guards,
    finite: Any,
    non_hermiticity: Any,
    point: tuple[Any, Any],
    names: tuple[str, str] = ("x", "k"),
    where: str = "",
) -> None:
    """Add the checks of H at one phase-space point to ``guards``: H and dH finite (``finite``) and
    H Hermitian (``non_hermiticity`` <= HERMITICITY_RTOL); eager messages name ``point`` (x, k) by
    ``names``. ``where``: appended to the Hermiticity message (e.g. " at the initial point")."""
    x_name, k_name = names

    def at() -> str:
        return f"{x_name}={point[0]}, {k_name}={point[1]}"

    guards.add(
        ~finite,
        f"model({x_name}, {k_name}) or its derivative is not finite (check the parameters)",
        detail=lambda: f" at {at()}",
    )
    guards.add(
        non_hermiticity > HERMITICITY_RTOL,
        f"model(x, k) is not Hermitian{where}",
        detail=lambda: (
            ": max|H - H^dagger| / max|H| (max over real and imaginary parts) = "
            f"{float(non_hermiticity):.3e} at {at()}"
        ),
    )


def model_value_checks(guards: Guards, model: Any) -> None:
    """Add to ``guards`` the value checks that parts of ``model`` declare: any sub-module with a
    ``value_checks()`` method returning (bad, message) pairs (e.g. a texture's period must be
    non-zero). Concrete values raise at once; traced ones become run-time checks."""
    parts = jax.tree_util.tree_leaves(model, is_leaf=lambda node: hasattr(node, "value_checks"))
    for part in parts:
        if hasattr(part, "value_checks"):
            for bad, message in part.value_checks():
                guards.add(bad, message)


def _show(value: Any) -> str:
    array = np.asarray(value)
    return repr(array.item()) if array.shape == () else str(array)
