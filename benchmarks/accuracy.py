"""The accuracy study (the paper's Table 1, with statistics): one teacher, then
every distillation method over several seeds, compared with the vanilla
student by paired bootstrap intervals over test sentences.

    python -m benchmarks.accuracy --config configs/study_wnut16.py --student tiny \\
        --variants vanilla,efficient,kbest,posterior,structkd,efficient+unlabeled \\
        --seeds 5 --workdir runs/study/tiny --out benchmarks/results/accuracy_wnut16_tiny
    python -m benchmarks.accuracy --config configs/conll03.py --seeds 5 --workdir runs/study/conll03 \\
        --set data.source=/data/conll03 --out conll03_study

``--config FILE`` names a configuration file whose ``get_config("teacher")``
(or ``get_config(TEACHER)`` with ``--teacher TEACHER``) is the teacher and
``get_config(ARG)`` a student, where ARG is the variant (a method name), or
``STUDENT/VARIANT`` with ``--student STUDENT``. A
variant ``METHOD+unlabeled`` is METHOD that also distils on the unlabelled
text of ``--unlabeled`` (``data.unlabeled``; default ``wnut16-unused``, the
offline training tweets that ``data.max_train_sentences`` leaves out). A
variant may end in changes of its own, ``@KEY=VALUE`` each
(``efficient@distill.centered=true``, ``efficient@train.epochs=12``): the
variants of one method compared on dev. ``--set KEY=VALUE`` changes a key
of every run (teacher and students).

The score is entity F1 for chunk tags and token accuracy for tags that are
not chunks (parts of speech); the JSON names it (``meta.metric``).

Every run is a workdir: ``WORKDIR/teacher`` and ``WORKDIR/VARIANT/seedK``.
A run whose ``eval.json`` exists is done and is read, not trained again; an
interrupted run resumes from its last checkpoint: rerun the same command.
All runs go through one process, so the compiled functions and the teacher's
cached targets of a method are shared by its seeds.

Each run is scored (best dev epoch) on dev and test and, for the offline
tweets, on the training tweets that ``data.max_train_sentences`` leaves out
(not for a variant that read them as unlabelled text). Writes ``OUT.json``,
``OUT.md`` (the tables) and ``OUT.png`` (test F1 by variant, every seed and
the interval of the mean).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

from jaxkd.config import changed_keys
from jaxkd.data.sources import load_corpus
from jaxkd.data.unlabeled import WNUT16_UNUSED
from jaxkd.evaluate import METRIC_NAMES
from jaxkd.labeling import load_tagger
from jaxkd.methods import METHODS
from jaxkd.stats import micro_f1, paired_bootstrap, sentence_counts
from jaxkd.training.inputs import load_data
from jaxkd.training.loop import Preempted, TrainingError, run
from jaxkd.training.preemption import EXIT_CODE

SETS = ("test", "dev", "unused")


def _config_module(path: str):
    if not Path(path).is_file():
        raise SystemExit(f"accuracy.py: error: --config {path}: no such file")
    spec = importlib.util.spec_from_file_location("_jaxkd_study_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _set(config, assignment: str) -> None:
    """``KEY=VALUE`` into a config, VALUE parsed as the key's current type."""
    key, sep, text = assignment.partition("=")
    if not sep:
        raise SystemExit(f"accuracy.py: error: --set {assignment!r}: expected KEY=VALUE")
    node = config
    *path, last = key.split(".")
    try:
        for part in path:
            node = node[part]
        old = node[last]
    except (KeyError, AttributeError):
        raise SystemExit(f"accuracy.py: error: --set {key}: no such configuration key") from None
    if isinstance(old, bool):
        value = text.lower() in ("1", "true", "yes")
    elif isinstance(old, (int, float)):
        value = type(old)(float(text)) if isinstance(old, int) else float(text)
    else:
        value = text
    node[last] = value


def _heldout(config):
    """The sentences a wnut16 run leaves out of training (None elsewhere)."""
    if config.data.source != "wnut16" or not config.data.max_train_sentences:
        return None
    train = load_corpus("wnut16").train
    return train[config.data.max_train_sentences :] or None


