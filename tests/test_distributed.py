"""Several processes (issue 17, item 6): two local processes joined by ``jax.distributed`` (CPU
devices, gloo collectives) give the one-process result, and only process 0 writes files.

One launch of two processes (``WORKER``) computes, in each process:
* a sweep with more points than devices (each device takes whole sweep points; split "sweep"),
* a sweep with one batched point (a ``mu`` axis: each point's k-grid is split; split "k"),
* ``hall_conductivity`` with ``devices=jax.devices()`` (the k-grid split over both processes),
* the error of a gap that closes on a grid point (the diagnostics merged across processes),
* ``evolve`` on a batch of five trajectories with ``devices=jax.devices()`` (dealt over both),
then runs ``semiclassical-jax run`` with the same sweep, once into a folder that process 0 must
refuse (every process exits 2) and once for real. This process computes the same on one device
and compares: 1e-12 relative (only the order of the additions differs).
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

import semiclassical_jax as sj
from semiclassical_jax import models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTOL = 1e-12
N_K = 9  # odd: the Monkhorst-Pack grid holds k = (pi, pi), where QWZ(m = 2) closes its gap
MASSES = [-1.0, 0.5, 1.5]
MUS = [-0.5, 0.0, 0.7]
ROLL = 30  # moves k = (pi, pi) (index 40) to index 70, the second half of the grid
# A batch of 5 Landau-Zener sweeps (ky from -0.2 to 0.2), dealt over the devices of both processes
K0_BATCH = [[-3.0, ky] for ky in np.linspace(-0.2, 0.2, 5).tolist()]
CONFIG = f"""
[model]
type = "QWZ"
m = -1.0

[grid]
type = "brillouin_zone"
n = {N_K}

[[sweep]]
name = "by_mass"
quantity = "hall_conductivity"
mu = 0.0
temperature = 0.0
axes.m = {MASSES}
"""

WORKER = textwrap.dedent(
    f"""
    import json, sys, numpy as np
    import semiclassical_jax as sj
    from semiclassical_jax import cli, models

    port, pid, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    try:  # no cluster in the environment and no arguments: a clear error, nothing started
        sj.distributed.initialize()
    except ValueError as error:
        no_cluster = str(error)
    address = f"127.0.0.1:{{port}}"
    info = sj.distributed.initialize(address, 2, pid)
    import jax

    qwz = models.QWZ(-1.0)
    bz = sj.grids.brillouin_zone(qwz, {N_K})
    by_mass = sj.sweep(qwz, bz, {{"m": {MASSES}}}, quantity="hall_conductivity", mu=0.0,
                       temperature=0.0)
    by_mu = sj.sweep(qwz, bz, {{"mu": {MUS}}}, quantity="current", field=[0.0, 0.01],
                     temperature=0.1, tau=3.0, theory="ssct")
    sigma = sj.hall_conductivity(qwz, bz, mu=np.array({MUS}), temperature=0.1,
                                 devices=jax.devices())
    try:  # k = (pi, pi) at index 70 of 81: in process 1's share
        rolled = sj.grids.KGrid(np.roll(bz.points, {ROLL}, axis=0), bz.weights)
        sj.hall_conductivity(models.QWZ(2.0), rolled, mu=0.0, temperature=0.0,
                             devices=jax.devices())
        gap = "no error"
    except ValueError as error:
        gap = str(error)
    batch = sj.evolve(models.MassiveDirac(1.0, 0.3), None, {K0_BATCH}, t1=6.0, field=[-1.0, 0.0],
                      band=0, rtol=1e-9, atol=1e-9, chunk_size=2, devices=jax.devices())
    upper = np.asarray(sj.distributed.process_local(batch.populations))[:, -1, 1]
    by_mass.save(f"{{out}}/api/by_mass-{{pid}}.npz")  # process 0 writes, process 1 does not
    np.savez(f"{{out}}/values-{{pid}}.npz", by_mass=by_mass.values, by_mu=by_mu.values,
             sigma=np.asarray(sigma), upper=upper)
    flags = ["--no-plots", "--coordinator", address, "--num-processes", "2", "--process-id",
             str(pid)]
    refused = cli.main(["run", f"{{out}}/config.toml", "--out", f"{{out}}/busy", *flags])
    status = cli.main(["run", f"{{out}}/config.toml", "--out", f"{{out}}/run", *flags])
    print("REPORT" + json.dumps({{
        "processes": info.process_count, "devices": len(info.devices),
        "local": len(info.local_devices), "splits": [by_mass.attrs["split"], by_mu.attrs["split"]],
        "no_cluster": no_cluster, "gap": gap, "refused": refused, "status": status}}), flush=True)
    """
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _launch(out: str) -> tuple[list[subprocess.CompletedProcess], float]:
    """Run WORKER as processes 0 and 1 (CPU, one device each, no cluster variables); their
    results and the wall time."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLURM_", "OMPI_", "PMI_", "JAX_COORDINATOR"))
    }
    environment.update(JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
    environment["XLA_FLAGS"] = " ".join(
        flag
        for flag in environment.get("XLA_FLAGS", "").split()
        if "force_host_platform_device_count" not in flag
    )
    port = str(_free_port())
    start = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, port, str(pid), out],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
            cwd=out,
        )
        for pid in (0, 1)
    ]
    done = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=180)
            done.append(
                subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
            )
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    return done, time.perf_counter() - start


