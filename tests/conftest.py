"""Shared test set-up: float64 on (the package does it on import; we assert it) and helpers."""

import os
import subprocess
import sys

# XLA compilation, not execution, dominates the suite's CPU time. XLA's CPU "fusion emitters"
# (its newer code generator for fused ops) compile the package's kernels about twice as slowly as
# the classic elemental emitter: tests/test_transport.py 131 -> 54 s of user CPU, test_cli_and_readme
# 111 -> 45 s (measured on jaxlib 0.10.2). LLVM's backend optimisation level 0 takes another ~20 %
# (CI's pytest 600 -> 476 s, 2026-12-04). Neither is fast-math, but level 0 does not contract
# a * b + c into fused multiply-adds, so results differ from a default build in the last bits:
# the tests hold the package to its tolerances under either rounding, and a test whose outcome
# turned on those bits (an exact band touching, tests/test_evolve_checks.py) exposed a real bug.
# Set before jax starts its backend; xdist workers, notebook kernels and subprocesses inherit it.
# XLA aborts on a flag it does not know, so a jaxlib without these is probed in a subprocess
# first and then left as it is.
FAST_COMPILE_FLAGS = "--xla_cpu_use_fusion_emitters=false --xla_backend_optimization_level=0"


def _xla_accepts(flags: str) -> bool:
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    probe = "import jax.numpy as jnp; jnp.zeros(1).block_until_ready()"
    run = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    return run.returncode == 0 and "no longer supported" not in run.stderr


if "xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", "") and _xla_accepts(
    FAST_COMPILE_FLAGS
):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE_FLAGS}".strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

import semiclassical_jax  # noqa: E402, F401  (turns on float64)

# CI replays the same hypothesis examples every run (no flaky red builds); locally they vary.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_configure(config):
    assert jax.config.jax_enable_x64, "semiclassical_jax must run the tests in float64"


@pytest.fixture
def rng():
    return np.random.default_rng(20261126)
