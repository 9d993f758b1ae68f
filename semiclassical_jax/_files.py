"""Files and the machine they are written on: atomic writes, free memory.

* :func:`write_atomically`: a result file either exists complete or not at all.
* :func:`free_memory`: how many bytes the host (and each accelerator) can still allocate, for the
  size checks made before a grid or a sweep allocates anything.
"""

import os
import tempfile
from collections.abc import Callable, Sequence
from typing import IO, Any

MEMINFO = "/proc/meminfo"
CGROUP = "/sys/fs/cgroup"


def write_atomically(path: str, write: Callable[[IO], None], *, binary: bool = False) -> str:
    """Call ``write(stream)`` on a temporary file next to ``path``, then rename it to ``path``.

    An exception (or an interrupt) removes the temporary file, so no partial ``path`` is left. The
    file gets the usual permissions (0o666 less the umask), not mkstemp's 0o600.
    """
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=directory, prefix=".tmp-", suffix=os.path.basename(path)
    )
    try:
        with os.fdopen(handle, "wb" if binary else "w") as stream:
            write(stream)
        os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def current_umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _read_number(path: str) -> int | None:
    """The integer in a one-line file (a cgroup limit), None if absent or "max"."""
    try:
        with open(path) as stream:
            text = stream.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _host_free_memory() -> tuple[int, str] | None:
    """(bytes, where) the host can still allocate: MemAvailable of /proc/meminfo (else
    os.sysconf's available pages), less if a cgroup v2 memory limit (a container) is tighter."""
    free = None
    try:
        with open(MEMINFO) as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    free = (
                        int(line.split()[1]) * 1024,
                        "host memory (MemAvailable, /proc/meminfo)",
                    )
    except (OSError, ValueError, IndexError):
        pass
    if free is None:
        try:
            pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            free = (pages, "host memory (os.sysconf available pages)")
        except (ValueError, OSError, AttributeError):
            return None
    limit = _read_number(os.path.join(CGROUP, "memory.max"))
    used = _read_number(os.path.join(CGROUP, "memory.current"))
    if limit is not None and used is not None and limit - used < free[0]:
        free = (max(limit - used, 0), "container memory (cgroup memory.max - memory.current)")
    return free


def _device_free_memory(device: Any) -> tuple[int, str] | None:
    """(bytes, where) free on an accelerator that reports memory stats (GPU, TPU), else None."""
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - a backend without stats raises various errors
        return None
    if not stats or "bytes_limit" not in stats:
        return None
    free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    return free, f"memory of {device} (jax memory_stats)"


def free_memory(devices: Sequence[Any] = ()) -> list[tuple[int, str]]:
    """[(bytes, where)] that can still be allocated: the host first, then each of ``devices`` that
    reports its memory (CPU devices share the host's and report nothing). Empty if unknown."""
    found = [_host_free_memory(), *(_device_free_memory(device) for device in devices)]
    return [entry for entry in found if entry is not None]
