# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # What the efficient-KD student matches: sub-structure scores, teacher vs student
#
# Efficient sub-structured KD trains the student to reproduce the teacher's score
# of every **sub-structure** of a sentence, with an L2 loss:
#
# * for each word $l \ge 1$ and each pair (previous tag $i$, tag $j$):
#   $T_{ij} + e_{l,j}$ (transition plus emission),
# * for the first word and each tag $j$: $a_j + e_{0,j}$ (start plus emission),
# * for each tag $i$: the end score $z_i$.
#
# This notebook loads a teacher and a student, computes those $L \times N \times N$
# score tensors for one sentence, and shows them side by side with their
# difference, then the two models' tag marginals, then where on the sentence the
# efficient-KD loss comes from.
#
# **Runs.** By default it reads the demo's runs (`bin/demo` writes
# `runs/demo/teacher` and `runs/demo/efficient`). Where they do not exist it
# trains tiny ones first (a 2-layer MiniLM teacher and a 1-layer student on 64
# tweets, about a minute on a laptop CPU); their scores are nearly untrained, so
# read those plots for their shape, not their values. Set `JAXKD_NOTEBOOK_RUNS`
# to use other runs (a directory with `teacher/` and `efficient/`).

# %% tags=["parameters"]
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from jaxkd import crf, losses
from jaxkd.inspection import load_run, sentence_scores

RUNS = os.environ.get("JAXKD_NOTEBOOK_RUNS", "runs/demo")  # relative to the repository root
STUDENT = "efficient"  # which student run under RUNS
SENTENCE = "@jaxkd Watching the Seattle Seahawks game with Taylor at Starbucks tonight"
POSITION = None  # word index for the N x N slice; None: the first word the teacher tags as an entity

# %%
ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "pyproject.toml").is_file())
runs = ROOT / RUNS
teacher_dir, student_dir = runs / "teacher", runs / STUDENT


def trained(workdir: Path) -> bool:
    return (workdir / "results.json").is_file()


if not (trained(teacher_dir) and trained(student_dir)):
    from absl import logging

    from jaxkd.presets import demo_config
    from jaxkd.training.loop import run

    logging.set_verbosity(logging.WARNING)
    print(f"{runs} has no trained teacher and {STUDENT} student: training tiny ones")
    teacher_cfg = demo_config("teacher", train_sentences=64, epochs=2)
    teacher_cfg.model.num_layers = 2
    teacher_cfg.data.min_bucket_length = 128  # one batch shape: one compilation
    teacher_cfg.log.progress = "never"
    run(teacher_cfg, teacher_dir)
    student_cfg = demo_config("student", STUDENT, str(teacher_dir), train_sentences=64, epochs=2, student="minilm2")
    student_cfg.model.num_layers = 1
    student_cfg.data.min_bucket_length = 128
    student_cfg.log.progress = "never"
    run(student_cfg, student_dir)

teacher, student = load_run(teacher_dir), load_run(student_dir)
assert list(teacher.labels.labels) == list(student.labels.labels), "teacher and student tag sets differ"
tags = list(teacher.labels.labels)
words = SENTENCE.split()
t_scores, s_scores = sentence_scores(teacher, words), sentence_scores(student, words)
n, N = len(words), len(tags)
print(
    f"teacher: {teacher.tagger.encoder.num_layers} layers ({teacher_dir}); "
    f"student: {student.tagger.encoder.num_layers} layers ({student_dir})"
)
print(f"{n} words, {N} tags")

# %% [markdown]
# ## Decoded tags
#
# Viterbi paths of both models (with the BIO constraints they were trained with).

# %%
mask = np.ones((1, n), bool)


def best_path(run, s):
    path, _ = crf.viterbi(s.emissions[None], mask, s.transitions, s.start, s.end, constraints=run.tagger.constraints)
    return np.asarray(path[0])


t_path, s_path = best_path(teacher, t_scores), best_path(student, s_scores)
print(f"{'word':<16}{'teacher':<16}{'student':<16}")
for w, a, b in zip(words, t_path, s_path):
    print(f"{w:<16}{tags[a]:<16}{tags[b]:<16}")

# %% [markdown]
# ## The $L \times N \times N$ sub-structure scores
#
# `crf.substructure_scores` materialises $S[l, i, j]$ (training never does: the
# loss has a closed form). First one position, as an $N \times N$ matrix of
# (previous tag, tag); position 0 has no previous tag, so its rows repeat the
# start unit.

# %%
S_t = np.asarray(crf.substructure_scores(t_scores.emissions[None], t_scores.transitions, t_scores.start, mask=mask)[0])
S_s = np.asarray(crf.substructure_scores(s_scores.emissions[None], s_scores.transitions, s_scores.start, mask=mask)[0])
assert S_t.shape == S_s.shape == (n, N, N)
if POSITION is None:
    entity = [i for i in range(1, n) if tags[t_path[i]] != "O"]
    POSITION = entity[0] if entity else min(1, n - 1)
