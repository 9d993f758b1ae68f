"""One calculation split over several processes (``jax.distributed``), against one process.

    python benchmarks/processes.py [--processes 1,2] [--n 600] [--write]

Issue 17, item 6. For each process count N, N local processes (CPU, one device each, gloo
collectives; N = 1 is a plain process) join with ``sj.distributed.initialize`` and run:

- ``k-integral``: the Haldane model's Hall conductivity at 11 levels of mu (T = 0.01) on an
  ``--n`` x ``--n`` Brillouin-zone grid, ``devices=jax.devices()`` (the k-grid split over the
  processes, partial sums added by ``psum``);
- ``sweep``: ``sj.sweep`` of the same over 8 values of the Haldane mass on an ``--n // 3`` grid
  (each process takes whole sweep points; the results gathered onto every process).

Each is called once to compile (the "first call" column), then timed 3 times (best reported, in
process 0). The last column is the largest deviation from the one-process values, relative to
their largest entry: only the order of the additions differs. On one machine the processes share
its cores: this measures the overhead of the collectives and the split, not a cluster.
``--write`` replaces the section "Several processes (issue 17, item 6)" of benchmarks/RESULTS.md.
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from _machine import cpu_name

HEADING = "## Several processes (issue 17, item 6)"


def _timed(call) -> tuple[float, float, object]:
    import numpy as np

    start = time.perf_counter()
    np.asarray(call())
    first = time.perf_counter() - start
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        value = np.asarray(call())
        best = min(best, time.perf_counter() - start)
    return first, best, value


def worker(n_processes: int, process_id: int, port: str, n: int, out: str) -> None:
    import numpy as np

    import semiclassical_jax as sj
    from semiclassical_jax import models

    if n_processes > 1:
        sj.distributed.initialize(f"127.0.0.1:{port}", n_processes, process_id)
    import jax

    haldane = models.Haldane(t1=1.0, t2=0.15, phi=np.pi / 2, mass=0.2)
    mus = np.linspace(-1.0, 1.0, 11)
    rows = {}
    fine, coarse = sj.grids.brillouin_zone(haldane, n), sj.grids.brillouin_zone(haldane, n // 3)
    cases = {
        "k-integral": (
            fine,
            lambda: sj.hall_conductivity(
                haldane, fine, mu=mus, temperature=0.01, devices=jax.devices()
            ),
        ),
        "sweep": (
            coarse,
            lambda: (
                sj.sweep(
                    haldane,
                    coarse,
                    {"mass": np.linspace(0.0, 0.7, 8), "mu": mus},
                    quantity="hall_conductivity",
                    temperature=0.01,
                ).values
            ),
        ),
    }
    for name, (grid, call) in cases.items():
        first, best, value = _timed(call)
        np.save(f"{out}-{name}.npy", value)
        rows[name] = {"first": first, "steady": best, "k_points": int(grid.points.shape[0])}
    if sj.distributed.is_main_process():
        print(json.dumps({"rows": rows, "devices": len(jax.devices()), "jax": jax.__version__}))


def _launch(n_processes: int, n: int, out: str) -> dict:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    environment = dict(os.environ, JAX_PLATFORMS="cpu")
    command = [sys.executable, __file__, "--worker", str(n_processes), "PID", port, str(n), out]
    processes = [
        subprocess.Popen(
            [a if a != "PID" else str(pid) for a in command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        for pid in range(n_processes)
    ]
    outputs = [process.communicate(timeout=3600) for process in processes]
    if any(process.returncode for process in processes):
        sys.exit("\n".join(stderr[-3000:] for _, stderr in outputs))
    return json.loads(outputs[0][0].strip().splitlines()[-1])


def main() -> None:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        n_processes, pid, port, n, out = args.worker
        worker(int(n_processes), int(pid), port, int(n), out)
        return
    lines = [
        f"Haldane model, 11 levels, float64, {cpu_name()}, {os.cpu_count()} cores, CPU devices "
        f"(one per process), {time.strftime('%Y-%m-%d')}",
        "",
        "| case | processes | k-points | first call (s) | steady state (s) | speed-up | "
        "max deviation from 1 process |",
        "|---|---|---|---|---|---|---|",
    ]
    base, reference = {}, {}
    for count in [int(v) for v in args.processes.split(",")]:
        out = f"/tmp/benchmark_processes_{count}"
        report = _launch(count, args.n, out)
        for name, row in report["rows"].items():
            values = np.load(f"{out}-{name}.npy")
            base.setdefault(name, row["steady"])
            reference.setdefault(name, values)
            deviation = np.abs(values - reference[name]).max() / np.abs(reference[name]).max()
            lines.append(
                f"| {name} | {count} | {row['k_points']} | {row['first']:.2f} | "
                f"{row['steady']:.3f} | {base[name] / row['steady']:.2f}x | {deviation:.1e} |"
            )
    command = "python benchmarks/processes.py " + " ".join(
        a for a in sys.argv[1:] if a != "--write"
    )
    lines += ["", f"jax {report['jax']}; command: {command.strip()}"]
    table = "\n".join(lines)
    print(table)
    if args.write:
        path = Path(__file__).with_name("RESULTS.md")
        text = path.read_text()
        intro = (
            f"{HEADING}\n\nThe same calculation in N local processes joined by "
            "`sj.distributed.initialize` (gloo collectives on CPU): a k-integral split over the "
            "processes' devices (`devices=jax.devices()`) and a sweep split by sweep points. The "
            "processes share this machine's cores (and, on the 2-core test machine, other "
            "sessions' load): the numbers show the overhead of the split and the collectives, "
            "not a cluster's speed-up, which is unmeasured (no such machine was lent). On 2 cores "
            "one process already keeps about 1.5 cores busy in either case (os.times); the "
            "k-integral still gained 1.7x from a second process, the sweep nothing (as forced "
            "devices gave nothing in 'Sweeps and device scaling (issue 5)').\n\n"
        )
        section = intro + table + "\n"
        if HEADING in text:
            pattern = re.escape(HEADING) + r".*?(?=\n## |\Z)"
            text = re.sub(pattern, lambda _: section.rstrip("\n"), text, flags=re.S)
        else:
            text = text.rstrip("\n") + "\n\n" + section
        path.write_text(text.rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
