"""The measured tables (and the few measured figures in prose) of the
repository's Markdown, generated from the committed files under
``benchmarks/results/``.

    python -m benchmarks.tables           # rewrite every generated part in place
    python -m benchmarks.tables --check   # exit 1, with a diff, where a part differs

A generated table sits between two marker comments and is replaced whole::

    <!-- table: vs_pytorch_cpu -->
    ...
    <!-- end table -->

A generated figure in a sentence sits between two inline markers:
``<!-- figure: NAME -->0.78-0.96<!-- end figure -->``. Each NAME is an entry
of :data:`TABLES` or :data:`FIGURES`: the files it reads (paths from the
repository root) and the function that turns them into Markdown. The
documents are ``README.md``, ``benchmarks/README.md`` and ``docs/*.md``.

A part whose source is marked ``pending`` (a result that is committed later,
such as the demo's ``demo_cpu.json``) is left as it is, with a printed note,
while that file is missing; every other missing source is an error. Nothing
here imports jax: the check runs in a fraction of a second.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from jaxkd.evaluate import METRIC_NAMES

ROOT = Path(__file__).resolve().parent.parent
RESULTS = "benchmarks/results"
DEMO = f"{RESULTS}/demo_cpu.json"  # a copy of runs/demo/summary.json (python -m jaxkd.demo)

BLOCK = re.compile(r"<!-- table: ([\w.-]+) -->\n(.*?)<!-- end table -->", re.DOTALL)
INLINE = re.compile(r"<!-- figure: ([\w.-]+) -->(.*?)<!-- end figure -->")
OPENERS = re.compile(r"<!-- (table|figure): ")
CLOSERS = re.compile(r"<!-- end (table|figure) -->")


@dataclasses.dataclass(frozen=True)
class Part:
    """A generated table or figure: ``build`` gets the loaded sources, in order."""

    sources: tuple[str, ...]
    build: Callable[..., str]
    pending: bool = False  # its sources may be missing for now: left as it is, with a note


# ---------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------


def table(header: list[str], rows: list[list[str]], align: str) -> str:
    """A Markdown table; ``align`` has one letter per column, ``l`` or ``r``."""
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [header, rule] + rows
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def f2(x: float) -> str:
    return f"{x:.2f}"


def signed(x: float) -> str:
    return f"{x:+.2f}"


def times(x: float) -> str:
    return f"{x:.2f}x"


def interval(d: dict) -> str:
    """A paired difference with its 95% interval: ``+2.00 [-0.05, +4.14]``."""
    return f"{d['difference']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]"


def ms(seconds: float | None) -> str:
    """Milliseconds, to three significant figures or so."""
    if seconds is None:
        return "-"
    m = 1000.0 * seconds
    return f"{m:.3f}" if m < 1 else f"{m:.2f}" if m < 10 else f"{m:.1f}" if m < 100 else f"{m:.0f}"


def words_per_s(x: float) -> str:
    return f"{x:,.0f}"


def span(values) -> str:
    """``low-high`` of values to two decimals (one value when they agree)."""
    lo, hi = f2(min(values)), f2(max(values))
    return lo if lo == hi else f"{lo}-{hi}"


def source_line(paths: tuple[str, ...], what: str = "") -> str:
    files = ", ".join(f"`{p}`" for p in paths)
    return f"Source: {files}{'; ' + what if what else ''}."


def environment(result: dict) -> str:
    """Device, jax version and date of a benchmark output (``benchmarks/_timing.environment``)."""
    env = result.get("environment", result)
    return f"{env['device']}, jax {env['jax_version']}, {env['date']}"


# ---------------------------------------------------------------------------
# the demo (python -m jaxkd.demo writes runs/demo/summary.json)
# ---------------------------------------------------------------------------

STUDENT_NAMES = {"tiny": "BERT-tiny", "minilm2": "MiniLM-L6, first 2 layers"}


def _student_name(summary: dict, method: str) -> str:
    setup = summary.get("student_setup", {})
    name = f"student {STUDENT_NAMES.get(setup.get('name'), setup.get('name', ''))} {method}".replace("  ", " ")
    if setup.get("unlabeled") and method != "vanilla":
        name += " + unlabelled"
    return name


def demo_accuracy(summary: dict) -> str:
    """Table 1 of the demo: entity P/R/F1 of the teacher and every student."""
    students = summary["students"]
    vanilla = students.get("vanilla", {}).get("test", {}).get("f1")

    def row(name, r, margin=True):
        gap = signed(r["test"]["f1"] - vanilla) if vanilla is not None and margin else ""
        return [name, f2(r["dev"]["f1"]), f2(r["test"]["precision"]), f2(r["test"]["recall"]), f2(r["test"]["f1"]), gap]

    rows = [row("teacher MiniLM-L6 (6 layers)", summary["teacher"])]
    rows += [row(_student_name(summary, m), s, margin=m != "vanilla") for m, s in students.items()]
    body = table(["model", "dev F1", "test P", "test R", "test F1", "test F1 - vanilla"], rows, "lrrrrr")
    return body + "\n\n" + source_line((DEMO,), f"the whole demo took {summary['minutes']:.1f} min")


def demo_phases(summary: dict) -> str:
    """Table 2 of the demo: seconds per epoch by phase (each phase's median over the run's epochs)."""
    students = summary["students"]
    base = students.get("vanilla", {}).get("epoch_seconds", {}).get("total_s")
    rows = []
    for method, s in students.items():
        e = s["epoch_seconds"]
        fwd, bwd = e.get("student_forward_s"), e.get("student_backward_s")
        rows.append(
            [
                method,
                f2(e["teacher_forward_s"]),
                "-" if fwd is None else f2(fwd),
                "-" if bwd is None else f2(bwd),
                f2(e["total_s"]),
                times(e["total_s"] / base) if base else "-",
                f"{s['teacher_cache_s']:.1f}" if s.get("teacher_cache_s") else "-",
            ]
        )
    header = ["method", "teacher fwd", "student fwd", "student bwd", "total", "x vanilla", "teacher cache, once"]
    return table(header, rows, "lrrrrrr") + "\n\n" + source_line((DEMO,), "seconds")


def demo_minutes(summary: dict) -> str:
    return f"{summary['minutes']:.1f}"


# ---------------------------------------------------------------------------
# benchmarks/vs_pytorch.py
# ---------------------------------------------------------------------------

CASE_NAMES = {
    "teacher_train": "training step, teacher",
    "student_train": "training step, student",
    "teacher_infer": "labelling, teacher",
    "student_infer": "labelling, student",
}


def _case_name(result: dict, case: str) -> str:
    name = CASE_NAMES[case]
    return f"{name} ({result['student_layers']} layers)" if case.startswith("student") else name


def vs_pytorch(result: dict) -> str:
    """Milliseconds per call of both sides and their ratios."""
    fine = result["torch_device"] == "cuda"

    def t(x):
        return f"{x:.1f}" if fine else f"{x:.0f}"

    rows = []
    for case, c in result["cases"].items():
        rows.append(
            [
                _case_name(result, case),
                t(c["torch_ms"]),
                t(c["torch_compile_ms"]) if c.get("torch_compile_ms") else "-",
                t(c["jaxkd_ms"]),
                f2(c["ratio"]),
                t(c["torch_autocast_ms"]),
                t(c["jaxkd_bf16_ms"]),
                f2(c["ratio_bf16"]),
                f2(c["ratio_bf16_vs_autocast"]),
            ]
        )
    header = [
        "ms per call",
        "PyTorch eager",
        "torch.compile",
        "jaxkd",
        "jaxkd / eager",
        "PyTorch bf16 (autocast)",
        "jaxkd bf16",
        "jaxkd bf16 / eager",
        "jaxkd bf16 / autocast",
    ]
    shape = result["shape"]
    what = (
        f"{environment(result)}, torch {result['torch_version']} ({result['torch_threads']} threads); "
        f"float32 products: {result['float32_products']}; B={shape['batch_size']}, T={shape['seq_len']} sub-words, "
        f"W={shape['words']} words, N={shape['num_tags']} tags; medians of {result['repeats']} calls"
    )
    return table(header, rows, "lrrrrrrrr") + "\n\n" + source_line((f"{RESULTS}/{result['_file']}",), what)


def vs_pytorch_parity(cpu: dict, gpu: dict) -> str:
    """What the two sides' outputs differ by, checked before any timing."""
    rows = []
    for result in (cpu, gpu):
        for side in ("teacher", "student"):
            p, b = result["parity"][side], result["parity_bf16"][side]
            rows.append(
                [
                    result["environment"]["device"],
                    side,
                    f"{p['max_emission_diff']:.1e}",
                    f"{p['max_nll_rel_diff']:.1e}",
                    "yes" if p["viterbi_equal"] else "no",
                    f"{b['max_emission_diff']:.3f}",
                    f"{100 * b['viterbi_tag_agreement']:.1f}%",
                ]
            )
    header = [
        "device",
        "model",
        "float32: max emission diff",
        "max NLL rel. diff",
        "same Viterbi tags",
        "jaxkd bf16: max emission diff",
        "Viterbi tags agreeing",
    ]
    return (
        table(header, rows, "llrrlrr")
        + "\n\n"
        + source_line((f"{RESULTS}/vs_pytorch_cpu.json", f"{RESULTS}/vs_pytorch_h100.json"))
    )


