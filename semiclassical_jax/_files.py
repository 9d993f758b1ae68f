"""Atomic file writes: a result file either exists complete or not at all."""

import os
import tempfile
from collections.abc import Callable
from typing import IO


def write_atomically(path: str, write: Callable[[IO], None], *, binary: bool = False) -> str:
    """Call ``write(stream)`` on a temporary file next to ``path``, then rename it to ``path``.

    An exception (or an interrupt) removes the temporary file, so no partial ``path`` is left. The
    file gets the usual permissions (0o666 less the umask), not mkstemp's 0o600.
    """
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=directory, prefix=".tmp-", suffix=os.path.basename(path)
    )
    try:
        with os.fdopen(handle, "wb" if binary else "w") as stream:
            write(stream)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path
