"""Data parallelism on one host: a device mesh with a ``data`` axis (batch
rows) and a ``model`` axis (size 1; named so that shardings can later split
parameters too).

Parameters, optimizer state and the teacher's are replicated on every device
of the mesh; every batch, and every per-row field of the teacher's targets,
is split by rows over ``data``. The compiled step is then the same program
partitioned by XLA: each device computes its rows' forward and backward, and
the gradient is all-reduced before the (replicated) update. ``train.batch_size``
is the global batch. With one device on the data axis nothing is placed and
the run is exactly the single-device one.

Axes are ``Auto`` (XLA's sharding propagation): jax's explicit axes would ask
every gather (the embedding lookup) for an output sharding.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxkd.methods import GLOBAL

AXES = ("data", "model")


class Placement:
    """Where a run's arrays live: nowhere in particular (one device), or on a
    mesh (see the module docstring)."""

    def __init__(self, data: int = 1, model: int = 1):
        available = jax.device_count()
        data = data or available
        if model != 1:
            raise ValueError(f"mesh.model must be 1 (model parallelism is not built yet); got {model}")
        if data > available:
            raise ValueError(
                f"mesh.data = {data} devices, but {available} {'is' if available == 1 else 'are'} available "
                f"({jax.devices()[0].platform}); use --config.mesh.data=0 for all of them"
            )
        self.data = data
        self.mesh = None
        if data > 1:
            devices = np.asarray(jax.devices()[:data]).reshape(data, 1)
            self.mesh = jax.sharding.Mesh(devices, AXES, axis_types=(jax.sharding.AxisType.Auto,) * 2)

    def describe(self) -> dict:
        """For results.json: devices, processes and axis sizes."""
        return {"devices": self.data, "processes": jax.process_count(), "axes": {"data": self.data, "model": 1}}

    def check_batch(self, name: str, size: int) -> None:
        if size % self.data:
            raise ValueError(f"{name} = {size} is not divisible by the {self.data} devices of the data axis (mesh.data)")

    def replicate(self, tree):
        """``tree`` on every device of the mesh (unchanged without one)."""
        if self.mesh is None:
            return tree
        return jax.device_put(tree, NamedSharding(self.mesh, P()))

    def rows(self, tree):
        """Every array of ``tree`` split by its first axis (batch rows) over
        ``data`` (unchanged without a mesh)."""
        if self.mesh is None:
            return tree
        return jax.device_put(tree, NamedSharding(self.mesh, P("data")))

    def targets(self, targets: Any):
        """A method's teacher targets: per-row fields split like the batch,
        ``GLOBAL`` fields (the teacher's CRF parameters) replicated."""
        if self.mesh is None or not hasattr(targets, "LAYOUT"):
            return targets
        fields = {
            name: self.replicate(value) if layout == GLOBAL else self.rows(value)
            for name, layout, value in zip(targets._fields, targets.LAYOUT, targets)
        }
        return type(targets)(**fields)