def evaluate_run(workdir: Path, corpus, heldout, *, read_heldout: bool) -> dict:
    """Per-sentence counts (:func:`jaxkd.stats.sentence_counts`) and the score
    (entity F1, or token accuracy) of a run's best checkpoint on dev, test
    and (unless the run trained on them) the held-out sentences."""
    sets = {"test": corpus.test, "dev": corpus.dev}
    if heldout is not None and not read_heldout:
        sets["unused"] = heldout
    tagger = load_tagger(workdir)
    out = {}
    for name, sentences in sets.items():
        pred = [s.tags for s in tagger.label([list(s.words) for s in sentences])]
        counts = sentence_counts([list(s.tags) for s in sentences], pred, chunks=corpus.labels.chunks)
        out[name] = {"score": float(micro_f1(counts.sum(0))), "counts": counts.tolist()}
    out["metric"] = "f1" if corpus.labels.chunks else "accuracy"
    return out


def _score(entry: dict) -> float:
    """A set's score in an ``eval.json`` (``f1`` in studies before 2026-12)."""
    return entry["score"] if "score" in entry else entry["f1"]


def _sets(scores: dict) -> dict:
    """The scored sets of an ``eval.json``."""
    return {name: v for name, v in scores.items() if isinstance(v, dict) and "counts" in v}


class Study:
    """The runs of one study and their scores (``WORKDIR/**/eval.json``)."""

    def __init__(self, args):
        self.args = args
        self.module = _config_module(args.config)
        self.workdir = Path(args.workdir)
        self.variants = [v for v in args.variants.split(",") if v]
        self.seeds = list(range(args.seeds))
        self.evals: dict = {}
        self.started = time.perf_counter()
        self.durations: list[float] = []

    def config(self, arg: str, seed: int | None = None):
        config = self.module.get_config(arg)
        for assignment in self.args.set:
            _set(config, assignment)
        if seed is not None:
            config.seed = seed
            config.teacher_workdir = str(self.workdir / "teacher")
        return config

    def student_config(self, variant: str, seed: int):
        name, *changes = variant.split("@")
        method, plus, extra = name.partition("+")
        if plus and extra != "unlabeled":
            raise ValueError(f"variant {variant!r}: the only suffix is '+unlabeled'")
        config = self.config(f"{self.args.student}/{method}" if self.args.student else method, seed)
        if plus:
            config.data.unlabeled = self.args.unlabeled
        for change in changes:
            _set(config, change)
        return config

    def _one(self, name: str, config, workdir: Path, number: int, total: int) -> None:
        done = workdir / "eval.json"
        if done.is_file():
            scores = json.loads(done.read_text())
            changed = changed_keys(scores.get("config", {}), json.loads(config.to_json()))
            if changed:
                raise SystemExit(
                    f"accuracy.py: error: {done} was made with another configuration "
                    f"(differs in: {', '.join(changed)}); use a new --workdir, or the same options"
                )
            self.evals[name] = scores
            print(f"[study] {number}/{total} {name}: done earlier ({done})", flush=True)
            return
        elapsed = time.perf_counter() - self.started
        left = ""
        if self.durations:
            left = f", about {statistics.mean(self.durations) * (total - number + 1) / 60:.0f} min left"
        print(f"[study] {number}/{total} {name} ({elapsed / 60:.1f} min so far{left})", flush=True)
        t0 = time.perf_counter()
        results = run(config, workdir)
        read_heldout = config.data.unlabeled == WNUT16_UNUSED
        scores = evaluate_run(workdir, load_data(config), _heldout(config), read_heldout=read_heldout)
        scores["train_seconds"] = results["run_wall_s"]
        scores["config"] = json.loads(config.to_json())
        tmp = done.with_name("eval.json.tmp")
        tmp.write_text(json.dumps(scores))
        tmp.replace(done)
        self.evals[name] = scores
        self.durations.append(time.perf_counter() - t0)
        line = ", ".join(f"{k} {_score(v):.2f}" for k, v in _sets(scores).items())
        print(f"[study] {name}: {scores['metric']} {line} ({self.durations[-1]:.0f}s)", flush=True)

    def run_all(self) -> None:
        total = 1 + len(self.variants) * len(self.seeds)
        self._one("teacher", self.config(self.args.teacher), self.workdir / "teacher", 1, total)
        number = 1
        for variant in self.variants:  # seeds inner: a method's teacher cache is built once
            for seed in self.seeds:
                number += 1
                config = self.student_config(variant, seed)
                self._one(f"{variant}/seed{seed}", config, self.workdir / variant / f"seed{seed}", number, total)


