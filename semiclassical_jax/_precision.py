"""Floating-point precision of the package.

semiclassical_jax runs in float64 by default: Berry curvatures are ratios of small
energy differences and the sum rules we test hold to 1e-10 only in double precision.
Importing the package therefore turns on ``jax_enable_x64``.

A GPU user who wants float32 for a large sweep opts in *before* importing the package::

    SEMICLASSICAL_JAX_PRECISION=float32 python my_sweep.py

or, at run time, with :func:`set_precision` (``"float32"`` or ``"float64"``). In float32 the
geometry is good to roughly 1e-5 relative away from band touchings; check convergence against a
float64 run on a few points before trusting a float32 sweep.
"""

import os

import jax

_ENV = "SEMICLASSICAL_JAX_PRECISION"


def set_precision(precision: str) -> None:
    """Switch JAX between ``"float64"`` (the package default) and ``"float32"``.

    Examples:
        >>> import jax
        >>> import semiclassical_jax as sj
        >>> sj.set_precision("float64")
        >>> jax.config.jax_enable_x64
        True
    """
    if precision not in ("float32", "float64"):
        raise ValueError(f"precision must be 'float32' or 'float64', got {precision!r}")
    jax.config.update("jax_enable_x64", precision == "float64")


def _set_default_precision() -> None:
    value = os.environ.get(_ENV, "float64").strip().lower()
    if value not in ("float32", "float64"):
        raise ValueError(
            f"environment variable {_ENV} must be 'float32' or 'float64', got {value!r}"
        )
    set_precision(value)
