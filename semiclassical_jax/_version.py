"""The package's version: the installed distribution's, or "0+unknown" for a source checkout
that is on PYTHONPATH without being pip-installed (e.g. a copied tree on a GPU machine)."""

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    """semiclassical_jax's version string ("0+unknown" when it is not installed)."""
    try:
        return version("semiclassical_jax")
    except PackageNotFoundError:
        return "0+unknown"
