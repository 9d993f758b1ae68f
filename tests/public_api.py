"""The package's public modules: the ones whose ``__all__`` is the public API (shared by
tests/test_architecture.py, tests/test_docs.py and tests/test_docstring_examples.py)."""

PUBLIC_MODULES = (
    "semiclassical_jax",
    "semiclassical_jax.distributed",
    "semiclassical_jax.dynamics",
    "semiclassical_jax.geometry",
    "semiclassical_jax.grids",
    "semiclassical_jax.models",
    "semiclassical_jax.plotting",
    "semiclassical_jax.textures",
    "semiclassical_jax.transport",
    "semiclassical_jax.units",
)
