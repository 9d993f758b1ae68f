"""Several processes, one calculation: ``jax.distributed`` for sweeps and k-integrals.

One process per node (or per GPU) runs the same script; after :func:`initialize`, ``jax.devices()``
lists the devices of every process, and

* :func:`semiclassical_jax.sweep` (and ``semiclassical-jax run --distributed``) splits its sweep
  points over all of them (or, for fewer sweep points than devices, each point's k-grid);
* the transport functions (``current``, ``hall_conductivity``, ...) split their k-grid over the
  devices given as ``devices=`` (e.g. ``jax.devices()``).

The partial results are combined by XLA collectives (``psum``, ``all_gather``; on CPU through gloo)
so that every process ends with the whole result, equal to one process's up to the order of the
additions. Files are written by process 0 only (:func:`is_main_process`): ``SweepResult.save`` and
the command line's output folder.

Launch: under SLURM ``srun python my_sweep.py`` with one task per GPU (jax reads the node list,
process count and rank from SLURM's variables and gives each task the GPU numbered by its
``SLURM_LOCALID``), one task per node on CPU nodes; on one machine, for a test, start N copies
with ``initialize("127.0.0.1:PORT", N, i)``. README: "Several processes or hosts".
"""

from typing import Any, NamedTuple

import jax
import numpy as np


class ProcessInfo(NamedTuple):
    """Where this process stands: its index (0 writes files), the number of processes, its own
    devices and all devices (of every process).

    Examples:
        >>> from semiclassical_jax import distributed
        >>> info = distributed.process_info()
        >>> info.process_index, info.process_count
        (0, 1)
    """

    process_index: int
    process_count: int
    local_devices: tuple[Any, ...]
    devices: tuple[Any, ...]


def process_info() -> ProcessInfo:
    """The :class:`ProcessInfo` of this process (one process: index 0 of 1).

    Examples:
        >>> from semiclassical_jax import distributed
        >>> distributed.process_info().process_count
        1
    """
    return ProcessInfo(
        jax.process_index(),
        jax.process_count(),
        tuple(jax.local_devices()),
        tuple(jax.devices()),
    )


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_ids: int | list[int] | None = None,
    initialization_timeout: int = 300,
) -> ProcessInfo:
    """Join a run of several processes (``jax.distributed.initialize``); call it in every process
    before any JAX computation.

    Arguments omitted are detected by jax from the cluster: SLURM (``srun``), Open MPI
    (``mpirun``), Kubernetes and Cloud TPU; ``coordinator_address`` also from the environment
    variable ``JAX_COORDINATOR_ADDRESS``. Without a cluster give all three:
    ``coordinator_address`` (``"host:port"`` of process 0, reachable from all), ``num_processes``
    and ``process_id`` (0 .. num_processes - 1). ``local_device_ids``: the GPUs this process
    uses (under SLURM one per task by default).

    On CPU the processes exchange partial sums through gloo (jax's default CPU collectives,
    ``jax_cpu_collectives_implementation``; set here if unset). A second call returns the
    :class:`ProcessInfo` without initialising again.

    Examples:
        Not run here (it needs a cluster, or one process per ``process_id``):

        >>> from semiclassical_jax import distributed
        >>> info = distributed.initialize()  # doctest: +SKIP
        >>> # under `srun -n 4`: detected from SLURM; elsewhere give all three arguments
        >>> info = distributed.initialize("10.0.0.1:1234", 4, 0)  # doctest: +SKIP
        >>> info.process_count  # doctest: +SKIP
        4
    """
    if jax.distributed.is_initialized():
        return process_info()
    if not jax.config.jax_cpu_collectives_implementation:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address,
            num_processes,
            process_id,
            local_device_ids=local_device_ids,
            initialization_timeout=initialization_timeout,
        )
    except ValueError as error:
        if coordinator_address is None or num_processes is None or process_id is None:
            raise ValueError(
                f"initialize: {error} No cluster was detected (SLURM, Open MPI, ...): give "
                "coordinator_address='host:port' (process 0's), num_processes and process_id"
            ) from error
        raise
    return process_info()


def is_main_process() -> bool:
    """True in process 0, the one that writes files (always true in a single process, where it
    does not start JAX's backend).

    Examples:
        >>> from semiclassical_jax import distributed
        >>> distributed.is_main_process()
        True
    """
    return not jax.distributed.is_initialized() or jax.process_index() == 0


def process_local(tree: Any) -> Any:
    """``tree`` with every concrete array that spans devices of other processes, and holds the
    same value on all of them (replicated, as the results of a split k-integral or sweep are),
    replaced by this process's own copy: an ordinary array that NumPy and eager jnp operations
    take without collectives. Everything else (tracers, local arrays, other leaves) is returned
    as it is.

    Examples:
        >>> import numpy as np
        >>> from semiclassical_jax import distributed
        >>> print(distributed.process_local({"a": np.ones(2)}))
        {'a': array([1., 1.])}
    """

    def local(leaf: Any) -> Any:
        if (
            isinstance(leaf, jax.Array)
            and not isinstance(leaf, jax.core.Tracer)
            and not leaf.is_fully_addressable
            and leaf.is_fully_replicated
        ):
            return leaf.addressable_data(0)
        return leaf

    return jax.tree_util.tree_map(local, tree)


def broadcast_from_main(flag: bool) -> bool:
    """Process 0's ``flag`` in every process (a collective: every process must call it); in a
    single process the flag itself. The command line uses it so that all processes stop together
    when process 0 cannot write its output.

    Examples:
        >>> from semiclassical_jax import distributed
        >>> distributed.broadcast_from_main(True)
        True
    """
    if not jax.distributed.is_initialized() or jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.asarray(bool(flag))))


__all__ = [
    "ProcessInfo",
    "broadcast_from_main",
    "initialize",
    "is_main_process",
    "process_info",
    "process_local",
]
