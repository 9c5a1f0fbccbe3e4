"""The presets of ``benchmarks.epoch_timing``: model sizes and a synthetic
corpus with a chosen sentence-length distribution, and the teacher and
student built from them (random weights)."""

from __future__ import annotations

import dataclasses

import numpy as np
from flax import nnx

from jaxkd.data.labels import LabelVocab
from jaxkd.data.tokenization import Row
from jaxkd.models.bert import BertConfig, BertModel
from jaxkd.models.tagger import Tagger


@dataclasses.dataclass(frozen=True)
class Preset:
    teacher: BertConfig
    student_layers: int
    sentences: int
    median_words: float
    sigma_words: float
    max_words: int
    extra_subwords: float  # Poisson mean of extra sub-words per word
    batch_size: int
    min_bucket_length: int = 16  # bucket lengths min, 2 min, 4 min, ... (as in training)
    types: tuple[str, ...] = ("PER", "LOC", "ORG", "MISC")  # 9 BIO tags
    token_tags: int = 0  # > 0: that many token tags (parts of speech, every move allowed) instead of BIO

    def labels(self) -> LabelVocab:
        """The preset's tag set: BIO over ``types``, or ``token_tags`` token tags."""
        if self.token_tags:
            return LabelVocab(tuple(f"T{i:02d}" for i in range(self.token_tags)), "token")
        return LabelVocab.from_types(self.types)


PRESETS = {
    "conll03": Preset(
        teacher=BertConfig(
            vocab_size=28996, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072
        ),
        student_layers=3,
        sentences=14041,
        median_words=11.0,
        sigma_words=0.75,
        max_words=113,
        extra_subwords=0.4,
        batch_size=32,
    ),
    "ud-xpos": Preset(
        # Penn Treebank parts of speech on UD English-EWT (jaxkd/corpora/ud_english_ewt):
        # 49 token tags, the CRF size where the structured methods cost most.
        # A MiniLM-L6-shaped teacher (the studies' teacher) and its first 2 layers.
        teacher=BertConfig(
            vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536
        ),
        student_layers=2,
        sentences=12544,
        median_words=11.5,  # EWT train: geometric mean 11.5 words, log sd 0.94, max 159
        sigma_words=0.94,
        max_words=159,
        extra_subwords=0.15,  # MiniLM's WordPiece on EWT: 1.15 sub-words per word
        batch_size=32,
        token_tags=49,
    ),
    "tiny": Preset(
        # Small enough to compile fast on a CPU; sentences long enough (and the
        # encoder narrow enough) that the CRF's share of an epoch, where the
        # methods differ, is not lost in the encoder's.
        teacher=BertConfig(
            vocab_size=512,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        ),
        student_layers=1,
        sentences=512,
        median_words=16.0,
        sigma_words=0.4,
        max_words=40,
        extra_subwords=0.2,
        batch_size=32,
        min_bucket_length=64,  # one batch shape: one compilation per function
    ),
}


def synthetic_rows(p: Preset, num_tags: int, seed: int = 0) -> list[Row]:
    """Random sentences with the preset's length distribution (ids avoid the
    special tokens 0-3; [CLS] = 1 and [SEP] = 2 frame every row)."""
    rng = np.random.default_rng(seed)
    lengths = np.round(rng.lognormal(np.log(p.median_words), p.sigma_words, p.sentences))
    words = np.clip(lengths, 1, p.max_words).astype(int)
    window = p.teacher.max_position_embeddings
    rows = []
    for i, n in enumerate(words):
        pieces = 1 + rng.poisson(p.extra_subwords, n)
        while 2 + pieces.sum() > window:  # keep every row inside the window
            pieces = np.maximum(1, pieces - 1) if pieces.max() > 1 else pieces[: window - 2]
        ids = rng.integers(4, p.teacher.vocab_size, int(pieces.sum()))
        starts = 1 + np.concatenate([[0], np.cumsum(pieces)[:-1]])
        rows.append(
            Row(
                input_ids=np.concatenate([[1], ids, [2]]).astype(np.int32),
                word_index=starts.astype(np.int32),
                tags=rng.integers(0, num_tags, len(pieces)).astype(np.int32),
                sentence_index=i,
                word_offset=0,
            )
        )
    return rows


def build_models(p: Preset, labels: LabelVocab, dtype, seed: int = 0):
    cons = labels.constraints()
    t_encoder = BertModel(p.teacher, rngs=nnx.Rngs(seed), dtype=dtype)
    teacher = Tagger(t_encoder, len(labels), constraints=cons, rngs=nnx.Rngs(seed + 1))
    s_cfg = dataclasses.replace(p.teacher, num_hidden_layers=p.student_layers)
    s_encoder = BertModel(s_cfg, rngs=nnx.Rngs(seed + 2), dtype=dtype)
    student = Tagger(s_encoder, len(labels), constraints=cons, rngs=nnx.Rngs(seed + 3))
    return teacher, student
