"""Export a trained tagger to formats other stacks load.

    python -m jaxkd.export --workdir runs/demo/efficient --out exports/efficient --format hf

``hf`` writes a Hugging Face-style directory (``BertForTokenClassification``
weights, the tokenizer, the CRF in ``crf.safetensors`` and a README on
decoding it; :mod:`jaxkd.hf_export`). ``jax`` writes the compiled labelling
function (:mod:`jaxkd.jax_export`) with a standalone ``label.py``::

    python -m jaxkd.export --workdir runs/demo/efficient --out exports/efficient-jax --format jax
    python exports/efficient-jax/label.py "EU rejects German call to boycott British lamb ."

Either directory is written under a temporary name and renamed when complete;
an existing ``--out`` is refused. Nothing in them is a pickle.
:func:`jaxkd.load_tagger` also loads an ``hf`` export.
"""

from __future__ import annotations

import argparse
import sys

from absl import logging

from jaxkd.export_files import ExportError
from jaxkd.hf_export import export_hf
from jaxkd.jax_export import export_jax

__all__ = ["ExportError", "export_hf", "export_jax", "main"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True, help="a training run's workdir")
    parser.add_argument("--out", required=True, help="the directory to create")
    parser.add_argument(
        "--format",
        default="hf",
        choices=("hf", "jax"),
        help="hf: a Hugging Face-style directory; jax: jax.export (StableHLO)",
    )
    parser.add_argument("--checkpoint", default="best", choices=("best", "latest"))
    parser.add_argument("--batch-size", type=int, default=32, help="jax: rows per call of the exported function")
    parser.add_argument(
        "--platforms",
        default="cpu,cuda",
        help="jax: platforms the function is lowered for (comma-separated: cpu, cuda, rocm, tpu)",
    )
    args = parser.parse_args(argv)
    logging.set_verbosity(logging.WARNING)
    try:
        if args.format == "hf":
            out = export_hf(args.workdir, args.out, checkpoint=args.checkpoint)
        else:
            platforms = tuple(p.strip() for p in args.platforms.split(",") if p.strip())
            out = export_jax(
                args.workdir, args.out, checkpoint=args.checkpoint, batch_size=args.batch_size, platforms=platforms
            )
    except (ExportError, FileNotFoundError, ValueError) as err:
        print(f"jaxkd.export: error: {err}", file=sys.stderr)
        return 2
    print(f"[jaxkd] exported {args.workdir} ({args.checkpoint}) to {out} (format {args.format})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
