"""Model parameters by name: dotted attribute paths into a pytree (``"mass.amplitude"``).

One naming for the whole package: a leaf's name is ``jax.tree_util.keystr`` of its path without
the leading dot, which for a model's attribute path is the dotted path a user writes. Reading
follows the attributes; writing is ``eqx.tree_at`` with that getter.
"""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax


def leaf_name(path: tuple) -> str:
    """A pytree key path as a name: ``"mass.amplitude"``, ``"hoppings[2]"``; ``"<root>"`` if empty."""
    return jax.tree_util.keystr(path).lstrip(".") or "<root>"


def named_leaves(tree: Any) -> list[tuple[str, Any]]:
    """(name, leaf) for every leaf of ``tree``, in flattening order."""
    return [(leaf_name(path), leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]]


def getter(path: str) -> Callable[[Any], Any]:
    """The function tree -> tree.a.b for the dotted path ``"a.b"`` (AttributeError if missing)."""
    parts = path.split(".")

    def get(tree: Any) -> Any:
        for part in parts:
            tree = getattr(tree, part)
        return tree

    return get


def get_path(tree: Any, path: str) -> Any:
    """The attribute at the dotted ``path`` of ``tree``."""
    return getter(path)(tree)


def replace_path(tree: Any, path: str, value: Any) -> Any:
    """A copy of ``tree`` with the attribute at the dotted ``path`` replaced by ``value``."""
    return eqx.tree_at(getter(path), tree, value)
