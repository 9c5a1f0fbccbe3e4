"""Re-creates the PyTorch reference outputs that tests/test_bert.py compares against.

The test suite needs no PyTorch: this script ran once, in a separate virtual
environment with torch, and its outputs are committed next to it:

* ``bert_tiny_reference.npz``   -- tiny random checkpoints from tests/tiny_bert.py
  (their keyword arguments stored as JSON under ``checkpoints``: the tests
  rebuild them from the same seeds), a padded batch of 3 with
  token-type ids, last hidden states of the full model and of truncated ones,
  and of variants with the ``gelu_new`` and ``relu`` activations;
* ``bert_minilm_reference.npz`` -- the real MiniLM-L6-H384 checkpoint on real
  sentences (tokenised with its tokenizer.json), full and first 3 layers; only
  the hidden states of non-padded positions are stored, packed ``[N, H]``.

References are Hugging Face ``transformers.BertModel`` (eager attention, float32,
CPU, ``eval()``), truncated models being ``BertModel`` with
``num_hidden_layers=k`` loaded from the same weights.

To run (from the repository root; torch stays out of the project's .venv)::

    python3 -m venv /tmp/torchref
    /tmp/torchref/bin/pip install torch==2.13.0   # a CPU build, installed alone first
    /tmp/torchref/bin/pip install transformers safetensors numpy tokenizers
    MINILM="$(.venv/bin/python -c 'import jaxkd.offline as o; print(o.minilm_path())')"
    /tmp/torchref/bin/python tests/data/make_bert_reference.py --minilm "$MINILM"
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from tokenizers import Tokenizer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # for tests/tiny_bert.py

import tiny_bert  # noqa: E402

#: Tiny checkpoints: name -> write_tiny_checkpoint keyword arguments.
TINY_CHECKPOINTS = {
    "gelu": {"seed": 0, "num_layers": 3},
    "gelu_new": {"seed": 1, "num_layers": 2, "hidden_act": "gelu_new"},
    "relu": {"seed": 2, "num_layers": 2, "hidden_act": "relu"},
}
TINY_LENGTHS = (12, 7, 2)  # real tokens per row, [CLS] and [SEP] included
TINY_TRUNCATIONS = (1, 2)

MINILM_SENTENCES = (
    "John Smith moved from London to New York in 2019.",
    "The European Union fined Google 2.4 billion euros.",
    "Hello world!",
)
MINILM_PAIR = ("Who founded Apple?", "Steve Jobs and Steve Wozniak did.")
MINILM_TRUNCATION = 3


def tiny_inputs(vocab_size: int, seed: int = 123) -> dict[str, np.ndarray]:
    """A padded batch: [CLS] random tokens [SEP], pairs' second segments typed 1."""
    rng = np.random.default_rng(seed)
    batch, width = len(TINY_LENGTHS), max(TINY_LENGTHS)
    ids = np.zeros((batch, width), np.int32)
    types = np.zeros((batch, width), np.int32)
    for row, n in enumerate(TINY_LENGTHS):
        ids[row, :n] = rng.integers(5, vocab_size, n)
        ids[row, 0], ids[row, n - 1] = 2, 3  # [CLS], [SEP]
        types[row, n // 2 : n] = 1 if n > 2 else 0
    mask = (np.arange(width)[None] < np.array(TINY_LENGTHS)[:, None]).astype(np.int32)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def hf_hidden(
    directory: Path,
    inputs: dict,
    num_layers: int | None = None,
    attn: str = "eager",
    with_types: bool = True,
) -> np.ndarray:
    """Last hidden state of transformers' BertModel on a checkpoint directory."""
    config = transformers.BertConfig.from_pretrained(directory)
    if num_layers is not None:
        config.num_hidden_layers = num_layers
    model, info = transformers.BertModel.from_pretrained(
        directory, config=config, attn_implementation=attn, output_loading_info=True
    )
    assert not info["missing_keys"], info["missing_keys"]
    model.eval()
    args = {k: torch.from_numpy(np.asarray(v, np.int64)) for k, v in inputs.items()}
    if not with_types:
        del args["token_type_ids"]
    with torch.no_grad():
        return model(**args).last_hidden_state.numpy().astype(np.float32)


def check_attention_paths(directory: Path, inputs: dict) -> float:
    """Max |eager - sdpa| on valid positions: a sanity check of the reference."""
    mask = np.asarray(inputs["attention_mask"], bool)
    eager = hf_hidden(directory, inputs)
    sdpa = hf_hidden(directory, inputs, attn="sdpa")
    return float(np.abs(eager - sdpa)[mask].max())


def make_tiny(out: Path) -> None:
    arrays: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, kwargs in TINY_CHECKPOINTS.items():
            directory = tiny_bert.write_tiny_checkpoint(Path(tmp) / name, **kwargs)
            if not arrays:
                vocab_size = len((directory / "vocab.txt").read_text().splitlines())
                arrays.update(tiny_inputs(vocab_size))
            inputs = {k: arrays[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
            arrays[f"{name}/full"] = hf_hidden(directory, inputs)
            if name == "gelu":
                for k in TINY_TRUNCATIONS:
                    arrays[f"{name}/layers{k}"] = hf_hidden(directory, inputs, num_layers=k)
                arrays[f"{name}/full_no_types"] = hf_hidden(directory, inputs, with_types=False)
                print("tiny eager vs sdpa:", check_attention_paths(directory, inputs))
    arrays["checkpoints"] = np.array(json.dumps(TINY_CHECKPOINTS, sort_keys=True))
    np.savez_compressed(out, **arrays, **_versions())
    print(f"wrote {out} ({out.stat().st_size} bytes): {sorted(arrays)}")


def make_minilm(minilm: Path, out: Path) -> None:
    tokenizer = Tokenizer.from_file(str(minilm / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    encodings = tokenizer.encode_batch([*MINILM_SENTENCES, MINILM_PAIR])
    inputs = {
        "input_ids": np.array([e.ids for e in encodings], np.int32),
        "attention_mask": np.array([e.attention_mask for e in encodings], np.int32),
        "token_type_ids": np.array([e.type_ids for e in encodings], np.int32),
    }
    valid = inputs["attention_mask"].astype(bool)
    full = hf_hidden(minilm, inputs)[valid]
    truncated = hf_hidden(minilm, inputs, num_layers=MINILM_TRUNCATION)[valid]
    print("minilm eager vs sdpa:", check_attention_paths(minilm, inputs))
    np.savez_compressed(
        out,
        **inputs,
        sentences=np.array([*MINILM_SENTENCES, " ||| ".join(MINILM_PAIR)]),
        full=full,
        truncated=truncated,
        truncated_layers=np.int32(MINILM_TRUNCATION),
        **_versions(),
    )
    print(f"wrote {out} ({out.stat().st_size} bytes): {valid.sum()} valid positions")


def _versions() -> dict[str, np.ndarray]:
    return {
        "torch_version": np.array(torch.__version__),
        "transformers_version": np.array(transformers.__version__),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minilm", type=Path, required=True, help="MiniLM-L6 checkpoint directory")
    parser.add_argument("--out", type=Path, default=HERE, help="where to write the .npz files")
    args = parser.parse_args()
    torch.manual_seed(0)
    make_tiny(args.out / "bert_tiny_reference.npz")
    make_minilm(args.minilm, args.out / "bert_minilm_reference.npz")


if __name__ == "__main__":
    main()
