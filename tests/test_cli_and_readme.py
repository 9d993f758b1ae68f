"""The command line (the main job, its config validation, the Chern demo) and the README's code."""

import json
import pathlib
import re

import numpy as np
import pytest

from semiclassical_jax import SweepResult, cli

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_run_writes_table_with_the_expected_physics(tmp_path, capsys):
    """Integers where the manifold is gapped (|C| = 1 iff QWZ |m| < 2, Haldane |M| < 3 sqrt3 t2),
    0 for Kane-Mele, +-1/2 for the two Dirac valleys (closed form: valley sign(Delta) / 2)."""
    assert cli.main(["chern", "--n-k", "24", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| QWZ | m = -1 |" in out
    rows = json.loads((tmp_path / "geometry_table.json").read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "geometry_table.json",
        "geometry_table.md",
        "run.json",
    ]
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


def test_help_and_bad_arguments(capsys):
    """In-process (a subprocess spent ~6 s importing jax for the same text)."""
    with pytest.raises(SystemExit) as exit:
        cli.main(["--help"])
    assert exit.value.code == 0
    printed = capsys.readouterr().out
    for command in ("run", "default-config", "chern"):
        assert command in printed
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    assert "TOML" in capsys.readouterr().out
    assert cli.main(["chern", "--n-k", "2"]) == 2
    with pytest.raises(SystemExit):
        cli.main(["run", "--no-such-flag"])


def test_run_without_arguments_writes_the_moire_job(tmp_path, monkeypatch, capsys):
    """`semiclassical-jax run` with no arguments: data, plots, config and summary, and physics that
    holds independently of the code: the E -> 0 valley Hall conductivity on a moire site is
    half-quantised less the cutoff's |Delta| / sqrt(v^2 R^2 + Delta^2) (1e-4); sigma_xy(mu) in the
    band is -(1 / 4 pi) (Delta / |mu| - cutoff term) (2e-3 relative); J_y(x) has the sign of the
    local mass (+A at x = 0, -A / 2 at (a1 + a2) / 3)."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run"]) == 0
    out = tmp_path / "semiclassical-jax-out"
    names = ("valley_hall_vs_field", "current_across_moire_cell", "hall_conductivity_vs_mu")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{n}.npz" for n in names]
        + [f"{n}.png" for n in names]
        + ["config.toml", "summary.md", "run.json"]
    )
    assert all((out / f"{n}.png").read_bytes()[:4] == b"\x89PNG" for n in names)
    printed = capsys.readouterr()
    assert "| valley_hall_vs_field | current |" in printed.out and "ETA" in printed.err
    delta, radius = 0.1, 30.0
    cutoff = delta / np.sqrt(radius**2 + delta**2)
    hall = SweepResult.load(out / "valley_hall_vs_field.npz")
    assert hall.dims == ("field_strength", "component")
    e = hall.coord("field_strength")
    sigma_yx = hall.values[:, 1] / e
    assert abs(4 * np.pi * sigma_yx[0] - (1 - cutoff)) < 1e-4
    assert sigma_yx[-1] < 0.95 * sigma_yx[0]  # non-perturbative suppression at E v / Delta^2 = 10
    sigma = SweepResult.load(out / "hall_conductivity_vs_mu.npz")
    mu = sigma.coord("mu")
    gap = np.abs(mu) < 0.09
    np.testing.assert_allclose(4 * np.pi * sigma.values[gap, 0, 1], -(1 - cutoff), atol=1e-4)
    band = np.abs(mu) > 0.15
    np.testing.assert_allclose(
        4 * np.pi * sigma.values[band, 0, 1], -(delta / np.abs(mu[band]) - cutoff), rtol=2e-3
    )
    current_map = SweepResult.load(out / "current_across_moire_cell.npz")
    xy = current_map.coord("position_xy")
    assert current_map.dims == ("position", "component") and xy.shape == (24 * 24, 2)
    a1, a2 = np.array([25.980762113533157, 15.0]), np.array([0.0, 30.0])
    site = np.argmin(np.linalg.norm(xy, axis=1))
    corner = np.argmin(np.linalg.norm(xy - (a1 + a2) / 3, axis=1))
    assert current_map.values[site, 1] > 0 > current_map.values[corner, 1]
    assert current_map.attrs["config"]["name"] == "current_across_moire_cell"


BAD_CONFIGS = [
    (
        "[model]\ntype = 'MassiveDirac'\nvelocity = 1.0\nmass = 0.1\ncolour = 'red'\n",
        "model.colour",
    ),
    ("[model]\ntype = 'MassiveDirac'\nvelocity = 'fast'\nmass = 0.1\n", "model.velocity"),
    ("temperature = -0.01\n", "temperature must be > 0"),
    ("manifolds = [[0], [2]]\n", "manifolds"),
    ("axes.mu = { linspace = [0.0, 0.1] }\n", "axes.mu.linspace"),
    ("speed = 3\n", "sweep[0].speed"),
]


@pytest.mark.parametrize(("change", "key"), BAD_CONFIGS)
def test_bad_config_exits_nonzero_naming_the_key_and_writes_nothing(tmp_path, capsys, change, key):
    model = "[model]\ntype = 'MassiveDirac'\nvelocity = 1.0\nmass = 0.1\n"
    sweep = (
        "[[sweep]]\nname = 'bad'\nmu = 0.0\ntau = 1.0\nfield = [1e-3, 0.0]\n"
        "grid = { type = 'disk', radius = 5.0, n_radial = 4, n_angle = 4 }\n"
    )
    if change.startswith("[model]"):
        text = change + sweep + "temperature = 0.01\n"
    elif "temperature" in change:
        text = model + sweep + change
    else:
        text = model + sweep + "temperature = 0.01\n" + change
    config = tmp_path / "bad.toml"
    config.write_text(text)
    out = tmp_path / "out"
    assert cli.main(["run", str(config), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert key in error and "nothing was run or written" in error
    assert not out.exists()


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
    value = float(
        sj.chern_number(models.Haldane(t1=1.0, t2=0.15, phi=jnp.pi / 2, mass=0.2), [0], 48)
    )
    assert abs(value - float(quoted)) < 1e-6
    assert namespace["F"].shape == (4, 4, 2, 2)
    # the quoted Landau-Zener population and its closed form
    quoted_lz = re.search(r"populations\[-1, 1\]\s+# (\d\.\d+), vs exp", text).group(1)
    assert abs(float(namespace["traj"].populations[-1, 1]) - float(quoted_lz)) < 1e-4
    assert abs(float(quoted_lz) - np.exp(-np.pi * 0.138**2 / 0.05)) < 1e-4
    # the batch call: every member on its Landau-Zener value (issue 19 item 1)
    kys, batch = np.asarray(namespace["kys"]), namespace["batch"]
    expected = np.exp(-np.pi * (0.138**2 + kys**2) / 0.05)
    np.testing.assert_allclose(batch.populations[:, -1, 1], expected, atol=1e-5)
    assert batch.populations.shape == (8, 1, 2) and bool(np.all(batch.success))
    # transport: the quoted quantised Hall value and the nonlinear valley Hall ratio
    quoted_hall = re.search(r"sigma\[0, 1\] \* 2 \* jnp.pi\s+# (-?\d\.\d+)", text).group(1)
    assert abs(float(namespace["sigma"][0, 1]) * 2 * np.pi - float(quoted_hall)) < 1e-4
    assert abs(float(quoted_hall) + 1) < 1e-4  # -C with C = +1 for QWZ at m = -1
    quoted_nvh = re.search(r"J_nvh\[1\] / 8e-3 \* 4 \* jnp.pi\s+# (\d\.\d+)", text).group(1)
    assert abs(float(namespace["J_nvh"][1]) / 8e-3 * 4 * np.pi - float(quoted_nvh)) < 1e-4
    assert namespace["J_map"].shape == (16, 2)
    # sweeps: the quoted E -> 0 valley Hall ratios against the closed form (1 - cutoff)
    quoted_sweep = re.search(r"4 \* np.pi\s+# \[(\d\.\d+) (\d\.\d+)\]", text).groups()
    measured = namespace["result"].values[0, :, 1] / 1e-4 * 4 * np.pi
    np.testing.assert_allclose(measured, [float(q) for q in quoted_sweep], atol=1e-4)
    np.testing.assert_allclose(
        measured, [1 - d / np.sqrt(900 + d**2) for d in (0.1, 0.2)], atol=1e-4
    )