def ratio_span(key: str) -> Callable[[dict], str]:
    def build(result: dict) -> str:
        return span([c[key] for c in result["cases"].values()])

    return build


# ---------------------------------------------------------------------------
# benchmarks/crf_kernels.py
# ---------------------------------------------------------------------------


def crf_kernels(result: dict) -> str:
    """Every (L, N) of the grid: NLL + gradient, Viterbi and 3-best, against pytorch-crf."""
    cells: dict = {}
    for r in result["results"]:
        cells[(r["length"], r["num_tags"], r["op"])] = r
    rows = []
    for length, tags in sorted({(k[0], k[1]) for k in cells}):
        nll, vit, best = (
            cells[(length, tags, "nll_grad")],
            cells[(length, tags, "viterbi")],
            cells[(length, tags, "kbest3")],
        )
        rows.append(
            [
                str(length),
                str(tags),
                ms(nll["sequential_s"]),
                ms(nll["parallel_s"]),
                ms(nll["torch_s"]),
                f"{nll['torch_over_jax']:.1f}x" if nll["torch_over_jax"] else "-",
                ms(vit["sequential_s"]),
                ms(vit["torch_s"]),
                f"{vit['torch_over_jax']:.1f}x" if vit["torch_over_jax"] else "-",
                ms(best["sequential_s"]),
            ]
        )
    header = [
        "L",
        "N",
        "NLL + grad, sequential",
        "parallel",
        "pytorch-crf",
        "pytorch-crf / sequential",
        "Viterbi",
        "pytorch-crf",
        "pytorch-crf / jaxkd",
        "3-best",
    ]
    what = f"{environment(result)}; B={result['batch']}; milliseconds per call"
    return table(header, rows, "rrrrrrrrrr") + "\n\n" + source_line((f"{RESULTS}/{result['_file']}",), what)


