"""Executed copies of the notebooks, written by tests/test_notebooks.py and read by the docs build.

The test suite executes every notebook anyway (tests/test_notebooks.py); it saves each executed
notebook to ``.cache/notebooks/<name>.ipynb`` with a fingerprint of what produced it: the
notebook's source and every file of the package. The docs build (docs/_hooks/notebooks.py) renders
such a copy without running it again when its fingerprint matches the checkout, and otherwise
executes the notebook itself. Standard library only: the test suite imports this file without the
docs toolchain.
"""

import hashlib
import json
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXECUTED_DIR = ROOT / ".cache" / "notebooks"
METADATA_KEY = "semiclassical_jax"


def fingerprint(source: Path) -> str:
    """SHA-256 of the notebook's bytes and of every package file (path and bytes), in order."""
    digest = hashlib.sha256(Path(source).read_bytes())
    package = ROOT / "semiclassical_jax"
    for path in sorted(
        p for p in package.rglob("*") if p.is_file() and p.suffix in {".py", ".toml"}
    ):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def save_executed(notebook: dict, source: Path, scale: str) -> Path:
    """Write an executed notebook (an nbformat node or dict) with its fingerprint, atomically."""
    notebook["metadata"][METADATA_KEY] = {"fingerprint": fingerprint(source), "scale": scale}
    EXECUTED_DIR.mkdir(parents=True, exist_ok=True)
    target = EXECUTED_DIR / Path(source).name
    handle, temporary = tempfile.mkstemp(dir=EXECUTED_DIR, suffix=".partial")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(notebook, stream, ensure_ascii=False)
    os.chmod(temporary, 0o644)
    os.replace(temporary, target)
    return target


def executed_copy(source: Path) -> Path | None:
    """The saved executed copy of ``source`` if it matches the checkout, else None."""
    target = EXECUTED_DIR / Path(source).name
    try:
        saved = json.loads(target.read_text(encoding="utf-8"))["metadata"][METADATA_KEY]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return target if saved.get("fingerprint") == fingerprint(source) else None