def summarise(evals: dict, variants: list[str], seeds: list[int], *, replicates: int) -> dict:
    """Mean and standard deviation of the score per variant and set, and for
    each variant against vanilla the paired bootstrap difference on test."""

    def runs(variant):
        return [evals[f"{variant}/seed{s}"] for s in seeds]

    teacher_sets = _sets(evals["teacher"])
    rows = {"teacher": {name: {"mean": _score(v), "std": 0.0, "runs": [_score(v)]} for name, v in teacher_sets.items()}}
    for variant in variants:
        row = {}
        for name in SETS:
            values = [_score(r[name]) for r in runs(variant) if name in r]
            if values:
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                row[name] = {"mean": statistics.mean(values), "std": std, "runs": values}
        row["train_seconds"] = statistics.mean(r["train_seconds"] for r in runs(variant))
        rows[variant] = row
    if "vanilla" in variants:
        base = np.array([r["test"]["counts"] for r in runs("vanilla")])
        for variant in variants:
            if variant == "vanilla":
                continue
            system = np.array([r["test"]["counts"] for r in runs(variant)])
            rows[variant]["vs_vanilla"] = {
                "sentences": paired_bootstrap(system, base, replicates=replicates),
                "sentences_and_seeds": paired_bootstrap(system, base, replicates=replicates, resample_seeds=True),
            }
        teacher = np.array([evals["teacher"]["test"]["counts"]] * len(seeds))
        rows["teacher"]["vs_vanilla"] = {"sentences": paired_bootstrap(teacher, base, replicates=replicates)}
    return rows


