"""Labels sentences with a jaxkd tagger exported by ``python -m jaxkd.export --format jax``.

This file is copied into every such export as ``label.py``. It needs jax,
numpy, safetensors and tokenizers, and not jaxkd:

    python label.py "EU rejects German call to boycott British lamb ." ...
    echo "one sentence per line" | python label.py

    import label                      # from Python, with the export's directory on sys.path
    tagger = label.ExportedTagger("path/to/export")
    tagger([["EU", "rejects", "German", "call"]])   # -> [["B-ORG", "O", "B-MISC", "O"]]

Each sentence becomes one row ``[CLS] sub-words [SEP]``, tagged at each word's
first sub-word, padded to the smallest exported length that holds it. A
sentence longer than the largest one is refused: jaxkd itself labels those
(it splits them into overlapping windows).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

HERE = Path(__file__).resolve().parent  # the export directory this file was written into


class ExportedTagger:
    def __init__(self, directory: str | Path = HERE):
        directory = Path(directory)
        self.meta = json.loads((directory / "export.json").read_text())
        self.labels = self.meta["labels"]
        self.params = load_file(str(directory / "params.safetensors"))
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.functions = {
            shape["T"]: jax.export.deserialize(bytearray((directory / shape["file"]).read_bytes()))
            for shape in self.meta["shapes"]
        }
        # Run where the function was lowered for: the default device, else the CPU.
        default = jax.devices()[0].platform
        names = {"gpu": ("cuda", "rocm")}.get(default, (default,))
        exported = self.meta["platforms"]
        self.device = (
            None if any(n in exported for n in names) else jax.devices("cpu")[0] if "cpu" in exported else None
        )

    def sub_words(self, words: list[str]) -> tuple[list[int], list[int]]:
        """(ids ``[CLS] ... [SEP]``, position of each word's first sub-word)."""
        special = self.meta["special_ids"]
        cap = max(self.functions) - 2
        encoding = self.tokenizer.encode(words, is_pretokenized=True, add_special_tokens=False)
        pieces: list[list[int]] = [[] for _ in words]
        for token, word in zip(encoding.ids, encoding.word_ids):
            if word is not None:
                pieces[word].append(token)
        ids, firsts = [special["cls"]], []
        for piece in pieces:
            firsts.append(len(ids))
            ids += piece[:cap] if piece else [special["unk"]]
        return ids + [special["sep"]], firsts

    def __call__(self, sentences: list[list[str]]) -> list[list[str]]:
        """One tag per word of each sentence (an empty sentence gives [])."""
        batch_size, pad = self.meta["batch_size"], self.meta["special_ids"]["pad"]
        tags: list[list[str] | None] = [[] if not words else None for words in sentences]
        by_length: dict[int, list] = {}
        for i, words in enumerate(sentences):
            if words:
                ids, firsts = self.sub_words(list(words))
                fits = [t for t in sorted(self.functions) if len(ids) <= t]
                if not fits:
                    raise ValueError(
                        f"sentence {i}: {len(ids)} sub-words, more than the largest exported length "
                        f"{max(self.functions)}; label it with jaxkd, which windows long sentences"
                    )
                by_length.setdefault(fits[0], []).append((i, ids, firsts))
        for length, items in by_length.items():
            width = length - 2
            for k in range(0, len(items), batch_size):
                chunk = items[k : k + batch_size]
                input_ids = np.full((batch_size, length), pad, np.int32)
                attention = np.zeros((batch_size, length), np.int32)
                word_index = np.zeros((batch_size, width), np.int32)
                word_mask = np.zeros((batch_size, width), bool)
                for r, (_, ids, firsts) in enumerate(chunk):
                    input_ids[r, : len(ids)], attention[r, : len(ids)] = ids, 1
                    word_index[r, : len(firsts)], word_mask[r, : len(firsts)] = firsts, True
                args = (self.params, input_ids, attention, word_index, word_mask)
                if self.device is not None:
                    args = jax.device_put(args, self.device)
                out = np.asarray(self.functions[length].call(*args))
                for r, (i, _, firsts) in enumerate(chunk):
                    tags[i] = [self.labels[t] for t in out[r, : len(firsts)]]
        return tags


def main(argv: list[str]) -> int:
    lines = argv or sys.stdin.read().splitlines()
    sentences = [line.split() for line in lines]
    for words, tags in zip(sentences, ExportedTagger()(sentences)):
        print(" ".join(f"{w}/{t}" for w, t in zip(words, tags)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
