"""mkdocs hook: put notebooks/*.ipynb (and notebooks/README.md) on the site, executed at CI scale.

The notebooks stay where they are (notebooks/, stored without outputs; tests/test_notebooks.py runs
them); this hook adds them to the site's files as ``notebooks/<name>.ipynb`` before mkdocs-jupyter
turns them into pages, and sets the environment their kernels inherit: the test suite's small size
(SEMICLASSICAL_JAX_NOTEBOOK_SCALE=ci, unless already set) and XLA's faster-compiling CPU emitter
(as tests/conftest.py does). mkdocs-jupyter executes each notebook in its own folder, so relative
paths such as ``../tests/data`` work as in Jupyter; a failing cell fails the build
(mkdocs.yml: ``allow_errors: false``).
"""

import os
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

SCALE_VARIABLE = "SEMICLASSICAL_JAX_NOTEBOOK_SCALE"
XLA_FLAG = "--xla_cpu_use_fusion_emitters=false"


def on_config(config):
    os.environ.setdefault(SCALE_VARIABLE, "ci")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_use_fusion_emitters" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {XLA_FLAG}".strip()
    return config


@event_priority(100)  # before mkdocs-jupyter's on_files, which turns .ipynb files into pages
def on_files(files: Files, config) -> Files:
    root = Path(config["config_file_path"]).parent
    sources = [root / "notebooks" / "README.md", *sorted((root / "notebooks").glob("*.ipynb"))]
    for source in sources:
        files.append(
            File(
                source.relative_to(root).as_posix(),
                src_dir=str(root),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files
