"""Fitting: recover model parameters from data with any optax optimizer.

The last stage of the data flow.

``fit(model, loss, data)`` minimises ``loss(model, data)`` over the model's parameters and returns
the fitted model (an equinox Module like the one passed in), the loss history and, for
least-squares problems given as ``residuals(model, data)``, standard errors from the Gauss-Newton
curvature at the optimum. Everything a loss can call (curvatures, currents, trajectories,
conductivities) is differentiable in the model parameters, texture parameters included.

How it works:

* **Which parameters.** ``parameters`` names real scalar leaves of the model by dotted attribute
  path (``"velocity"``, ``"mass.amplitude"`` for a texture), or is an equinox filter (a callable
  ``leaf -> bool`` or a pytree of bools, as for ``eqx.partition``). Everything else stays fixed.
* **Constraints by reparametrisation.** ``constraints={"mass": "positive", "phi": (0, pi)}``: the
  optimizer sees an unconstrained u with p = low + softplus(u) (one-sided bounds) or
  p = low + (high - low) sigmoid(u) (a box), so every step stays feasible.
* **One compilation per problem.** The objective's value and gradient are one
  ``eqx.filter_jit``-compiled function, and one optimizer step (the update, including an L-BFGS
  line search, which evaluates the objective at two call sites) is another. Both are compiled once
  and reused across calls with the same loss function, optimizer object, model structure and data
  shapes (e.g. a refit to noisy data). Python loops over steps, which is where the progress lines
  and the stopping test live.
* **Gradient mode.** With few fitted parameters (``gradient="auto"``: at most
  ``FORWARD_MODE_MAX_PARAMETERS``) the gradient comes from forward-mode autodiff (one ``jvp`` per
  parameter, batched with ``vmap``). Its cost per evaluation grows with the number of parameters,
  a reverse-mode gradient's does not; but forward mode compiles faster, and for residual problems
  the same pass gives the Jacobian for the error bars, so it is the choice for a few parameters
  (measurements: benchmarks/gradients.py). For large grids and many steps, ``gradient="reverse"``
  may be faster. Code that JAX cannot push forward (``custom_vjp``, e.g. ``evolve`` with
  diffrax's default adjoint) falls back to reverse mode automatically.

Standard errors (``residuals=`` problems): with r the residual vector (n entries) and
J = dr/dtheta at the optimum (physical parameters, p of them),

    s^2 = RSS / (n - p),   Cov = s^2 (J^T J)^{-1},   sigma_i = sqrt(Cov_ii),

the usual least-squares estimate for independent residuals of equal variance (scale each residual
by its noise level if they differ). ``errors="hessian"`` uses the exact curvature instead:
Cov = s^2 (H / 2)^{-1} with H the Hessian of RSS (or, for a ``loss=`` problem, Cov = H^{-1}: the
loss is then read as a negative log-likelihood).
"""

import functools
import math
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from ._guards import fail, integer
from ._pytree import named_leaves
from ._types import Array, ArrayLike, Float, PyTree, RealScalarLike

# gradient="auto" uses forward mode up to this many fitted scalars, reverse mode beyond.
FORWARD_MODE_MAX_PARAMETERS = 4
# Stop (not converged) when the best loss has not improved for this many consecutive steps, or
# when the parameters have not moved at all for STALL_UNCHANGED steps (a line search that gives up).
STALL_STEPS = 25
STALL_UNCHANGED = 3

Bounds = tuple[float | None, float | None]
# What ``parameters`` may be: None, a dotted path, a list of them, or an equinox filter (a
# callable leaf -> bool or a pytree of bools shaped like the model).
Selection = str | Sequence[str] | Callable[[Any], bool] | PyTree[bool] | None
# A constraint: "positive", "negative" or (low, high) with None for an open side.
Constraint = Literal["positive", "negative"] | tuple[float | None, float | None]


