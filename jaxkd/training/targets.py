"""Teacher targets for training batches: computed per batch, or once for the
whole training set and cached (the paper's step 2; the default).

The cache is keyed by row (sentence index, word offset) and stored as tables,
one per batch width W: each per-row field of the method's targets type
(``LAYOUT``, :mod:`jaxkd.methods`) is one array ``[R_W + 1, ...]`` over the
R_W rows of that width (row R_W is zeros, for padding rows), zeros past each
row's words. For ``efficient`` that is the teacher's emissions (W x N per row)
plus its transitions/start/end once, never the W x N x N sub-structure tensor;
for ``kbest`` the K paths and their weights; for ``posterior`` the unary
marginals; for ``structkd`` the unary and pair marginals, or, where those
would be large (``DistillSpec.targets_in_step``), the teacher's scores and
allowed moves, from which each step computes them.

:meth:`TeacherCache.on_device` puts the tables on the devices, replicated on
every device of a mesh: a batch then sends only its row indices ``[B]`` and
a compiled gather picks its targets where the step runs (no per-step copy of
targets from the host; replicated rather than split by rows because a
shuffled batch's rows may sit anywhere, and a gather across devices would be
an all-to-all per step, while the tables are small next to the model:
e.g. 20 MB for CoNLL-2003's efficient targets).
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np

from jaxkd.data.batching import Batch
from jaxkd.methods import GLOBAL, PATHS, ROW, WORD


def _row_keys(batch: Batch):
    return [(int(s), int(o)) for s, o in zip(batch.sentence_index, batch.word_offset)]


def _padded_row(layout: str, value, b: int, n: int):
    """Row ``b``'s part of a ``[B, ...]`` field, zero past its ``n`` words."""
    if layout == ROW:
        return np.asarray(value[b])
    row = np.array(value[b])
    if layout == WORD:
        row[n:] = 0
    elif layout == PATHS:
        row[:, n:] = 0
    else:
        raise ValueError(f"no per-row layout {layout!r}")
    return row


@jax.jit
def _gather(tables: dict, ids):
    """The rows ``ids`` of every table, in one compiled call (eager indexing
    dispatched several operations per table, each a synchronised computation
    across processes in a run of several)."""
    return {name: table[ids] for name, table in tables.items()}


class TeacherCache:
    """Per-row teacher targets computed once over the training rows (host
    tables; :meth:`on_device` places them)."""

    def __init__(self, kind: type, tables: dict, index: dict, global_values: dict, seconds: float):
        self.kind = kind  # the method's targets type (a NamedTuple with LAYOUT)
        self.tables = tables  # width W -> {field: [R_W + 1, ...] array}
        self.index = index  # (sentence, offset) -> (W, position in the W table)
        self.global_values = global_values
        self.seconds = seconds

    def __len__(self) -> int:
        return len(self.index)

    @classmethod
    def build(cls, fn, params, rest, batches, progress=None) -> "TeacherCache":
        """Runs the teacher ``fn`` (host arrays out) over ``batches`` (each row once)."""
        rows: dict = {}  # W -> {field: [row arrays]}
        index: dict = {}
        global_values: dict = {}
        kind = None
        t0 = time.perf_counter()
        for batch in batches:
            out = jax.device_get(fn(params, rest, batch))
            kind = type(out)
            layouts = dict(zip(kind._fields, kind.LAYOUT))
            width = batch.word_mask.shape[1]
            lengths = np.asarray(batch.word_mask).sum(-1)
            table = rows.setdefault(width, {name: [] for name in kind._fields if layouts[name] != GLOBAL})
            for name in kind._fields:
                if layouts[name] == GLOBAL:
                    global_values[name] = np.asarray(getattr(out, name))
            for b, key in enumerate(_row_keys(batch)):
                if key[0] < 0 or key in index:
                    continue
                index[key] = (width, len(next(iter(table.values()))))
                for name, values in table.items():
                    values.append(_padded_row(layouts[name], getattr(out, name), b, int(lengths[b])))
            if progress is not None:
                progress()
        tables = {
            width: {name: np.stack(values + [np.zeros_like(values[0])]) for name, values in fields.items()}
            for width, fields in rows.items()
        }
        return cls(kind, tables, index, global_values, time.perf_counter() - t0)

    def row_ids(self, batch: Batch) -> np.ndarray:
        """``[B]`` int32: each row's position in the table of the batch's width
        (padding rows: the zero row)."""
        width = batch.word_mask.shape[1]
        table = self.tables[width]
        pad = len(next(iter(table.values()))) - 1
        ids = np.full(len(batch.sentence_index), pad, np.int32)
        for b, key in enumerate(_row_keys(batch)):
            if key[0] >= 0:
                found_width, ids[b] = self.index[key]
                if found_width != width:
                    raise ValueError(f"row {key} was cached at width {found_width}, asked for at {width}")
        return ids

    def assemble(self, batch: Batch):
        """The targets of ``batch`` as host arrays (zeros at padding), as the
        method's targets type."""
        ids = self.row_ids(batch)
        fields = {name: table[ids] for name, table in self.tables[batch.word_mask.shape[1]].items()}
        return self.kind(**fields, **self.global_values)

    def on_device(self, place) -> "DeviceTargets":
        """The tables on the devices of ``place`` (a
        :class:`~jaxkd.training.mesh.Placement`, or None: the default device)."""
        put = place.replicate if place is not None else jax.device_put
        rows = place.rows if place is not None else (lambda x: x)
        return DeviceTargets(self.kind, put(self.tables), put(self.global_values), self.row_ids, rows)


class DeviceTargets:
    """A :class:`TeacherCache` on the devices: ``of(batch)`` sends the batch's
    row indices and gathers its targets there."""

    def __init__(self, kind: type, tables: dict, global_values: dict, row_ids, rows):
        self.kind, self.tables, self.global_values = kind, tables, global_values
        self._row_ids, self._rows = row_ids, rows

    def of(self, batch: Batch) -> Any:
        ids = self._rows(self._row_ids(batch))
        return self.kind(**_gather(self.tables[batch.word_mask.shape[1]], ids), **self.global_values)