# ---------------------------------------------------------------------------
# benchmarks/epoch_timing.py
# ---------------------------------------------------------------------------

METHOD_NAMES = {"efficient_cached": "efficient, cached teacher"}


def epoch_timing(result: dict) -> str:
    """Seconds per epoch by phase, every method, with ratios to vanilla and to efficient."""
    m = result["methods"]
    rows = []
    for name, r in m.items():
        rows.append(
            [
                METHOD_NAMES.get(name, name),
                f"{r['teacher_forward_s']:.3f}",
                f"{r['student_forward_s']:.3f}",
                f"{r['student_backward_s']:.3f}",
                f"{r['total_s']:.3f}",
                times(r["total_s"] / m["vanilla"]["total_s"]),
                times(r["total_s"] / m["efficient"]["total_s"]),
            ]
        )
    header = ["method", "teacher fwd", "student fwd", "student bwd", "total", "x vanilla", "x efficient"]
    cache = m.get("efficient_cached", {}).get("cache_build_s")
    what = (
        f"{environment(result)}; {result['preset']} preset, {result['dtype']}, {result['sentences']:,} sentences in "
        f"{result['batches']} batches of {result['batch_size']}, lambda = {result['kd_weight']:g}; seconds, medians of "
        f"{result['epochs']} epochs" + (f"; the one-off cache pass took {cache:.3f} s" if cache is not None else "")
    )
    return table(header, rows, "lrrrrrr") + "\n\n" + source_line((f"{RESULTS}/{result['_file']}",), what)


