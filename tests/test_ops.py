"""The encoder's hot operations against plain references: bf16 products and
their custom backward, GELU's one-pass derivative, the hashed dropout masks,
attention with the late softmax normalisation, and the last layer computed
for the word rows alone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxkd.models.bert import load_bert
from jaxkd.models.dropout import Dropout
from jaxkd.models.ops import attention, dense, dropout_mask, gelu_erf
from tests.tiny_bert import write_tiny_checkpoint

RNG = np.random.default_rng(0)


def _bf16_round(x):
    return np.asarray(jnp.asarray(x, jnp.bfloat16).astype(jnp.float32))


def test_dense_float32_is_the_affine_map():
    x, w, b = RNG.normal(size=(3, 5, 7)), RNG.normal(size=(7, 4)), RNG.normal(size=4)
    x, w, b = (a.astype(np.float32) for a in (x, w, b))
    np.testing.assert_allclose(dense(x, w, b), x @ w + b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dense(x, w, None), x @ w, rtol=1e-5, atol=1e-5)


def test_dense_bfloat16_rounds_operands_and_its_backward_too():
    x = RNG.normal(size=(2, 6, 16)).astype(np.float32)
    w = RNG.normal(size=(16, 8)).astype(np.float32)
    b = RNG.normal(size=8).astype(np.float32)
    g = RNG.normal(size=(2, 6, 8)).astype(np.float32)
    xr, wr, gr = _bf16_round(x), _bf16_round(w), _bf16_round(g)
    out = dense(x, w, b, jnp.bfloat16)
    assert out.dtype == jnp.float32
    # products of bf16-rounded operands, accumulated in float32
    np.testing.assert_allclose(out, xr @ wr + b, rtol=1e-5, atol=1e-5)
    _, vjp = jax.vjp(lambda x, w, b: dense(x, w, b, jnp.bfloat16), x, w, b)
    dx, dw, db = vjp(g)
    np.testing.assert_allclose(dx, gr @ wr.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw, np.einsum("btk,btm->km", xr, gr), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(db, g.sum((0, 1)), rtol=1e-5, atol=1e-5)
    # and close to the exact float32 gradient (bf16 has 8 bits of mantissa)
    exact = jax.grad(lambda w: jnp.sum(dense(x, w, b) * g))(w)
    assert float(jnp.max(jnp.abs(dw - exact)) / jnp.max(jnp.abs(exact))) < 2e-2


def test_gelu_erf_and_its_derivative_match_autodiff_of_the_definition():
    x = jnp.asarray(np.concatenate([np.linspace(-12, 12, 2001), RNG.normal(size=500) * 3]), jnp.float32)

    def reference(x):
        return jax.nn.gelu(x, approximate=False)

    np.testing.assert_allclose(gelu_erf(x), reference(x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        jax.grad(lambda x: jnp.sum(gelu_erf(x)))(x), jax.grad(lambda x: jnp.sum(reference(x)))(x), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_dropout_mask_keeps_the_right_fraction_independently(rate):
    shape = (16, 12, 64, 64)  # 786,432 elements, as attention probabilities
    keep = np.asarray(dropout_mask(jax.random.key(1), shape, rate))
    n = keep.size
    p = 1.0 - rate
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(keep.mean() - p) < 5 * sigma
    flat = keep.reshape(-1).astype(np.float64)
    for lag in (1, 64, 4096):  # neighbours along each axis of the layout
        corr = np.corrcoef(flat[:-lag], flat[lag:])[0, 1]
        assert abs(corr) < 5 / np.sqrt(n)
    # per-row keep counts spread as a binomial's do (no striping by index)
    rows = keep.reshape(-1, 64).mean(1)
    assert abs(rows.std() - np.sqrt(p * (1 - p) / 64)) < 0.1 * np.sqrt(p * (1 - p) / 64)


def test_dropout_mask_is_a_function_of_the_key():
    shape, rate = (256, 384), 0.3
    a = np.asarray(dropout_mask(jax.random.key(7), shape, rate))
    b = np.asarray(dropout_mask(jax.random.key(7), shape, rate))
    c = np.asarray(dropout_mask(jax.random.fold_in(jax.random.key(7), 1), shape, rate))
    d = np.asarray(dropout_mask(jax.random.key(7, impl="unsafe_rbg"), shape, rate))
    assert np.array_equal(a, b)
    for other in (c, d):  # independent masks agree on p^2 + (1-p)^2 of the elements
        expected = 0.7**2 + 0.3**2
        assert abs((a == other).mean() - expected) < 0.01
    assert np.asarray(dropout_mask(jax.random.key(7), shape, 0.0)).all()


def test_dropout_module_scales_kept_elements_and_is_identity_in_eval():
    x = jnp.asarray(RNG.normal(size=(64, 128)) + 3.0, jnp.float32)
    layer = Dropout(0.25)
    stream = nnx.Rngs(0)["dropout"]
    np.testing.assert_array_equal(layer(x, rngs=stream), x)  # eval mode by default
    layer.deterministic = False
    y = np.asarray(layer(x, rngs=stream))
    kept = y != 0
    np.testing.assert_allclose(y[kept], np.asarray(x)[kept] / 0.75, rtol=1e-6)
    assert abs(kept.mean() - 0.75) < 0.02
    assert not np.array_equal(y, np.asarray(layer(x, rngs=stream)))  # a new key per call
    assert not np.asarray(Dropout(1.0, deterministic=False)(x, rngs=stream)).any()


def _reference_attention(q, k, v, key_mask, keep=None, scale=1.0):
    s = np.einsum("bqnd,bknd->bnqk", q, k) / np.sqrt(q.shape[-1])
    s = np.where(key_mask[:, None, None, :], s, np.finfo(np.float32).min)
    s = s - s.max(-1, keepdims=True)
    p = np.exp(s) / np.exp(s).sum(-1, keepdims=True)
    if keep is not None:
        p = np.where(keep, p * scale, 0.0)
    out = np.einsum("bnqk,bknd->bqnd", p, v)
    return out.reshape(out.shape[0], out.shape[1], -1)


def test_attention_matches_softmax_attention_with_padding_and_dropout():
    b, t, h, d = 3, 7, 2, 4
    q, k, v = (RNG.normal(size=(b, t, h, d)).astype(np.float32) for _ in range(3))
    key_mask = np.arange(t)[None] < np.array([7, 3, 0])[:, None]  # the last row has no real key
    out = np.asarray(attention(q, k, v, key_mask))
    np.testing.assert_allclose(out, _reference_attention(q, k, v, key_mask), rtol=1e-5, atol=1e-5)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[2], np.broadcast_to(v[2].mean(0).reshape(-1), (t, h * d)), rtol=1e-5, atol=1e-5)
    keep = RNG.random(size=(b, h, t, t)) > 0.3
    out = np.asarray(attention(q, k, v, key_mask, keep=keep, keep_scale=1 / 0.7))
    np.testing.assert_allclose(out, _reference_attention(q, k, v, key_mask, keep, 1 / 0.7), rtol=1e-5, atol=1e-5)
    # fewer queries than keys
    out = np.asarray(attention(q[:, :2], k, v, key_mask))
    np.testing.assert_allclose(out, _reference_attention(q, k, v, key_mask)[:, :2], rtol=1e-5, atol=1e-5)


def test_encoder_positions_give_the_rows_of_the_full_output(tmp_path):
    path = write_tiny_checkpoint(tmp_path / "bert")
    graphdef, state, rest = nnx.split(load_bert(path), nnx.Param, ...)
    ids = jnp.asarray(RNG.integers(5, 50, size=(3, 12)), jnp.int32)
    mask = jnp.asarray(np.arange(12)[None] < np.array([12, 8, 5])[:, None], jnp.int32)
    positions = jnp.asarray([[0, 3, 11], [1, 2, 7], [4, 4, 0]], jnp.int32)

    def gathered(state):  # the full output, then its rows
        full = nnx.merge(graphdef, state, rest)(ids, mask)
        return jnp.take_along_axis(full, positions[..., None], axis=1)

    def direct(state):  # the last layer computed for the rows alone
        return nnx.merge(graphdef, state, rest)(ids, mask, positions=positions)

    np.testing.assert_allclose(jax.jit(direct)(state), jax.jit(gathered)(state), rtol=1e-5, atol=1e-5)
    # gradients flow the same way through both paths
    expected = jax.jit(jax.grad(lambda s: jnp.sum(gathered(s) ** 2)))(state)
    got = jax.jit(jax.grad(lambda s: jnp.sum(direct(s) ** 2)))(state)
    for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(got), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
