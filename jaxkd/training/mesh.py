"""Data parallelism: a device mesh with a ``data`` axis (batch rows) and a
``model`` axis (size 1; named so that shardings can later split parameters
too), over the devices of one process or of several (``jax.distributed``).

Parameters, optimizer state, the teacher's and its cached targets' tables
are replicated on every device of the mesh; every batch, and the teacher's
targets of a batch (gathered from those tables by row ids), is split by rows
over ``data``. The compiled step is then the same program
partitioned by XLA: each device computes its rows' forward and backward, and
the gradient is all-reduced before the (replicated) update. ``train.batch_size``
is the global batch. With one device on the data axis nothing is placed and
the run is exactly the single-device one.

Axes are ``Auto`` (XLA's sharding propagation): jax's explicit axes would ask
every gather (the embedding lookup) for an output sharding.

With several processes every process runs the same program on the same data
in the same order (the batch order is a function of the seed and the epoch).
Each holds the whole host batch and gives the mesh only the rows of its own
devices (``jax.make_array_from_callback``); what comes back to the host (tags,
the teacher's cached targets, the head fit's features) is gathered from every
process (:meth:`Placement.to_host`), so each word is scored once and every
process sees the same values. Only process 0 writes files and logs.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

AXES = ("data", "model")


class Placement:
    """Where a run's arrays live: nowhere in particular (one device), or on a
    mesh (see the module docstring)."""

    def __init__(self, data: int = 1, model: int = 1):
        available = jax.device_count()  # of every process
        data = data or available
        if model != 1:
            raise ValueError(f"mesh.model must be 1 (model parallelism is not built yet); got {model}")
        if data > available:
            raise ValueError(
                f"mesh.data = {data} devices, but {available} {'is' if available == 1 else 'are'} available "
                f"({jax.devices()[0].platform}); use --config.mesh.data=0 for all of them"
            )
        if jax.process_count() > 1 and data != available:
            raise ValueError(
                f"mesh.data = {data}, but the {jax.process_count()} processes have {available} devices: with several "
                "processes the data axis spans all of them (--config.mesh.data=0)"
            )
        self.data = data
        self.mesh = None
        self.processes = jax.process_count()
        if data > 1:
            devices = np.asarray(jax.devices()[:data]).reshape(data, 1)
            self.mesh = jax.sharding.Mesh(devices, AXES, axis_types=(jax.sharding.AxisType.Auto,) * 2)

    def describe(self) -> dict:
        """For results.json: devices, processes and axis sizes."""
        return {"devices": self.data, "processes": jax.process_count(), "axes": {"data": self.data, "model": 1}}

    def check_batch(self, name: str, size: int) -> None:
        if size % self.data:
            raise ValueError(
                f"{name} = {size} is not divisible by the {self.data} devices of the data axis (mesh.data)"
            )

    def replicate(self, tree):
        """``tree`` on every device of the mesh (without one: on the default device)."""
        if self.mesh is None:
            return jax.device_put(tree)
        return self._put(tree, NamedSharding(self.mesh, P()))

    def rows(self, tree):
        """Every array of ``tree`` split by its first axis (batch rows) over
        ``data`` (unchanged without a mesh)."""
        if self.mesh is None:
            return tree
        return self._put(tree, NamedSharding(self.mesh, P("data")))

    def _put(self, tree, sharding):
        if self.processes == 1:
            return jax.device_put(tree, sharding)

        def put(leaf):
            if isinstance(leaf, jax.Array) and leaf.sharding == sharding:
                return leaf
            if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):  # dropout keys: placed as their bits
                return jax.random.wrap_key_data(put(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))
            host = np.asarray(leaf)  # the same on every process
            return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

        return jax.tree.map(put, tree)

    def to_host(self, tree):
        """``tree``'s arrays as numpy arrays, whole (gathered from every
        process where they are split over several)."""
        if self.processes == 1:
            return jax.device_get(tree)
        return jax.tree.map(lambda x: np.asarray(multihost_utils.process_allgather(x, tiled=True)), tree)


def initialize_processes(coordinator_address: str | None, num_processes: int | None, process_id: int | None) -> None:
    """Starts jax's multi-process runtime (before any other JAX work): with
    the three arguments, or, all None, from the cluster's environment (Slurm,
    Open MPI, TPU pods). On CPUs the collectives go through gloo."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
    )


def is_main_process() -> bool:
    """Process 0: the one that writes files and logs."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Waits for every process (nothing with one)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)
