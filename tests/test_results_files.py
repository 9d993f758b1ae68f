"""Outputs and the command line (issue 16, items 6-9): results folders replaced whole or not at
all, one-line errors with exit status 2 / 1, sizes checked before allocating, and files that record
enough (versions, every parameter, the grid, the config text) to rebuild what produced them.

Most tests replace ``cli.run_sweep`` by a stand-in that returns zeros at once: they test the
folder and the command line, not the physics (tests/test_cli_and_readme.py runs the real job).
"""

import hashlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import cli, grids, models, textures
from semiclassical_jax._config import build_grid, build_model, load_config

MODEL = """[model]
type = "MassiveDirac"
velocity = 1.0
mass = { texture = "HexagonalMoire", amplitude = 0.1, period = 30.0 }
"""
GRID = """[grid]
type = "disk"
radius = 5.0
n_radial = 4
n_angle = 4
"""
SWEEP = """[[sweep]]
name = "{name}"
quantity = "hall_conductivity"
temperature = 0.01
axes.mu = [0.0, 0.2]
"""
TWO_SWEEPS = MODEL + GRID + SWEEP.format(name="first") + SWEEP.format(name="second")


def _zeros(plan, progress=False, attrs=None):
    """Stands in for run_sweep: a hall_conductivity result of zeros with the plan's axes."""
    shape = tuple(len(plan.coords[name]) for name in plan.names)
    components = np.array(["x", "y"])
    coords = {**plan.coords, "component": components, "field_component": components}
    dims = (*plan.names, "component", "field_component")
    return sj.SweepResult(plan.quantity, np.zeros(shape + (2, 2)), dims, coords, attrs=attrs)


def _failing_on(name, error, action=None):
    """A run_sweep stand-in that raises ``error`` (or calls ``action``) on the sweep ``name``."""

    def run(plan, progress=False, attrs=None):
        if attrs["name"] == name:
            if action is not None:
                action(plan, progress, attrs)
            raise error
        return _zeros(plan, progress, attrs)

    return run


def _snapshot(folder):
    """{relative path: bytes} of every file below ``folder`` (hidden ones included)."""
    return {
        os.path.relpath(os.path.join(root, name), folder): open(
            os.path.join(root, name), "rb"
        ).read()
        for root, _, names in os.walk(folder)
        for name in names
    }


@pytest.fixture
def job(tmp_path, monkeypatch):
    """(run(*extra flags) -> exit status, the output folder) for TWO_SWEEPS with the stand-in."""
    config = tmp_path / "job.toml"
    config.write_text(TWO_SWEEPS)
    out = tmp_path / "out"
    monkeypatch.setattr(cli, "run_sweep", _zeros)
    return (lambda *extra: cli.main(["run", str(config), "--out", str(out), *extra])), out


def test_out_is_replaced_whole_or_not_at_all(job, tmp_path, monkeypatch, capsys):
    """A new folder appears complete with run.json; a second run needs --overwrite, which leaves
    no stale file; a run that fails (1) or is interrupted (130) half-way leaves the old folder
    byte for byte, with no partial folder and no lock beside it (SIGTERM counts as an interrupt)."""
    run, out = job
    assert run("--no-plots") == 0
    names = ["config.toml", "first.npz", "run.json", "second.npz", "summary.md"]
    assert sorted(os.listdir(out)) == names
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete" and record["files"] == sorted(set(names) - {"run.json"})
    assert record["semiclassical_jax_version"] == sj.__version__
    assert (out / "config.toml").read_text() == TWO_SWEEPS
    before = _snapshot(out)
    capsys.readouterr()
    assert run("--no-plots") == 2
    assert "--overwrite" in capsys.readouterr().err and _snapshot(out) == before
    (out / "stale.png").write_bytes(b"from an older run")
    assert run("--overwrite", "--no-plots") == 0
    assert sorted(os.listdir(out)) == names
    before = _snapshot(out)

    def terminated(plan, progress=False, attrs=None):
        os.kill(os.getpid(), signal.SIGTERM)  # a batch system's time limit, delivered for real

    for error, status in ((ValueError("boom"), 1), (KeyboardInterrupt(), 130), (None, 130)):
        fake = _failing_on("second", error) if error else _failing_on("second", None, terminated)
        monkeypatch.setattr(cli, "run_sweep", fake)
        capsys.readouterr()
        assert run("--overwrite", "--no-plots") == status
        err = capsys.readouterr().err.strip()
        assert "is unchanged" in err and len(err.splitlines()) == 1
        assert _snapshot(out) == before
        assert sorted(os.listdir(tmp_path)) == ["job.toml", "out"]


