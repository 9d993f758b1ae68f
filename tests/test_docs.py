"""No undocumented public name: the API reference (docs/api/*.md) covers every public name.

Every name in ``semiclassical_jax.__all__`` and in the ``__all__`` of each public subpackage and
module must appear in an mkdocstrings block (``::: semiclassical_jax.<path>``) of some docs/api
page, as the same object, and must have a non-empty docstring: its own for modules, classes and
functions, an attribute docstring (a string right after the assignment) for constants. Every
block must name something that exists. Runs without the docs toolchain (mkdocs): CI's
``mkdocs build --strict`` renders the pages, this test keeps the list complete.
"""

import ast
import functools
import importlib
import inspect
import re
from pathlib import Path

import pytest
from public_api import PUBLIC_MODULES

ROOT = Path(__file__).resolve().parents[1]
API_PAGES = sorted((ROOT / "docs" / "api").glob("*.md"))
BLOCK = re.compile(r"^::: *([\w.]+)\s*$", re.MULTILINE)


def _resolve(identifier: str):
    """The object a dotted identifier names: the longest importable module prefix, then attributes."""
    parts = identifier.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for part in parts[split:]:
            obj = getattr(obj, part)
        return obj
    raise ModuleNotFoundError(identifier)


def _blocks() -> dict[str, list[str]]:
    """{identifier: [pages]} of every ``:::`` block in docs/api."""
    found: dict[str, list[str]] = {}
    for page in API_PAGES:
        for identifier in BLOCK.findall(page.read_text(encoding="utf-8")):
            found.setdefault(identifier, []).append(page.name)
    return found


@functools.cache
def _attribute_docstrings() -> frozenset[str]:
    """Names assigned at module level in the package and followed by a string literal."""
    names = set()
    for path in (ROOT / "semiclassical_jax").rglob("*.py"):
        body = ast.parse(path.read_text(encoding="utf-8")).body
        for statement, following in zip(body, body[1:]):
            documented = (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
                and following.value.value.strip()
            )
            if not documented:
                continue
            targets = statement.targets if isinstance(statement, ast.Assign) else []
            if isinstance(statement, ast.AnnAssign):
                targets = [statement.target]
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
    return frozenset(names)


def _public_names() -> list[tuple[str, str]]:
    names = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        assert hasattr(module, "__all__"), f"{module_name} has no __all__"
        names += [(module_name, name) for name in module.__all__]
    return names


PUBLIC = _public_names()


def test_api_pages_exist_and_every_block_resolves():
    assert API_PAGES, "docs/api/ has no pages"
    blocks = _blocks()
    assert blocks, "docs/api/ pages hold no ':::' blocks"
    unresolved = []
    for identifier, pages in blocks.items():
        try:
            _resolve(identifier)
        except (ModuleNotFoundError, AttributeError):
            unresolved.append(f"{identifier} (in {', '.join(pages)})")
    assert not unresolved, f"':::' blocks naming nothing: {unresolved}"


def test_every_public_name_is_in_the_api_reference():
    by_name: dict[str, list[object]] = {}
    for identifier in _blocks():
        by_name.setdefault(identifier.rsplit(".", 1)[-1], []).append(_resolve(identifier))
    missing = [
        f"{module}.{name}"
        for module, name in PUBLIC
        if not any(
            obj is getattr(importlib.import_module(module), name) for obj in by_name.get(name, [])
        )
    ]
    assert not missing, f"public names without a ':::' block in docs/api/*.md: {missing}"


def _own_docstring(obj) -> str:
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__") or ""
        # a dataclass without a docstring gets its signature as __doc__: not documentation
        return "" if doc.startswith(f"{obj.__name__}(") else doc
    return getattr(obj, "__doc__", None) or ""


@pytest.mark.parametrize(
    "module, name", PUBLIC, ids=[f"{module}.{name}" for module, name in PUBLIC]
)
def test_every_public_name_has_a_docstring(module, name):
    obj = getattr(importlib.import_module(module), name)
    if inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isroutine(obj):
        assert _own_docstring(obj).strip(), f"{module}.{name} has no docstring"
    else:
        assert name in _attribute_docstrings(), (
            f"{module}.{name} (a constant) needs an attribute docstring: a string literal on the "
            "line after its assignment"
        )