def epoch_timing_vs_paper(bf16: dict, f32: dict, paper_table: dict) -> str:
    """Epoch totals on the H100 in both precisions against the paper's V100
    figures (``paper_table``: its Table 2, phases per method, as committed)."""
    paper_v100 = paper_table["methods"]
    rows = []
    for name in bf16["methods"]:
        b, f = bf16["methods"][name]["total_s"], f32["methods"][name]["total_s"]
        paper = paper_v100.get(name)
        eb, ef = bf16["methods"]["efficient"]["total_s"], f32["methods"]["efficient"]["total_s"]
        rows.append(
            [
                METHOD_NAMES.get(name, name),
                f2(b),
                f2(f),
                f"{paper[3]}" if paper else "-",
                times(eb / b),
                times(ef / f),
                times(paper_v100["efficient"][3] / paper[3]) if paper else "-",
            ]
        )
    header = [
        "method",
        "jaxkd H100 bf16 (s)",
        "jaxkd H100 float32 (s)",
        "paper V100 (s)",
        "efficient / this, bf16",
        "efficient / this, float32",
        "efficient / this, paper",
    ]
    files = tuple(f"{RESULTS}/{name}" for name in (bf16["_file"], f32["_file"], paper_table["_file"]))
    return (
        table(header, rows, "lrrrrrr") + "\n\n" + source_line(files, "the paper's column is Lin et al. (2022), Table 2")
    )


# ---------------------------------------------------------------------------
# benchmarks/accuracy.py
# ---------------------------------------------------------------------------


def _variant_name(name: str) -> str:
    name, *changes = name.split("@")
    method, plus, _ = name.partition("+")
    label = f"{method} + unlabelled tweets" if plus else name
    return label + "".join(f", {change.split('.')[-1]}" for change in changes)


def _mean(cell: dict, seeds: int) -> str:
    return f2(cell["mean"]) if seeds == 1 or len(cell["runs"]) == 1 else f"{cell['mean']:.2f} ± {cell['std']:.2f}"


def _metric(result: dict) -> str:
    """How a study's score is named: "F1" (entities) or "accuracy" (token tags)."""
    return METRIC_NAMES[result["meta"].get("metric", "f1")]


def accuracy(result: dict, teacher: str = "teacher MiniLM-L6 (one run)") -> str:
    """Mean (± standard deviation over seeds) score of every variant and its paired difference to vanilla."""
    seeds = result["meta"]["seeds"]
    score = _metric(result)
    has_unused = any("unused" in r for r in result["summary"].values())
    rows = []
    for name, r in result["summary"].items():
        label = teacher if name == "teacher" else _variant_name(name)
        diff = r.get("vs_vanilla", {})
        row = [label, _mean(r["test"], seeds), _mean(r["dev"], seeds)]
        if has_unused:
            row.append(_mean(r["unused"], seeds) if "unused" in r else "read")
        row.append(interval(diff["sentences"]) if diff else "")
        if seeds > 1:
            row.append(interval(diff["sentences_and_seeds"]) if "sentences_and_seeds" in diff else "")
        rows.append(row)
    header = ["model", f"test {score}", f"dev {score}"] + (["unused tweets F1"] if has_unused else [])
    header.append(f"test {score} - vanilla [95% interval: sentences]")
    if seeds > 1:
        header.append("[sentences and seeds]")
    meta = result["meta"]
    what = (
        f"{meta['device']} ({meta['cpu_count']} cores), jax {meta['jax']}, {meta['date']}; {seeds} seed(s), "
        f"{meta['replicates']} bootstrap draws; {meta['training_minutes']:.0f} minutes of training in all"
    )
    return (
        table(header, rows, "l" + "r" * (len(header) - 1))
        + "\n\n"
        + source_line((f"{RESULTS}/{result['_file']}",), what)
    )


# The studies of the table across corpora: (corpus, what it is, file).
CORPUS_STUDIES = (
    ("WNUT-16 (offline tweets)", "NER, 1,000 training tweets", "accuracy_wnut16_tiny.json"),
    ("WNUT-17", "NER, 3,394 training sentences", "accuracy_wnut17_tiny.json"),
    ("BTC", "NER, 6,338 training tweets", "accuracy_btc_tiny.json"),
    ("UD English-EWT UPOS", "POS, 17 tags, 12,544 training sentences", "accuracy_ud_ewt_upos_tiny.json"),
    ("UD English-EWT XPOS", "POS, 49 tags, 12,544 training sentences", "accuracy_ud_ewt_xpos_tiny.json"),
)


