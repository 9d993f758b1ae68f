"""Shared by the benchmark scripts: the CPU's name for table headings, and timing in turns."""

import contextlib
import math
import platform
import time
from pathlib import Path


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def take_turns(functions, argument, rounds: int):
    """Compile seconds, best seconds per call and the per-round times of each function.

    The first call compiles (compile = first call minus the best steady-state time). Then the
    functions take turns for ``rounds`` rounds; in a round each runs in a loop of at least 0.2 s
    (``block_until_ready`` after every call), so ratios can be taken between calls of one round.
    """
    import jax
    import numpy as np

    results, first, number = [], [], []
    for function in functions:
        start = time.perf_counter()
        results.append(jax.block_until_ready(function(argument)))
        first.append(time.perf_counter() - start)
        start = time.perf_counter()
        jax.block_until_ready(function(argument))
        number.append(max(1, math.ceil(0.2 / max(time.perf_counter() - start, 1e-6))))
    per_round = np.zeros((rounds, len(functions)))
    for round_ in range(rounds):
        for i, function in enumerate(functions):
            start = time.perf_counter()
            for _ in range(number[i]):
                jax.block_until_ready(function(argument))
            per_round[round_, i] = (time.perf_counter() - start) / number[i]
    best = per_round.min(axis=0)
    return results, np.maximum(np.array(first) - best, 0.0), best, per_round
