"""Teacher targets for training batches: computed per batch, or once for the
whole training set and cached (the paper's step 2; the default).

The cache is word-level and keyed by row (sentence index, word offset): each
field of the method's targets type is kept as its ``LAYOUT`` says
(:mod:`jaxkd.methods`): for ``efficient`` the teacher's emissions (n x N per
row) plus its transitions/start/end once, never the n x N x N sub-structure
tensor; for ``kbest`` the K paths and their weights; for ``posterior`` the
unary marginals; for ``structkd`` the unary and pair marginals, or, where
those would be large (``DistillSpec.targets_in_step``), the teacher's scores
and allowed moves, from which each step computes them (N values per word
instead of N + N x N).
"""

from __future__ import annotations

import time

import jax
import numpy as np

from jaxkd.data.batching import Batch
from jaxkd.methods import GLOBAL, PATHS, ROW, WORD


def _row_keys(batch: Batch):
    return [(int(s), int(o)) for s, o in zip(batch.sentence_index, batch.word_offset)]


def _row_slice(layout: str, value, b: int, n: int):
    """Row ``b``'s part of a ``[B, ...]`` field, its first ``n`` words."""
    if layout == WORD:
        return value[b, :n]
    if layout == PATHS:
        return value[b, :, :n]
    if layout == ROW:
        return value[b]
    raise ValueError(f"no per-row layout {layout!r}")


class TeacherCache:
    """Per-row teacher targets computed once over the training rows."""

    def __init__(self, kind: type, per_row: dict, global_values: dict, seconds: float):
        self.kind = kind  # the method's targets type (a NamedTuple with LAYOUT)
        self.per_row = per_row
        self.global_values = global_values
        self.seconds = seconds

    @classmethod
    def build(cls, fn, params, rest, batches, progress=None) -> "TeacherCache":
        """Runs the compiled teacher ``fn`` over ``batches`` (each row once)."""
        per_row: dict = {}
        global_values: dict = {}
        kind = None
        t0 = time.perf_counter()
        for batch in batches:
            out = jax.device_get(fn(params, rest, batch))
            kind = type(out)
            layouts = dict(zip(kind._fields, kind.LAYOUT))
            lengths = np.asarray(batch.word_mask).sum(-1)
            for name in kind._fields:
                if layouts[name] == GLOBAL:
                    global_values[name] = np.asarray(getattr(out, name))
            for b, key in enumerate(_row_keys(batch)):
                if key[0] >= 0:
                    per_row[key] = {
                        name: np.asarray(_row_slice(layouts[name], getattr(out, name), b, int(lengths[b])))
                        for name in kind._fields
                        if layouts[name] != GLOBAL
                    }
            if progress is not None:
                progress()
        return cls(kind, per_row, global_values, time.perf_counter() - t0)

    def assemble(self, batch: Batch):
        """The targets of ``batch`` in its shape (zeros at padding), as the
        method's targets type."""
        bsz, width = batch.word_mask.shape
        keys = _row_keys(batch)
        sample = next(iter(self.per_row.values()))
        fields = dict(self.global_values)
        for name, layout in zip(self.kind._fields, self.kind.LAYOUT):
            if layout == GLOBAL:
                continue
            value = sample[name]
            if layout == PATHS:
                arr = np.zeros((bsz, value.shape[0], width), value.dtype)
            elif layout == ROW:
                arr = np.zeros((bsz,) + value.shape, value.dtype)
            else:
                arr = np.zeros((bsz, width) + value.shape[1:], value.dtype)
            for b, key in enumerate(keys):
                if key[0] < 0:
                    continue
                row = self.per_row[key][name]
                if layout == PATHS:
                    arr[b, :, : row.shape[1]] = row
                elif layout == ROW:
                    arr[b] = row
                else:
                    arr[b, : row.shape[0]] = row
            fields[name] = arr
        return self.kind(**fields)
