"""The command line demo and the README's example code."""

import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from semiclassical_jax import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_run_writes_table_with_the_expected_physics(tmp_path, capsys):
    """Integers where the manifold is gapped (|C| = 1 iff QWZ |m| < 2, Haldane |M| < 3 sqrt3 t2),
    0 for Kane-Mele, +-1/2 for the two Dirac valleys (closed form: valley sign(Delta) / 2)."""
    assert cli.main(["run", "--n-k", "24", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| QWZ | m = -1 |" in out
    rows = json.loads((tmp_path / "geometry_table.json").read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["geometry_table.json", "geometry_table.md"]
    by = {(r["model"], r["parameters"]): r for r in rows}
    for m, magnitude in ((-3, 0), (-1, 1), (1, 1), (3, 0)):
        chern = by[("QWZ", f"m = {m:+g}")]["chern_link"]
        assert abs(abs(chern) - magnitude) < 1e-6
    assert abs(by[("QWZ", "m = -1")]["chern_link"] + by[("QWZ", "m = +1")]["chern_link"]) < 1e-6
    haldane = [r for r in rows if r["model"] == "Haldane"]
    assert [round(abs(r["chern_link"])) for r in haldane] == [1, 0]
    assert all(abs(r["chern_link"]) < 1e-6 for r in rows if r["model"] == "KaneMele")
    dirac = [r["chern_integral"] for r in rows if r["model"] == "MassiveDirac"]
    np.testing.assert_allclose(dirac, [0.5, -0.5], atol=1e-6)


def test_help_and_bad_arguments():
    result = subprocess.run(
        [sys.executable, "-m", "semiclassical_jax.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "run" in result.stdout
    assert cli.main(["run", "--n-k", "2"]) == 2
    with pytest.raises(SystemExit):
        cli.main(["run", "--no-such-flag"])


def test_readme_example_runs():
    """Every ```python block of the README executes; the Haldane Chern number it quotes holds."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    sj, models, jnp = namespace["sj"], namespace["models"], namespace["jnp"]
    quoted = re.search(r"chern_number\(models\.Haldane.*?# (-?\d+\.\d+)", text).group(1)
    value = float(sj.chern_number(models.Haldane(t1=1.0, t2=0.15, phi=jnp.pi / 2, mass=0.2), [0], 48))
    assert abs(value - float(quoted)) < 1e-6
    assert namespace["F"].shape == (4, 4, 2, 2)
    # the quoted Landau-Zener population and its closed form
    quoted_lz = re.search(r"populations\[-1, 1\]\s+# (\d\.\d+), vs exp", text).group(1)
    assert abs(float(namespace["traj"].populations[-1, 1]) - float(quoted_lz)) < 1e-4
    assert abs(float(quoted_lz) - np.exp(-np.pi * 0.138**2 / 0.05)) < 1e-4
    assert namespace["ends"].shape == (64 * 64, 2)
    # transport: the quoted quantised Hall value and the nonlinear valley Hall ratio
    quoted_hall = re.search(r"sigma\[0, 1\] \* 2 \* jnp.pi\s+# (-?\d\.\d+)", text).group(1)
    assert abs(float(namespace["sigma"][0, 1]) * 2 * np.pi - float(quoted_hall)) < 1e-4
    assert abs(float(quoted_hall) + 1) < 1e-4  # -C with C = +1 for QWZ at m = -1
    quoted_nvh = re.search(r"J_nvh\[1\] / 8e-3 \* 4 \* jnp.pi\s+# (\d\.\d+)", text).group(1)
    assert abs(float(namespace["J_nvh"][1]) / 8e-3 * 4 * np.pi - float(quoted_nvh)) < 1e-4
    assert namespace["J_map"].shape == (16, 2)