def accuracy_corpora(*results: dict) -> str:
    """For each corpus and method, the BERT-tiny students' mean test score and
    its paired difference to vanilla (resampling sentences)."""
    methods = [m for m in ("vanilla", "efficient", "kbest", "posterior", "structkd")
               if any(m in r["summary"] for r in results)]
    rows = []
    for (corpus, what, _), result in zip(CORPUS_STUDIES, results):
        summary = result["summary"]
        scored = f"{_metric(result)}, {result['meta']['seeds']} seeds"
        cells = [corpus, what, scored, f2(summary["teacher"]["test"]["mean"])]
        for method in methods:
            if method not in summary:
                cells.append("not run")
            elif method == "vanilla":
                cells.append(f2(summary[method]["test"]["mean"]))
            else:
                d = summary[method]["vs_vanilla"]["sentences"]
                cells.append(f"{summary[method]['test']['mean']:.2f} ({interval(d)})")
        rows.append(cells)
    header = ["corpus", "data", "score", "teacher"] + methods
    return (
        table(header, rows, "lllr" + "r" * len(methods))
        + "\n\n"
        + source_line(tuple(f"{RESULTS}/{f}" for _, _, f in CORPUS_STUDIES),
                      "test scores; each method: mean over seeds (difference to vanilla [95% paired bootstrap "
                      "interval over test sentences])")
    )


# One row per scenario: (label, file, methods that are not runs but facts of the code).
SCENARIOS = (
    ("1: CRF -> CRF (5 seeds)", "accuracy_wnut16_tiny.json", {}),
    ("2: CRF -> softmax", "heads_scenario2.json", {}),
    ("3: softmax -> CRF", "heads_scenario3.json", {}),
    (
        "4: span -> softmax",
        "heads_scenario4_softmax.json",
        {"efficient": "refused", "kbest": "refused", "structkd": "= posterior"},
    ),
    ("4: span -> CRF", "heads_scenario4_crf.json", {"efficient": "refused", "kbest": "refused"}),
)
SCENARIO_METHODS = ("efficient", "kbest", "posterior", "structkd")


def heads_scenarios(*results: dict) -> str:
    """Test F1 of the teacher and the vanilla student of each scenario, and each method's difference to that vanilla."""
    rows = []
    for (label, _, facts), result in zip(SCENARIOS, results, strict=True):
        s = result["summary"]
        row = [label, f2(s["teacher"]["test"]["mean"]), f2(s["vanilla"]["test"]["mean"])]
        for method in SCENARIO_METHODS:
            row.append(interval(s[method]["vs_vanilla"]["sentences"]) if method in s else facts.get(method, "-"))
        rows.append(row)
    header = ["scenario: teacher -> student", "teacher", "vanilla"] + [f"{m} - vanilla" for m in SCENARIO_METHODS]
    files = tuple(f"{RESULTS}/{f}" for _, f, _ in SCENARIOS)
    return (
        table(header, rows, "lrrrrrr")
        + "\n\n"
        + source_line(files, "test F1; intervals: 95%, paired bootstrap over test sentences")
    )


# ---------------------------------------------------------------------------
# benchmarks/inference.py and benchmarks/scaling.py
# ---------------------------------------------------------------------------


def inference(result: dict) -> str:
    """Words per second of the API, the compiled calls alone, bf16, and the transformers pipeline."""
    rows = []
    for key, r in result["rates"].items():
        model, _, batch = key.partition("_b")
        rows.append(
            [
                f"{model}, batch {batch}",
                words_per_s(r["api_words_per_s"]),
                words_per_s(r["compiled_words_per_s"]),
                words_per_s(r["bf16_api_words_per_s"]),
                words_per_s(r["pipeline_words_per_s"]),
                f2(r["api_words_per_s"] / r["pipeline_words_per_s"]),
                f2(r["bf16_api_words_per_s"] / r["pipeline_words_per_s"]),
            ]
        )
    header = [
        "model, batch",
        "jaxkd API",
        "compiled calls alone",
        "jaxkd API, bf16",
        "transformers pipeline",
        "API / pipeline",
        "bf16 API / pipeline",
    ]
    what = (
        f"{environment(result)}; {result['words']:,} words in {result['sentences']:,} tweets, words per second, "
        f"medians of {result['repeats']} passes; teacher `{result['teacher']}`, student `{result['student']}`"
    )
    return table(header, rows, "lrrrrrr") + "\n\n" + source_line((f"{RESULTS}/{result['_file']}",), what)


