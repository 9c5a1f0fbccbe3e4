"""jaxkd.losses against enumeration, explicit loops and hand-computed values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd import crf, losses
from jaxkd.crf import CRFScores
from jaxkd.schedules import kd_weight
from tests import crf_oracle as oracle
from tests import loss_oracles


def rand_scores(seed, b, length, n, scale=1.0):
    rng = np.random.default_rng(seed)
    f = lambda *s: (scale * rng.normal(size=s)).astype(np.float32)  # noqa: E731
    return CRFScores(f(b, length, n), f(n, n), f(n), f(n))


def mask_of(lengths, length):
    return np.arange(length)[None] < np.asarray(lengths)[:, None]


def log_probs(scores: CRFScores, b, n):
    """(paths [S, n], log p [S]) of row b by enumeration."""
    ys, s = oracle.row(scores.emissions[b], n, *scores.crf_args())
    return ys, np.asarray(s - jax.nn.logsumexp(s))


LENGTHS = [4, 2, 1, 0]


def test_nll_is_minus_log_probability_of_gold():
    s = rand_scores(0, 4, 4, 3)
    mask = mask_of(LENGTHS, 4)
    tags = np.random.default_rng(1).integers(0, 3, (4, 4)).astype(np.int32)
    got = losses.nll(s, mask, tags)
    for b, n in enumerate(LENGTHS):
        if n == 0:
            assert got[b] == 0.0
            continue
        ys, lp = log_probs(s, b, n)
        idx = np.flatnonzero((ys == tags[b, :n]).all(1))[0]
        np.testing.assert_allclose(got[b], -lp[idx], rtol=1e-5)


def brute_substructure_sse(student, teacher, lengths):
    """Explicit loop over every sub-structure u: (score_S(u) - score_T(u))^2."""
    total, count = 0.0, 0
    n_tags = student.emissions.shape[-1]
    for b, n in enumerate(lengths):
        if n == 0:
            continue
        for j in range(n_tags):  # start units (0, j)
            d = (student.start[j] + student.emissions[b, 0, j]) - (teacher.start[j] + teacher.emissions[b, 0, j])
            total += float(d) ** 2
            count += 1
        for i in range(n_tags):  # end units (i)
            total += float(student.end[i] - teacher.end[i]) ** 2
            count += 1
        for pos in range(1, n):
            for i in range(n_tags):
                for j in range(n_tags):
                    d = (student.transitions[i, j] + student.emissions[b, pos, j]) - (
                        teacher.transitions[i, j] + teacher.emissions[b, pos, j]
                    )
                    total += float(d) ** 2
                    count += 1
    return total, count


def test_efficient_kd_closed_form_equals_materialised_and_explicit_loop():
    student, teacher = rand_scores(2, 4, 5, 3), rand_scores(3, 4, 5, 3)
    lengths = [5, 3, 1, 0]
    mask = mask_of(lengths, 5)
    # Garbage in padded emissions must not count.
    student = student._replace(emissions=np.where(mask[..., None], student.emissions, 1e3).astype(np.float32))
    closed = losses.efficient_kd_terms(student, teacher, mask)
    mat = loss_oracles.efficient_kd_terms_materialised(student, teacher, mask)
    total, count = brute_substructure_sse(student, teacher, lengths)
    assert count == (4 * 9 + 6) + (2 * 9 + 6) + (0 + 6)  # |U| = (n-1) N^2 + 2N per sentence
    np.testing.assert_allclose([closed.total, closed.count], [total, count], rtol=1e-5)
    np.testing.assert_allclose([mat.total, mat.count], [total, count], rtol=1e-5)
    np.testing.assert_allclose(losses.efficient_kd(student, teacher, mask), total / count, rtol=1e-5)
    g1 = jax.grad(lambda s: losses.efficient_kd_terms(s, teacher, mask).total)(student)
    g2 = jax.grad(lambda s: loss_oracles.efficient_kd_terms_materialised(s, teacher, mask).total)(student)
    for a, b in zip(g1, g2, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def _hand_example():
    """(student, teacher, mask) of the hand-computed efficient KD tests: N = 2,
    one sentence of 2 words, the teacher all zeros."""
    s = CRFScores(
        np.array([[[0, 1], [1, 0]]], np.float32),
        np.array([[1, 0], [0, 0]], np.float32),
        np.array([1, 0], np.float32),
        np.array([0, 2], np.float32),
    )
    return s, CRFScores(*(np.zeros_like(x) for x in s)), np.ones((1, 2), bool)


def test_efficient_kd_hand_computed():
    # N = 2, one sentence of n = 2 words. Teacher all zeros; student:
    #   T = [[1, 0], [0, 0]], start = [1, 0], end = [0, 2], e = [[0, 1], [1, 0]].
    # Start units (a_j + e_0j): (1, 1) -> 1 + 1 = 2.  End units: (0, 2) -> 4.
    # Pair units at l = 1, T_ij + e_1j: [[2, 0], [1, 0]] -> 4 + 0 + 1 + 0 = 5.
    # |U| = (2 - 1) * 4 + 2 * 2 = 8, so L = (2 + 4 + 5) / 8 = 11 / 8.
    s, t, mask = _hand_example()
    np.testing.assert_allclose(losses.efficient_kd(s, t, mask), 11 / 8, rtol=1e-6)
    # emissions_only: mean over (l, j) of e^2 = (0 + 1 + 1 + 0) / 4.
    np.testing.assert_allclose(losses.efficient_kd(s, t, mask, emissions_only=True), 0.5, rtol=1e-6)


def test_efficient_kd_empty_batch_is_zero_not_nan():
    s, t = rand_scores(4, 2, 3, 3), rand_scores(5, 2, 3, 3)
    mask = np.zeros((2, 3), bool)
    for only in (False, True):
        for centered in (False, True):
            v, g = jax.value_and_grad(
                lambda s, only=only, centered=centered: losses.efficient_kd(
                    s, t, mask, emissions_only=only, centered=centered
                )
            )(s)
            assert v == 0.0 and all(np.isfinite(x).all() for x in g)


@pytest.mark.parametrize("emissions_only", [False, True])
@pytest.mark.parametrize("centered", [False, True])
def test_efficient_kd_closed_form_equals_explicit_groups(emissions_only, centered):
    student, teacher = rand_scores(20, 4, 5, 3), rand_scores(21, 4, 5, 3, scale=2.0)
    mask = mask_of([5, 3, 1, 0], 5)
    # Garbage in padded emissions must not count, centred or not.
    student = student._replace(emissions=np.where(mask[..., None], student.emissions, 1e3).astype(np.float32))
    kw = dict(emissions_only=emissions_only, centered=centered)
    got = losses.efficient_kd(student, teacher, mask, **kw)
    want = loss_oracles.efficient_kd_explicit(student, teacher, mask, **kw)
    assert want > 0.1  # random scores leave a clearly non-zero loss
    np.testing.assert_allclose(got, want, rtol=1e-5)
    g = jax.grad(lambda s: losses.efficient_kd(s, teacher, mask, **kw))(student)
    g_want = jax.grad(lambda s: loss_oracles.efficient_kd_explicit(s, teacher, mask, xp=jnp, **kw))(student)
    for a, b in zip(g, g_want, strict=True):
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    if centered:  # the gradient has no component along a shift of any group
        np.testing.assert_allclose(g.emissions.sum(-1), 0.0, atol=1e-6)
        for x in g[1:]:
            np.testing.assert_allclose(x.sum(), 0.0, atol=1e-6)


def shifted(scores: CRFScores, part: str, c: float, position: int = 0) -> CRFScores:
    """``scores`` with ``c`` added to every score of one group: the N emissions
    of one position (the same in every row), or all of T, a or z."""
    if part == "emissions":
        e = scores.emissions.copy()
        e[:, position] += c
        return scores._replace(emissions=e)
    return scores._replace(**{part: getattr(scores, part) + np.float32(c)})


@pytest.mark.parametrize(
    "part, position",
    [("emissions", 0), ("emissions", 2), ("emissions", 4), ("transitions", 0), ("start", 0), ("end", 0)],
)
def test_efficient_kd_centered_is_invariant_to_group_shifts(part, position):
    student, teacher = rand_scores(22, 3, 5, 4), rand_scores(23, 3, 5, 4)
    mask = mask_of([5, 3, 0], 5)
    moved = shifted(student, part, 3.7, position)
    for only in (False, True):
        if only and part != "emissions":
            continue  # the emissions-only term never sees T, a or z
        base = losses.efficient_kd(student, teacher, mask, emissions_only=only, centered=True)
        np.testing.assert_allclose(
            losses.efficient_kd(moved, teacher, mask, emissions_only=only, centered=True), base, rtol=0, atol=1e-5
        )
        # The paper's loss pays for the same shift.
        paper = losses.efficient_kd(student, teacher, mask, emissions_only=only)
        assert losses.efficient_kd(moved, teacher, mask, emissions_only=only) > paper + 0.1
    # Shifting every group of a copy of the teacher leaves nothing to learn.
    copy = teacher._replace(emissions=teacher.emissions + np.float32(-2.5))
    for group, c, position in [("transitions", -1.5, 0), ("start", 2.0, 0), ("end", 0.5, 0), ("emissions", 4.0, 1)]:
        copy = shifted(copy, group, c, position)
    np.testing.assert_allclose(losses.efficient_kd(copy, teacher, mask, centered=True), 0.0, atol=1e-5)
    assert losses.efficient_kd(copy, teacher, mask) > 1.0


def test_efficient_kd_centered_hand_computed():
    # The scores of test_efficient_kd_hand_computed (teacher all zeros), each
    # group's differences centred on their mean before squaring:
    # Start units (1, 1): mean 1 -> (0, 0) -> 0.  End units (0, 2): mean 1 ->
    # (-1, 1) -> 2.  Pair units at l = 1, [[2, 0], [1, 0]]: mean 3/4 ->
    # 5 - 4 * (3/4)^2 = 11/4.  Same |U| = 8, so L = (0 + 2 + 11/4) / 8 = 19/32.
    s, t, mask = _hand_example()
    np.testing.assert_allclose(losses.efficient_kd(s, t, mask, centered=True), 19 / 32, rtol=1e-6)
    # emissions_only: (0, 1) -> (-1/2, 1/2) and (1, 0) -> (1/2, -1/2), so 4 * 1/4 over 4 (l, j).
    np.testing.assert_allclose(losses.efficient_kd(s, t, mask, emissions_only=True, centered=True), 0.25, rtol=1e-6)


def test_kbest_weights():
    scores = np.array([[3.0, 2.0, -np.inf], [1.0, 1.0, 1.0]], np.float32)
    np.testing.assert_allclose(losses.kbest_weights(scores, "original"), [[1, 0.1, 0], [1, 0.1, 0.1]])
    e = np.exp([3.0, 2.0])
    np.testing.assert_allclose(
        losses.kbest_weights(scores, "probability"), [[e[0] / e.sum(), e[1] / e.sum(), 0], [1 / 3] * 3], rtol=1e-6
    )
    with pytest.raises(ValueError, match="original"):
        losses.kbest_weights(scores, "uniform")


def test_kbest_kd_is_weighted_nll_of_teacher_paths():
    student, teacher = rand_scores(6, 3, 4, 3), rand_scores(7, 3, 4, 3)
    lengths = [4, 2, 1]
    mask = mask_of(lengths, 4)
    paths, path_scores = crf.kbest(teacher.emissions, mask, *teacher.crf_args(), 3)
    w = losses.kbest_weights(path_scores, "probability")
    got = losses.kbest_kd(student, mask, paths, w)
    for b, n in enumerate(lengths):
        t_ranked = oracle.ranked(teacher.emissions[b], n, *teacher.crf_args())[:3]
        t_s = np.array([s for s, _ in t_ranked])
        tw = np.exp(t_s - t_s.max()) / np.exp(t_s - t_s.max()).sum()
        ys, lp = log_probs(student, b, n)
        index = {tuple(y): i for i, y in enumerate(ys)}
        want = sum(wk * -lp[index[path]] for wk, (_, path) in zip(tw, t_ranked, strict=True))
        np.testing.assert_allclose(got[b], want, rtol=1e-5)


def test_posterior_kd_matches_enumeration_with_temperature():
    student, teacher = rand_scores(8, 3, 4, 3), rand_scores(9, 3, 4, 3, scale=2.0)
    lengths = [4, 3, 0]
    mask = mask_of(lengths, 4)
    tau = 2.0
    unary_t, _ = losses.teacher_marginals(teacher, mask, temperature=tau)
    got = losses.posterior_kd(student, unary_t, mask, temperature=tau)
    for b, n in enumerate(lengths):
        if n == 0:
            assert got[b] == 0.0
            continue
        p, _ = oracle.marginals(teacher.emissions[b] / tau, n, *(x / tau for x in teacher.crf_args()))
        q, _ = oracle.marginals(student.emissions[b] / tau, n, *(x / tau for x in student.crf_args()))
        p, q = np.asarray(p)[:n], np.asarray(q)[:n]
        np.testing.assert_allclose(got[b], tau**2 * np.sum(p * np.log(p / q)), rtol=1e-4, atol=1e-6)
    same = losses.posterior_kd(teacher, unary_t, mask, temperature=tau)
    np.testing.assert_allclose(same, 0.0, atol=1e-5)
    g = jax.grad(lambda s: losses.posterior_kd(s, unary_t, mask, temperature=tau).sum())(student)
    assert all(np.isfinite(x).all() for x in g)


def cross_entropy_brute(teacher_logp_fn, student, b, n):
    ys, lp_s = log_probs(student, b, n)
    p_t = np.exp(teacher_logp_fn(ys))
    return -np.sum(p_t * lp_s)


def test_structkd_is_exact_cross_entropy_and_its_gradient_is_qs_minus_qt():
    student, teacher = rand_scores(10, 3, 4, 3), rand_scores(11, 3, 4, 3)
    lengths = [4, 2, 1]
    mask = mask_of(lengths, 4)
    u_t, p_t = losses.teacher_marginals(teacher, mask)
    got = losses.structkd(student, mask, u_t, p_t)
    for b, n in enumerate(lengths):
        ys_t, lp_t = log_probs(teacher, b, n)
        table = {tuple(y): v for y, v in zip(ys_t, lp_t, strict=True)}
        want = cross_entropy_brute(lambda ys, table=table: np.array([table[tuple(y)] for y in ys]), student, b, n)
        np.testing.assert_allclose(got[b], want, rtol=1e-5)
    g = jax.grad(lambda s: losses.structkd(s, mask, u_t, p_t).sum())(student)
    u_s, p_s = crf.marginals(student.emissions, mask, *student.crf_args())
    np.testing.assert_allclose(g.emissions, u_s - u_t, atol=1e-5)
    np.testing.assert_allclose(g.transitions, (p_s - p_t).sum((0, 1)), atol=1e-5)


def test_structkd_softmax_teacher_and_softmax_student_scenarios():
    student = rand_scores(12, 2, 3, 3)
    lengths = [3, 2]
    mask = mask_of(lengths, 3)
    rng = np.random.default_rng(13)
    probs = jax.nn.softmax(rng.normal(size=(2, 3, 3)), axis=-1)
    got = loss_oracles.structkd_token_teacher(student, mask, probs)
    for b, n in enumerate(lengths):
        # The factorised teacher is the product distribution of its token softmaxes.
        teacher_logp = lambda ys, b=b, n=n: np.log(np.asarray(probs)[b, np.arange(n), ys]).sum(-1)  # noqa: E731
        np.testing.assert_allclose(got[b], cross_entropy_brute(teacher_logp, student, b, n), rtol=1e-5)
    logits = rng.normal(size=(2, 3, 3)).astype(np.float32)
    got2 = losses.structkd_token_student(logits, mask, probs)
    q = np.asarray(jax.nn.softmax(logits, -1))
    p = np.asarray(probs)
    want = [(p[b, :n] * np.log(p[b, :n] / q[b, :n])).sum() for b, n in enumerate(lengths)]
    np.testing.assert_allclose(got2, want, rtol=1e-5)


def test_kd_weight_schedules():
    assert [kd_weight("paper", e, 4) for e in range(4)] == [1, 1, 1, 0]
    assert [kd_weight("constant", e, 3) for e in range(3)] == [0.9] * 3
    assert [kd_weight("constant", e, 2, value=0.5) for e in range(2)] == [0.5, 0.5]
    np.testing.assert_allclose([kd_weight("linear", e, 5) for e in range(5)], [1, 0.75, 0.5, 0.25, 0])
    with pytest.raises(ValueError, match="paper"):
        kd_weight("cosine", 0, 3)
