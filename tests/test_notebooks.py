"""The exploration notebooks (notebooks/*.ipynb) run top to bottom, and are stored clean.

Each notebook is executed with nbclient in a fresh kernel at reduced size:
SEMICLASSICAL_JAX_NOTEBOOK_SCALE=ci (notebooks/README.md; set it to "full" to run them at the
size a user sees). Every notebook asserts its physics against closed forms, so a physics
regression, an API change or a plotting error fails here with the failing cell's traceback.

The kernel is this interpreter (``sys.executable -m ipykernel_launcher``), whatever kernelspecs
the machine has installed: a fresh ``pip install ".[test]"`` virtual environment needs no
``ipykernel install`` step, and a user-level "python3" kernelspec that points at another Python
cannot hijack the run. The kernel inherits this process's environment, so XLA_FLAGS as set in
tests/conftest.py (the faster-compiling CPU code generator) applies to the notebooks too.

Each notebook that runs through is saved with its outputs to .cache/notebooks/ (git-ignored),
fingerprinted with the notebook's and the package's source: the documentation site renders these
copies instead of executing the notebooks again (docs/_hooks/executed_notebooks.py).
"""

import importlib.util
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbclient.util import run_sync

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
SCALE_VARIABLE = "SEMICLASSICAL_JAX_NOTEBOOK_SCALE"
CELL_TIMEOUT = (
    240  # seconds per cell (nbclient); the whole notebook is bounded by the pytest timeout
)
NOTEBOOK_TIMEOUT = 300
# Figures render with the inline backend (as for a user), so errors at draw time fail the test too.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
_spec = importlib.util.spec_from_file_location(
    "executed_notebooks", ROOT / "docs" / "_hooks" / "executed_notebooks.py"
)
executed_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(executed_notebooks)


class _ThisInterpreter(KernelSpecManager):
    """Resolves every kernel name to ipykernel on sys.executable, with the notebook scale set."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name=f"Python {sys.version_info.major}.{sys.version_info.minor} (tests)",
            language="python",
            env={
                SCALE_VARIABLE: os.environ.get(SCALE_VARIABLE, "ci"),
                "MPLBACKEND": INLINE_BACKEND,
            },
        )


def test_notebooks_exist():
    names = {path.stem for path in NOTEBOOKS}
    expected = {
        "01_band_geometry",
        "02_wavepackets",
        "03_transport",
        "04_moire_textures",
        "05_fitting",
        "06_wannier90_materials",
        "07_magnetic_field",
    }
    assert expected <= names, f"missing notebooks: {sorted(expected - names)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_is_stored_clean(path):
    """No outputs, no execution counts (so no embedded images), and it reads the scale variable."""
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], (
                f"{path.name}: cell {index} is stored with outputs; clear them"
            )
            assert cell.execution_count is None, f"{path.name}: cell {index} has an execution count"
        assert "attachments" not in cell, f"{path.name}: cell {index} embeds attachments"
    assert SCALE_VARIABLE in code[0].source, (
        f"{path.name}: its first code cell must read {SCALE_VARIABLE} (notebooks/README.md)"
    )
    assert path.stat().st_size < 50_000, (
        f"{path.name} is {path.stat().st_size} bytes: keep notebooks small"
    )


@pytest.mark.timeout(NOTEBOOK_TIMEOUT)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs(path):
    """Execute every cell in order in a fresh kernel; any exception (a failed assert included) fails."""
    notebook = nbformat.read(path, as_version=4)
    # "python3" only tells jupyter_client it is an IPython kernel (history kept in memory);
    # _ThisInterpreter decides what actually runs.
    kernel = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=_ThisInterpreter())
    client = NotebookClient(
        notebook,
        km=kernel,
        timeout=CELL_TIMEOUT,
        allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    failure = None
    try:
        client.execute()
    except (
        CellExecutionError
    ) as error:  # the failing cell's source and traceback, without colour codes
        failure = f"{path.name}:\n{ANSI_ESCAPE.sub('', str(error))}"
    finally:
        if (
            kernel.has_kernel
        ):  # interrupted (e.g. by the pytest timeout) before nbclient shut it down
            run_sync(kernel.shutdown_kernel)(now=True)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    # the docs site shows these outputs (docs/_hooks/notebooks.py)
    executed_notebooks.save_executed(notebook, path, os.environ.get(SCALE_VARIABLE, "ci"))
