"""A trained tagger as a Python labelling function.

    import jaxkd

    tagger = jaxkd.load_tagger("runs/demo/efficient")
    for sentence in tagger(["EU rejects German call to boycott British lamb ."]):
        print(sentence.tags, sentence.entities)

Sentences are batched by length into a fixed set of shapes (sub-word lengths
16, 24, 32, 40, ... up to the encoder's window, a fixed batch size), so labelling
compiles once per shape used, whatever the input; a sentence longer than the
window is split into overlapping windows and stitched back, so every input
word gets exactly one tag.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Sequence

import jax
import numpy as np

from jaxkd.data.batching import Buckets, sorted_batches, stitch
from jaxkd.evaluate import chunks
from jaxkd.hf_export import is_hf_export, read_hf
from jaxkd.training.run_dir import load_run
from jaxkd.training.steps import DistillSpec, merge, shared, student_fns

# Sub-word buckets, capped at the window: steps of 8 to 64, then of 1/8 to
# 1/4 of the length (on the WNUT-16 tweets, 1.13x the real sub-words at
# batch 8, against 1.21x for steps of 1.33-1.5x).
LENGTHS = (16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512)


def bucket_shapes(window: int) -> tuple[tuple[int, int], ...]:
    """``(T, W)`` shapes from :data:`LENGTHS`; W = T - 2 holds any row of T sub-words."""
    lengths = sorted({t for t in LENGTHS if t < window} | {window})
    return tuple((t, t - 2) for t in lengths)


class Entity(NamedTuple):
    """A labelled chunk: ``words[start:end]`` (end exclusive) of type ``type``."""

    type: str
    start: int
    end: int
    text: str


class Labelled(NamedTuple):
    """One labelled sentence.

    Attributes:
      words: the input words.
      tags: one tag per word.
      entities: the chunks the tags spell (conlleval's reading of BIO, as the
        evaluation uses); none for token tags (parts of speech).
      marginals: ``[len(words), N]`` float32 posterior P(tag | sentence) per
        word (columns in ``TrainedTagger.labels`` order), when asked for.
    """

    words: list[str]
    tags: list[str]
    entities: list[Entity]
    marginals: np.ndarray | None = None


def entities_of(words: Sequence[str], tags: Sequence[str]) -> list[Entity]:
    """The chunks of a tag sequence, as the entity-level evaluation reads them."""
    return [Entity(kind, start, end + 1, " ".join(words[start : end + 1])) for kind, start, end in chunks(list(tags))]


class TrainedTagger:
    """Labels sentences with a trained run's tagger (see the module docstring).

    Build it with :func:`load_tagger`. ``labels`` lists the tag set.
    """

    def __init__(self, run, batch_size: int = 64):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.run = run
        self.labels = tuple(run.labels.labels)
        self.batch_size = batch_size
        window = run.encoder.window
        self.buckets = Buckets(bucket_shapes(window), window)
        parts = run.parts
        # The head's decoding: the training loop's own compiled decoder; both
        # functions are shared by every tagger of the same graph in a process.
        self._decode = student_fns(parts, DistillSpec(), optimizer=None).decode
        self._posteriors = shared(("posteriors", parts.eval_def), lambda: _posteriors_fn(parts))

    def __call__(self, texts: str | Sequence[str], **options) -> list[Labelled]:
        """Labels whitespace-tokenised text: one string, or a list of them (one
        sentence each). Options as for :meth:`label`."""
        if isinstance(texts, str):
            texts = [texts]
        return self.label([t.split() for t in texts], **options)

    def label(
        self, sentences: Sequence[Sequence[str]], *, batch_size: int | None = None, marginals: bool = False
    ) -> list[Labelled]:
        """Labels tokenised sentences.

        Args:
          sentences: each a sequence of words (an empty one gives an empty result).
          batch_size: rows per compiled call (default: the tagger's).
          marginals: also return each word's tag marginals.

        Returns:
          One :class:`Labelled` per sentence, in order, with exactly one tag per word.
        """
        sentences = [list(s) for s in sentences]
        for i, s in enumerate(sentences):
            if not all(isinstance(w, str) and w and not w.isspace() for w in s):
                raise ValueError(f"sentence {i}: every word must be a non-blank string; got {s!r}")
        present = [i for i, s in enumerate(sentences) if s]
        tag_ids, probs = self._run([sentences[i] for i in present], batch_size or self.batch_size, marginals)
        out = [
            Labelled(s, [], [], np.zeros((0, len(self.labels)), np.float32) if marginals else None) for s in sentences
        ]
        for k, i in enumerate(present):
            tags = self.run.labels.decode(tag_ids[k])
            entities = entities_of(sentences[i], tags) if self.run.labels.chunks else []
            out[i] = Labelled(sentences[i], tags, entities, probs[k] if marginals else None)
        return out

    def batches(self, rows, batch_size: int | None = None) -> list:
        """The batches the compiled calls label ``rows`` (from the encoder's
        ``encode``) in: sorted by length, each of the smallest bucket shape
        that holds it (:func:`jaxkd.data.batching.sorted_batches`)."""
        encoder = self.run.encoder
        return sorted_batches(
            rows, self.buckets, batch_size or self.batch_size, pad_id=encoder.pad_id, filler_ids=encoder.filler_ids
        )

    def _run(self, sentences: list[list[str]], batch_size: int, marginals: bool):
        """Per-sentence tag ids (and marginals) from the compiled functions."""
        if not sentences:
            return [], []
        encoder = self.run.encoder
        rows = encoder.encode(sentences)
        batches = self.batches(rows, batch_size)
        params, rest = self.run.params, self.run.parts.rest
        lengths = [len(s) for s in sentences]
        # Dispatch every batch before reading any result back: the host prepares
        # the next call while the device computes.
        tags = stitch(batches, [np.asarray(t) for t in [self._decode(params, rest, b) for b in batches]], lengths)
        if not marginals:
            return tags, None
        probs = stitch(batches, [np.asarray(u) for u in [self._posteriors(params, rest, b) for b in batches]], lengths)
        return tags, probs


def _posteriors_fn(parts):
    """Compiled ``(params, rest, batch) -> [B, W, N]`` tag marginals per word."""

    @jax.jit
    def posteriors(params, rest, batch):
        model = merge(parts.eval_def, params, rest)
        unary, _ = model.tag_marginals(model(batch), batch.word_mask)
        return unary

    return posteriors


def load_tagger(
    path: str | Path, *, checkpoint: str = "best", batch_size: int = 64, dtype: str | None = None
) -> TrainedTagger:
    """A trained run's tagger, ready to label text.

    Args:
      path: a training run's workdir (``python -m jaxkd.train ... --workdir``),
        or a directory written by ``python -m jaxkd.export --format hf``.
      checkpoint: ``"best"`` (best dev epoch) or ``"latest"`` (workdirs only).
      batch_size: rows per compiled call.
      dtype: override the run's ``model.dtype``: ``"bfloat16"`` multiplies
        bf16 operands (float32 accumulation), several times faster on CPUs
        with AMX/AVX512-BF16 and on GPUs, with slightly different scores.

    Raises:
      FileNotFoundError: no such run or checkpoint (the message says what to do).
    """
    if not Path(path).is_dir():
        raise FileNotFoundError(f"{path}: no such directory (a training run's --workdir or an hf export)")
    run = read_hf(path, dtype=dtype) if is_hf_export(path) else load_run(path, checkpoint, dtype=dtype)
    return TrainedTagger(run, batch_size)
