"""griffe extension: show the docstrings' Sphinx roles (:func:`x`, :class:`~a.b.C`) as code.

The package's docstrings cross-reference with Sphinx roles, which the mkdocstrings Python handler
does not interpret; this turns each into inline code with the name as written (``~`` keeps the
last component, as in Sphinx), so the API reference reads cleanly.
"""

import re

import griffe

ROLE = re.compile(r":(?:func|class|meth|attr|data|mod|obj|exc|const):`(~?)([^`]+)`")


def _as_code(match: re.Match) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


class SphinxRolesAsCode(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_as_code, obj.docstring.value)
