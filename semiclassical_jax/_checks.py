"""Input validation shared by the public functions: clear errors that name the bad argument.

Static checks (shapes, band indices) raise ``ValueError`` / ``TypeError`` before tracing.
Value checks (finite parameters, Hermiticity, gaps) raise eagerly with the offending number when
the inputs are concrete, and through ``eqx.error_if`` (an ``EquinoxRuntimeError``) under jit/vmap.
"""

from collections.abc import Iterable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._types import Array

HERMITICITY_RTOL = 1e-10


def is_concrete(*values: Any) -> bool:
    """True when no leaf is a tracer, i.e. we may inspect values in Python."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(values))


def check_model(model: Any) -> None:
    """The model looks like a model: callable, with integer ``dim`` and ``n_bands``."""
    for attribute in ("dim", "n_bands"):
        if not hasattr(model, attribute):
            raise TypeError(f"model must define '{attribute}' (got {type(model).__name__})")
    if not callable(model):
        raise TypeError(f"model must be callable as model(x, k) (got {type(model).__name__})")


def check_point(model: Any, x: Any, k: Any) -> tuple[Array, Array]:
    """x, k as float arrays of shape (d,); x = None means the origin."""
    d = int(model.dim)
    x = jnp.zeros(d) if x is None else jnp.asarray(x, dtype=float)
    k = jnp.asarray(k, dtype=float)
    for name, value in (("x", x), ("k", k)):
        if value.shape != (d,):
            raise ValueError(
                f"{name} must have shape ({d},) for a model of dim = {d}, got {value.shape}"
            )
    return x, k


def check_output_shape(model: Any, x: Array, k: Array) -> None:
    """model(x, k) must be an (N, N) array with N = model.n_bands."""
    n = int(model.n_bands)
    out = jax.eval_shape(model, x, k)
    shape = getattr(out, "shape", None)
    if shape != (n, n):
        raise ValueError(
            f"model(x, k) must return an (n_bands, n_bands) = ({n}, {n}) matrix, got shape {shape}"
        )


def _leaf_name(path: tuple) -> str:
    return "".join(str(p) for p in path).lstrip(".") or "<leaf>"


def check_finite_parameters(model: Any) -> None:
    """Raise if any concrete numeric parameter of the model (textures included) is NaN or inf.

    Traced parameters are skipped: the geometry kernel's finiteness guard catches them at run time.
    """
    leaves = jax.tree_util.tree_flatten_with_path(eqx.filter(model, eqx.is_inexact_array))[0]
    for path, leaf in leaves:
        if isinstance(leaf, jax.core.Tracer):
            continue
        if not np.all(np.isfinite(np.asarray(leaf))):
            raise ValueError(
                f"model parameter '{_leaf_name(path)}' is not finite: {np.asarray(leaf)}"
            )


def check_manifold(manifold: Any, n_bands: int, name: str = "manifold") -> tuple[int, ...]:
    """A manifold: a non-empty sequence of distinct band indices in [0, n_bands), returned sorted.

    It must leave at least one remote band (geometry of the whole Hilbert space is trivial).
    """
    if isinstance(manifold, (int, np.integer)):
        manifold = (int(manifold),)
    try:
        bands = [int(b) for b in manifold]
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of band indices, got {manifold!r}") from None
    if any(int(b) != b for b in manifold):
        raise TypeError(f"{name} must hold integer band indices, got {manifold!r}")
    if not bands:
        raise ValueError(f"{name} is empty: give at least one band index")
    if len(set(bands)) != len(bands):
        raise ValueError(f"{name} {tuple(bands)} repeats a band index")
    bad = [b for b in bands if not 0 <= b < n_bands]
    if bad:
        raise ValueError(
            f"{name} {tuple(bands)}: band indices {bad} out of range for a {n_bands}-band model"
        )
    return tuple(sorted(bands))


def check_partition(
    manifolds: Iterable[Sequence[int]] | None, n_bands: int, complete: bool = True
) -> tuple[tuple[int, ...], ...]:
    """Manifolds that do not overlap; with ``complete`` they must cover every band exactly once.

    ``None`` means every band its own manifold.
    """
    if manifolds is None:
        return tuple((n,) for n in range(n_bands))
    parts = [check_manifold(m, n_bands, name=f"manifolds[{i}]") for i, m in enumerate(manifolds)]
    seen: dict[int, int] = {}
    for i, part in enumerate(parts):
        for band in part:
            if band in seen:
                raise ValueError(
                    f"manifolds[{i}] overlaps manifolds[{seen[band]}]: band {band} is in both"
                )
            seen[band] = i
    missing = [n for n in range(n_bands) if n not in seen]
    if complete and missing:
        raise ValueError(f"manifolds miss bands {missing} of the {n_bands}-band model")
    return tuple(parts)


def remote_bands(
    manifold: tuple[int, ...], n_bands: int, name: str = "manifold"
) -> tuple[int, ...]:
    remote = tuple(n for n in range(n_bands) if n not in manifold)
    if not remote:
        raise ValueError(
            f"{name} {manifold} holds every band of the model: there are no remote bands, "
            "so its projector is constant and its curvature vanishes"
        )
    return remote