def inference_student_vs_teacher(result: dict) -> str:
    """How many times the teacher's words per second the student labels, per batch size."""
    rates = result["rates"]
    rows = []
    for batch in sorted({int(k.partition("_b")[2]) for k in rates}):
        s, t = rates[f"student_b{batch}"], rates[f"teacher_b{batch}"]
        rows.append(
            [str(batch)]
            + [times(s[k] / t[k]) for k in ("api_words_per_s", "compiled_words_per_s", "bf16_api_words_per_s")]
        )
    return (
        table(["batch", "API", "compiled calls alone", "API, bf16"], rows, "rrrr")
        + "\n\n"
        + source_line((f"{RESULTS}/{result['_file']}",), "student words/s over teacher words/s")
    )


def scaling(result: dict) -> str:
    """Training throughput on 1, 2 and 4 devices and 2 processes."""
    rows = []
    one = result["rows"][0]["sentences_per_s"]
    for r in result["rows"]:
        rows.append(
            [
                str(r["devices"]),
                str(r["processes"]),
                f2(r["epoch_s"]),
                f"{r['sentences_per_s']:.0f}",
                f"{r['per_device']:.0f}",
                f2(r["sentences_per_s"] / one),
                f2(r["dev_f1"]),
            ]
        )
    header = ["devices", "processes", "epoch (s)", "sentences/s", "per device", "vs 1 device", "dev F1"]
    setup = result["setup"]
    what = (
        f"{environment(result)}; `{setup['checkpoint']}` tagger, {setup['sentences']:,} sentences, "
        f"epoch {setup['epochs']} of {setup['epochs']}"
    )
    return table(header, rows, "rrrrrrr") + "\n\n" + source_line((f"{RESULTS}/scaling_cpu.json",), what)


def scaling_cost(devices: int, processes: int) -> Callable[[dict], str]:
    """The percentage of one device's throughput lost on a row of the scaling table."""

    def build(result: dict) -> str:
        one = result["rows"][0]["sentences_per_s"]
        row = next(r for r in result["rows"] if r["devices"] == devices and r["processes"] == processes)
        return f"{100 * (1 - row['sentences_per_s'] / one):.0f}%"

    return build


# ---------------------------------------------------------------------------
# facts read from the code
# ---------------------------------------------------------------------------


def labelling_shapes(source: str, window: int = 512) -> str:
    """How many bucket shapes labelling (and the jax export) compiles for an
    encoder window: ``jaxkd.labeling.bucket_shapes``, from its LENGTHS."""
    for node in ast.parse(source).body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        if any(isinstance(t, ast.Name) and t.id == "LENGTHS" for t in targets):
            lengths = ast.literal_eval(node.value)
            return str(len({t for t in lengths if t < window} | {window}))
    raise ValueError("jaxkd/labeling.py has no LENGTHS")


# ---------------------------------------------------------------------------
# the registry
# ---------------------------------------------------------------------------


def _r(name: str) -> str:
    return f"{RESULTS}/{name}"


