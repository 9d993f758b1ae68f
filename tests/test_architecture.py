"""The package's shape (issue 15): layers, private names, function size, the public surface.

Read from the source with ``ast``: nothing is imported except the package itself (for ``__all__``).
"""

import ast
import importlib
import pathlib

import pytest
from public_api import PUBLIC_MODULES

import semiclassical_jax as sj

PACKAGE = pathlib.Path(sj.__file__).parent

# The data flow of README's "Layout": each module may import only from its own layer and the
# layers before it. Keys are module paths relative to the package (a folder stands for every
# module inside it).
LAYERS = [
    ("_types", "_pytree", "_precision", "_files", "_version", "units", "_linalg", "distributed"),
    ("_guards",),
    ("_eigh", "_degenerate"),
    ("models", "textures"),
    ("geometry",),
    ("grids", "dynamics"),
    ("transport",),
    ("_results", "plotting"),
    ("_sweep",),
    ("_config", "_fit"),
    ("cli",),
    ("__init__",),
]
MAX_LINES = 80  # per function, docstring excluded


def _modules() -> list[pathlib.Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _dotted(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts)


def _layer(dotted: str) -> int:
    head = dotted.split(".")[0]
    if dotted == "__init__":
        head = "__init__"
    for rank, names in enumerate(LAYERS):
        if head in names:
            return rank
    raise AssertionError(f"module {dotted!r} is in no layer of tests/test_architecture.py")


def _package(dotted: str) -> list[str]:
    """The package a module belongs to, as a list of names ([] for the top level)."""
    return dotted.split(".")[:-1]


def _targets(dotted: str, node: ast.ImportFrom) -> list[str]:
    """The package-relative modules an ImportFrom reads from ([] when outside the package)."""
    if node.level == 0:
        if not (node.module or "").startswith("semiclassical_jax"):
            return []
        base = [p for p in node.module.split(".")[1:]]
        module = []
    else:
        package = _package(dotted)
        base = package[: len(package) - (node.level - 1)]
        module = node.module.split(".") if node.module else []
    if module or node.level == 0:
        return [".".join([*base, *module]) or "__init__"]
    return [".".join([*base, alias.name]) for alias in node.names]  # from . import submodule


def _imports(path: pathlib.Path):
    dotted = _dotted(path)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            for target in _targets(dotted, node):
                yield node, target


@pytest.mark.parametrize("path", _modules(), ids=_dotted)
def test_no_private_name_crosses_a_module_border(path):
    """``from x import _name`` only in a package's own __init__ (and only from inside that package)."""
    dotted = _dotted(path)
    for node, target in _imports(path):
        private = [alias.name for alias in node.names if alias.name.startswith("_")]
        own_package = dotted.endswith("__init__") and target.startswith(
            dotted.removesuffix("__init__")
        )
        if node.module is None:  # from . import submodule: the names are the modules
            private = [p for p in private if not own_package]
        assert not private or own_package, f"{dotted} imports {private} from {target}"
    source = path.read_text()
    tree = ast.parse(source)
    imported_modules = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (
                node.value.id in imported_modules
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                pytest.fail(f"{dotted}:{node.lineno} reads {node.value.id}.{node.attr}")


@pytest.mark.parametrize("path", _modules(), ids=_dotted)
def test_layers_import_only_from_earlier_layers(path):
    dotted = _dotted(path)
    rank = _layer(dotted)
    for _, target in _imports(path):
        assert _layer(target) <= rank, (
            f"{dotted} (layer {rank}) imports {target} (layer {_layer(target)})"
        )


def _function_lines(node: ast.FunctionDef) -> int:
    body = node.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(getattr(body[0], "value", None), ast.Constant)
    ):
        if isinstance(body[0].value.value, str):
            body = body[1:]
    if not body:
        return 0
    return body[-1].end_lineno - body[0].lineno + 1


@pytest.mark.parametrize("path", _modules(), ids=_dotted)
def test_functions_are_short(path):
    long = [
        f"{node.name} ({_function_lines(node)} lines)"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and _function_lines(node) > MAX_LINES
    ]
    assert not long, f"{_dotted(path)}: over {MAX_LINES} lines without the docstring: {long}"


def _defined_in(value, name: str) -> bool:
    """Whether ``value`` (a class or function) comes from module ``name`` or a module below it."""
    module = getattr(value, "__module__", None) or ""
    return module == name or module.startswith(name + ".")


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_surface_is_declared(name):
    """``__all__`` lists exactly the public names (no typing helpers leaking, nothing missing)."""
    module = importlib.import_module(name)
    declared = set(module.__all__)
    assert all(hasattr(module, n) for n in declared), sorted(
        n for n in declared if not hasattr(module, n)
    )
    defined = {
        n for n, value in vars(module).items() if not n.startswith("_") and _defined_in(value, name)
    }
    assert defined <= declared, f"{name}: public but not in __all__: {sorted(defined - declared)}"


def test_version_is_the_installed_one():
    from importlib.metadata import version

    assert sj.__version__ == version("semiclassical_jax")


def test_fit_is_a_function_not_a_module():
    assert callable(sj.fit) and not hasattr(sj.fit, "__path__")
    assert "fit" in sj.__all__
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("semiclassical_jax.fit")
