"""Entity F1 of trained runs on the training tweets the demo never trains on.

The demo trains every model on the first 1,000 of the 1,916 WNUT-16 training
tweets, and scores them on a test split of 239 tweets (~130 entities, so one
entity moves F1 by ~0.8). The other 916 training tweets (~500 entities) are
unseen by every demo model, which makes them a larger set to compare runs on
without touching the test split: the demo's lambda schedule was chosen on them.

    python -m benchmarks.heldout_f1 runs/demo/teacher runs/demo/vanilla runs/demo/efficient
    python -m benchmarks.heldout_f1 runs/demo/efficient:latest   # a run's latest checkpoint

Prints one JSON line per run: F1 on the unused tweets, dev and test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jaxkd.data.sources import load_corpus
from jaxkd.evaluate import entity_scores
from jaxkd.predict import label


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run workdirs, each optionally followed by :best (default) or :latest")
    parser.add_argument(
        "--trained-on", type=int, default=1000, help="how many training tweets the runs used (the demo: 1000)"
    )
    args = parser.parse_args(argv)
    corpus = load_corpus("wnut16")
    unused = corpus.train[args.trained_on :]
    if not unused:
        parser.error(
            f"the training split has {len(corpus.train)} tweets: none is left after the first {args.trained_on}"
        )
    sets = {f"unused_train_{len(unused)}": unused, "dev": corpus.dev, "test": corpus.test}
    everything = [s for sentences in sets.values() for s in sentences]
    for spec in args.runs:
        workdir, _, ckpt = spec.partition(":")
        if not Path(workdir, "checkpoints").is_dir():
            print(f"error: {workdir} is not a run's workdir (no checkpoints/)", file=sys.stderr)
            return 2
        # One call per run: the run is restored and its decoder compiled once.
        pred = iter(label(workdir, [list(s.words) for s in everything], checkpoint_name=ckpt or "best"))
        row = {"run": workdir, "checkpoint": ckpt or "best"}
        for name, sentences in sets.items():
            gold = [list(s.tags) for s in sentences]
            row[name] = round(entity_scores(gold, [next(pred) for _ in sentences])["f1"], 2)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