def test_lock_keeps_runs_apart(job, tmp_path, monkeypatch, capsys):
    """<out>.lock exists (with this pid) exactly while a run writes into its partial folder; a
    lock of a live process refuses the run, one of a dead process is reported with its rm."""
    run, out = job
    lock = tmp_path / "out.lock"
    seen = []

    def watching(plan, progress=False, attrs=None):
        seen.append((json.loads(lock.read_text())["pid"], out.exists(), os.listdir(tmp_path)))
        return _zeros(plan, progress, attrs)

    monkeypatch.setattr(cli, "run_sweep", watching)
    assert run("--no-plots") == 0 and not lock.exists()
    pid, out_existed, listing = seen[0]
    assert pid == os.getpid() and not out_existed
    assert any(name.startswith(".out.partial-") for name in listing)
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    capsys.readouterr()
    assert run("--overwrite") == 2
    assert f"another run (pid {os.getpid()}" in capsys.readouterr().err
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    assert run("--overwrite") == 2
    assert (
        f"no longer running (an interrupted run); if no other run uses it, remove it: rm {lock}"
        in (capsys.readouterr().err)
    )
    assert lock.exists()  # reported, never taken over


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)
    return str(path)


def _config(tmp, text):
    return _write(tmp / "c.toml", text)


GOOD = MODEL + GRID + SWEEP.format(name="ok")
# (id, argv from tmp_path, exit status, text the one-line error must contain). Every case fails
# before any computation (the size checks included: they refuse before allocating).
BAD_INPUTS = [
    ("run-missing-config", lambda t: ["run", str(t / "no.toml")], 2, "cannot read"),
    ("run-config-is-a-folder", lambda t: ["run", str(t)], 2, "cannot read"),
    (
        "run-not-utf8",
        lambda t: ["run", _write(t / "c.toml", b"[model]\ntype = '\xff\xfe'\n")],
        2,
        "not UTF-8 text (byte 0xff at offset 16)",
    ),
    ("run-bad-toml", lambda t: ["run", _config(t, "[model\n")], 2, "not valid TOML"),
    (
        "run-name-newline",
        lambda t: ["run", _config(t, MODEL + GRID + SWEEP.format(name="ab\\n"))],
        2,
        "sweep[0].name",
    ),
    (
        "run-name-too-long",
        lambda t: ["run", _config(t, MODEL + GRID + SWEEP.format(name="a" * 101))],
        2,
        "1 to 100 letters",
    ),
    ("run-out-is-a-file", lambda t: ["run", "--out", _write(t / "f", "x")], 2, "is a file"),
    (
        "run-out-below-a-file",
        lambda t: ["run", "--out", _write(t / "f", "x") + "/sub"],
        2,
        "is a file, not a folder",
    ),
    (
        "run-out-not-empty",
        lambda t: ["run", "--out", os.path.dirname(_write(t / "old" / "notes.txt", "x"))],
        2,
        "is not empty (1 entries); give --overwrite",
    ),
    (
        "run-overwrite-foreign",
        lambda t: [
            "run",
            "--out",
            os.path.dirname(_write(t / "mine" / "thesis.tex", "x")),
            "--overwrite",
        ],
        2,
        "not a semiclassical-jax results folder",
    ),
    ("run-out-holds-cwd", lambda t: ["run", "--out", os.getcwd()], 2, "working directory"),
    (
        "run-huge-grid",
        lambda t: ["run", _config(t, GOOD.replace("n_angle = 4", "n_angle = 100000000000"))],
        2,
        "4e+11 points of dimension 2 need about 38.4 TB, more than the",
    ),
    (
        "run-huge-axis",
        lambda t: [
            "run",
            _config(t, GOOD.replace("[0.0, 0.2]", "{ linspace = [0, 1, 10000000000000] }")),
        ],
        2,
        "sweep[0] (ok).axes.mu.linspace[2] = 10000000000000",
    ),
    (
        "run-huge-batch",
        lambda t: [
            "run",
            _config(
                t,
                GOOD.replace("[0.0, 0.2]", "{ linspace = [0, 1, 1000000] }").replace(
                    "n_angle = 4", "n_angle = 4000"
                )
                + "batch_size = 1000000\nchunk_size = 16000\n",
            ),
        ],
        2,
        # a mu axis is one pass over k (its 10^6 levels in each evaluation): batch 1
        "sweep: batch 1 x 1 position(s) x chunk 16000 k-points = 1.6e+04 integrand evaluations",
    ),
    ("chern-n-k-small", lambda t: ["chern", "--n-k", "2"], 2, "--n-k must be >= 4"),
    ("chern-n-k-huge", lambda t: ["chern", "--n-k", "1000000"], 2, "1e+12 k-points"),
    ("chern-out-is-a-file", lambda t: ["chern", "--out", _write(t / "f", "x")], 2, "is a file"),
    (
        "chern-out-not-empty",
        lambda t: ["chern", "--out", os.path.dirname(_write(t / "old" / "notes.txt", "x"))],
        2,
        "is not empty",
    ),
    ("default-config-extra", lambda t: ["default-config", "x"], 2, "unrecognized arguments"),
    ("unknown-command", lambda t: ["fly"], 2, "invalid choice"),
]


