"""Labelling speed: words per second of a teacher and its student, and of the
same models in the transformers token-classification pipeline.

    python -m benchmarks.inference [--teacher runs/demo/teacher] [--student runs/demo/efficient]
        [--batch-sizes 8,32] [--sentences 2394] [--repeats 3] [--json PATH]

Text: the offline WNUT-16 tweets (all 2,394, or the first ``--sentences``),
as word lists. For each model and batch size:

* ``api``: ``jaxkd.load_tagger(run).label(sentences, batch_size=b)`` - the
  real path, tokenisation, batching, decoding and stitching included;
* ``compiled``: the compiled encoder + Viterbi calls alone on the same
  batches, prepared beforehand;
* ``bf16 api``, ``bf16 compiled``: the same with ``dtype="bfloat16"`` (bf16
  operands of the dense products, float32 accumulation);
* ``pipeline`` (when PyTorch is installed): the run exported with
  ``jaxkd.export`` (hf) and run by ``transformers.pipeline("token-classification")``
  at the same batch size, PyTorch with all cores and no gradient. It decodes
  by arg-max over the same emissions (no CRF): less work than jaxkd does.

Each figure is the median over ``--repeats`` passes after one warm-up pass
(compilation excluded), in words per second.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import transformers

from benchmarks._timing import environment
from jaxkd.data.sources import load_corpus
from jaxkd.export import export_hf
from jaxkd.labeling import load_tagger


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after one warm-up."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def jaxkd_rates(run: str, sentences, batch_size: int, repeats: int, dtype: str | None = None) -> dict:
    """Words per second of the labelling API and of its compiled calls alone."""
    tagger = load_tagger(run, batch_size=batch_size, dtype=dtype)
    words = sum(len(s) for s in sentences)
    api = median_seconds(lambda: tagger.label(sentences), repeats)
    batches = tagger.batches(tagger.run.encoder.encode(sentences))
    params, rest = tagger.run.params, tagger.run.parts.rest
    compiled = median_seconds(lambda: [tagger._decode(params, rest, b) for b in batches], repeats)
    return {"api_words_per_s": words / api, "compiled_words_per_s": words / compiled}


def pipeline_rate(run: str, sentences, batch_size: int, repeats: int, workdir: Path) -> float | None:
    """Words per second of the transformers pipeline on the run's hf export."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    transformers.logging.set_verbosity_error()
    out = workdir / Path(run).name
    if not out.exists():
        export_hf(run, out)
    pipe = transformers.pipeline("token-classification", model=str(out), device=-1)
    texts = [" ".join(s) for s in sentences]
    words = sum(len(s) for s in sentences)
    with torch.no_grad():
        seconds = median_seconds(lambda: pipe(texts, batch_size=batch_size), repeats)
    return words / seconds


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--teacher", default="runs/demo/teacher")
    p.add_argument("--student", default="runs/demo/efficient")
    p.add_argument("--batch-sizes", default="8,32")
    p.add_argument("--sentences", type=int, default=0, help="the first n tweets (0 = all)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    for run in (args.teacher, args.student):
        if not Path(run, "checkpoints").is_dir():
            p.error(f"{run} is not a training run's workdir: run bin/demo first, or pass --teacher/--student")
    corpus = load_corpus("wnut16")
    sentences = [list(s.words) for split in (corpus.train, corpus.dev, corpus.test) for s in split]
    sentences = sentences[: args.sentences or None]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, run in (("teacher", args.teacher), ("student", args.student)):
            for bs in (int(b) for b in args.batch_sizes.split(",")):
                print(f"[inference] {name} batch {bs}", file=sys.stderr, flush=True)
                row = jaxkd_rates(run, sentences, bs, args.repeats)
                bf16 = jaxkd_rates(run, sentences, bs, args.repeats, dtype="bfloat16")
                row.update({f"bf16_{k}": v for k, v in bf16.items()})
                row["pipeline_words_per_s"] = pipeline_rate(run, sentences, bs, args.repeats, Path(tmp))
                rows[f"{name}_b{bs}"] = row
    out = {**environment(), "teacher": args.teacher, "student": args.student, "sentences": len(sentences),
           "words": sum(len(s) for s in sentences), "repeats": args.repeats, "rates": rows}
    print_table(out)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


def print_table(out: dict) -> None:
    print(
        f"\n{out['words']} words in {out['sentences']} tweets, jax {out['jax_version']}, {out['device']}; "
        "words per second"
    )
    print(
        f"{'model':<14}{'api':>10}{'compiled':>10}{'bf16 api':>10}{'bf16 comp':>10}{'pipeline':>10}"
        f"{'api/pipe':>10}{'bf16/pipe':>10}"
    )
    rates = out["rates"]
    for key, r in rates.items():
        pipe = r["pipeline_words_per_s"]
        pipe_cells = ("-",) * 3
        if pipe:
            api, bf16 = r["api_words_per_s"] / pipe, r["bf16_api_words_per_s"] / pipe
            pipe_cells = (f"{pipe:.0f}", f"{api:.2f}", f"{bf16:.2f}")
        print(f"{key:<14}{r['api_words_per_s']:>10.0f}{r['compiled_words_per_s']:>10.0f}"
              f"{r['bf16_api_words_per_s']:>10.0f}{r['bf16_compiled_words_per_s']:>10.0f}"
              + "".join(f"{c:>10}" for c in pipe_cells))
    for bs in sorted({k.split('_b')[1] for k in rates}):
        t, s = rates.get(f"teacher_b{bs}"), rates.get(f"student_b{bs}")
        if t and s:
            print(f"batch {bs}: student / teacher = {s['api_words_per_s'] / t['api_words_per_s']:.2f}x (api), "
                  f"{s['compiled_words_per_s'] / t['compiled_words_per_s']:.2f}x (compiled); bf16 "
                  f"{s['bf16_api_words_per_s'] / t['bf16_api_words_per_s']:.2f}x (api)")


if __name__ == "__main__":
    main()
