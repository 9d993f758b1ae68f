"""The docstring examples of the public API run as doctests, one test case per public object.

Public objects: the functions and classes in ``__all__`` of the package and of its public
subpackages and modules (tests/public_api.py). Each docstring's ``Examples:``
section (Google style, rendered by mkdocstrings as code) is run with doctest (ELLIPSIS,
NORMALIZE_WHITESPACE), in fresh globals. The examples share one model (``MassiveDirac(1.0, 0.3)``)
and two k-grids of one shape (``grids.disk(R, 8, 8, breaks=[0.4])``), so that their compilations
are shared within a worker. A second test asks every public function and class for an example.
"""

import doctest
import importlib
import inspect
import re

import pytest
from public_api import PUBLIC_MODULES


# Public names allowed without an Examples section (none since 2026-12-04; list one only with a
# reason, e.g. an example that cannot run in the suite).
WITHOUT_EXAMPLES: set[str] = set()


def _public_objects() -> dict[str, object]:
    """{qualified name: object} of every public function and class, each object once."""
    found: dict[str, object] = {}
    seen: set[int] = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or id(obj) in seen:
                continue
            seen.add(id(obj))
            found[f"{module_name}.{name}"] = obj
    return found


PUBLIC = _public_objects()
FINDER = doctest.DocTestFinder(recurse=False)
EXAMPLES = {
    name: test
    for name, obj in PUBLIC.items()
    for test in FINDER.find(obj, name=name, globs={})
    if test.examples
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_docstring_example(name):
    test = EXAMPLES[name]
    test.globs = {}  # fresh globals per run (the finder's are shared)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    report: list[str] = []
    result = runner.run(test, out=report.append, clear_globs=True)
    assert result.failed == 0, f"{name}: docstring example failed\n" + "".join(report)


def test_every_public_function_and_class_has_an_example():
    missing = sorted(
        name
        for name, obj in PUBLIC.items()
        if name not in WITHOUT_EXAMPLES and "Examples:" not in (inspect.getdoc(obj) or "")
    )
    assert not missing, f"public names without an Examples: section in their docstring: {missing}"
    assert not set(EXAMPLES) & WITHOUT_EXAMPLES, (
        "an allow-listed name has an example now: unlist it"
    )
    stale = WITHOUT_EXAMPLES - set(PUBLIC)
    assert not stale, f"WITHOUT_EXAMPLES names that are not public: {sorted(stale)}"


# Public names that compute no physics, so cite no equation: process bookkeeping, plotting,
# precision, result containers, the optimiser driver and a chunked vmap.
WITHOUT_EQUATION = {
    "semiclassical_jax.distributed.ProcessInfo",
    "semiclassical_jax.distributed.broadcast_from_main",
    "semiclassical_jax.distributed.initialize",
    "semiclassical_jax.distributed.is_main_process",
    "semiclassical_jax.distributed.process_info",
    "semiclassical_jax.distributed.process_local",
    "semiclassical_jax.plotting.plot_result",
    "semiclassical_jax.set_precision",
    "semiclassical_jax.SweepResult",
    "semiclassical_jax.FitResult",
    "semiclassical_jax.fit",
    "semiclassical_jax.grids.map_points",
}
CITATION = re.compile(r"PHYSICS\.md|paper Eqs?\. \d")


def test_every_public_physics_docstring_cites_its_equation():
    """Issue 20 item 4: the docstring names the equation it implements (PHYSICS.md / paper Eq.)."""
    missing = sorted(
        name
        for name, obj in PUBLIC.items()
        if name not in WITHOUT_EQUATION and not CITATION.search(inspect.getdoc(obj) or "")
    )
    assert not missing, f"public docstrings citing neither PHYSICS.md nor a paper Eq.: {missing}"
    stale = WITHOUT_EQUATION - set(PUBLIC)
    assert not stale, f"WITHOUT_EQUATION names that are not public: {sorted(stale)}"
