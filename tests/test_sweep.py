"""Sweeps: labelled results equal to point-by-point calls, closed forms along a parameter axis,
files that read back, errors that name the argument, and sharding that does not change numbers."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import grids, models, textures

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _small_disk(radius=8.0):
    return grids.disk(radius, 6, 8, breaks=np.geomspace(1e-3, radius, 12)[:-1])


def test_current_sweep_equals_pointwise_calls():
    """Every sweep point equals sj.current at the same arguments (1e-12 relative): same integrand,
    batched differently. Axes in the given order, then the component."""
    model = models.MassiveDirac(1.0, textures.HexagonalMoire(amplitude=0.1, period=30.0))
    disk = _small_disk()
    x = jnp.array([4.0, 1.0])
    strengths, mus = np.array([1e-3, 5e-3, 2e-2]), np.array([-0.02, 0.15])
    result = sj.sweep(
        model,
        disk,
        {"field_strength": strengths, "mu": mus},
        field_direction=[1.0, 1.0],
        temperature=5e-3,
        tau=2.0,
        manifolds=[[0, 1]],
        x=x,
        batch_size=4,
    )
    assert result.dims == ("field_strength", "mu", "component")
    assert result.shape == (3, 2, 2)
    np.testing.assert_array_equal(result.coord("mu"), mus)
    for i, e in enumerate(strengths):
        for j, mu in enumerate(mus):
            field = e * jnp.array([1.0, 1.0]) / np.sqrt(2)
            expected = sj.current(
                model, disk, field=field, mu=mu, temperature=5e-3, tau=2.0, manifolds=[[0, 1]], x=x
            )
            np.testing.assert_allclose(result.values[i, j], expected, rtol=1e-12, atol=1e-17)


def test_parameter_axes_follow_the_dirac_closed_form():
    """sigma_xy of a massive Dirac valley with mu in the gap on a disk of radius R:
    -(1 / 4 pi) (1 - |Delta| / sqrt(v^2 R^2 + Delta^2)), swept over a texture amplitude (the mass at
    x = 0) and the velocity; 1e-6 absolute in 4 pi sigma."""
    radius = 10.0
    model = models.MassiveDirac(1.0, textures.HexagonalMoire(amplitude=0.1, period=30.0))
    grid = grids.disk(radius, 8, 4, breaks=np.geomspace(1e-3, radius, 24)[:-1])
    amplitudes, velocities = np.array([0.05, 0.1, 0.2]), np.array([0.8, 1.3])
    result = sj.sweep(
        model,
        grid,
        {"mass.amplitude": amplitudes, "velocity": velocities},
        quantity="hall_conductivity",
        mu=0.0,
        temperature=0.0,
    )
    assert result.dims == ("mass.amplitude", "velocity", "component", "field_component")
    delta, v = amplitudes[:, None], velocities[None, :]
    expected = -(1 - delta / np.sqrt(v**2 * radius**2 + delta**2))
    np.testing.assert_allclose(4 * np.pi * result.values[..., 0, 1], expected, atol=1e-6)
    np.testing.assert_allclose(result.values[..., 1, 0], -result.values[..., 0, 1], atol=1e-14)


def test_current_map_sweep_labels_and_file_round_trip(tmp_path):
    model = models.MassiveDirac(1.0, textures.HexagonalMoire(amplitude=0.1, period=30.0))
    xs = np.array([[0.0, 0.0], [5.0, 3.0], [10.0, -2.0]])
    result = sj.sweep(
        model,
        _small_disk(4.0),
        {"tau": [0.5, 1.0]},
        quantity="current_map",
        xs=xs,
        field=[1e-3, 0.0],
        mu=0.0,
        temperature=1e-2,
        manifolds=[[0, 1]],
        attrs={"note": "test"},
    )
    assert result.dims == ("tau", "position", "component")
    assert result.shape == (2, 3, 2)
    np.testing.assert_array_equal(result.coord("position_xy"), xs)
    expected = sj.current_map(
        model,
        _small_disk(4.0),
        xs,
        field=jnp.array([1e-3, 0.0]),
        mu=0.0,
        temperature=1e-2,
        tau=1.0,
        manifolds=[[0, 1]],
    )
    np.testing.assert_allclose(result.values[1], expected, rtol=1e-12, atol=1e-17)
    path = result.save(tmp_path / "map")
    assert path.endswith("map.npz") and sorted(os.listdir(tmp_path)) == [
        "map.npz"
    ]  # no temporary left
    back = sj.SweepResult.load(path)
    assert back.name == "current_map" and back.dims == result.dims
    np.testing.assert_array_equal(back.values, result.values)
    np.testing.assert_array_equal(back.coord("component"), ["x", "y"])
    assert back.attrs["note"] == "test" and back.attrs["theory"] == "msct"
    assert back.attrs["fixed"]["field"] == [1e-3, 0.0] and back.attrs["manifolds"] == [[0, 1]]
    assert back.units["tau"] == "hbar / energy"
    json.dumps(back.attrs)  # metadata is plain JSON
    assert back.isel(tau=0).dims == ("position", "component")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"axes": {"chemical_potential": [0.0]}}, "unknown axis 'chemical_potential'"),
        ({"axes": {"mu": [0.0]}, "mu": 0.0}, "mu is both an axis and a fixed argument"),
        ({"axes": {"temperature": [0.01, -0.01]}, "temperature": None}, "temperature must be > 0"),
        ({"axes": {"tau": [1.0, 0.0]}, "tau": None}, "tau must be > 0"),
        ({"axes": {"mass": [0.1]}}, "'mass' of MassiveDirac is not a real scalar"),
        ({"axes": {"mu": [0.0, np.nan]}, "mu": None}, "axes['mu'] must be finite"),
        ({"axes": {"field_strength": [1e-3]}, "field": None}, "needs field_direction"),
        ({"axes": {"tau": [1.0]}, "tau": None, "field": None}, "needs field="),
        (
            {"axes": {"field_x": [1e-3]}, "field": None, "quantity": "hall_conductivity"},
            "takes no field",
        ),
        (
            {"axes": {"mu": [0.0]}, "mu": None, "quantity": "hall_conductivity"},
            "drop field / field_direction",
        ),
        ({"axes": {"tau": [1.0]}, "tau": None, "manifolds": [[0], [0]]}, "manifolds[1] overlaps"),
        (
            {"axes": {"tau": [1.0]}, "tau": None, "batch_size": 0},
            "batch_size must be an integer >= 1",
        ),
    ],
)
def test_bad_sweeps_name_the_argument(arguments, message):
    model = models.MassiveDirac(1.0, textures.HexagonalMoire(amplitude=0.1, period=30.0))
    base = {"quantity": "current", "field": [1e-3, 0.0], "mu": 0.0, "temperature": 0.01, "tau": 1.0}
    base.update(arguments)
    axes = base.pop("axes")
    base = {key: value for key, value in base.items() if value is not None}
    if base.get("quantity") == "hall_conductivity":
        base.pop("tau", None)
    with pytest.raises(ValueError) as error:
        sj.sweep(model, _small_disk(), axes, **base)
    assert message in str(error.value)


def test_progress_bar_reports_every_batch(capsys):
    sj.sweep(
        models.MassiveDirac(1.0, 0.1),
        _small_disk(),
        {"mass": np.linspace(0.05, 0.15, 5)},  # a mu axis would be one pass (no batches)
        quantity="hall_conductivity",
        mu=0.0,
        temperature=0.0,
        batch_size=2,
        progress="hall",
    )
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("hall [")]
    assert [line.split("]")[1].split()[0] for line in lines] == ["1/3", "2/3", "3/3"]
    assert "ETA" in lines[-1]


SHARDED = textwrap.dedent(
    """
    import jax, numpy as np
    import semiclassical_jax as sj
    from semiclassical_jax import grids, models, textures
    assert len(jax.devices()) == 4, jax.devices()
    model = models.MassiveDirac(1.0, textures.HexagonalMoire(amplitude=0.1, period=30.0))
    grid = grids.disk(6.0, 6, 8, breaks=np.geomspace(1e-3, 6.0, 10)[:-1])
    kwargs = dict(quantity="current_map", xs=np.array([[0.0, 0.0], [7.0, 3.0]]), field_direction=[0.3, 1.0],
                  temperature=1e-2, tau=1.0, manifolds=[[0, 1]], batch_size=2)
    axes = {"field_strength": np.geomspace(1e-4, 3e-2, 7), "mu": [-0.01, 0.0, 0.12]}
    sharded = sj.sweep(model, grid, axes, **kwargs)
    single = sj.sweep(model, grid, axes, devices=jax.devices()[:1], **kwargs)
    assert len(sharded.attrs["devices"]) == 4 and len(single.attrs["devices"]) == 1
    scale = np.abs(single.values).max()
    print("MAXDIFF", np.abs(sharded.values - single.values).max() / scale)
    # evolve's batch call over the same 4 devices (5 members, chunks of 1: 3 padded slots)
    import diffrax
    kys, es = np.array([0.0, 0.1, -0.2, 0.3, 0.15]), np.array([1.0, 0.5, 1.0, 2.0, 0.5])
    batch = sj.evolve(models.MassiveDirac(1.0, 0.3), None, np.stack([np.full(5, -10.0), kys], -1),
                      t1=20.0 / es, field=np.stack([-es, 0 * es], -1), band=0, solver=diffrax.Heun(),
                      rtol=1e-6, atol=1e-6, chunk_size=1)
    lz = np.exp(-np.pi * (0.09 + kys**2) / es)
    print("LZ", np.abs(batch.populations[:, -1, 1] - lz).max())
    print("KEND", np.abs(batch.k[:, -1] - np.stack([np.full(5, 10.0), kys], -1)).max())
    """
)


@pytest.mark.timeout(600)
def test_sharded_sweep_equals_single_device():
    """4 forced CPU devices (XLA_FLAGS), 21 sweep points (padded to 24): equal to 1e-12 relative.
    The same devices run a batch of ``evolve`` (issue 19): every member back in its place, on its
    Landau-Zener value exp(-pi (Delta^2 + ky^2) / E) (1e-3; Heun at rtol 1e-6, finite sweep) and
    at k(t1) = (10, ky) exactly (1e-10)."""
    environment = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu"
    )
    completed = subprocess.run(
        [sys.executable, "-c", SHARDED],
        capture_output=True,
        text=True,
        timeout=600,
        env=environment,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    difference = float(completed.stdout.split("MAXDIFF")[1].split()[0])
    assert difference < 1e-12
    assert float(completed.stdout.split("LZ")[1].split()[0]) < 1e-3
    assert float(completed.stdout.split("KEND")[1].split()[0]) < 1e-10