@pytest.mark.parametrize(
    ("make_argv", "status", "text"),
    [case[1:] for case in BAD_INPUTS],
    ids=[c[0] for c in BAD_INPUTS],
)
def test_bad_input_is_one_line_and_exit_status_2(
    tmp_path, monkeypatch, capsys, make_argv, status, text
):
    """Every subcommand (`--help` lists run, default-config, chern): bad input exits 2 with one
    line on stderr naming the problem (argparse's own usage errors: its two lines), writes
    nothing and leaves no lock or partial folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "run_sweep", _zeros)  # a wrongly accepted case must not compute
    argv = make_argv(tmp_path)
    before = sorted(os.listdir(tmp_path))
    try:
        got = cli.main(argv)
    except SystemExit as exit:  # argparse
        got = exit.code
        assert text in capsys.readouterr().err
    else:
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and text in lines[0], lines
        assert lines[0].startswith(f"semiclassical-jax {argv[0]}: ")
    assert got == status
    assert sorted(os.listdir(tmp_path)) == before


def test_help_lists_every_subcommand_and_documents_overwrite(capsys):
    """The subcommands of `--help` are those of BAD_INPUTS; run's help explains --overwrite."""
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    lines = capsys.readouterr().out.splitlines()
    listed = {line.split()[0] for line in lines if line.startswith("    ") and line[4] != " "}
    assert listed == {"run", "default-config", "chern"}
    assert {case[0].split("-")[0] for case in BAD_INPUTS} >= {"run", "default", "chern"}
    for command in ("run", "chern"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        assert "--overwrite" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    assert "temporary sibling folder" in " ".join(capsys.readouterr().out.split())


def test_unwritable_parent_is_refused_before_computing(tmp_path, monkeypatch, capsys):
    """A parent that takes no new file (read-only for this user; /sys for root) is refused with
    exit 2 before the Chern table is computed."""
    if os.geteuid() == 0:
        parent = "/sys"
        if not os.path.isdir(parent):
            pytest.skip("running as root without /sys: no unwritable folder to try")
    else:
        parent = str(tmp_path / "read-only")
        os.mkdir(parent, 0o500)
    monkeypatch.setattr(cli, "geometry_table", lambda n_k: pytest.fail("computed"))
    assert cli.main(["chern", "--out", os.path.join(parent, "table")]) == 2
    assert f"cannot write into {parent}" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# provenance (item 9)


def _rebuild(description):
    """The object a ``_results.describe`` record describes, from the record alone."""
    if isinstance(description, dict) and {"type", "module"} <= set(description):
        cls = getattr(importlib.import_module(description["module"]), description["type"])
        fields = {k: _rebuild(v) for k, v in description.items() if k not in ("type", "module")}
        return cls(**fields)
    if isinstance(description, dict) and set(description) == {"real", "imag"}:
        return np.asarray(description["real"]) + 1j * np.asarray(description["imag"])
    return description


def _same_values(a, b):
    """Same classes and structure, and every parameter equal (to the last bit)."""
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A real (tiny) `semiclassical-jax run`: (its output folder, its config text)."""
    folder = tmp_path_factory.mktemp("real")
    text = MODEL + GRID + SWEEP.format(name="sigma")
    (folder / "job.toml").write_text(text)
    assert (
        cli.main(["run", str(folder / "job.toml"), "--out", str(folder / "out"), "--no-plots"]) == 0
    )
    return folder / "out", text


def test_file_records_enough_to_rebuild_and_rerun(real_run):
    """From the .npz alone: the versions, the model rebuilt from its recorded parameter values
    (texture fields included) equals the config's, the grid rebuilt from its recorded arguments
    has the recorded size and SHA-256 (computed here from its points and weights), and rerunning
    the sweep with them reproduces the stored values exactly."""
    out, text = real_run
    result = sj.SweepResult.load(out / "sigma.npz")
    attrs = result.attrs
    assert attrs["config_text"] == text and attrs["config"]["name"] == "sigma"
    assert attrs["versions"]["semiclassical_jax"] == sj.__version__
    assert attrs["versions"]["jax"] == jax.__version__
    assert attrs["model"]["mass"]["amplitude"] == 0.1 and attrs["model"]["mass"]["period"] == 30.0
    model = _rebuild(attrs["model"])
    _same_values(model, build_model(load_config(text)["model"]))
    grid = build_grid(attrs["grid_arguments"], model)
    points, weights = np.asarray(grid.points), np.asarray(grid.weights)
    assert attrs["grid"]["points"] == len(weights) == 16
    assert (
        attrs["grid"]["sha256"] == hashlib.sha256(points.tobytes() + weights.tobytes()).hexdigest()
    )
    fixed = attrs["fixed"]
    rerun = sj.sweep(
        model,
        grid,
        {"mu": result.coord("mu")},
        quantity=attrs["quantity"],
        temperature=fixed["temperature"],
    )
    np.testing.assert_array_equal(rerun.values, result.values)


@pytest.mark.parametrize(
    "model",
    [
        models.KaneMele(1.0, 0.06, 0.05, 0.1),
        models.MassiveDirac(
            1.0, textures.DomainWall(0.2, 3.0, -0.1, direction=[0.6, 0.8], offset=0.05), valley=-1
        ),
        models.TightBinding(
            np.eye(2),
            np.zeros((2, 2)),
            np.array([[1.0, 0.0], [-1.0, 0.0]]),
            np.array([[[0.0, 0.5 + 0.25j], [0.1j, 0.0]], [[0.0, -0.1j], [0.5 - 0.25j, 0.0]]]),
        ),
    ],
    ids=["KaneMele", "DomainWall", "TightBinding-complex"],
)
def test_every_parameter_survives_json(model):
    """describe -> JSON text -> rebuild gives the same model, for static fields (valley), texture
    fields and complex hopping arrays alike."""
    from semiclassical_jax._results import describe

    _same_values(_rebuild(json.loads(json.dumps(describe(model)))), model)


def test_corrupt_result_files_raise_one_error_naming_the_file(real_run, tmp_path):
    """Truncated at any length, a flipped byte, a text file, an npz without metadata: ValueError
    naming the file; a missing file: FileNotFoundError."""
    good = (real_run[0] / "sigma.npz").read_bytes()
    broken = {f"cut{n}": good[:n] for n in (0, 10, len(good) // 2, len(good) - 1)}
    broken["flipped"] = (
        good[: len(good) // 3] + bytes([good[len(good) // 3] ^ 0xFF]) + good[len(good) // 3 + 1 :]
    )
    broken["text"] = b"[model]\ntype = 'QWZ'\n"
    for name, data in broken.items():
        path = tmp_path / f"{name}.npz"
        path.write_bytes(data)
        with pytest.raises(
            ValueError, match="is not a readable semiclassical_jax result file"
        ) as error:
            sj.SweepResult.load(path)
        assert str(path) in str(error.value)
    np.savez(tmp_path / "plain.npz", values=np.zeros(3))
    with pytest.raises(ValueError, match="plain.npz is not a readable"):
        sj.SweepResult.load(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError):
        sj.SweepResult.load(tmp_path / "absent.npz")


# ---------------------------------------------------------------------------------------------
# sizes before allocation (item 8)

GRID_CASES = {
    "disk": lambda: grids.disk(1.0, 64, 64, breaks=[0.3, 0.6]),
    "box": lambda: grids.box(1.0, 100),
    "brillouin_zone": lambda: grids.brillouin_zone(models.QWZ(1.0), 100),
}


@pytest.mark.parametrize("rule", GRID_CASES)
def test_grid_estimate_bounds_what_numpy_allocates(rule, monkeypatch):
    """The bytes a grid rule estimates bound the peak NumPy allocation while it builds the grid
    (tracemalloc, independent of the estimate), and are within 5x of it (measured 2.5-3.2x; the
    rest is the device copy, which tracemalloc does not see)."""
    import tracemalloc

    estimates = []
    monkeypatch.setattr(
        grids._grid, "check_memory", lambda n, what, devices=(): estimates.append(n)
    )
    GRID_CASES[rule]()  # compile-free, but warm NumPy's caches
    tracemalloc.start()
    GRID_CASES[rule]()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak <= estimates[-1] <= 5 * peak, (peak, estimates[-1])


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda: grids.disk(1.0, 10**10, 4), "disk(n_radial = 10000000000"),
        (lambda: grids.disk(1.0, 8, 10**11), "n_angle = 100000000000"),
        (lambda: grids.box(1.0, 10**6), "box(n = 1000000, dim = 2): 1e+12 points"),
        (lambda: grids.box(1e6, 100, dim=9), "box(n = 100, dim = 9): 1e+18 points"),
        (lambda: grids.brillouin_zone(models.QWZ(1.0), 10**6), "brillouin_zone(n = 1000000)"),
    ],
    ids=["n_radial", "n_angle", "box", "box-dim", "brillouin_zone"],
)
def test_huge_grids_are_refused_before_allocating(build, named):
    """The API path: ValueError naming the argument and quoting the estimate, with (tracemalloc)
    under 1 MB allocated on the way."""
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(ValueError, match="need about .* more than the .* free in") as error:
        build()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert named in str(error.value) and peak < 1e6


def test_refusal_compares_with_the_free_memory(monkeypatch):
    """The same grid passes or is refused depending on the machine's free memory alone."""
    from semiclassical_jax import _files

    monkeypatch.setattr(_files, "_host_free_memory", lambda: (1000, "test memory"))
    with pytest.raises(
        ValueError, match=r"16 points of dimension 2 need about .* 1 kB free in test memory"
    ):
        grids.disk(1.0, 4, 4)
    monkeypatch.setattr(_files, "_host_free_memory", lambda: (10**6, "test memory"))
    assert grids.disk(1.0, 4, 4).points.shape == (16, 2)


def test_sweep_working_set_is_checked_and_bounds_xla(monkeypatch):
    """A sweep too large for the machine is refused by prepare_sweep (API path; the CLI path is
    run-huge-batch above), and the per-evaluation estimate bounds what XLA's memory analysis
    reports for a compiled batch of the textured current map (the largest measured per point)."""
    import equinox as eqx

    from semiclassical_jax import _sweep

    model = models.MassiveDirac(1.0, textures.HexagonalMoire(amplitude=0.1, period=30.0))
    grid = grids.disk(5.0, 4, 4)
    kwargs = dict(
        quantity="current_map", field=[1e-3, 0.0], temperature=1e-2, tau=1.0, manifolds=[[0, 1]]
    )
    xs = np.array([[0.0, 0.0], [3.0, 1.0], [7.0, 2.0]])
    # a mu axis is one pass over k (its 10^6 levels in each evaluation): batch 1
    with pytest.raises(ValueError, match=r"batch 1 x 3 position\(s\) x chunk 1600 k-points"):
        _sweep.prepare_sweep(
            model,
            grids.disk(5.0, 4, 400),
            {"mu": np.linspace(0, 1, 10**6)},
            xs=xs,
            batch_size=10**6,
            chunk_size=1600,
            **kwargs,
        )
    n_levels = 512  # a mu axis: 512 levels in each evaluation (measured 17 kB, 3 kB for one)
    plan = _sweep.prepare_sweep(model, grid, {"mu": np.linspace(0, 0.1, n_levels)}, xs=xs, **kwargs)
    dynamic, static = eqx.partition(_sweep._batch_operands(plan), eqx.is_array)

    def batch(dynamic, values):
        operands = eqx.combine(dynamic, static)
        return jax.vmap(lambda v: _sweep._evaluate(plan, operands, v))(values)

    values = jnp.zeros((plan.batch, 1))
    analysis = jax.jit(batch).lower(dynamic, values).compile().memory_analysis()
    evaluations = plan.batch * len(xs) * plan.chunk
    assert analysis.temp_size_in_bytes <= evaluations * _sweep.evaluation_bytes(2, 2, n_levels)
