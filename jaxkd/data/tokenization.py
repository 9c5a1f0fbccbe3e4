"""Sub-word tokenisation of pre-split words, with windows for long sentences.

Each word is encoded on its own (``is_pretokenized``) by the checkpoint's fast
WordPiece tokenizer; its **first sub-word represents it** (the CRF runs over
words). A word that tokenises to nothing (a lone control or zero-width
character, an empty string) becomes the unknown token, so every word has a
first sub-word. The tokenizer file's own truncation and padding settings are
switched off: truncation would silently drop words.

**Windows.** A row is ``[CLS] sub-words [SEP]`` and holds at most ``window``
ids (``max_position_embeddings``, 512 for BERT). A sentence that does not fit
is cut into *pieces* of consecutive words, one row each; a row labels only its
piece's words but also carries unlabelled context: up to ``context``
sub-words before the piece (default ``(window - 2) // 8``) and as many after
it as the window still holds (more before it, for the last piece). So every
word is labelled in exactly one row and sees context on both sides, and
``Row.sentence_index`` / ``Row.word_offset`` say where a row's words go back.
Pieces are cut at the same places whatever the tags (train, evaluation and
prediction see the same rows). The CRF treats each piece as its own sequence;
a piece whose first gold tag is ``I-X`` (a chunk cut by the boundary) has it
encoded as ``B-X`` in that row so its gold path is allowed by the IOB2
constraints, while the sentence's own tags (used for evaluation) stay as they
are. A single word longer than the window keeps its first ``window - 2``
sub-words.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from jaxkd.data.errors import DataError, where
from jaxkd.data.labels import LabelVocab
from jaxkd.data.scheme import split_tag

CLS, SEP, PAD = "[CLS]", "[SEP]", "[PAD]"


class Row(NamedTuple):
    """One encoder input: a whole sentence or one piece of a long one.

    Attributes:
      input_ids: ``[T] int32``, ``[CLS] ... [SEP]``, ``T <= window``.
      word_index: ``[W] int32``, position in ``input_ids`` of the first
        sub-word of each labelled word.
      tags: ``[W] int32`` tag ids of the labelled words (0 when unlabelled).
      sentence_index: which sentence of the encoded list the row belongs to.
      word_offset: index in that sentence of the row's first labelled word.
    """

    input_ids: np.ndarray
    word_index: np.ndarray
    tags: np.ndarray
    sentence_index: int
    word_offset: int


def load_tokenizer(path: str | Path) -> Tokenizer:
    """The fast tokenizer of a checkpoint directory.

    Uses ``tokenizer.json``; without it, builds a BERT WordPiece tokenizer
    from ``vocab.txt`` (lower-casing as ``tokenizer_config.json``'s
    ``do_lower_case`` says, default true as in BERT).
    """
    path = Path(path)
    if (path / "tokenizer.json").is_file():
        return Tokenizer.from_file(str(path / "tokenizer.json"))
    if (path / "vocab.txt").is_file():
        config = _read_json(path / "tokenizer_config.json")
        return wordpiece_tokenizer(
            path / "vocab.txt", lowercase=bool(config.get("do_lower_case", True))
        )
    raise DataError(f"{where(path)}: no tokenizer.json or vocab.txt")


def wordpiece_tokenizer(vocab_file: str | Path, *, lowercase: bool = True) -> Tokenizer:
    """A BERT tokenizer (WordPiece, BERT normaliser and pre-tokeniser,
    ``[CLS] x [SEP]`` post-processor) from a ``vocab.txt``."""
    tokenizer = Tokenizer(models.WordPiece.from_file(str(vocab_file), unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    ids = [tokenizer.token_to_id(t) for t in (SEP, CLS)]
    if None in ids:
        raise DataError(f"{where(vocab_file)}: the vocabulary lacks {SEP} or {CLS}")
    tokenizer.post_processor = processors.BertProcessing((SEP, ids[0]), (CLS, ids[1]))
    return tokenizer


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise DataError(f"{where(path)}: not JSON ({err})") from None


class SubwordEncoder:
    """Turns sentences into :class:`Row` s for one BERT checkpoint.

    Args:
      tokenizer: a BERT WordPiece fast tokenizer (copied; its truncation and
        padding are switched off in the copy).
      window: most ids per row, ``[CLS]`` and ``[SEP]`` included.
      context: sub-words of left context for the pieces of long sentences
        (default ``(window - 2) // 8``; must be below ``(window - 2) / 2``).
    """

    def __init__(self, tokenizer: Tokenizer, window: int = 512, *, context: int | None = None):
        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        if window < 3:
            raise ValueError(f"window must hold [CLS], a word and [SEP]: {window} < 3")
        self.window = int(window)
        budget = self.window - 2
        self.context = budget // 8 if context is None else int(context)
        if not 0 <= 2 * self.context < budget:
            raise ValueError(
                f"context {self.context} must be in [0, {(budget - 1) // 2}] for window {window}"
            )
        ids = {t: self.tokenizer.token_to_id(t) for t in (CLS, SEP, PAD)}
        unk = getattr(self.tokenizer.model, "unk_token", None)
        ids["unk"] = self.tokenizer.token_to_id(unk) if unk else None
        missing = [t for t, i in ids.items() if i is None]
        if missing:
            raise DataError(
                f"the tokenizer has no {missing} token; a BERT WordPiece tokenizer is needed"
            )
        self.cls_id, self.sep_id, self.pad_id, self.unk_id = (
            ids[CLS],
            ids[SEP],
            ids[PAD],
            ids["unk"],
        )

    @classmethod
    def from_pretrained(
        cls, path: str | Path, window: int | None = None, *, context: int | None = None
    ) -> SubwordEncoder:
        """The encoder of a checkpoint directory (see :func:`load_tokenizer`).

        ``window`` defaults to ``config.json``'s ``max_position_embeddings``
        (else 512) and may not exceed it.
        """
        path = Path(path)
        limit = int(_read_json(path / "config.json").get("max_position_embeddings", 512))
        if window is None:
            window = limit
        elif window > limit:
            raise ValueError(f"window {window} exceeds {path}'s max_position_embeddings {limit}")
        return cls(load_tokenizer(path), window, context=context)

    @property
    def filler_ids(self) -> tuple[int, int]:
        """``([CLS], [SEP])``: the ids of a row that holds no word."""
        return (self.cls_id, self.sep_id)

    def word_pieces(self, sentences: Sequence[Sequence[str]]) -> list[list[list[int]]]:
        """Sub-word ids of each word of each sentence (no special tokens).

        A word with no sub-word gets ``[unk]``; a word with more than
        ``window - 2`` keeps the first ``window - 2``.
        """
        cap = self.window - 2
        encodings = self.tokenizer.encode_batch(
            [list(words) for words in sentences], is_pretokenized=True, add_special_tokens=False
        )
        out = []
        for words, encoding in zip(sentences, encodings):
            pieces: list[list[int]] = [[] for _ in words]
            for token, word in zip(encoding.ids, encoding.word_ids):
                if word is not None:
                    pieces[word].append(token)
            out.append([p[:cap] if p else [self.unk_id] for p in pieces])
        return out

    def encode(
        self,
        sentences: Sequence,
        vocab: LabelVocab | None = None,
        *,
        allow_unseen_tags: bool = False,
    ) -> list[Row]:
        """Rows for ``sentences``, in order (several rows for a long sentence).

        Args:
          sentences: :class:`jaxkd.data.conll.Sentence` s, or plain word
            sequences (then, or when ``vocab`` is None, tags are 0).
          vocab: maps tags to ids.
          allow_unseen_tags: encode tags outside ``vocab`` as ``O`` instead of
            raising :class:`DataError`.
        """
        word_lists = [getattr(s, "words", s) for s in sentences]
        for i, (sentence, words) in enumerate(zip(sentences, word_lists)):
            if isinstance(words, str):
                raise TypeError(f"sentence {i} is a string; pass a sequence of words")
            if len(words) == 0:
                raise DataError(f"sentence {i} has no words")
            tags = getattr(sentence, "tags", None)
            if tags is not None and len(tags) != len(words):
                raise DataError(f"sentence {i} has {len(words)} words but {len(tags)} tags")
        rows: list[Row] = []
        for i, (sentence, pieces) in enumerate(zip(sentences, self.word_pieces(word_lists))):
            tags = getattr(sentence, "tags", None)
            if vocab is not None and tags is not None:
                ids = vocab.encode(tags, allow_unseen=allow_unseen_tags)
            else:
                ids = np.zeros(len(pieces), np.int32)
            rows += self._rows(i, pieces, ids, vocab)
        return rows

    def _rows(self, index: int, pieces: list[list[int]], tags: np.ndarray, vocab) -> list[Row]:
        budget = self.window - 2
        lengths = np.array([len(p) for p in pieces])
        starts = np.concatenate([[0], np.cumsum(lengths)])  # [n + 1] offsets in flat
        flat = np.fromiter((t for p in pieces for t in p), np.int32, count=int(starts[-1]))
        total = int(starts[-1])
        if total <= budget:
            return [self._row(flat, starts[:-1], tags, index, 0)]
        core = budget - 2 * self.context
        rows = []
        a = 0
        while a < len(pieces):
            b, used = a + 1, int(lengths[a])
            while b < len(pieces) and used + lengths[b] <= core:
                used += int(lengths[b])
                b += 1
            lo, hi = int(starts[a]), int(starts[b])
            # Context after the piece (left context reserved first), then before it.
            right = max(0, min(total - hi, budget - used - min(self.context, lo)))
            left = min(lo, budget - used - right)
            row_tags = tags[a:b].copy()
            if a > 0 and vocab is not None and vocab.chunks:
                prefix, kind = split_tag(vocab.labels[row_tags[0]])
                if prefix == "I":
                    row_tags[0] = vocab.index(f"B-{kind}")
            rows.append(
                self._row(
                    flat[lo - left : hi + right], starts[a:b] - (lo - left), row_tags, index, a
                )
            )
            a = b
        return rows

    def _row(self, content, firsts, tags, index, offset) -> Row:
        ids = np.concatenate([[self.cls_id], content, [self.sep_id]]).astype(np.int32)
        return Row(
            ids,
            (np.asarray(firsts) + 1).astype(np.int32),
            np.asarray(tags, np.int32),
            index,
            offset,
        )