def markdown(summary: dict, meta: dict) -> str:
    have_unused = any("unused" in row for row in summary.values())
    score = METRIC_NAMES[meta.get("metric", "f1")]
    head = (
        f"| model | test {score} | dev {score} |"
        + (f" unused-tweet {score} |" if have_unused else "")
        + f" test {score} - vanilla [95% CI: sentences] | [sentences and seeds] | minutes per run |"
    )
    lines = [
        f"Seeds: {meta['seeds']}; mean ± standard deviation over seeds; intervals: paired bootstrap, "
        f"{meta['replicates']} draws.",
        "",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    for name, row in summary.items():
        def cell(key, row=row, name=name):
            if key not in row:
                return "n/a"
            v = row[key]
            return f"{v['mean']:.2f}" if name == "teacher" else f"{v['mean']:.2f} ± {v['std']:.2f}"

        diffs = []
        for kind in ("sentences", "sentences_and_seeds"):
            d = row.get("vs_vanilla", {}).get(kind)
            diffs.append(f"{d['difference']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]" if d else "")
        minutes = f"{row['train_seconds'] / 60:.1f}" if "train_seconds" in row else ""
        unused = f" {cell('unused')} |" if have_unused else ""
        lines.append(f"| {name} | {cell('test')} | {cell('dev')} |{unused} {diffs[0]} | {diffs[1]} | {minutes} |")
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path, title: str, metric: str = "f1") -> None:
    """Left: test F1 by variant (mean and standard deviation over seeds, each
    seed a dot). Right: each variant minus vanilla, with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in summary if n != "teacher"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(1.5 * len(names) + 3, 4.2))
    for i, name in enumerate(names):
        test = summary[name]["test"]
        left.scatter([i] * len(test["runs"]), test["runs"], color="0.6", s=12, zorder=2)
        std = [[test["std"]], [test["std"]]]
        left.errorbar([i], [test["mean"]], yerr=std, fmt="o", color="C0", capsize=4, zorder=3)
    if "teacher" in summary:
        left.axhline(summary["teacher"]["test"]["mean"], color="C3", linestyle="--", label="teacher")
        left.legend(loc="lower right")
    left.set_xticks(range(len(names)), names, rotation=30, ha="right")
    score = "entity F1" if metric == "f1" else "token accuracy"
    left.set_ylabel(f"test {score}")
    left.set_title("by seed; mean ± sd", fontsize=9)
    compared = [n for n in names if "vs_vanilla" in summary[n]]
    for i, name in enumerate(compared):
        for offset, kind, color in ((-0.1, "sentences", "C0"), (0.1, "sentences_and_seeds", "C1")):
            d = summary[name]["vs_vanilla"][kind]
            interval = [[d["difference"] - d["low"]], [d["high"] - d["difference"]]]
            right.errorbar([i + offset], [d["difference"]], yerr=interval, fmt="o", color=color, capsize=4)
    right.axhline(0.0, color="0.3", linewidth=0.8)
    right.set_xticks(range(len(compared)), compared, rotation=30, ha="right")
    right.set_ylabel(f"test {score} minus vanilla (95% bootstrap interval)")
    right.set_title("paired difference; blue: resampling sentences, orange: sentences and seeds", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--config", required=True, help="configuration file with get_config('teacher') and get_config(VARIANT)"
    )
    parser.add_argument("--student", default="", help="prefix of the student arguments: get_config('STUDENT/VARIANT')")
    parser.add_argument(
        "--teacher", default="teacher", help="the teacher's argument: get_config(TEACHER) (default: 'teacher')"
    )
    parser.add_argument("--variants", default=",".join(METHODS), help="comma-separated (default: the five methods)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workdir", required=True, help="the runs' directory (rerun the command to resume)")
    parser.add_argument(
        "--unlabeled", default="wnut16-unused", help="the text of METHOD+unlabeled variants (data.unlabeled)"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a configuration change for every run"
    )
    parser.add_argument("--replicates", type=int, default=2000, help="bootstrap draws")
    parser.add_argument("--out", default="", help="OUT.json, OUT.md, OUT.png (default: WORKDIR/study)")
    return parser


def _check_configurations(parser: argparse.ArgumentParser, study: Study) -> None:
    """Builds every configuration before anything trains; one error line
    (``parser.error``) for whatever the config file raises."""
    try:
        for variant in study.variants:
            study.student_config(variant, 0)
        study.config(study.args.teacher)
    except SystemExit:
        raise
    except Exception as err:  # noqa: BLE001 - whatever the config file raises
        parser.error(f"--config {study.args.config}: {type(err).__name__}: {err}")


def study_meta(study: Study, argv) -> dict:
    """The command, sizes, durations and environment of this invocation."""
    return {
        "command": "python -m benchmarks.accuracy " + " ".join(argv if argv is not None else sys.argv[1:]),
        "metric": study.evals["teacher"].get("metric", "f1"),
        "seeds": len(study.seeds),
        "replicates": study.args.replicates,
        "minutes": (time.perf_counter() - study.started) / 60,  # this invocation (runs done earlier are read)
        "training_minutes": sum(e.get("train_seconds", 0.0) for e in study.evals.values()) / 60,  # every run's, summed
        "date": time.strftime("%Y-%m-%d"),
        "jax": jax.__version__,
        "device": str(jax.devices()[0].device_kind),
        "cpu_count": os.cpu_count(),
    }


def write_outputs(summary: dict, meta: dict, out: Path, title: str) -> str:
    """OUT.json, OUT.md and (with matplotlib) OUT.png; returns the Markdown table."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "summary": summary}, indent=2))
    table = markdown(summary, meta)
    out.with_suffix(".md").write_text(
        f"`{meta['command']}`\n\n{table}\nTraining, all runs: {meta['training_minutes']:.0f} minutes; this invocation: "
        f"{meta['minutes']:.0f} minutes ({meta['date']}, jax {meta['jax']}, {meta['device']}, "
        f"{meta['cpu_count']} CPUs).\n"
    )
    try:
        plot(summary, out.with_suffix(".png"), title, meta["metric"])
    except ImportError:
        print("[study] note: matplotlib is not installed, so no plot (pip install matplotlib)", file=sys.stderr)
    return table


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    study = Study(args)
    _check_configurations(parser, study)
    try:
        study.run_all()
    except TrainingError as err:
        print(f"accuracy.py: error: {err}", file=sys.stderr)
        return 2
    except Preempted as stop:  # a SIGTERM or Ctrl-C: the run in progress saved where it was
        print(f"[study] {stop}; rerun the same study command to go on", file=sys.stderr)
        return EXIT_CODE
    summary = summarise(study.evals, study.variants, study.seeds, replicates=args.replicates)
    meta = study_meta(study, argv)
    out = Path(args.out) if args.out else study.workdir / "study"
    table = write_outputs(summary, meta, out, f"{args.config} {args.student}".strip())
    print(table)
    print(f"[study] done in {meta['minutes']:.1f} min: {out.with_suffix('.json')}, .md, .png", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
