"""The BERT-CRF set-up that ``benchmarks.vs_pytorch`` gives both sides: the
training hyper-parameters, the random batch, and jaxkd's side (its real
compiled training step and decoder)."""

from __future__ import annotations

import numpy as np
from flax import nnx

from jaxkd import losses
from jaxkd.data.batching import Batch
from jaxkd.models.bert import load_bert
from jaxkd.models.tagger import DTYPES, Tagger
from jaxkd.training.steps import DistillSpec, dropout_key, make_optimizer, split, student_fns

DROPOUT = 0.3  # before the emission layer, as in the paper
ENCODER_LR, HEAD_LR, WEIGHT_DECAY, CLIP_NORM, WARMUP = 5e-5, 1e-3, 0.01, 1.0, 0.1
TOTAL_STEPS = 1000


def make_batch(batch_size: int, seq_len: int, words: int, num_tags: int, vocab_size: int, seed: int = 0) -> Batch:
    """Random rows shaped like jaxkd's batches: ``[CLS] ... [SEP]`` with a real
    length in [T/2, T], the first sub-words of up to ``words`` words at distinct
    positions, gold tags on them."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((batch_size, seq_len), np.int32)
    attention = np.zeros((batch_size, seq_len), np.int32)
    word_index = np.zeros((batch_size, words), np.int32)
    word_mask = np.zeros((batch_size, words), bool)
    tags = np.zeros((batch_size, words), np.int32)
    for b in range(batch_size):
        length = seq_len if b == 0 else int(rng.integers(seq_len // 2, seq_len + 1))
        ids[b, :length] = rng.integers(1000, vocab_size, size=length)
        ids[b, 0], ids[b, length - 1] = 101, 102
        attention[b, :length] = 1
        n = min(words, length - 2) if b == 0 else int(rng.integers(1, min(words, length - 2) + 1))
        firsts = np.sort(rng.choice(np.arange(1, length - 1), size=n, replace=False))
        word_index[b, :n], word_mask[b, :n] = firsts, True
        tags[b, :n] = rng.integers(0, num_tags, size=n)
    return Batch(
        input_ids=ids,
        attention_mask=attention,
        token_type_ids=np.zeros_like(ids),
        word_index=word_index,
        word_mask=word_mask,
        tags=tags,
        sentence_index=np.arange(batch_size, dtype=np.int32),
        word_offset=np.zeros(batch_size, np.int32),
    )


class JaxSide:
    """jaxkd's tagger with its real compiled training step and decoder."""

    def __init__(self, checkpoint, num_layers: int | None, num_tags: int, seed: int = 0, dtype: str = "float32"):
        encoder = load_bert(checkpoint, num_layers=num_layers, dtype=DTYPES[dtype], rngs=nnx.Rngs(seed))
        self.tagger = Tagger(encoder, num_tags, dropout=DROPOUT, constraints=None, rngs=nnx.Rngs(seed + 1))
        self.parts = split(self.tagger)
        optimizer = make_optimizer(
            self.parts.params,
            encoder_lr=ENCODER_LR,
            head_lr=HEAD_LR,
            total_steps=TOTAL_STEPS,
            warmup_fraction=WARMUP,
            weight_decay=WEIGHT_DECAY,
            clip_norm=CLIP_NORM,
        )
        self.fns = student_fns(self.parts, DistillSpec("vanilla"), optimizer)
        self.params, self.rest = self.parts.params, self.parts.rest
        self.opt_state = optimizer.init(self.params)
        self.step = 0

    def eval_outputs(self, batch: Batch):
        """(emissions [B, W, N], NLL [B], Viterbi tags [B, W]) in eval mode."""
        self.tagger.eval()
        scores = self.tagger(batch)
        nll = losses.nll(scores, batch.word_mask, batch.tags)
        tags = self.fns.decode(self.params, self.rest, batch)
        return np.asarray(scores.emissions), np.asarray(nll), np.asarray(tags)

    def train_step(self, batch: Batch):
        key = dropout_key(0, self.step)
        self.params, self.opt_state, loss = self.fns.train_step(
            self.params, self.rest, self.opt_state, batch, {}, 0.0, key, use_kd=False, use_nll=True
        )
        self.step += 1
        return loss

    def infer(self, batch: Batch):
        return self.fns.decode(self.params, self.rest, batch)


def head_arrays(tagger: Tagger) -> dict:
    """The emission layer and CRF parameters of a jaxkd tagger, as writable numpy copies."""
    return {
        "kernel": np.array(tagger.head.kernel.get_value()),
        "bias": np.array(tagger.head.bias.get_value()),
        "transitions": np.array(tagger.transitions.get_value()),
        "start": np.array(tagger.start.get_value()),
        "end": np.array(tagger.end.get_value()),
    }