TABLES: dict[str, Part] = {
    "demo_accuracy": Part((DEMO,), demo_accuracy, pending=True),
    "demo_phases": Part((DEMO,), demo_phases, pending=True),
    "vs_pytorch_cpu": Part((_r("vs_pytorch_cpu.json"),), vs_pytorch),
    "vs_pytorch_h100": Part((_r("vs_pytorch_h100.json"),), vs_pytorch),
    "vs_pytorch_parity": Part((_r("vs_pytorch_cpu.json"), _r("vs_pytorch_h100.json")), vs_pytorch_parity),
    "crf_kernels_cpu": Part((_r("crf_kernels_cpu.json"),), crf_kernels),
    "crf_kernels_h100": Part((_r("crf_kernels_h100.json"),), crf_kernels),
    "epoch_timing_tiny_cpu": Part((_r("epoch_timing_tiny_cpu.json"),), epoch_timing),
    "epoch_timing_ud_xpos_cpu": Part((_r("epoch_timing_ud_xpos_cpu.json"),), epoch_timing),
    "epoch_timing_ud_xpos_h200_bf16": Part((_r("epoch_timing_ud_xpos_h200_bf16.json"),), epoch_timing),
    "epoch_timing_ud_xpos_h200_f32": Part((_r("epoch_timing_ud_xpos_h200_f32.json"),), epoch_timing),
    "epoch_timing_conll03_h100_bf16": Part((_r("epoch_timing_conll03_h100_bf16.json"),), epoch_timing),
    "epoch_timing_conll03_h100_f32": Part((_r("epoch_timing_conll03_h100_f32.json"),), epoch_timing),
    "epoch_timing_vs_paper": Part(
        (_r("epoch_timing_conll03_h100_bf16.json"), _r("epoch_timing_conll03_h100_f32.json"),
         _r("paper_table2_v100.json")),
        epoch_timing_vs_paper,
    ),
    "accuracy_wnut16_tiny": Part((_r("accuracy_wnut16_tiny.json"),), accuracy),
    "accuracy_wnut16_minilm2": Part((_r("accuracy_wnut16_minilm2.json"),), accuracy),
    "accuracy_wnut17_tiny": Part((_r("accuracy_wnut17_tiny.json"),), accuracy),
    "accuracy_wnut17_tiny_efficient_variants": Part((_r("accuracy_wnut17_tiny_efficient_variants.json"),), accuracy),
    "accuracy_btc_tiny": Part((_r("accuracy_btc_tiny.json"),), accuracy),
    "accuracy_ud_ewt_upos_tiny": Part((_r("accuracy_ud_ewt_upos_tiny.json"),), accuracy),
    "accuracy_ud_ewt_xpos_tiny": Part((_r("accuracy_ud_ewt_xpos_tiny.json"),), accuracy),
    "accuracy_corpora": Part(tuple(_r(f) for _, _, f in CORPUS_STUDIES), accuracy_corpora),
    "heads_scenarios": Part(tuple(_r(f) for _, f, _ in SCENARIOS), heads_scenarios),
    "inference_cpu": Part((_r("inference_cpu.json"),), inference),
    "inference_cpu_student_vs_teacher": Part((_r("inference_cpu.json"),), inference_student_vs_teacher),
    "inference_cpu_minilm2": Part((_r("inference_cpu_minilm2.json"),), inference),
    "scaling_cpu": Part((_r("scaling_cpu.json"),), scaling),
}

FIGURES: dict[str, Part] = {
    "demo_minutes": Part((DEMO,), demo_minutes, pending=True),
    "vs_pytorch_cpu_ratio": Part((_r("vs_pytorch_cpu.json"),), ratio_span("ratio")),
    "vs_pytorch_cpu_ratio_bf16": Part((_r("vs_pytorch_cpu.json"),), ratio_span("ratio_bf16")),
    "vs_pytorch_cpu_ratio_bf16_vs_autocast": Part((_r("vs_pytorch_cpu.json"),), ratio_span("ratio_bf16_vs_autocast")),
    "vs_pytorch_h100_ratio": Part((_r("vs_pytorch_h100.json"),), ratio_span("ratio")),
    "scaling_cost_2_devices": Part((_r("scaling_cpu.json"),), scaling_cost(2, 1)),
    "labelling_shapes": Part(("jaxkd/labeling.py",), labelling_shapes),
}

SOURCES = tuple(sorted({s for part in (*TABLES.values(), *FIGURES.values()) for s in part.sources}))


def documents(root: Path = ROOT) -> list[Path]:
    """The Markdown files whose generated parts this module keeps."""
    found = [root / "README.md", root / "benchmarks" / "README.md"] + sorted((root / "docs").glob("*.md"))
    return [p for p in found if p.is_file()]


# ---------------------------------------------------------------------------
# rendering and checking
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Report:
    """What :func:`render_all` found: per document, its text as it is and as it would be written."""

    texts: dict = dataclasses.field(default_factory=dict)  # Path -> (current, expected)
    errors: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)

    def diffs(self, root: Path = ROOT) -> list[str]:
        out = []
        for path, (current, expected) in self.texts.items():
            if current != expected:
                name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
                out.append(
                    "".join(
                        difflib.unified_diff(
                            current.splitlines(keepends=True),
                            expected.splitlines(keepends=True),
                            f"{name} (as committed)",
                            f"{name} (from {RESULTS})",
                        )
                    )
                )
        return out

    @property
    def ok(self) -> bool:
        return not self.errors and all(current == expected for current, expected in self.texts.values())


