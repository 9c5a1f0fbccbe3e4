"""Teacher targets for training batches: computed per batch, or once for the
whole training set and cached (the paper's step 2; the default).

The cache is word-level and keyed by row (sentence index, word offset): for
``efficient`` it holds the teacher's emissions (n x N per row) plus its
transitions/start/end once, never the n x N x N sub-structure tensor; for
``kbest`` the K paths and their weights; for ``posterior`` the unary
marginals; for ``structkd`` the unary and pairwise marginals.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from jaxkd.data.batching import Batch

GLOBAL = ("transitions", "start", "end")  # the same for every row


def _row_keys(batch: Batch):
    return [(int(s), int(o)) for s, o in zip(batch.sentence_index, batch.word_offset)]


class TeacherCache:
    """Per-row teacher targets computed once over the training rows."""

    def __init__(self, per_row: dict, global_values: dict, seconds: float):
        self.per_row = per_row
        self.global_values = global_values
        self.seconds = seconds

    @classmethod
    def build(cls, fn, params, rest, batches, progress=None) -> "TeacherCache":
        """Runs the compiled teacher ``fn`` over ``batches`` (each row once)."""
        per_row: dict = {}
        global_values: dict = {}
        t0 = time.perf_counter()
        for batch in batches:
            out = jax.device_get(fn(params, rest, batch))
            lengths = np.asarray(batch.word_mask).sum(-1)
            for b, key in enumerate(_row_keys(batch)):
                if key[0] < 0:
                    continue
                n = int(lengths[b])
                row = {}
                for name, value in out.items():
                    if name in GLOBAL:
                        global_values[name] = np.asarray(value)
                    elif name == "paths":
                        row[name] = np.asarray(value[b, :, :n])
                    elif name == "weights":
                        row[name] = np.asarray(value[b])
                    else:
                        row[name] = np.asarray(value[b, :n])
                per_row[key] = row
            if progress is not None:
                progress()
        return cls(per_row, global_values, time.perf_counter() - t0)

    def assemble(self, batch: Batch) -> dict:
        """The targets of ``batch`` in its shape (zeros at padding)."""
        bsz, width = batch.word_mask.shape
        keys = _row_keys(batch)
        sample = next(iter(self.per_row.values()))
        out = {}
        for name, value in sample.items():
            if name == "paths":
                arr = np.zeros((bsz, value.shape[0], width), value.dtype)
            elif name == "weights":
                arr = np.zeros((bsz,) + value.shape, value.dtype)
            else:
                arr = np.zeros((bsz, width) + value.shape[1:], value.dtype)
            for b, key in enumerate(keys):
                if key[0] < 0:
                    continue
                row = self.per_row[key][name]
                if name == "paths":
                    arr[b, :, : row.shape[1]] = row
                elif name == "weights":
                    arr[b] = row
                else:
                    arr[b, : row.shape[0]] = row
            out[name] = arr
        out.update(self.global_values)
        return out
