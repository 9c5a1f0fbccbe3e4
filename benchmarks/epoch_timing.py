"""Seconds per training epoch by phase for every distillation method (the
paper's Table 2), on compiled JAX code.

    python -m benchmarks.epoch_timing --preset tiny               # this CPU, < 1 min
    python -m benchmarks.epoch_timing --preset conll03 --bf16 \\
        --json benchmarks/results/epoch_timing_h100.json --plot epoch_timing_h100.png

All methods run in one process over the same batches, from the same initial
student: ``vanilla`` (gold NLL), ``kbest``, ``posterior``, ``structkd``,
``efficient`` (teacher queried per batch) and ``efficient_cached`` (teacher
scores computed once before the epoch, read per batch; that one-off pass is
reported as ``cache_build_s``, outside the epoch).

**Phases** (docs/measuring.md): *teacher forward* is whatever the method
needs from the teacher for a batch (emissions and CRF parameters; K-best
paths; marginals), or for ``efficient_cached`` the cache read and host to
device copy; *student forward* is the loss value alone (one jitted call);
*student backward* is the compiled train step (loss, gradient, optimizer
update) minus the student forward. Each phase is timed over the whole epoch:
its calls are issued back to back and the clock stops on
``block_until_ready`` of the last one. Every function is compiled and run on
every batch shape before any clock starts. The epoch total is teacher forward
plus the train step; each phase is the median over ``--epochs`` epochs,
which run round-robin over the methods (epoch 1 of every method, then epoch
2, ...) so that a slow spell of a shared machine does not favour any method.

The distilling methods are timed at lambda = 1 (every epoch but the last of
the paper's schedule): no gold NLL term, so ``efficient`` computes no
log-partition at all. ``--kd-weight 0.9`` times the official code's constant
mix instead (every step also computes the gold NLL).

**Presets.** ``conll03``: a BERT-base teacher (12 layers, hidden 768, cased
vocabulary of 28,996) and a 3-layer student of the same width, random
weights, 9 BIO tags with constraints, 14,041 sentences, batch 32. Sentence
lengths follow a CoNLL-2003-like distribution: words per sentence drawn from
a log-normal with median 11 and sigma 0.75, clipped to [1, 113] (mean about
14.5 words, as in CoNLL-2003's 203,621 tokens over 14,041 sentences), and
sub-words per word 1 + Poisson(0.4). Rows are bucketed exactly as in training
(:class:`jaxkd.data.Buckets`, lengths 16, 32, 64, ...). ``tiny``: a 2-layer,
width-32 teacher and 1-layer student, 512 sentences of ~16 words (one
bucket), batch 32, for a CPU. ``ud-xpos``: 49 token tags (every move
allowed), a MiniLM-L6-shaped teacher (6 layers, hidden 384, 12 heads,
vocabulary 30,522) and its first 2 layers, 12,544 sentences with UD
English-EWT's lengths (log-normal words per sentence, median 11.5, sigma
0.94, clipped to [1, 159]; 1 + Poisson(0.15) sub-words per word), batch 32.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._epoch_presets import PRESETS, Preset, build_models, synthetic_rows
from benchmarks._timing import environment
from jaxkd.data.batching import Buckets, make_batches
from jaxkd.methods import REGISTRY
from jaxkd.training.epoch import warm_step
from jaxkd.training.phases import PHASES, phase_row, time_calls
from jaxkd.training.steps import DistillSpec, copy_tree, dropout_key, make_optimizer, split, student_fns, teacher_fn
from jaxkd.training.targets import TeacherCache

METHODS = tuple(REGISTRY) + ("efficient_cached",)  # efficient with the teacher cache
PAPER_V100 = {  # Table 2 of Lin et al. (2022), seconds per CoNLL-2003 epoch
    "vanilla": (0, 19, 35, 54),
    "kbest": (21, 23, 39, 83),
    "structkd": (19, 30, 50, 99),
    "efficient": (16, 5, 20, 41),
}


def _spec(method: str) -> DistillSpec:
    return DistillSpec(method="efficient" if method == "efficient_cached" else method)


class Method(NamedTuple):
    name: str
    fns: Any  # StudentFns
    t_fn: Any  # compiled teacher targets; None for vanilla (use_kd False)
    lam: float
    use_kd: bool
    use_nll: bool


def prepare(method, s_parts, t_parts, optimizer, kd_weight, compiled: dict) -> Method:
    """The jitted functions of ``method`` (shared through ``compiled`` between
    ``efficient`` and ``efficient_cached``, which have the same DistillSpec)."""
    spec = _spec(method)
    distilling = method != "vanilla"
    lam = kd_weight if distilling else 0.0
    if spec not in compiled:
        compiled[spec] = (student_fns(s_parts, spec, optimizer), teacher_fn(t_parts, spec) if distilling else None)
    fns, t_fn = compiled[spec]
    return Method(method, fns, t_fn, lam, lam > 0.0, lam < 1.0)


def warm_up(m: Method, batches, s_parts, t_parts, opt0) -> None:
    """Compiles and runs every function of ``m`` on every batch shape (the
    training loop's own warm-up step, :func:`jaxkd.training.epoch.warm_step`)."""
    for b in {b.input_ids.shape + b.word_mask.shape: b for b in batches}.values():
        tg = jax.block_until_ready(m.t_fn(t_parts.params, t_parts.rest, b)) if m.use_kd else {}
        warm_step(m.fns, s_parts.params, s_parts.rest, opt0, b, tg, m.lam, use_kd=m.use_kd, use_nll=m.use_nll,
                  forward=True)


def warm_up_all(methods: list[Method], batches, s_parts, t_parts, opt0) -> None:
    """Warm-up of every method, compiling on all host cores at once (XLA
    compiles one function per thread; nothing is timed here)."""
    unique = list({id(m.fns): m for m in methods}.values())
    with ThreadPoolExecutor(max_workers=max(1, min(len(unique), os.cpu_count() or 1))) as pool:
        for f in [pool.submit(warm_up, m, batches, s_parts, t_parts, opt0) for m in unique]:
            f.result()


class Timed:
    """One method's training state between its timed epochs."""

    def __init__(self, m: Method, batches, s_parts, t_parts, opt0):
        self.m, self.batches, self.s_parts = m, batches, s_parts
        self.extra: dict = {}
        self.rows: list[dict] = []
        self.teacher_call = None
        if m.use_kd:
            self.teacher_call = lambda b: m.t_fn(t_parts.params, t_parts.rest, b)  # noqa: E731
            if m.name == "efficient_cached":
                cache = TeacherCache.build(m.t_fn, t_parts.params, t_parts.rest, batches)
                self.extra["cache_build_s"] = cache.seconds
                self.teacher_call = cache.on_device(None).of  # row ids in, targets gathered on the device
                jax.block_until_ready(self.teacher_call(batches[0]))
        self.params, self.opt_state = copy_tree((s_parts.params, opt0))
        self.device_batches = [jax.device_put(b) for b in batches]

    def epoch(self) -> dict:
        """Times one epoch, phase by phase, and continues training."""
        m, key, rest = self.m, dropout_key(0, 0), self.s_parts.rest
        if m.use_kd:
            hosted = m.name == "efficient_cached"  # the cache is keyed by the host batch's row ids
            pairs = zip(self.device_batches, self.batches, strict=True)
            t_teacher, tgs = time_calls([lambda b=b, hb=hb: self.teacher_call(hb if hosted else b) for b, hb in pairs])
        else:
            t_teacher, tgs = 0.0, [{} for _ in self.batches]
        params, flags = self.params, dict(use_kd=m.use_kd, use_nll=m.use_nll)
        t_fwd, _ = time_calls(
            [
                lambda b=b, tg=tg: m.fns.forward_loss(params, rest, b, tg, m.lam, key, **flags)
                for b, tg in zip(self.device_batches, tgs, strict=True)
            ]
        )
        t0 = time.perf_counter()
        for i, (b, tg) in enumerate(zip(self.device_batches, tgs, strict=True)):
            self.params, self.opt_state, loss = m.fns.train_step(
                self.params, rest, self.opt_state, b, tg, m.lam, dropout_key(0, i), **flags
            )
        loss = float(jax.block_until_ready(loss))
        t_step = time.perf_counter() - t0
        if not np.isfinite(loss):
            raise RuntimeError(f"{m.name}: the loss became {loss}")
        row = phase_row(t_teacher, t_fwd, t_step)
        self.rows.append(row)
        return row

    def summary(self) -> dict:
        out = {k: statistics.median(r[k] for r in self.rows) for k in PHASES}
        out.update(self.extra)
        return out


def table(result: dict) -> str:
    m = result["methods"]
    lines = [
        f"Seconds per training epoch by phase ({result['preset']} preset, {result['batches']} batches of "
        f"{result['batch_size']}, {result['device']}, jax {result['jax_version']}, {result['dtype']}; "
        f"median of {result['epochs']} epoch(s))",
        f"{'method':<18}{'teacher fwd':>12}{'student fwd':>12}{'student bwd':>12}{'total':>10}"
        f"{'x vanilla':>11}{'x efficient':>13}",
    ]
    for name, r in m.items():
        rv = r["total_s"] / m["vanilla"]["total_s"] if "vanilla" in m else float("nan")
        re = r["total_s"] / m["efficient"]["total_s"] if "efficient" in m else float("nan")
        lines.append(
            f"{name:<18}{r['teacher_forward_s']:12.3f}{r['student_forward_s']:12.3f}{r['student_backward_s']:12.3f}"
            f"{r['total_s']:10.3f}{rv:10.2f}x{re:12.2f}x"
        )
    if "efficient_cached" in m:
        lines.append(
            "efficient_cached: teacher fwd = cache read + copy to device; the one-off cache pass took "
            f"{m['efficient_cached']['cache_build_s']:.3f}s"
        )
    lines.append(
        "student fwd = loss value only; student bwd = compiled train step (loss + gradient + AdamW update) minus "
        f"student fwd; distilling methods at lambda = {result['kd_weight']}"
        + (" (no gold NLL term)" if result["kd_weight"] == 1.0 else "")
    )
    e = m.get("efficient", {}).get("total_s")
    if e:
        parts = [f"{name} {e / m[name]['total_s']:.2f}x" for name in ("kbest", "posterior", "structkd") if name in m]
        lines.append("efficient total as a fraction of: " + ", ".join(parts))
    if "efficient_cached" in m and "vanilla" in m:
        cached_over_vanilla = m["efficient_cached"]["total_s"] / m["vanilla"]["total_s"]
        lines.append(f"efficient_cached total / vanilla total: {cached_over_vanilla:.2f}x")
    paper = "; ".join(f"{k} {v[3]}s" for k, v in PAPER_V100.items())
    lines.append(f"(paper, PyTorch on a V100, CoNLL-2003 totals: {paper}; efficient = 0.41x structkd, 0.49x kbest)")
    return "\n".join(lines)


def plot(result: dict, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise SystemExit(f"--plot needs matplotlib (pip install -e .[bench]): {err}") from err
    names = list(result["methods"])
    bottom = np.zeros(len(names))
    fig, ax = plt.subplots(figsize=(8, 4))
    for phase, label in zip(PHASES[:3], ("teacher forward", "student forward", "student backward"), strict=True):
        vals = np.array([result["methods"][n][phase] for n in names])
        ax.bar(names, vals, bottom=bottom, label=label)
        bottom += vals
    ax.set_ylabel("seconds per epoch")
    ax.set_title(f"{result['preset']} preset, {result['device']}, jax {result['jax_version']}, {result['dtype']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    ap.add_argument("--batch-size", type=int, default=None, help="default: the preset's (32)")
    ap.add_argument("--sentences", type=int, default=None, help="default: the preset's")
    ap.add_argument(
        "--epochs", type=int, default=3, help="timed epochs per method (the median of each phase is reported)"
    )
    ap.add_argument(
        "--bf16", action="store_true", help="encoders compute in bfloat16 (parameters and CRF stay float32)"
    )
    ap.add_argument(
        "--kd-weight", type=float, default=1.0, help="lambda of the distilling methods (1: paper; 0.9: official code)"
    )
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--plot", help="write a stacked bar chart (PNG) here")
    ap.add_argument("--quiet", action="store_true")
    return ap


def _checked(ap: argparse.ArgumentParser, args) -> tuple[list[str], Preset]:
    """The methods asked for and the preset with the size flags applied
    (exits through ``ap.error`` on a bad flag)."""
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        ap.error(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    if not 0.0 < args.kd_weight <= 1.0:
        ap.error("--kd-weight must be in (0, 1]")
    if args.epochs < 1:
        ap.error("--epochs must be at least 1")
    preset = PRESETS[args.preset]
    preset = dataclasses.replace(
        preset, batch_size=args.batch_size or preset.batch_size, sentences=args.sentences or preset.sentences
    )
    return methods, preset


class Setup(NamedTuple):
    rows: list
    buckets: Buckets
    batches: list
    t_parts: Any
    s_parts: Any
    optimizer: Any


def build_setup(preset: Preset, args, log) -> Setup:
    """The synthetic corpus, its batches, both models (split) and the student's optimizer."""
    labels = preset.labels()
    rows = synthetic_rows(preset, len(labels))
    buckets = Buckets.fit(rows, preset.teacher.max_position_embeddings, min_length=preset.min_bucket_length)
    batches = make_batches(rows, buckets, preset.batch_size, shuffle=True, seed=0, epoch=0, filler_ids=(1, 2))
    shapes = list(buckets.shapes)
    log(f"[epoch_timing] {args.preset}: {len(rows)} sentences, {len(batches)} batches, shapes (T, W) {shapes}")
    dtype = jnp.bfloat16 if args.bf16 else jnp.float32
    teacher, student = build_models(preset, labels, dtype)
    t_parts, s_parts = split(teacher), split(student)
    optimizer = make_optimizer(
        s_parts.params,
        encoder_lr=2e-4,
        head_lr=1e-3,
        total_steps=len(batches) * args.epochs,
        warmup_fraction=0.1,
        weight_decay=0.01,
        clip_norm=1.0,
    )
    return Setup(rows, buckets, batches, t_parts, s_parts, optimizer)


def _result_head(setup: Setup, preset: Preset, args) -> dict:
    """The result's fields other than the timings."""
    return {
        **environment(),
        "preset": args.preset,
        "dtype": "bfloat16" if args.bf16 else "float32",
        "batch_size": preset.batch_size,
        "sentences": len(setup.rows),
        "batches": len(setup.batches),
        "shapes": [list(s) for s in setup.buckets.shapes],
        "epochs": args.epochs,
        "kd_weight": args.kd_weight,
        "backward_note": (
            "student_backward_s = compiled train step (loss + grad + update) - student_forward_s (loss only)"
        ),
        "methods": {},
    }


def time_round_robin(timed: list[Timed], epochs: int, log) -> None:
    """Epochs round-robin over the methods: a slow spell of a shared machine
    falls on all of them, not on whichever ran then."""
    for epoch in range(epochs):
        for t in timed:
            row = t.epoch()
            log(f"  epoch {epoch + 1} {t.m.name:<17} " + "  ".join(f"{k[:-2]} {v:.3f}s" for k, v in row.items()))


def main(argv=None) -> dict:
    ap = _parser()
    args = ap.parse_args(argv)
    methods, preset = _checked(ap, args)

    def log(msg):
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    setup = build_setup(preset, args, log)
    batches, s_parts, t_parts = setup.batches, setup.s_parts, setup.t_parts
    result = _result_head(setup, preset, args)
    t0 = time.perf_counter()
    compiled: dict = {}
    prepared = [prepare(m, s_parts, t_parts, setup.optimizer, args.kd_weight, compiled) for m in methods]
    opt0 = setup.optimizer.init(s_parts.params)
    log(f"[epoch_timing] compiling and warming up {len(compiled)} method(s) on {os.cpu_count()} host core(s)")
    warm_up_all(prepared, batches, s_parts, t_parts, opt0)
    result["warm_up_s"] = time.perf_counter() - t0
    timed = [Timed(m, batches, s_parts, t_parts, opt0) for m in prepared]
    time_round_robin(timed, args.epochs, log)
    for t in timed:
        result["methods"][t.m.name] = t.summary()
    result["wall_s"] = time.perf_counter() - t0
    print(table(result))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    if args.plot:
        plot(result, args.plot)
    return result


if __name__ == "__main__":
    main()
