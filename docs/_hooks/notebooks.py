"""mkdocs hook: put notebooks/*.ipynb (and notebooks/README.md) on the site, with their outputs.

The notebooks stay where they are (notebooks/, stored without outputs). For each one this hook
adds a page ``notebooks/<name>.ipynb`` that mkdocs-jupyter renders from

* the executed copy that tests/test_notebooks.py saved in ``.cache/notebooks/`` when its
  fingerprint (the notebook's and the package's source) matches the checkout: nothing is run again
  (CI runs the tests before it builds the docs; mkdocs.yml excludes these copies from execution);
* otherwise the notebook itself, executed during the build at the test suite's small size
  (SEMICLASSICAL_JAX_NOTEBOOK_SCALE=ci unless already set; XLA's faster-compiling CPU emitter, as
  in tests/conftest.py), in its own folder so that relative paths such as ``../tests/data`` work.

Either way a failing cell fails the build (mkdocs.yml: ``allow_errors: false``).
"""

import importlib.util
import logging
import os
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

SCALE_VARIABLE = "SEMICLASSICAL_JAX_NOTEBOOK_SCALE"
XLA_FLAG = "--xla_cpu_use_fusion_emitters=false"
log = logging.getLogger("mkdocs.hooks.notebooks")

_spec = importlib.util.spec_from_file_location(
    "executed_notebooks", Path(__file__).with_name("executed_notebooks.py")
)
executed_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(executed_notebooks)


def on_config(config):
    os.environ.setdefault(SCALE_VARIABLE, "ci")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_use_fusion_emitters" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {XLA_FLAG}".strip()
    return config


def _file(path: str, src_dir: Path, config) -> File:
    return File(
        path,
        src_dir=str(src_dir),
        dest_dir=config["site_dir"],
        use_directory_urls=config["use_directory_urls"],
    )


@event_priority(100)  # before mkdocs-jupyter's on_files, which turns .ipynb files into pages
def on_files(files: Files, config) -> Files:
    root = Path(config["config_file_path"]).parent
    files.append(_file("notebooks/README.md", root, config))
    for source in sorted((root / "notebooks").glob("*.ipynb")):
        copy = executed_notebooks.executed_copy(source)
        if copy is None:
            log.info(
                "notebooks: %s is executed by this build (no current executed copy)", source.name
            )
            files.append(_file(f"notebooks/{source.name}", root, config))
        else:
            log.info("notebooks: %s from the test suite's executed copy", source.name)
            files.append(_file(f"notebooks/{source.name}", copy.parents[1], config))
    return files
