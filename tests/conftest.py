"""Shared test set-up: float64 on (the package does it on import; we assert it) and helpers."""

import os

import jax
import numpy as np
import pytest
from hypothesis import settings

import semiclassical_jax  # noqa: F401  (turns on float64)

# CI replays the same hypothesis examples every run (no flaky red builds); locally they vary.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_configure(config):
    assert jax.config.jax_enable_x64, "semiclassical_jax must run the tests in float64"


@pytest.fixture
def rng():
    return np.random.default_rng(20261126)
