"""Shared test set-up: float64 on (the package does it on import; we assert it) and helpers."""

import jax
import numpy as np
import pytest

import semiclassical_jax  # noqa: F401  (turns on float64)


def pytest_configure(config):
    assert jax.config.jax_enable_x64, "semiclassical_jax must run the tests in float64"


@pytest.fixture
def rng():
    return np.random.default_rng(20261126)