def _relative(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.timeout(300)
def test_two_processes_give_the_single_process_result(tmp_path):
    out = str(tmp_path)
    with open(os.path.join(out, "config.toml"), "w") as stream:
        stream.write(CONFIG)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("not a results folder")
    runs, seconds = _launch(out)
    for pid, run in enumerate(runs):
        assert run.returncode == 0, f"process {pid}: {run.stderr[-3000:]}"
    reports = [json.loads(run.stdout.split("REPORT")[1]) for run in runs]

    # the same calculation in this process, on one device
    qwz = models.QWZ(-1.0)
    bz = sj.grids.brillouin_zone(qwz, N_K)
    device = jax.devices()[:1]
    by_mass = sj.sweep(
        qwz,
        bz,
        {"m": MASSES},
        quantity="hall_conductivity",
        mu=0.0,
        temperature=0.0,
        devices=device,
    )
    by_mu = sj.sweep(
        qwz,
        bz,
        {"mu": MUS},
        quantity="current",
        field=[0.0, 0.01],
        temperature=0.1,
        tau=3.0,
        theory="ssct",
        devices=device,
    )
    sigma = sj.hall_conductivity(qwz, bz, mu=np.array(MUS), temperature=0.1)
    rolled = sj.grids.KGrid(np.roll(bz.points, ROLL, axis=0), bz.weights)
    with pytest.raises(ValueError, match=r"k=\[3.14159265 3.14159265\]") as gap:
        sj.hall_conductivity(models.QWZ(2.0), rolled, mu=0.0, temperature=0.0)
    batch = sj.evolve(
        models.MassiveDirac(1.0, 0.3), None, np.array(K0_BATCH), t1=6.0, field=[-1.0, 0.0],
        band=0, rtol=1e-9, atol=1e-9, chunk_size=2, devices=device,
    )  # fmt: skip
    expected = {
        "by_mass": by_mass.values,
        "by_mu": by_mu.values,
        "sigma": np.asarray(sigma),
        "upper": np.asarray(batch.populations)[:, -1, 1],
    }
    differences = {}
    for pid in (0, 1):
        with np.load(os.path.join(out, f"values-{pid}.npz")) as values:
            for name, reference in expected.items():
                differences[f"{name}, process {pid}"] = _relative(values[name], reference)
    print(f"two processes: {seconds:.1f} s wall; relative differences {differences}")
    assert max(differences.values()) < RTOL, differences

    for report in reports:
        assert (report["processes"], report["devices"], report["local"]) == (2, 2, 1), report
        assert report["splits"] == ["sweep", "k"], report
        assert "No cluster was detected" in report["no_cluster"], report["no_cluster"]
        # the gap's error names the same point and bands as on one device
        assert report["gap"] == str(gap.value), report["gap"]
        assert (report["refused"], report["status"]) == (2, 0), report

    # files: written once, by process 0, complete
    assert sorted(os.listdir(os.path.join(out, "api"))) == ["by_mass-0.npz"]
    saved = sj.SweepResult.load(os.path.join(out, "api", "by_mass-0.npz"))
    assert saved.attrs["processes"] == 2 and len(saved.attrs["devices"]) == 2
    assert sorted(os.listdir(busy)) == ["notes.txt"]
    run_files = sorted(os.listdir(os.path.join(out, "run")))
    assert run_files == ["by_mass.npz", "config.toml", "run.json", "summary.md"], run_files
    from_cli = sj.SweepResult.load(os.path.join(out, "run", "by_mass.npz"))
    assert _relative(from_cli.values, by_mass.values) < RTOL
    stray = [n for n in os.listdir(out) if n.startswith(".") or n.endswith(".lock")]
    assert not stray, stray
    # process 0 prints the run; process 1 only computes; both name the refused folder
    assert "done in" in runs[0].stdout and "done in" not in runs[1].stdout
    assert all("busy is not empty" in run.stderr for run in runs[:1])
    assert "process 0 cannot write it" in runs[1].stderr


def test_devices_argument_is_checked():
    qwz = models.QWZ(-1.0)
    bz = sj.grids.brillouin_zone(qwz, 4)
    for bad, message in (([], "at least one device"), ([1], "must hold jax devices")):
        with pytest.raises(ValueError, match=message):
            sj.hall_conductivity(qwz, bz, mu=0.0, temperature=0.0, devices=bad)
    twice = jax.devices()[:1] * 2
    with pytest.raises(ValueError, match="names a device twice"):
        sj.sweep(
            qwz, bz, {"mu": [0.0]}, quantity="hall_conductivity", temperature=0.0, devices=twice
        )


def test_one_process_is_the_main_one_without_starting_anything():
    assert sj.distributed.is_main_process()
    assert sj.distributed.broadcast_from_main(False) is False
    info = sj.distributed.process_info()
    assert (info.process_index, info.process_count) == (0, 1)