class _Sources:
    """The sources of every part, each loaded once."""

    def __init__(self, root: Path):
        self.root = root
        self.loaded: dict = {}

    def get(self, path: str):
        if path not in self.loaded:
            file = self.root / path
            if file.suffix == ".json":
                value = json.loads(file.read_text())
                if isinstance(value, dict):
                    value["_file"] = file.name
            else:
                value = file.read_text()
            self.loaded[path] = value
        return self.loaded[path]


def _generate(kind: str, name: str, sources: _Sources, where: str, report: Report) -> str | None:
    """The text of one part, or None when it is to be left as it is."""
    registry = TABLES if kind == "table" else FIGURES
    part = registry.get(name)
    if part is None:
        report.errors.append(
            f"{where}: unknown {kind} {name!r} (benchmarks/tables.py knows {', '.join(sorted(registry))})"
        )
        return None
    missing = [s for s in part.sources if not (sources.root / s).is_file()]
    if missing:
        if part.pending:
            report.notes.append(
                f"{where}: {kind} {name!r} skipped: {', '.join(missing)} is not committed yet (it is left as it is; "
                "`python -m benchmarks.tables` fills it in once the file exists)"
            )
        else:
            report.errors.append(f"{where}: {kind} {name!r} needs {', '.join(missing)}, which is missing")
        return None
    try:
        return part.build(*(sources.get(s) for s in part.sources))
    except (KeyError, TypeError, ValueError, ZeroDivisionError, StopIteration) as err:
        report.errors.append(f"{where}: {kind} {name!r} could not be built from {', '.join(part.sources)}: {err!r}")
        return None


def render(text: str, sources: _Sources, where: str, report: Report) -> str:
    """``text`` with every generated part rewritten from its sources."""
    opened, closed = len(OPENERS.findall(text)), len(CLOSERS.findall(text))
    blocks, inline = BLOCK.findall(text), INLINE.findall(text)
    if opened != closed or opened != len(blocks) + len(inline) or any(OPENERS.search(body) for _, body in blocks):
        report.errors.append(f"{where}: unbalanced generated-part markers ({opened} opened, {closed} closed)")
        return text

    def block(match: re.Match) -> str:
        body = _generate("table", match.group(1), sources, where, report)
        return match.group(0) if body is None else f"<!-- table: {match.group(1)} -->\n\n{body}\n\n<!-- end table -->"

    def figure(match: re.Match) -> str:
        value = _generate("figure", match.group(1), sources, where, report)
        return match.group(0) if value is None else f"<!-- figure: {match.group(1)} -->{value}<!-- end figure -->"

    return INLINE.sub(figure, BLOCK.sub(block, text))


def render_all(root: Path = ROOT) -> Report:
    """Every document's text as it is and as it would be written."""
    report = Report()
    sources = _Sources(root)
    for path in documents(root):
        current = path.read_text()
        report.texts[path] = (current, render(current, sources, str(path.relative_to(root)), report))
    return report


def check(root: Path = ROOT) -> Report:
    """The documents compared with what their sources give (nothing is written)."""
    return render_all(root)


def write(root: Path = ROOT) -> Report:
    """Rewrites every document whose generated parts differ from their sources."""
    report = render_all(root)
    if not report.errors:
        for path, (current, expected) in report.texts.items():
            if current != expected:
                path.write_text(expected)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 and print a diff where a part differs"
    )
    args = parser.parse_args(argv)
    report = check() if args.check else write()
    for note in report.notes:
        print(f"note: {note}")
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    if report.errors:
        return 1
    changed = [p for p, (current, expected) in report.texts.items() if current != expected]
    if args.check:
        if changed:
            for diff in report.diffs():
                print(diff, end="")
            print(
                f"{len(changed)} document(s) differ from {RESULTS}: run `python -m benchmarks.tables`", file=sys.stderr
            )
            return 1
        print(f"{len(report.texts)} document(s) match {RESULTS}")
        return 0
    names = ", ".join(str(p.relative_to(ROOT)) for p in changed) or "nothing"
    print(f"rewrote {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
