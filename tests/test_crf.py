"""jaxkd.crf against brute-force enumeration (tests/crf_oracle.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd import crf
from jaxkd.data.scheme import bio_constraints
from tests import crf_oracle as oracle

ALGS = crf.ALGORITHMS


def problem(seed, batch, length, num_tags, lengths=None, scale=1.0):
    """A random CRF problem; ``lengths`` defaults to random in [0, length]."""
    rng = np.random.default_rng(seed)
    f = lambda *s: (scale * rng.normal(size=s)).astype(np.float32)  # noqa: E731
    if lengths is None:
        lengths = rng.integers(0, length + 1, size=batch)
        lengths[0] = length  # always one full row
    lengths = np.asarray(lengths)
    mask = np.arange(length)[None] < lengths[:, None]
    return dict(
        emissions=f(batch, length, num_tags),
        mask=mask,
        transitions=f(num_tags, num_tags),
        start=f(num_tags),
        end=f(num_tags),
    ), lengths


def args(p):
    return p["emissions"], p["mask"], p["transitions"], p["start"], p["end"]


def params(p):
    return p["transitions"], p["start"], p["end"]


# A spread of shapes: length-1 sequences, one tag, empty rows, L and N up to 5 and 4.
SHAPES = [(0, 4, 5, 3), (1, 5, 1, 4), (2, 3, 4, 1), (3, 6, 3, 2), (4, 2, 5, 4), (5, 4, 2, 3)]
LENGTHS = {1: [0, 5, 1, 3], 2: None}


def cases():
    for seed, b, length, n in SHAPES:
        p, lengths = problem(seed, b, length, n)
        yield p, lengths


# -------------------------------------------------------------------------
# Values against enumeration
# -------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGS)
def test_log_partition_matches_enumeration(algorithm):
    for p, lengths in cases():
        got = crf.log_partition(*args(p), algorithm=algorithm)
        want = [oracle.log_z(p["emissions"][b], lengths[b], *params(p)) for b in range(len(lengths))]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_sequence_score_matches_formula_and_ignores_padding_tags():
    for p, lengths in cases():
        rng = np.random.default_rng(7)
        tags = rng.integers(0, p["emissions"].shape[-1], size=p["mask"].shape).astype(np.int32)
        tags_garbage = np.where(p["mask"], tags, -100)  # padding tags must not matter
        got = crf.sequence_score(p["emissions"], p["mask"], tags_garbage, *params(p))
        want = [
            0.0 if n == 0 else oracle.scores(p["emissions"][b], *params(p), tags[b : b + 1, :n])[0]
            for b, n in enumerate(lengths)
        ]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("algorithm", ALGS)
def test_marginals_match_enumeration(algorithm):
    for p, lengths in cases():
        unary, pairwise = crf.marginals(*args(p), algorithm=algorithm)
        assert unary.shape == p["emissions"].shape
        assert pairwise.shape == p["emissions"].shape + (p["emissions"].shape[-1],)
        for b, n in enumerate(lengths):
            want_u, want_p = oracle.marginals(p["emissions"][b], n, *params(p))
            np.testing.assert_allclose(unary[b], want_u, atol=2e-6)
            np.testing.assert_allclose(pairwise[b], want_p, atol=2e-6)


def test_viterbi_matches_enumeration():
    for p, lengths in cases():
        tags, score = crf.viterbi(*args(p))
        assert tags.dtype == jnp.int32 and tags.shape == p["mask"].shape
        for b, n in enumerate(lengths):
            best_score, best_path = oracle.ranked(p["emissions"][b], n, *params(p))[0]
            np.testing.assert_allclose(score[b], best_score, rtol=1e-5, atol=1e-5)
            assert tuple(np.asarray(tags[b, :n])) == best_path
            assert not np.asarray(tags[b, n:]).any()


@pytest.mark.parametrize("k", [1, 3, 7])
def test_kbest_matches_enumeration(k):
    for p, lengths in cases():
        tags, scores = crf.kbest(*args(p), k)
        assert tags.shape == (len(lengths), k, p["mask"].shape[1]) and tags.dtype == jnp.int32
        for b, n in enumerate(lengths):
            ranked = oracle.ranked(p["emissions"][b], n, *params(p))
            want = [s for s, _ in ranked[:k]] + [-np.inf] * max(0, k - len(ranked))
            np.testing.assert_allclose(scores[b], want, rtol=1e-5, atol=1e-5)
            exists = np.isfinite(want)
            got_paths = [tuple(np.asarray(tags[b, r, :n])) for r in range(k) if exists[r]]
            assert len(set(got_paths)) == len(got_paths), "k-best paths must be distinct"
            by_path = dict((path, s) for s, path in ranked)
            for r, path in enumerate(got_paths):
                np.testing.assert_allclose(by_path[path], scores[b, r], rtol=1e-5, atol=1e-5)
            assert not np.asarray(tags[b, :, n:]).any()
            assert not np.asarray(tags[b, ~exists]).any()


def test_decoding_with_ties():
    # All-zero scores: every sequence ties. Integer scores: many partial ties.
    n_tags, length = 3, 4
    mask = np.ones((2, length), bool)
    mask[1, 3:] = False
    rng = np.random.default_rng(3)
    for emissions, trans in [
        (np.zeros((2, length, n_tags), np.float32), np.zeros((n_tags, n_tags), np.float32)),
        (
            rng.integers(-1, 2, (2, length, n_tags)).astype(np.float32),
            rng.integers(-1, 2, (n_tags, n_tags)).astype(np.float32),
        ),
    ]:
        zeros = np.zeros(n_tags, np.float32)
        tags, scores = crf.kbest(emissions, mask, trans, zeros, zeros, 5)
        vtags, vscore = crf.viterbi(emissions, mask, trans, zeros, zeros)
        for b, n in enumerate(mask.sum(1)):
            ranked = oracle.ranked(emissions[b], n, trans, zeros, zeros)
            by_path = dict((path, s) for s, path in ranked)
            np.testing.assert_allclose(scores[b], [s for s, _ in ranked[:5]], atol=1e-6)
            got = [tuple(np.asarray(tags[b, r, :n])) for r in range(5)]
            assert len(set(got)) == 5
            for r, path in enumerate(got):
                np.testing.assert_allclose(by_path[path], scores[b, r], atol=1e-6)
            np.testing.assert_allclose(by_path[tuple(np.asarray(vtags[b, :n]))], vscore[b], atol=1e-6)
            np.testing.assert_allclose(vscore[b], ranked[0][0], atol=1e-6)


def test_substructure_scores_definition():
    p, lengths = problem(11, 3, 4, 3, lengths=[4, 2, 0])
    out = crf.substructure_scores(p["emissions"], p["transitions"], p["start"], mask=p["mask"])
    e, t, a = p["emissions"], p["transitions"], p["start"]
    assert out.shape == (3, 4, 3, 3)
    for b, n in enumerate(lengths):
        for pos in range(4):
            for i in range(3):
                for j in range(3):
                    want = 0.0 if pos >= n else (a[j] + e[b, 0, j] if pos == 0 else t[i, j] + e[b, pos, j])
                    np.testing.assert_allclose(out[b, pos, i, j], want, rtol=1e-6, atol=1e-6)
    # Without a mask every position counts; the start unit repeats over i.
    full = crf.substructure_scores(p["emissions"], p["transitions"], p["start"])
    np.testing.assert_allclose(full[1, 3], t + e[1, 3][None, :], rtol=1e-6)


def test_score_of_every_sequence_is_sum_of_its_substructures():
    # s(y) = sum over l of substructure[l, y_{l-1}, y_l] (+ start unit at l=0) + end[y_n-1].
    p, lengths = problem(12, 4, 5, 3)
    sub = crf.substructure_scores(p["emissions"], p["transitions"], p["start"], mask=p["mask"])
    for b, n in enumerate(lengths):
        if n == 0:
            continue
        ys = oracle.paths(int(n), 3)
        pos = np.arange(1, n)
        total = (
            np.asarray(sub)[b, 0, 0, ys[:, 0]]
            + np.asarray(sub)[b, pos, ys[:, :-1], ys[:, 1:]].sum(-1)
            + p["end"][ys[:, -1]]
        )
        np.testing.assert_allclose(total, oracle.scores(p["emissions"][b], *params(p), ys), rtol=1e-5, atol=1e-5)


# -------------------------------------------------------------------------
# Algorithms agree; gradients are marginals
# -------------------------------------------------------------------------


@pytest.mark.parametrize("length,num_tags", [(37, 9), (64, 5), (1, 4), (2, 23)])
def test_sequential_equals_parallel(length, num_tags):
    p, _ = problem(length, 6, length, num_tags, scale=3.0)
    seq = crf.log_partition(*args(p), algorithm="sequential")
    par = crf.log_partition(*args(p), algorithm="parallel")
    np.testing.assert_allclose(seq, par, rtol=2e-6)
    # Marginals are exp(alpha + beta - log Z) with |log Z| in the hundreds here:
    # float32 rounding of those sums alone is ~1e-4 relative.
    u1, p1 = crf.marginals(*args(p), algorithm="sequential")
    u2, p2 = crf.marginals(*args(p), algorithm="parallel")
    np.testing.assert_allclose(u1, u2, atol=3e-4)
    np.testing.assert_allclose(p1, p2, atol=3e-4)


@pytest.mark.parametrize("algorithm", ALGS)
def test_gradient_of_log_partition_is_marginals(algorithm):
    p, lengths = problem(21, 5, 6, 4, lengths=[6, 3, 1, 0, 5], scale=2.0)
    grads = jax.grad(lambda *a: crf.log_partition(*a, algorithm=algorithm).sum(), argnums=(0, 2, 3, 4))(*args(p))
    g_e, g_t, g_a, g_z = grads
    unary, pairwise = crf.marginals(*args(p), algorithm=algorithm)
    np.testing.assert_allclose(g_e, unary, atol=2e-6)
    np.testing.assert_allclose(g_t, pairwise.sum((0, 1)), atol=1e-5)
    np.testing.assert_allclose(g_a, unary[:, 0].sum(0), atol=1e-5)
    last = np.maximum(lengths - 1, 0)
    want_z = (unary[np.arange(5), last] * (lengths > 0)[:, None]).sum(0)
    np.testing.assert_allclose(g_z, want_z, atol=1e-5)


@pytest.mark.parametrize("algorithm", ALGS)
def test_marginals_are_differentiable(algorithm):
    # Gradient of a loss on the marginals equals the gradient through enumeration.
    p, lengths = problem(31, 3, 4, 3, lengths=[4, 2, 0])
    w = np.random.default_rng(0).normal(size=(3, 4, 3)).astype(np.float32)

    def ours(e, t):
        u, pw = crf.marginals(e, p["mask"], t, p["start"], p["end"], algorithm=algorithm)
        return (u * w).sum() + (pw**2).sum()

    def brute(e, t):
        total = 0.0
        for b, n in enumerate(lengths):
            u, pw = oracle.marginals(e[b], n, t, p["start"], p["end"])
            total = total + (u * w[b]).sum() + (pw**2).sum()
        return total

    got = jax.jit(jax.grad(ours, argnums=(0, 1)))(p["emissions"], p["transitions"])
    want = jax.jit(jax.grad(brute, argnums=(0, 1)))(p["emissions"], p["transitions"])
    for g, w_ in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w_, atol=1e-5)


# -------------------------------------------------------------------------
# Constraints
# -------------------------------------------------------------------------

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_bio_constraints_by_hand():
    c = bio_constraints(LABELS)
    allowed = {(i, j) for i in range(5) for j in range(5) if bool(c.transitions[i, j])}
    forbidden = {(0, 2), (0, 4), (1, 4), (2, 4), (3, 2), (4, 2)}  # O->I-*, PER->I-LOC, LOC->I-PER
    assert allowed == {(i, j) for i in range(5) for j in range(5)} - forbidden
    assert list(np.asarray(c.start)) == [True, True, False, True, False]
    assert np.asarray(c.end).all()
    with pytest.raises(ValueError, match="IOBES"):
        bio_constraints(["O", "S-PER"])
    with pytest.raises(ValueError, match="not 'O'"):
        bio_constraints(["O", "PER"])


def test_iobes_constraints_by_hand():
    labels = ["O", "B-X", "I-X", "E-X", "S-X"]
    c = bio_constraints(labels, scheme="IOBES")
    t = np.asarray(c.transitions)
    assert list(t[0]) == [True, True, False, False, True]  # O -> O, B, S
    assert list(t[1]) == [False, False, True, True, False]  # B -> I, E
    assert list(t[2]) == [False, False, True, True, False]  # I -> I, E
    assert list(t[3]) == [True, True, False, False, True]  # E -> O, B, S
    assert list(np.asarray(c.start)) == [True, True, False, False, True]
    assert list(np.asarray(c.end)) == [True, False, False, True, True]


def test_every_kernel_honours_constraints():
    c = bio_constraints(LABELS)
    cons = tuple(np.asarray(x) for x in c)
    p, lengths = problem(41, 4, 4, 5, lengths=[4, 3, 1, 0], scale=2.0)
    for algorithm in ALGS:
        got = crf.log_partition(*args(p), algorithm=algorithm, constraints=c)
        want = [oracle.log_z(p["emissions"][b], n, *params(p), cons) for b, n in enumerate(lengths)]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        unary, pairwise = crf.marginals(*args(p), algorithm=algorithm, constraints=c)
        for b, n in enumerate(lengths):
            wu, wp = oracle.marginals(p["emissions"][b], n, *params(p), cons)
            np.testing.assert_allclose(unary[b], wu, atol=2e-6)
            np.testing.assert_allclose(pairwise[b], wp, atol=2e-6)
    tags, score = crf.viterbi(*args(p), constraints=c)
    ktags, kscores = crf.kbest(*args(p), 4, constraints=c)
    for b, n in enumerate(lengths):
        ranked = oracle.ranked(p["emissions"][b], n, *params(p), cons)
        np.testing.assert_allclose(score[b], ranked[0][0], rtol=1e-5, atol=1e-5)
        assert tuple(np.asarray(tags[b, :n])) == ranked[0][1]
        want = [s for s, _ in ranked[:4]] + [-np.inf] * max(0, 4 - len(ranked))
        np.testing.assert_allclose(kscores[b], want, rtol=1e-5, atol=1e-5)
    # A length-1 row has exactly 3 allowed sequences (O, B-PER, B-LOC): rank 4 is missing.
    assert np.isneginf(kscores[2, 3]) and np.isfinite(kscores[2, :3]).all()
    # Sequence scores of a forbidden path are hugely negative, of an allowed one unchanged.
    good = np.array([[1, 2, 0, 3]] * 4, np.int32)
    bad = np.array([[0, 2, 0, 3]] * 4, np.int32)
    np.testing.assert_allclose(
        crf.sequence_score(p["emissions"], p["mask"], good, *params(p), constraints=c),
        crf.sequence_score(p["emissions"], p["mask"], good, *params(p)),
    )
    assert (crf.sequence_score(p["emissions"], p["mask"], bad, *params(p), constraints=c)[:2] < -1e8).all()


# -------------------------------------------------------------------------
# Numerics, padding, jit / vmap / dtypes
# -------------------------------------------------------------------------


def test_padding_never_leaks_even_nan():
    p, lengths = problem(51, 3, 5, 4, lengths=[5, 2, 0])
    dirty = p["emissions"].copy()
    dirty[~p["mask"]] = np.nan
    clean = np.where(p["mask"][..., None], p["emissions"], 0.0)
    tags = np.zeros(p["mask"].shape, np.int32)

    def everything(e):
        outs = []
        for algorithm in ALGS:
            outs.append(crf.log_partition(e, p["mask"], *params(p), algorithm=algorithm).sum())
            u, pw = crf.marginals(e, p["mask"], *params(p), algorithm=algorithm)
            outs.append((u**2).sum() + (pw**2).sum())
        outs.append(crf.sequence_score(e, p["mask"], tags, *params(p)).sum())
        return sum(outs)

    value, grad = jax.jit(jax.value_and_grad(everything))(dirty)
    value_clean = jax.jit(everything)(clean)
    assert np.isfinite(value) and np.isfinite(grad).all()
    np.testing.assert_allclose(value, value_clean, rtol=1e-6)
    assert not np.asarray(grad)[~p["mask"]].any()
    for out in crf.viterbi(dirty, *args(p)[1:]) + crf.kbest(dirty, *args(p)[1:], 2):
        assert not np.isnan(np.asarray(out, np.float32)).any()


def test_all_padding_batch_is_finite_zero():
    e = np.zeros((2, 3, 4), np.float32)
    mask = np.zeros((2, 3), bool)
    t, a, z = np.ones((4, 4), np.float32), np.ones(4, np.float32), np.ones(4, np.float32)
    for algorithm in ALGS:

        def log_z(e, t, algorithm=algorithm):
            return crf.log_partition(e, mask, t, a, z, algorithm=algorithm).sum()

        g = jax.grad(log_z, argnums=(0, 1))(e, t)
        assert all(np.array_equal(x, np.zeros_like(x)) for x in g)
        assert np.array_equal(crf.log_partition(e, mask, t, a, z, algorithm=algorithm), np.zeros(2))
        u, pw = crf.marginals(e, mask, t, a, z, algorithm=algorithm)
        assert not np.asarray(u).any() and not np.asarray(pw).any()
    tags, score = crf.viterbi(e, mask, t, a, z)
    assert not np.asarray(tags).any() and not np.asarray(score).any()
    ktags, kscores = crf.kbest(e, mask, t, a, z, 2)
    assert not np.asarray(ktags).any()
    np.testing.assert_array_equal(kscores, [[0.0, -np.inf]] * 2)


def test_large_scores_stay_finite_and_agree():
    p, _ = problem(61, 4, 40, 9, scale=60.0)
    seq = crf.log_partition(*args(p), algorithm="sequential")
    par = crf.log_partition(*args(p), algorithm="parallel")
    assert np.isfinite(seq).all()
    np.testing.assert_allclose(seq, par, rtol=1e-5)
    _, vscore = crf.viterbi(*args(p))
    assert (np.asarray(seq) >= np.asarray(vscore) - 1e-3).all()  # log Z >= best score


def test_bfloat16_emissions_compute_in_float32():
    p, _ = problem(71, 3, 6, 4, lengths=[6, 4, 2])
    e16 = jnp.asarray(p["emissions"], jnp.bfloat16)
    e32 = np.asarray(e16.astype(jnp.float32))
    for algorithm in ALGS:
        got = crf.log_partition(e16, *args(p)[1:], algorithm=algorithm)
        assert got.dtype == jnp.float32
        np.testing.assert_allclose(got, crf.log_partition(e32, *args(p)[1:], algorithm=algorithm), rtol=1e-6)
        u, pw = crf.marginals(e16, *args(p)[1:], algorithm=algorithm)
        assert u.dtype == pw.dtype == jnp.float32
    tags, score = crf.viterbi(e16, *args(p)[1:])
    assert score.dtype == jnp.float32
    np.testing.assert_array_equal(tags, crf.viterbi(e32, *args(p)[1:])[0])
    grad = jax.grad(lambda e: crf.log_partition(e, *args(p)[1:]).sum())(e16)
    assert grad.dtype == jnp.bfloat16


def test_vmap_over_crf_parameters_and_jit():
    # vmap over an extra leading axis (e.g. several CRFs) equals a Python loop.
    ps = [problem(80 + i, 3, 5, 3, lengths=[5, 3, 1])[0] for i in range(4)]
    stacked = {key: np.stack([p[key] for p in ps]) for key in ps[0]}
    for algorithm in ALGS:

        def fn(e, m, t, a, z, algorithm=algorithm):
            return crf.log_partition(e, m, t, a, z, algorithm=algorithm)

        got = jax.vmap(fn)(*args(stacked))
        np.testing.assert_allclose(got, np.stack([fn(*args(p)) for p in ps]), rtol=1e-6)
    vtags, _ = jax.vmap(crf.viterbi)(*args(stacked))
    np.testing.assert_array_equal(vtags, np.stack([crf.viterbi(*args(p))[0] for p in ps]))
    ktags, _ = jax.jit(jax.vmap(lambda *a: crf.kbest(*a, 2)))(*args(stacked))
    np.testing.assert_array_equal(ktags, np.stack([crf.kbest(*args(p), 2)[0] for p in ps]))
    u, _ = jax.vmap(crf.marginals)(*args(stacked))
    np.testing.assert_allclose(u, np.stack([crf.marginals(*args(p))[0] for p in ps]), atol=1e-6)


def test_no_recompilation_for_same_shapes():
    kernels = {
        "log_partition": lambda p: crf.log_partition(*args(p)),
        "marginals": lambda p: crf.marginals(*args(p)),
        "viterbi": lambda p: crf.viterbi(*args(p)),
        "kbest": lambda p: crf.kbest(*args(p), 3),
        "sequence_score": lambda p: crf.sequence_score(
            p["emissions"], p["mask"], np.zeros(p["mask"].shape, np.int32), *params(p)
        ),
    }
    for name, call in kernels.items():
        fn = getattr(crf, name)
        call(problem(90, 4, 7, 5)[0])
        before = fn._cache_size()
        for seed in range(91, 94):  # new values (and new masks), same shapes
            call(problem(seed, 4, 7, 5)[0])
        assert fn._cache_size() == before, name


def test_bad_shapes_raise_clear_errors():
    p, _ = problem(100, 2, 3, 4)
    with pytest.raises(ValueError, match="emissions must be"):
        crf.log_partition(p["emissions"][0], p["mask"][0], *params(p))
    with pytest.raises(ValueError, match="mask shape"):
        crf.log_partition(p["emissions"], p["mask"][:, :2], *params(p))
    with pytest.raises(ValueError, match="transitions must be"):
        crf.viterbi(p["emissions"], p["mask"], p["transitions"][:3], p["start"], p["end"])
    with pytest.raises(ValueError, match="algorithm"):
        crf.log_partition(*args(p), algorithm="fast")
    with pytest.raises(ValueError, match="k must be"):
        crf.kbest(*args(p), 0)