class FitResult(eqx.Module):
    """The outcome of :func:`fit`.

    ``model``: the fitted model (a pytree of the same type and structure as the one passed in).
    ``parameters``: {name: fitted value} for every fitted parameter, in fitting order.
    ``standard_errors``: {name: one-sigma error} (same shapes), or None when not computed
    (``loss=`` problems without ``errors="hessian"``, or no degrees of freedom left).
    ``covariance``: (p, p) covariance of the flattened parameters in the order of ``names``, or
    None.
    ``loss_history``: (steps + 1,) loss before the first step and after every step.
    ``loss``: the final loss. ``gradient_norm``: |dloss/du| at the end (u: the unconstrained
    coordinates the optimizer sees). ``residual_variance``: s^2 = RSS / (n - p) for residual
    problems. ``converged``: the gradient test passed. ``steps``: optimizer steps taken.
    ``message``: why it stopped.

    Examples:
        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> x = np.linspace(0.0, 1.0, 5)
        >>> def residuals(p, d):
        ...     return p["a"] * d - 3.0 * d
        >>> result = sj.fit({"a": jnp.array(1.0)}, residuals=residuals, data=x, progress=False)
        >>> print(list(result.parameters), round(float(result.model["a"]), 6))
        ["['a']"] 3.0
    """

    model: PyTree
    parameters: dict[str, Float[Array, "..."]]
    standard_errors: dict[str, Float[Array, "..."]] | None
    covariance: Float[np.ndarray, "p p"] | None
    loss_history: Float[np.ndarray, " history"]
    loss: float
    gradient_norm: float
    residual_variance: float | None
    names: tuple[str, ...] = eqx.field(static=True)
    converged: bool = eqx.field(static=True)
    steps: int = eqx.field(static=True)
    message: str = eqx.field(static=True)

    def summary(self) -> str:
        """A small table: parameter, value, standard error, relative error."""
        lines = [f"{'parameter':<24} {'value':>16} {'std. error':>12} {'relative':>10}"]
        for name in self.names:
            value = np.asarray(self.parameters[name]).ravel()
            error = (
                np.full(value.shape, np.nan)
                if self.standard_errors is None
                else np.asarray(self.standard_errors[name]).ravel()
            )
            for i, (v, e) in enumerate(zip(value, error)):
                label = name if value.size == 1 else f"{name}[{i}]"
                relative = abs(e / v) if v != 0 else np.nan
                lines.append(f"{label:<24} {v:>16.10g} {e:>12.3g} {relative:>10.2g}")
        lines.append(f"loss {self.loss:.6g} after {self.steps} steps: {self.message}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# parameter selection


def _is_real_float_array(leaf: Any) -> bool:
    return eqx.is_inexact_array(leaf) and not jnp.iscomplexobj(leaf)


def _diagnose_path(model: PyTree, path: str, names: list[str], fittable: list[str]) -> None:
    """Raise a ValueError that says why ``path`` does not name a fittable real scalar."""
    owner = type(model).__name__
    obj = model
    for part in path.split("."):
        if not part or not hasattr(obj, part):
            fail(
                f"parameters: unknown parameter path {path!r}: {type(obj).__name__} has no "
                f"attribute {part!r}; the fittable parameters of {owner} are "
                f"{', '.join(fittable) or 'none'}"
            )
        obj = getattr(obj, part)
    inner = [name for name in fittable if name.startswith(path + ".")]
    if inner:
        fail(
            f"parameters: {path!r} is a {type(obj).__name__} (a texture or sub-module), not a real "
            f"scalar; fit its parameters instead, e.g. {', '.join(repr(n) for n in inner)}"
        )
    if isinstance(obj, (float, int)) and not isinstance(obj, bool) and path not in names:
        fail(
            f"parameters: {path!r} of {owner} is a static field ({obj!r}), not a differentiable "
            "parameter"
        )
    fail(f"parameters: {path!r} of {owner} is not a real floating-point parameter (got {obj!r})")


def _is_path_list(parameters: Any) -> bool:
    """True for a dotted path or a sequence of them (else ``parameters`` is an equinox filter)."""
    return isinstance(parameters, str) or (
        isinstance(parameters, Sequence) and all(isinstance(p, str) for p in parameters)
    )


def _select_paths(
    model: PyTree,
    parameters: str | Sequence[str],
    named: list[tuple[str, Any]],
    fittable: list[str],
) -> list[int]:
    """Indices of the leaves named by dotted paths; each must be a real floating-point scalar."""
    names = [name for name, _ in named]
    paths = [parameters] if isinstance(parameters, str) else list(parameters)
    if len(set(paths)) != len(paths):
        fail(f"parameters: a path is listed twice: {paths}")
    indices = []
    for path in paths:
        if path not in names:
            _diagnose_path(model, path, names, fittable)
        i = names.index(path)
        leaf = named[i][1]
        if not eqx.is_inexact_array(leaf):
            fail(
                f"parameters: {path!r} is not a floating-point array (got {type(leaf).__name__} "
                f"{leaf!r}); model parameters are arrays (see models.as_parameter)"
            )
        if jnp.iscomplexobj(leaf):
            fail(f"parameters: {path!r} is complex; only real parameters can be fitted")
        if jnp.shape(leaf) != ():
            fail(
                f"parameters: {path!r} has shape {jnp.shape(leaf)}, not a real scalar; select "
                "array parameters with a filter instead, e.g. parameters=lambda leaf: ..."
            )
        indices.append(i)
    return indices


def _select_filter(model: PyTree, parameters: Selection, named: list[tuple[str, Any]]) -> list[int]:
    """Indices of the leaves an equinox filter selects; each must be a real floating-point array."""
    try:
        selected = eqx.filter(model, parameters)
    except Exception:  # an ill-formed filter spec (its error stays attached as the context)
        fail(
            "parameters must be None, a dotted path, a list of dotted paths, or an equinox filter "
            "(a callable leaf -> bool or a pytree of bools matching the model); "
            f"got {parameters!r}"
        )
    chosen = {name for name, _ in named_leaves(selected)}
    indices = [i for i, (name, _) in enumerate(named) if name in chosen]
    for i in indices:
        name, leaf = named[i]
        if not _is_real_float_array(leaf):
            fail(
                f"parameters: the filter selects {name!r}, which is not a real floating-point "
                f"array (got {leaf!r})"
            )
    return indices


def _select(model: PyTree, parameters: Selection) -> tuple[list[int], list[str]]:
    """Indices (into the model's leaves, in flattening order) and names of the fitted leaves.

    ``parameters``: None (every real floating-point leaf), a dotted path or a list of them, or an
    equinox filter; names are :func:`semiclassical_jax._pytree.leaf_name` of the leaves' paths.
    """
    named = named_leaves(model)
    fittable = [name for name, leaf in named if _is_real_float_array(leaf)]
    if parameters is None:
        indices = [i for i, (_, leaf) in enumerate(named) if _is_real_float_array(leaf)]
    elif _is_path_list(parameters):
        indices = _select_paths(model, parameters, named, fittable)
    else:
        indices = _select_filter(model, parameters, named)
    if not indices:
        fail(
            f"parameters selects nothing to fit in {type(model).__name__}; its fittable "
            f"parameters are {', '.join(fittable) or 'none'}"
        )
    return indices, [named[i][0] for i in indices]


# ---------------------------------------------------------------------------------------------
# constraints: reparametrisation p = T(u)


def _bounds(name: str, spec: Any) -> Bounds:
    if isinstance(spec, str):
        if spec == "positive":
            return (0.0, None)
        if spec == "negative":
            return (None, 0.0)
        fail(f"constraints[{name!r}] must be 'positive', 'negative' or (low, high), got {spec!r}")
    if not isinstance(spec, (tuple, list)) or len(spec) != 2:
        fail(f"constraints[{name!r}] must be 'positive', 'negative' or (low, high), got {spec!r}")
    low, high = (None if b is None else float(b) for b in spec)
    if low is None and high is None:
        fail(f"constraints[{name!r}]: give at least one finite bound, got {spec!r}")
    for bound in (low, high):
        if bound is not None and not math.isfinite(bound):
            fail(f"constraints[{name!r}]: bounds must be finite numbers or None, got {spec!r}")
    if low is not None and high is not None and not low < high:
        fail(f"constraints[{name!r}]: need low < high, got {spec!r}")
    return (low, high)


def _softplus_inverse(y: jax.Array) -> jax.Array:
    return y + jnp.log(-jnp.expm1(-y))


def _to_physical(bounds: Bounds, u: jax.Array) -> jax.Array:
    low, high = bounds
    if low is None and high is None:
        return u
    if high is None:
        return low + jax.nn.softplus(u)
    if low is None:
        return high - jax.nn.softplus(u)
    return low + (high - low) * jax.nn.sigmoid(u)


def _to_unconstrained(bounds: Bounds, p: jax.Array) -> jax.Array:
    low, high = bounds
    if low is None and high is None:
        return p
    if high is None:
        return _softplus_inverse(p - low)
    if low is None:
        return _softplus_inverse(high - p)
    fraction = (p - low) / (high - low)
    return jnp.log(fraction) - jnp.log1p(-fraction)


def _derivative(bounds: Bounds, u: jax.Array) -> jax.Array:
    """dp/du of the reparametrisation, elementwise."""
    low, high = bounds
    if low is None and high is None:
        return jnp.ones_like(u)
    if high is None:
        return jax.nn.sigmoid(u)
    if low is None:
        return -jax.nn.sigmoid(u)
    s = jax.nn.sigmoid(u)
    return (high - low) * s * (1 - s)


def _describe(bounds: Bounds) -> str:
    low, high = bounds
    if high is None:
        return "positive" if low == 0 else f"> {low}"
    if low is None:
        return "negative" if high == 0 else f"< {high}"
    return f"in ({low}, {high})"


# ---------------------------------------------------------------------------------------------
# the problem and its compiled pieces


class _Problem(eqx.Module):
    """Static description of a fit: hashable, so compiled functions are reused across calls."""

    function: Callable = eqx.field(static=True)
    kind: str = eqx.field(static=True)  # "loss" | "residuals"
    treedef: Any = eqx.field(static=True)
    indices: tuple[int, ...] = eqx.field(static=True)
    bounds: tuple[Bounds, ...] = eqx.field(static=True)

    def physical(self, u: list) -> list:
        return [_to_physical(b, x) for b, x in zip(self.bounds, u)]

    def build(self, u: list, rest: list) -> Any:
        leaves = list(rest)
        for i, value in zip(self.indices, self.physical(u)):
            leaves[i] = value
        return jax.tree_util.tree_unflatten(self.treedef, leaves)

    def raw(self, u: list, rest: list, data: Any) -> jax.Array:
        """The loss (scalar) or the flattened residual vector at u.

        Its dtype and shape are checked when it is traced.
        """
        out = jnp.asarray(self.function(self.build(u, rest), data))
        if not jnp.issubdtype(out.dtype, jnp.floating):
            fail(f"{self.kind} must return real floating-point values, got dtype {out.dtype}")
        if self.kind == "loss":
            if out.shape != ():
                fail(
                    f"loss must return a scalar, got shape {out.shape}; for a vector of residuals "
                    "pass residuals= instead"
                )
            return out
        if out.size == 0:
            fail("residuals returned an empty array")
        return out.ravel()

    def objective(self, u: list, rest: list, data: Any) -> jax.Array:
        out = self.raw(u, rest, data)
        return jnp.sum(out**2) if self.kind == "residuals" else out


def _forward_pass(problem: _Problem, u: list, rest: list, data: Any):
    """(value, grad, residuals or None, jacobian (p, n) w.r.t. flat u or None).

    One jvp per parameter, batched with vmap.
    """
    flat, unravel = ravel_pytree(u)

    def function(x):
        return problem.raw(unravel(x), rest, data)

    basis = jnp.eye(flat.shape[0], dtype=flat.dtype)
    primal, tangents = jax.vmap(lambda t: jax.jvp(function, (flat,), (t,)), out_axes=(None, 0))(
        basis
    )
    if problem.kind == "residuals":
        return jnp.sum(primal**2), unravel(2.0 * tangents @ primal), primal, tangents
    return primal, unravel(tangents), None, None


def _reverse_pass(problem: _Problem, u: list, rest: list, data: Any):
    if problem.kind == "residuals":
        (value, residuals), grad = jax.value_and_grad(
            lambda v: (lambda r: (jnp.sum(r**2), r))(problem.raw(v, rest, data)), has_aux=True
        )(u)
        return value, grad, residuals, None
    value, grad = jax.value_and_grad(problem.objective)(u, rest, data)
    return value, grad, None, None


@eqx.filter_jit
def _evaluate(problem: _Problem, mode: str, u: list, rest: list, data: Any):
    """(value, grad, residuals, jacobian).

    The jacobian only in forward mode for residual problems.
    """
    if mode == "forward":
        return _strong(_forward_pass(problem, u, rest, data))
    return _strong(_reverse_pass(problem, u, rest, data))


@eqx.filter_custom_vjp
def _forward_objective(u: list, problem: _Problem, rest: list, data: Any) -> jax.Array:
    """The objective, with the forward pass as its reverse-mode rule (so that the line search's
    gradients are computed in forward mode)."""
    return problem.objective(u, rest, data)


@_forward_objective.def_fwd
def _forward_objective_fwd(perturbed, u, problem, rest, data):
    del perturbed
    value, grad, _, _ = _forward_pass(problem, u, rest, data)
    return value, grad


@_forward_objective.def_bwd
def _forward_objective_bwd(grad, cotangent, perturbed, u, problem, rest, data):
    del perturbed
    return jax.tree_util.tree_map(lambda x: cotangent * x, grad)


def _value_function(problem: _Problem, mode: str, rest: list, data: Any) -> Callable:
    """value_fn(u) for line searches (jitted: its call sites share one traced function)."""
    if mode == "reverse":
        return jax.jit(lambda u: problem.objective(u, rest, data))
    return jax.jit(lambda u: _forward_objective(u, problem, rest, data))


_LINE_SEARCH_STATES = (optax.ScaleByZoomLinesearchState, optax.ScaleByBacktrackingLinesearchState)


def _stored(state: Any) -> tuple[Any, Any]:
    """(value, grad) that optax's line search stored at the new parameters, or (None, None).

    Nones (then the caller evaluates) without exactly one line search in the state.

    The backtracking search stores grad only with ``store_grad=True``.
    """
    found = [
        node
        for node in jax.tree_util.tree_leaves(
            state, is_leaf=lambda node: isinstance(node, _LINE_SEARCH_STATES)
        )
        if isinstance(node, _LINE_SEARCH_STATES)
    ]
    if len(found) != 1:  # no line search, or several: do not guess which one is current
        return None, None
    return found[0].value, found[0].grad


@eqx.filter_jit
def _step(problem: _Problem, optimizer: Any, mode: str, u, state, value, grad, rest, data):
    value_fn = _value_function(problem, mode, rest, data)
    updates, state = optimizer.update(grad, state, u, value=value, grad=grad, value_fn=value_fn)
    u = optax.apply_updates(u, updates)
    stored_value, stored_grad = _stored(state)
    if stored_value is None or stored_grad is None:
        new_value, new_grad, _, _ = (_forward_pass if mode == "forward" else _reverse_pass)(
            problem, u, rest, data
        )
    else:
        new_value, new_grad = stored_value, stored_grad
    return _strong((u, state, new_value, new_grad))


@eqx.filter_jit
def _jacobian(problem: _Problem, mode: str, u: list, rest: list, data: Any):
    """(p, n) Jacobian of the residuals w.r.t. flat u (transposed, as _forward_pass returns it)."""
    flat, unravel = ravel_pytree(u)
    transform = jax.jacfwd if mode == "forward" else jax.jacrev
    return transform(lambda x: problem.raw(unravel(x), rest, data))(flat).T


@eqx.filter_jit
def _hessian(problem: _Problem, mode: str, theta: list, rest: list, data: Any):
    """(p, p) Hessian of the objective w.r.t. the flat physical parameters (identity bounds)."""
    flat, unravel = ravel_pytree(theta)

    def objective(x):
        return problem.objective(unravel(x), rest, data)

    if mode == "forward":
        return jax.jacfwd(jax.jacfwd(objective))(flat)
    return jax.jacfwd(jax.jacrev(objective))(flat)


@functools.lru_cache(maxsize=64)
def _cached_extra_args(optimizer: Any) -> Any:
    return optax.with_extra_args_support(optimizer)


def _with_extra_args(optimizer: Any) -> Any:
    """The same wrapper object for the same optimizer, so compiled steps are reused."""
    try:
        return _cached_extra_args(optimizer)
    except TypeError:  # an unhashable optimizer: wrap it anew (its steps compile per fit)
        return optax.with_extra_args_support(optimizer)


def _strong(tree: Any) -> Any:
    """Drop weak types (from Python scalars: optax's initial state, jnp.asarray(2.0) parameters), so
    that the compiled functions see the same types on every call: one compilation, not several."""
    return jax.tree_util.tree_map(
        lambda x: jax.lax.convert_element_type(x, x.dtype) if isinstance(x, jax.Array) else x, tree
    )


def _is_forward_mode_error(error: Exception) -> bool:
    text = str(error)
    return isinstance(error, TypeError) and ("forward-mode" in text or "jvp" in text)


# ---------------------------------------------------------------------------------------------
# argument checks


def _check_arguments(
    loss: Callable | None,
    residuals: Callable | None,
    steps: Any,
    tolerance: Any,
    gradient: Any,
    errors: Any,
    progress: Any,
    optimizer: Any,
) -> tuple[Callable, str, int, str | None]:
    """The static checks of :func:`fit`'s arguments: (function, kind, steps, errors).

    ``kind`` is "loss" or "residuals" (whichever was given); ``errors="auto"`` resolves to
    "gauss-newton" for residuals and None for a loss.
    """
    if (loss is None) == (residuals is None):
        fail("give exactly one of loss (loss(model, data) -> scalar) and residuals= (-> vector)")
    function, kind = (loss, "loss") if residuals is None else (residuals, "residuals")
    if not callable(function):
        fail(f"{kind} must be a callable {kind}(model, data), got {function!r}")
    steps = integer(steps, "steps")
    if tolerance is not None and not (isinstance(tolerance, (int, float)) and tolerance >= 0):
        fail(f"tolerance must be a number >= 0 or None, got {tolerance!r}")
    if gradient not in ("auto", "forward", "reverse"):
        fail(f"gradient must be 'auto', 'forward' or 'reverse', got {gradient!r}")
    if errors not in ("auto", "gauss-newton", "hessian", None):
        fail(f"errors must be 'auto', 'gauss-newton', 'hessian' or None, got {errors!r}")
    if errors == "gauss-newton" and kind != "residuals":
        fail(
            "errors='gauss-newton' needs residuals= (a loss alone has no Jacobian); "
            "use errors='hessian'"
        )
    if isinstance(progress, bool) or progress is None:
        pass
    elif not isinstance(progress, (int, np.integer)) or progress < 0:
        fail(
            "progress must be True, False or a number of steps between progress lines, "
            f"got {progress!r}"
        )
    if not isinstance(optimizer, optax.GradientTransformation):
        fail(
            "optimizer must be an optax GradientTransformation (e.g. optax.lbfgs()), "
            f"got {optimizer!r}"
        )
    if errors == "auto":
        errors = "gauss-newton" if kind == "residuals" else None
    return function, kind, steps, errors


# ---------------------------------------------------------------------------------------------
# setting up: fitted parameters, bounds, starting point


def _check_constraints(
    constraints: Mapping[str, Any] | None, names: list[str], start: list[Any]
) -> tuple[Bounds, ...]:
    """The bounds of every fitted parameter ((None, None): free); the start must lie inside."""
    constraints = {} if constraints is None else constraints
    if not isinstance(constraints, Mapping):
        fail(
            "constraints must be a dict {parameter: 'positive' | (low, high)}, "
            f"got {constraints!r}"
        )
    for name in constraints:
        if name not in names:
            fail(f"constraints: {name!r} is not a fitted parameter (fitted: {', '.join(names)})")
    bounds = tuple(
        _bounds(name, constraints[name]) if name in constraints else (None, None) for name in names
    )
    for name, b, value in zip(names, bounds, start):
        low, high = b
        value = np.asarray(value)
        if (low is not None and not np.all(value > low)) or (
            high is not None and not np.all(value < high)
        ):
            fail(f"constraints[{name!r}]: the starting value {value} is not {_describe(b)}")
    return bounds


class _Setup(NamedTuple):
    """A fit ready to run.

    ``problem``: the compiled pieces' static description; ``names``: the fitted parameters;
    ``u``: their unconstrained starting values; ``rest``: the model's leaves with the fitted ones
    replaced by None; ``data``: as passed (weak types dropped); ``n_parameters``: fitted scalars.
    """

    problem: _Problem
    names: list[str]
    u: list
    rest: list
    data: Any
    n_parameters: int


def _setup(
    model: PyTree,
    function: Callable,
    kind: str,
    data: Any,
    parameters: Selection,
    constraints: Mapping[str, Constraint] | None,
) -> _Setup:
    """Select the fitted parameters, check the constraints and map the start to u = T^-1(p)."""
    indices, names = _select(model, parameters)
    leaves, treedef = jax.tree_util.tree_flatten(model)
    start = [leaves[i] for i in indices]
    bounds = _check_constraints(constraints, names, start)
    rest = _strong([None if i in indices else leaf for i, leaf in enumerate(leaves)])
    data = _strong(data)
    problem = _Problem(function, kind, treedef, tuple(indices), bounds)
    u = _strong([_to_unconstrained(b, jnp.asarray(x)) for b, x in zip(bounds, start)])
    n_parameters = sum(int(np.size(x)) for x in start)
    return _Setup(problem, names, u, rest, data, n_parameters)


def _first_evaluation(setup: _Setup, gradient: str) -> tuple[str, Any, Any, Any]:
    """(gradient mode, value, grad, residuals or None) at the start.

    ``gradient="auto"`` means forward mode up to FORWARD_MODE_MAX_PARAMETERS fitted scalars and
    reverse mode where JAX cannot push the loss forward. This first call traces the loss, so its
    output is checked here (_Problem.raw).
    """
    problem, u, rest, data = setup.problem, setup.u, setup.rest, setup.data
    mode = gradient
    if mode == "auto":
        mode = "forward" if setup.n_parameters <= FORWARD_MODE_MAX_PARAMETERS else "reverse"
    try:
        value, grad, residual_values, _ = _evaluate(problem, mode, u, rest, data)
    except TypeError as error:
        if gradient != "auto" or mode != "forward" or not _is_forward_mode_error(error):
            raise
        mode = "reverse"
        value, grad, residual_values, _ = _evaluate(problem, mode, u, rest, data)
    return mode, value, grad, residual_values


# ---------------------------------------------------------------------------------------------
# the optimizer loop and its progress lines


class _Progress:
    """Progress lines on stderr: the start, every ``every`` steps and the last step, the stop.

    ``progress``: True (about 20 lines over ``steps``), an int N (every N steps) or False / 0.
    """

    def __init__(self, progress: bool | int | None, steps: int) -> None:
        if progress is False or progress is None:
            self.every = 0
        else:
            self.every = max(1, round(steps / 20)) if progress is True else int(progress)
        self.steps = steps
        self.stream = sys.stderr
        self.clock = time.perf_counter()

    def _print(self, text: str) -> None:
        print(f"{text}  {time.perf_counter() - self.clock:.1f} s", file=self.stream, flush=True)

    def start(self, setup: _Setup, mode: str, loss: float, gradient_norm: float) -> None:
        if self.every:
            n = setup.n_parameters
            self._print(
                f"fit: {', '.join(setup.names)} ({n} parameter{'s' if n != 1 else ''}, "
                f"{setup.problem.kind}, {mode}-mode gradient): step 0/{self.steps}  "
                f"loss {loss:.6e}  |grad| {gradient_norm:.3e}"
            )

    def step(self, taken: int, loss: float, gradient_norm: float, last: bool) -> None:
        if self.every and (taken % self.every == 0 or last or taken == self.steps):
            self._print(
                f"fit: step {taken}/{self.steps}  loss {loss:.6e}  |grad| {gradient_norm:.3e}"
            )

    def stop(self, converged: bool, message: str) -> None:
        if self.every:
            print(
                f"fit: {'converged' if converged else 'stopped'}: {message}",
                file=self.stream,
                flush=True,
            )


class _Iterate(NamedTuple):
    """Where the optimizer stands: u, its state, the objective and its gradient (on the device)."""

    u: list
    state: Any
    value: Any
    grad: Any


class _Run(NamedTuple):
    """What the optimizer loop did: the final u, the loss before and after each step, why it
    stopped."""

    u: list
    history: list[float]
    gradient_norm: float
    converged: bool
    steps: int
    message: str


def _advance(setup: _Setup, optimizer: Any, mode: str, current: _Iterate) -> _Iterate:
    """One optimizer step (compiled); a non-finite value from it (e.g. a line search that gave up)
    is replaced by a direct evaluation at the new u."""
    problem, rest, data = setup.problem, setup.rest, setup.data
    u, state, value, grad = _step(
        problem, optimizer, mode, current.u, current.state, current.value, current.grad, rest, data
    )
    if not math.isfinite(float(value)):
        value, grad, _, _ = _evaluate(problem, mode, u, rest, data)
    return _Iterate(u, state, value, grad)


def _gradient_test(gradient_norm: float, threshold: float | None) -> str:
    """Why the fit has converged (|dloss/du| <= threshold), or "" if it has not."""
    if threshold is not None and gradient_norm <= threshold:
        return f"gradient norm {gradient_norm:.3e} <= {threshold:.3e}"
    return ""


def _stall_test(unchanged: int, since_best: int, gradient_norm: float, threshold: float) -> str:
    """Why the optimizer stalled (u did not move for STALL_UNCHANGED steps, or the best loss has
    not improved for STALL_STEPS steps), or "" if it has not."""
    if unchanged >= STALL_UNCHANGED:
        reason = f"the parameters did not move for {STALL_UNCHANGED} steps"
    elif since_best >= STALL_STEPS:
        reason = f"the loss has not improved for {STALL_STEPS} steps"
    else:
        return ""
    return (
        f"{reason} (gradient norm {gradient_norm:.3e} > {threshold:.3e}): the optimizer "
        "stalled (a flat optimum, rounding noise in the loss, or a too-large learning rate)"
    )


def _minimise(
    setup: _Setup,
    optimizer: Any,
    mode: str,
    current: _Iterate,
    steps: int,
    tolerance: float | None,
    report: _Progress,
) -> _Run:
    """Take optimizer steps until the gradient test passes, the optimizer stalls (both only with
    a ``tolerance``), the loss turns non-finite (the step before it is kept) or ``steps`` run
    out."""
    loss = float(current.value)  # host copy; the device value goes back into the compiled step
    history = [loss]
    gradient_norm = float(optax.tree.norm(current.grad))
    threshold = None if tolerance is None else max(tolerance * abs(loss), tolerance**2)
    report.start(setup, mode, loss, gradient_norm)
    message = _gradient_test(gradient_norm, threshold)
    converged = bool(message)
    best, since_best, unchanged, taken = loss, 0, 0, 0
    while not converged and taken < steps:
        new = _advance(setup, optimizer, mode, current)
        taken += 1
        if not math.isfinite(float(new.value)):
            message = (
                f"the loss became non-finite at step {taken}; returning the parameters before it"
            )
            break
        moved = any(np.any(np.asarray(a) != np.asarray(b)) for a, b in zip(new.u, current.u))
        current = new
        loss = float(current.value)
        history.append(loss)
        gradient_norm = float(optax.tree.norm(current.grad))
        unchanged = 0 if moved else unchanged + 1
        since_best = 0 if loss < best else since_best + 1
        best = min(best, loss)
        message = _gradient_test(gradient_norm, threshold)
        converged = bool(message)
        if not converged and tolerance is not None:
            message = _stall_test(unchanged, since_best, gradient_norm, threshold)
        report.step(taken, loss, gradient_norm, last=bool(message))
        if message:
            break
    if not message:
        message = f"reached steps = {steps} (gradient norm {gradient_norm:.3e})"
    report.stop(converged, message)
    return _Run(current.u, history, gradient_norm, converged, taken, message)


def _result(setup: _Setup, mode: str, errors: str | None, run: _Run, n_outputs: int) -> FitResult:
    """The FitResult of a run: the fitted model and parameters, with standard errors if asked."""
    theta = setup.problem.physical(run.u)
    covariance, standard_errors, variance = None, None, None
    if errors is not None:
        covariance, variance = _covariance(setup, mode, errors, run.u, theta, n_outputs)
        if covariance is not None:
            sigma = np.sqrt(np.diag(covariance))
            _, unravel = ravel_pytree(theta)
            standard_errors = dict(zip(setup.names, unravel(jnp.asarray(sigma))))
    return FitResult(
        model=setup.problem.build(run.u, setup.rest),
        parameters=dict(zip(setup.names, theta)),
        standard_errors=standard_errors,
        covariance=covariance,
        loss_history=np.asarray(run.history),
        loss=run.history[-1],
        gradient_norm=run.gradient_norm,
        residual_variance=variance,
        names=tuple(setup.names),
        converged=bool(run.converged),
        steps=run.steps,
        message=run.message,
    )


# ---------------------------------------------------------------------------------------------
# the public function

# default optimizer: one object, so its compiled steps are reused between fits
_DEFAULT_OPTIMIZER = optax.lbfgs()


def fit(
    model: PyTree,
    loss: Callable[[PyTree, Any], RealScalarLike] | None = None,
    data: Any = None,
    *,
    residuals: Callable[[PyTree, Any], Float[ArrayLike, "..."]] | None = None,
    optimizer: optax.GradientTransformation | None = None,
    steps: int = 200,
    parameters: Selection = None,
    constraints: Mapping[str, Constraint] | None = None,
    tolerance: float | None = 1e-10,
    gradient: Literal["auto", "forward", "reverse"] = "auto",
    errors: Literal["auto", "gauss-newton", "hessian"] | None = "auto",
    progress: bool | int = True,
) -> FitResult:
    """Fit model parameters to data by minimising a loss with an optax optimizer.

    **Arguments:**
    - ``model``: the starting point: any pytree, typically an equinox Module (a model of
      :mod:`semiclassical_jax.models`, whose parameters may be textures, or any pytree of arrays).
    - ``loss``: ``loss(model, data) -> scalar`` to minimise; or instead
    - ``residuals``: ``residuals(model, data) -> array`` (any shape); the loss is then the sum of
      squares sum_i r_i^2, and standard errors come from the Gauss-Newton curvature J^T J. Scale
      each residual by its noise level (or the data's scale) so that they are comparable.
    - ``data``: anything the loss needs (arrays are traced, so refits to new data of the same shape
      reuse the compilation); passed as the second argument, also when None.
    - ``optimizer``: any optax optimizer; default ``optax.lbfgs()`` (zoom line search), which
      converges in tens of steps on smooth problems. Reuse one optimizer object across fits to
      reuse the compiled step.
    - ``steps``: the most optimizer steps (>= 1).
    - ``parameters``: what is fitted; everything else is fixed. None: every real floating-point
      array leaf; a dotted path or a list of them naming real scalars (``"velocity"``,
      ``"mass.amplitude"``); or an equinox filter (``lambda leaf: ...`` or a pytree of bools).
    - ``constraints``: ``{name: "positive" | "negative" | (low, high)}`` for fitted parameters, by
      reparametrisation (softplus for one bound, a sigmoid for a box; ``None`` for an open side).
      The starting value must satisfy it strictly.
    - ``tolerance``: stop (converged) when the gradient norm with respect to the unconstrained
      coordinates falls to ``tolerance`` times the starting loss (or below ``tolerance``^2 in
      absolute terms). The fit also stops, not converged, when the loss has not improved for
      ``STALL_STEPS`` steps or the parameters did not move for ``STALL_UNCHANGED`` steps. None:
      always take ``steps`` steps.
    - ``gradient``: ``"forward"`` (one jvp per fitted scalar), ``"reverse"``, or ``"auto"``: forward
      up to ``FORWARD_MODE_MAX_PARAMETERS`` fitted scalars, reverse above, and reverse where
      forward mode is impossible (custom_vjp code, e.g. ``evolve`` with its default adjoint).
    - ``errors``: ``"auto"`` (Gauss-Newton for ``residuals=``, none for ``loss=``),
      ``"gauss-newton"``, ``"hessian"`` (exact curvature, one more compilation) or None.
    - ``progress``: True prints the loss about 20 times over ``steps`` (and at the end) to stderr;
      an int N prints every N steps; False or 0 is silent.

    **Returns** a :class:`FitResult`: ``.model``, ``.parameters``, ``.standard_errors``,
    ``.loss_history``, ``.converged``, ``.steps``, ``.summary()``.

    Example, a massive Dirac valley's mass from its Hall conductivity at three chemical potentials::

        grid = sj.grids.disk(5.0, 8, 16, breaks=[0.05, 0.2, 1.0])
        mus = jnp.array([0.0, 0.15, 0.3])

        def sigma(model, mus):
            def hall(mu):
                return sj.hall_conductivity(model, grid, mu=mu, temperature=0.02)[0, 1]

            return jax.vmap(hall)(mus)

        def residuals(model, data):  # in units of e^2/2h = 1/(4 pi)
            mus, measured = data
            return 4 * jnp.pi * (sigma(model, mus) - measured)

        measured = sigma(models.MassiveDirac(1.0, 0.1), mus)  # synthetic data
        result = sj.fit(models.MassiveDirac(1.0, 0.13), residuals=residuals, data=(mus, measured),
                        parameters=["mass"], constraints={"mass": "positive"})
        result.parameters["mass"]          # 0.1 (to 1e-12)

    Examples:
        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> import semiclassical_jax as sj
        >>> x = np.linspace(0.0, 1.0, 5)
        >>> data = (x, 2.5 * x + 0.5)
        >>> def residuals(p, d):
        ...     return p["a"] * d[0] + p["b"] - d[1]
        >>> start = {"a": jnp.array(1.0), "b": jnp.array(0.0)}
        >>> result = sj.fit(start, residuals=residuals, data=data, progress=False)
        >>> # a straight line through exact data: a = 2.5, b = 0.5
        >>> print({name: round(float(p), 6) for name, p in result.parameters.items()})
        {"['a']": 2.5, "['b']": 0.5}
        >>> result.converged
        True
    """
    optimizer = _DEFAULT_OPTIMIZER if optimizer is None else optimizer
    function, kind, steps, errors = _check_arguments(
        loss, residuals, steps, tolerance, gradient, errors, progress, optimizer
    )
    optimizer = _with_extra_args(optimizer)
    setup = _setup(model, function, kind, data, parameters, constraints)
    report = _Progress(progress, steps)  # its clock counts the first evaluation (compilation)
    mode, value, grad, residual_values = _first_evaluation(setup, gradient)
    if not math.isfinite(float(value)):
        fail(
            f"{kind}(model, data) is not finite at the starting parameters ({float(value)}); "
            "check the model and data"
        )
    start = _Iterate(setup.u, _strong(optimizer.init(setup.u)), value, grad)
    run = _minimise(setup, optimizer, mode, start, steps, tolerance, report)
    n_outputs = 1 if residual_values is None else int(residual_values.size)
    return _result(setup, mode, errors, run, n_outputs)


def _invert(matrix: np.ndarray, what: str, names: list[str]) -> np.ndarray:
    """Inverse of a symmetric curvature matrix.

    NaN (with a warning) when it is not positive definite.
    """
    matrix = 0.5 * (matrix + matrix.T)
    eigenvalues = np.linalg.eigvalsh(matrix)
    if not np.all(np.isfinite(matrix)) or eigenvalues[0] <= 1e-14 * max(
        abs(eigenvalues[-1]), 1e-300
    ):
        warnings.warn(
            f"fit: the {what} at the optimum is singular or not positive definite (eigenvalues "
            f"{eigenvalues}): some of {', '.join(names)} are not determined by the data; standard "
            "errors are NaN",
            RuntimeWarning,
            stacklevel=4,
        )
        return np.full_like(matrix, np.nan)
    return np.linalg.inv(matrix)


def _covariance(
    setup: _Setup, mode: str, errors: str, u: list, theta: list, n_outputs: int
) -> tuple[np.ndarray | None, float | None]:
    """(covariance of the flat physical parameters, s^2 or None)."""
    problem, rest, data = setup.problem, setup.rest, setup.data
    n_parameters, names = setup.n_parameters, setup.names
    variance, jacobian_t = None, None
    if problem.kind == "residuals":
        if n_outputs <= n_parameters:
            warnings.warn(
                f"fit: {n_outputs} residuals for {n_parameters} parameters leave no degrees of "
                "freedom to estimate the noise; no standard errors",
                RuntimeWarning,
                stacklevel=4,
            )
            return None, None
        value, _, r, jacobian_t = _evaluate(problem, mode, u, rest, data)
        variance = float(value) / (n_outputs - n_parameters)
    if errors == "gauss-newton":
        if jacobian_t is None:  # a reverse-mode fit: forward mode is cheaper for n residuals > p
            try:
                jacobian_t = _jacobian(problem, "forward", u, rest, data)
            except TypeError as error:
                if not _is_forward_mode_error(error):
                    raise
                jacobian_t = _jacobian(problem, "reverse", u, rest, data)
        scale = ravel_pytree([_derivative(b, x) for b, x in zip(problem.bounds, u)])[0]
        jacobian = (
            np.asarray(jacobian_t).T / np.asarray(scale)[None, :]
        )  # dr/dtheta = dr/du / (dtheta/du)
        return variance * _invert(
            jacobian.T @ jacobian, "Gauss-Newton matrix J^T J", names
        ), variance
    identity = _Problem(
        problem.function,
        problem.kind,
        problem.treedef,
        problem.indices,
        tuple((None, None) for _ in problem.bounds),
    )
    try:
        hessian = np.asarray(_hessian(identity, mode, theta, rest, data))
    except TypeError as error:
        if mode != "forward" or not _is_forward_mode_error(error):
            raise
        hessian = np.asarray(_hessian(identity, "reverse", theta, rest, data))
    if problem.kind == "residuals":
        return variance * _invert(0.5 * hessian, "Hessian", names), variance
    return _invert(hessian, "Hessian", names), None
