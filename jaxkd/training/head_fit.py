"""Start efficient KD from the exact minimiser of its loss over the student's
head and CRF parameters, with the pre-trained encoder held fixed.

The efficient-KD loss is a quadratic function of the student's emission layer
(kernel W, bias b) and CRF parameters (transitions T, start a, end z). A
fresh, random head spends the first epochs of KD only reaching the scale of
the teacher's scores (a trained CRF teacher's emissions spread over ~10 units,
mostly a per-tag offset) before the encoder's learning can matter.
``fit_head`` solves for that minimiser once, before the first epoch.

With r[l, j] = x_l . W_j + b_j - e_T[l, j] the emission residual of word l
(x_l: the student's feature of the word, eval mode), the loss is

    sum_{l>=1} sum_ij (dT_ij + r_lj)^2 + sum_j (da_j + r_0j)^2 + sum_i dz_i^2

(summed over sentences). Minimising over dT, da, dz first leaves a weighted
least-squares problem in W with one intercept for the first words and one for
the others, where each later word weighs N (it sits in N sub-structures per
tag) and a first word weighs 1. Its solution (c1: intercept of later words,
c0: of first words) gives the minimiser

    W = the fit,  b = c1,  T = T_T,  a = a_T + c0 - c1,  z = z_T,

exactly (``ridge=0``) or with a small ridge penalty on W (the default, for
features that are nearly collinear). The normal equations are accumulated
in one pass over the training words: each batch's part is computed where the
batch is (in float32, over its at most B x W words; on a mesh each device
sums its rows and XLA all-reduces them), and the parts are summed on the
host in float64.

This is an initialisation on the method's own objective (``distill.fit_head``);
the paper starts from a random head.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxkd.training.steps import merge, path_names


def _normal_equations_fn(parts):
    @jax.jit
    def normal_equations(params, rest, batch, emissions):
        """A batch's (X^T D X [H+2, H+2], X^T D Y [H+2, N], words) in float32:
        X the design (features, later-word and first-word intercepts), D the
        word weights (N for a later word, 1 for a first), Y the teacher's emissions."""
        h = merge(parts.eval_def, params, rest).word_features(batch).astype(jnp.float32)
        mask = batch.word_mask.astype(jnp.float32)
        is_first = jnp.zeros_like(mask).at[:, 0].set(mask[:, 0])
        design = jnp.concatenate([h, (mask - is_first)[..., None], is_first[..., None]], axis=-1) * mask[..., None]
        weight = jnp.where(is_first > 0, 1.0, float(emissions.shape[-1])) * mask
        weighted = design * weight[..., None]
        hi = jax.lax.Precision.HIGHEST
        gram = jnp.einsum("bwi,bwj->ij", weighted, design, precision=hi)
        rhs = jnp.einsum("bwi,bwn->in", weighted, emissions.astype(jnp.float32) * mask[..., None], precision=hi)
        return gram, rhs, mask.sum()

    return normal_equations


def fit_head(parts, params, rest, batches, targets_of, *, ridge: float = 1e-3, progress=None, place=None):
    """``params`` with the head and CRF parameters set to the minimiser.

    Args:
      parts: the student's :class:`~jaxkd.training.steps.Split`.
      params, rest: the student's state (its encoder is used as it is).
      batches: training batches (each row once).
      targets_of: ``batch ->`` :class:`jaxkd.methods.ScoreTargets` (the
        teacher cache or the teacher).
      ridge: L2 penalty on W, relative to the mean weighted squared feature
        (0: the exact minimiser).
      progress: called after each batch.
      place: a :class:`~jaxkd.training.mesh.Placement`: where ``params`` are
        (e.g. a mesh); the features come back whole from every process.

    Returns:
      (params, info) with ``info["words"]`` the number of words fitted.
    """
    normal_equations = _normal_equations_fn(parts)
    rows = place.rows if place else (lambda batch: batch)
    to_host = place.to_host if place else jax.device_get
    gram = rhs = tg = None
    count = 0
    for batch in batches:
        tg = targets_of(batch)
        g, r, n = to_host(normal_equations(params, rest, rows(batch), tg.emissions))  # (H+2)^2 + (H+2) N values
        gram = np.asarray(g, np.float64) + (0.0 if gram is None else gram)
        rhs = np.asarray(r, np.float64) + (0.0 if rhs is None else rhs)
        count += int(n)
        if progress is not None:
            progress()
    if tg is None or count == 0:
        raise ValueError("fit_head: no training words")
    tg = to_host(tg)  # its transitions, start and end
    hdim = gram.shape[0] - 2
    reg = np.zeros_like(gram)
    reg[np.arange(hdim), np.arange(hdim)] = ridge * np.trace(gram[:hdim, :hdim]) / hdim
    solution = np.linalg.lstsq(gram + reg, rhs, rcond=None)[0]  # [H + 2, N]
    kernel, c1, c0 = solution[:hdim], solution[hdim], solution[hdim + 1]
    new = {
        ("head", "kernel"): kernel,
        ("head", "bias"): c1,
        ("transitions",): np.asarray(tg.transitions, np.float64),
        ("start",): np.asarray(tg.start, np.float64) + c0 - c1,
        ("end",): np.asarray(tg.end, np.float64),
    }

    def put(path, leaf):
        names = tuple(n for n in path_names(path) if n != "value")
        if names in new:
            value = new[names]
            if value.shape != leaf.shape:
                raise ValueError(f"fit_head: {names} has shape {leaf.shape}, the fit {value.shape}")
            return jnp.asarray(value, leaf.dtype)
        return leaf

    return jax.tree_util.tree_map_with_path(put, params), {"words": count}
