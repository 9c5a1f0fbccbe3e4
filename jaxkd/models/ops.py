"""The encoder's hot operations, written for speed while computing BERT's
function exactly (float32) or with bfloat16 matrix operands.

Each was chosen by profiling the compiled training step and labelling call on
a CPU (README, "Faster than PyTorch"):

* :func:`dense`: a projection whose matrix operands are cast to the compute
  dtype and accumulated in float32, with a custom VJP. With ``bfloat16`` the
  forward product and both backward products run on bf16 operands, which a
  CPU with AMX or AVX512-BF16 multiplies several times faster than float32;
  the result, the residual stream, LayerNorm, softmax and GELU stay float32.
  (A bf16 *output*, as ``nnx.Linear(dtype=bfloat16)`` gives, is lowered by XLA
  on the CPU to a float32 product plus conversions: no faster at all.) The
  VJP also chooses the layout of the weight gradient's product.
* :func:`gelu_erf`: BERT's exact GELU with a one-pass backward from the saved
  normal CDF; autodiff of ``erf`` costs several passes over the
  ``[B, T, 4H]`` activations.
* :func:`attention`: heads-major batched products and the softmax normalised
  after the value product (one pass over ``[B, heads, T, T]`` fewer).
* :func:`dropout_mask`: keep-masks from a counter-based integer hash instead
  of XLA's ``RngBitGenerator``, which took a quarter of the CPU training step;
  dropout needs independent-looking bits, not cryptographic ones.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

F32 = jnp.float32


# ---------------------------------------------------------------------------
# dense projections
# ---------------------------------------------------------------------------


def _contract_last(x, w):
    """x: [..., K], w: [K, M] -> [..., M] float32 (operands as given)."""
    return jax.lax.dot_general(x, w, (((x.ndim - 1,), (0,)), ((), ())), preferred_element_type=F32)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _matmul(x, w, dtype):
    return _contract_last(x.astype(dtype), w.astype(dtype))


def _matmul_fwd(x, w, dtype):
    xl, wl = x.astype(dtype), w.astype(dtype)
    return _contract_last(xl, wl), (xl, wl)


def _matmul_bwd(dtype, residuals, g):
    xl, wl = residuals
    gl = g.astype(dtype)
    dx = _contract_last(gl, wl.T)
    # The weight gradient contracts the long row axis of both operands. Which
    # form XLA's CPU kernels run fastest was measured, not guessed: in float32,
    # flattening the rows and transposing the narrower operand here (XLA
    # otherwise copies the wider one transposed) made the 6-layer step 14%
    # faster; in bfloat16 the same rewrite was 25% slower than leaving the
    # contraction to XLA.
    if jnp.dtype(dtype) != jnp.dtype(F32):
        lead = tuple(range(xl.ndim - 1))
        return dx, jax.lax.dot_general(xl, gl, ((lead, lead), ((), ())), preferred_element_type=F32)
    k, m = wl.shape
    x2, g2 = xl.reshape(-1, k), gl.reshape(-1, m)
    dw = _contract_last(x2.T, g2) if k <= m else _contract_last(g2.T, x2).T
    return dx, dw


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def dense(x, kernel, bias, dtype=F32):
    """An affine projection ``x @ kernel + bias`` in float32.

    Args:
      x: [..., K] float32.
      kernel: [K, M] float32.
      bias: [M] float32 or None.
      dtype: operand dtype of the product: float32 (exact), or bfloat16
        (operands rounded to bf16, products accumulated in float32, backward
        products on bf16 operands too).

    Returns:
      [..., M] float32.
    """
    y = _matmul(x, kernel, jnp.dtype(dtype))
    return y if bias is None else y + bias


# ---------------------------------------------------------------------------
# GELU
# ---------------------------------------------------------------------------

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _normal_cdf(x):
    return 0.5 * (1.0 + jax.lax.erf(x * _SQRT_HALF))


@jax.custom_vjp
def gelu_erf(x):
    """BERT's exact GELU, ``x * Phi(x)`` with the erf-based normal CDF.

    x: [...] float -> same shape; the derivative ``Phi(x) + x phi(x)`` is
    computed in one pass from the CDF saved by the forward pass.
    """
    return x * _normal_cdf(x)


def _gelu_fwd(x):
    cdf = _normal_cdf(x)
    return x * cdf, (x, cdf)


def _gelu_bwd(residuals, g):
    x, cdf = residuals
    return (g * (cdf + x * _INV_SQRT_2PI * jnp.exp(-0.5 * x * x)),)


gelu_erf.defvjp(_gelu_fwd, _gelu_bwd)


# ---------------------------------------------------------------------------
# dropout
# ---------------------------------------------------------------------------

_M1, _M2 = np.uint32(0x7FEB352D), np.uint32(0x846CA68B)  # an avalanching 32-bit mixer
_GOLDEN = np.uint32(0x9E3779B9)


def _mix(x):
    x = x ^ (x >> 16)
    x = x * _M1
    x = x ^ (x >> 15)
    x = x * _M2
    return x ^ (x >> 16)


def _seed_of(key) -> jax.Array:
    """One uint32 from every word of a PRNG key (typed or raw uint32)."""
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    words = data.reshape(-1).astype(jnp.uint32)
    seed = jnp.uint32(0)
    for i in range(words.shape[0]):
        seed = _mix(seed ^ words[i] ^ np.uint32((i * 0x632BE5AB) & 0xFFFFFFFF))
    return seed


def dropout_mask(key, shape, rate: float) -> jax.Array:
    """A keep-mask with P(keep) = 1 - rate, from a hash of (key, element index).

    Args:
      key: a PRNG key (any implementation) or a uint32 array.
      shape: the mask's shape.
      rate: dropout probability in [0, 1).

    Returns:
      bool array of ``shape``. The same key gives the same mask; the bits of
      each element are two rounds of an avalanching integer mixer over its
      index and the key, so neighbouring elements and keys are uncorrelated.
    """
    seed = _seed_of(key)
    size = math.prod(shape)
    index = jax.lax.iota(jnp.uint32, size).reshape(shape)
    bits = _mix(_mix(index * _GOLDEN + seed) ^ seed)
    threshold = np.uint32(min(round(rate * 2.0**32), 2**32 - 1))
    return bits >= threshold


# ---------------------------------------------------------------------------
# attention
# ---------------------------------------------------------------------------


def attention(q, k, v, key_mask, *, keep=None, keep_scale: float = 1.0):
    """Scaled dot-product attention over padded keys.

    Args:
      q: [B, Q, heads, d] float32 queries.
      k, v: [B, T, heads, d] float32 keys and values.
      key_mask: [B, T] bool, True on real keys.
      keep: optional [B, heads, Q, T] bool dropout keep-mask on the attention
        probabilities (applied with ``keep_scale = 1 / (1 - rate)``).

    Returns:
      [B, Q, heads * d] float32. A row whose keys are all padding attends
      uniformly (finite), as Hugging Face's additive finfo.min mask gives.
    """
    batch, queries, heads, d = q.shape
    qh = q.transpose(0, 2, 1, 3)  # [B, heads, Q, d]
    kh = k.transpose(0, 2, 1, 3)
    vh = v.transpose(0, 2, 1, 3)
    scores = jnp.einsum("bnqd,bnkd->bnqk", qh, kh, preferred_element_type=F32) * (d**-0.5)
    # Hugging Face adds finfo(float32).min to masked scores; with any finite
    # score that sum rounds to finfo.min itself, so `where` gives the same
    # number, and a row with no valid key stays finite (uniform), not NaN.
    scores = jnp.where(key_mask[:, None, None, :], scores, jnp.finfo(F32).min)
    # softmax(s) @ v == (exp(s - max) @ v) / sum(exp(s - max)): normalise the
    # [.., Q, d] result instead of the [.., Q, T] probabilities.
    weights = jnp.exp(scores - jax.lax.stop_gradient(jnp.max(scores, axis=-1, keepdims=True)))
    total = jnp.sum(weights, axis=-1, keepdims=True)
    if keep is not None:
        weights = jnp.where(keep, weights * keep_scale, 0.0)
    context = jnp.einsum("bnqk,bnkd->bnqd", weights, vh, preferred_element_type=F32) / total
    return context.transpose(0, 2, 1, 3).reshape(batch, queries, heads * d)