pos = POSITION


def heatmaps(mats, titles, xlabels, ylabels, suptitle, diverging_last=True):
    fig, axes = plt.subplots(1, len(mats), figsize=(5.2 * len(mats), 0.22 * len(ylabels) + 2.2), squeeze=False)
    for k, (ax, m, title) in enumerate(zip(axes[0], mats, titles)):
        if diverging_last and k == len(mats) - 1:
            lim = float(np.abs(m).max()) or 1.0
            im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        else:
            im = ax.imshow(m, cmap="viridis", aspect="auto")
        ax.set_title(title)
        ax.set_xticks(range(len(xlabels)), xlabels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(ylabels)), ylabels, fontsize=7)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(suptitle)
    fig.tight_layout()
    plt.show()


heatmaps(
    [S_t[pos], S_s[pos], S_s[pos] - S_t[pos]],
    ["teacher", "student", "student - teacher"],
    tags,
    tags,
    f"S[{pos}, i, j] at word {pos} ({words[pos]!r}): rows = previous tag i, columns = tag j",
)

# %% [markdown]
# Then the whole sentence: for every word, the scores of its tags given the
# teacher's decoded previous tag, $S[l, y^T_{l-1}, j]$ (words down, tags across).

# %%
prev = np.concatenate([[0], t_path[:-1]])
along_t = S_t[np.arange(n), prev]
along_s = S_s[np.arange(n), prev]
row_labels = [
    f"{w}  (after {tags[p]})" if i else f"{w}  (start)" for i, (w, p) in enumerate(zip(words, prev))
]
heatmaps(
    [along_t, along_s, along_s - along_t],
    ["teacher", "student", "student - teacher"],
    tags,
    row_labels,
    "S[l, previous teacher tag, j]",
)

# %% [markdown]
# ## Unary marginals
#
# $P(y_l = j)$ under each model's CRF (forward-backward). Score differences that
# leave these unchanged (e.g. a constant added to every tag at one word) cost
# L2 loss but no probability.

# %%
def unary(run, s):
    u, _ = crf.marginals(s.emissions[None], mask, s.transitions, s.start, s.end, constraints=run.tagger.constraints)
    return np.asarray(u[0])


u_t, u_s = unary(teacher, t_scores), unary(student, s_scores)
np.testing.assert_allclose(u_t.sum(-1), 1.0, atol=1e-4)
heatmaps(
    [u_t, u_s, u_s - u_t],
    ["teacher P(y_l = j)", "student P(y_l = j)", "student - teacher"],
    tags,
    words,
    "unary marginals",
)

# %% [markdown]
# ## Where the efficient-KD loss comes from
#
# The loss is the mean over the $(n-1)N^2 + 2N$ sub-structures of the squared
# difference. Split by word (word 0 holds the $N$ start units; the $N$ end units
# get their own bar); the parts add up to the training loss, computed by the
# closed form that never builds the tensor.

# %%
units = (n - 1) * N * N + 2 * N
diff2 = (S_s - S_t) ** 2
per_word = np.concatenate([[diff2[0, 0].sum()], diff2[1:].sum(axis=(1, 2))]) / units
end_part = float(np.sum((s_scores.end - t_scores.end) ** 2)) / units
def batched(s):
    return crf.CRFScores(s.emissions[None], s.transitions, s.start, s.end)


closed_form = float(losses.efficient_kd(batched(s_scores), batched(t_scores), mask))
np.testing.assert_allclose(per_word.sum() + end_part, closed_form, rtol=1e-4)
print(
    f"efficient-KD loss of this sentence: {closed_form:.4f} (closed form) = "
    f"{per_word.sum() + end_part:.4f} (sum of the bars)"
)

fig, ax = plt.subplots(figsize=(max(6, 0.6 * n), 3))
ax.bar(range(n + 1), np.append(per_word, end_part), color=["C0"] * n + ["C1"])
ax.set_xticks(range(n + 1), words + ["<end>"], rotation=60, ha="right")
ax.set_ylabel("share of the loss")
ax.set_title("efficient-KD loss by word (squared error / number of sub-structures)")
fig.tight_layout()
plt.show()

# %% [markdown]
# The transitions' share: each word $l \ge 1$ repeats the $N^2$ transition
# differences, so a student whose transitions differ from the teacher's pays
# for it at every word; the emission part of word $l$ is $N$ times its
# $\sum_j \Delta e_{l,j}^2$.

# %%
d_t = s_scores.transitions - t_scores.transitions
d_e = s_scores.emissions - t_scores.emissions
print(
    f"sum of squared transition differences: {np.sum(d_t ** 2):.3f} "
    f"(counted at each of the {n - 1} words after the first)"
)
print("per-word emission part N * sum_j de^2:", np.round(N * np.sum(d_e[1:] ** 2, axis=1) / units, 4))
