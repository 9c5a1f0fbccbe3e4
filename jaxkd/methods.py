"""The distillation methods, one entry each: what a method needs from the
teacher (a typed structure of arrays per batch) and its distillation term.

Everything that depends on the method reads :data:`REGISTRY`: the compiled
teacher and train step (``jaxkd/training/steps.py``), the teacher cache
(``jaxkd/training/targets.py``), the demo and the benchmarks. Adding a method
is one targets type, its two functions and one :class:`Method` entry here,
plus its loss in :mod:`jaxkd.losses`.

Which method may distil which student head from which teacher head is one
rule, :func:`scenario` (at the end): the configuration checks, the teacher's
checks, the compiled teacher and the KD term all ask it, and
:func:`compatibility_table` writes it as the table of ``docs/heads.md``.

Each targets type lists, in ``LAYOUT``, how the teacher cache keeps every
field of a row:

* ``WORD``: ``[B, W, ...]``, one value per word (a row keeps its first n);
* ``PATHS``: ``[B, K, W]``, per path and word (a row keeps ``[K, n]``);
* ``ROW``: ``[B, ...]``, one value per row;
* ``GLOBAL``: the same for every row (the teacher's CRF parameters).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxkd import crf, losses
from jaxkd.crf import CRFScores

WORD, PATHS, ROW, GLOBAL = "word", "paths", "row", "global"


class ScoreTargets(NamedTuple):
    """``efficient``: the teacher's CRF scores. emissions ``[B, W, N]``,
    transitions ``[N, N]``, start ``[N]``, end ``[N]`` (float)."""

    emissions: Any
    transitions: Any
    start: Any
    end: Any

    LAYOUT = (WORD, GLOBAL, GLOBAL, GLOBAL)


class TeacherScores(NamedTuple):
    """The teacher's CRF scores and allowed moves, cached for a method whose
    targets are computed from them inside each step (``in_step``): emissions
    ``[B, W, N]``, transitions ``[N, N]``, start and end ``[N]`` (float);
    allowed_transitions ``[N, N]``, allowed_start and allowed_end ``[N]``
    (bool; all True for an unconstrained teacher)."""

    emissions: Any
    transitions: Any
    start: Any
    end: Any
    allowed_transitions: Any
    allowed_start: Any
    allowed_end: Any

    LAYOUT = (WORD,) + (GLOBAL,) * 6

    @classmethod
    def of(cls, s: CRFScores, constraints) -> "TeacherScores":
        allowed = constraints if constraints is not None else crf.Constraints.none(s.emissions.shape[-1])
        return cls(s.emissions, s.transitions, s.start, s.end, *allowed)

    def derive(self, targets, spec, mask):
        """The targets ``targets(spec, scores, mask, constraints)`` computes (a
        scenario's, :func:`scenario`) from these scores: inside the step, or
        once for the cache (``jaxkd.training.teacher``). All-True allowed
        moves give exactly what no constraints give."""
        scores = CRFScores(self.emissions, self.transitions, self.start, self.end)
        allowed = crf.Constraints(self.allowed_transitions, self.allowed_start, self.allowed_end)
        return jax.lax.stop_gradient(targets(spec, scores, mask, allowed))


class KBestTargets(NamedTuple):
    """``kbest``: the teacher's K best paths ``[B, K, W] int`` and their
    weights ``[B, K] float``."""

    paths: Any
    weights: Any

    LAYOUT = (PATHS, ROW)


class UnaryTargets(NamedTuple):
    """``posterior``: the teacher's tag marginals ``[B, W, N] float`` (at the
    method's temperature)."""

    unary: Any

    LAYOUT = (WORD,)


class PairTargets(NamedTuple):
    """``structkd``: the teacher's tag marginals ``[B, W, N]`` and adjacent
    pair marginals ``[B, W, N, N]`` (float)."""

    unary: Any
    pairwise: Any

    LAYOUT = (WORD, WORD)


@dataclasses.dataclass(frozen=True)
class Method:
    """One distillation method.

    Attributes:
      name: the ``distill.method`` value.
      title: the paper it comes from, for tables.
      targets: ``(spec, teacher: CRFScores, mask [B, W] bool, constraints) ->
        targets`` (None: needs no teacher).
      kd: ``(spec, student: CRFScores, mask, targets, constraints) -> scalar``,
        the batch's distillation term (None: no such term).
      learns_distribution: the student matches the teacher's distribution over
        tag moves, so a move the student forbids but the teacher allows leaves
        the loss without a lower bound.
      fits_head: ``distill.fit_head`` applies (the term is least squares on
        the scores).
      in_step: the targets may be computed inside each step from the
        teacher's :class:`TeacherScores` (which the teacher then gives and the
        cache keeps): for targets far larger than the scores (``structkd``'s
        N x N pair marginals per word, N times the cache), at the cost of the
        teacher's forward-backward over the CRF in every step. The training
        loop does so when the cache of the targets would be large
        (``DistillSpec.targets_in_step``).
      token_targets, token_kd: the same for a softmax student
        (``model.head = "softmax"``, ``DistillSpec.head``): ``token_kd`` takes
        the student's per-word logits as ``student.emissions``;
        ``token_targets`` defaults to ``targets``; no ``token_kd``: the method
        has no term for a softmax student.
      span_targets, span_token_targets: the targets from a span teacher
        (``DistillSpec.teacher_head = "span"``, Structural KD's scenario 4) for
        a CRF and for a softmax student: ``(spec, teacher: SpanTagger, scores:
        SpanScores, mask) -> targets``, from the BIO marginals of the
        teacher's span distribution (its ``tag_marginals``); the student's
        term is then the method's own (``kd`` or ``token_kd``). None: the
        method cannot learn from a span teacher.
    """

    name: str
    title: str
    targets: Callable | None = None
    kd: Callable | None = None
    learns_distribution: bool = False
    fits_head: bool = False
    in_step: bool = False
    token_targets: Callable | None = None
    token_kd: Callable | None = None
    span_targets: Callable | None = None
    span_token_targets: Callable | None = None


def _scores_targets(spec, s: CRFScores, mask, constraints) -> ScoreTargets:
    return ScoreTargets(s.emissions, s.transitions, s.start, s.end)


def _scores_kd(spec, student: CRFScores, mask, t: ScoreTargets, constraints):
    teacher = CRFScores(t.emissions, t.transitions, t.start, t.end)
    return losses.efficient_kd(student, teacher, mask, emissions_only=spec.emissions_only, centered=spec.centered)


def _kbest_targets(spec, s: CRFScores, mask, constraints) -> KBestTargets:
    paths, path_scores = crf.kbest(s.emissions, mask, *s.crf_args(), spec.kbest_k, constraints=constraints)
    return KBestTargets(paths, losses.kbest_weights(path_scores, spec.kbest_weights))


def _kbest_kd(spec, student: CRFScores, mask, t: KBestTargets, constraints):
    per = losses.kbest_kd(student, mask, t.paths, t.weights, constraints=constraints, algorithm=spec.algorithm)
    return jnp.sum(per) / losses.real_rows(mask)


def _kbest_token_kd(spec, student: CRFScores, mask, t: KBestTargets, constraints):
    return jnp.sum(losses.kbest_token_kd(student.emissions, mask, t.paths, t.weights)) / losses.real_rows(mask)


def _posterior_targets(spec, s: CRFScores, mask, constraints) -> UnaryTargets:
    unary, _ = losses.teacher_marginals(
        s, mask, temperature=spec.temperature, constraints=constraints, algorithm=spec.algorithm
    )
    return UnaryTargets(unary)


def _posterior_kd(spec, student: CRFScores, mask, t: UnaryTargets, constraints):
    per = losses.posterior_kd(
        student, t.unary, mask, temperature=spec.temperature, constraints=constraints, algorithm=spec.algorithm
    )
    return jnp.sum(per) / losses.real_rows(mask)


def _unary_token_kd(spec, student: CRFScores, mask, t: UnaryTargets, constraints):
    """Scenario 2 (a softmax student of a CRF teacher's unary marginals); for
    a softmax student posterior KD and Struct. KD are this same term."""
    per = losses.structkd_token_student(student.emissions, mask, t.unary, temperature=spec.temperature)
    return jnp.sum(per) / losses.real_rows(mask)


def _pair_targets(spec, s: CRFScores, mask, constraints) -> PairTargets:
    marginals = losses.teacher_marginals(
        s, mask, temperature=spec.temperature, constraints=constraints, algorithm=spec.algorithm
    )
    return PairTargets(*marginals)


def _pair_kd(spec, student: CRFScores, mask, t: PairTargets, constraints):
    per = losses.structkd(student, mask, t.unary, t.pairwise, temperature=spec.temperature, constraints=constraints,
                          algorithm=spec.algorithm)
    return jnp.sum(per) / losses.real_rows(mask)


def _span_unary_targets(spec, teacher, s, mask) -> UnaryTargets:
    unary, _ = teacher.tag_marginals(s, mask, temperature=spec.temperature)
    return UnaryTargets(unary)


def _span_pair_targets(spec, teacher, s, mask) -> PairTargets:
    return PairTargets(*teacher.tag_marginals(s, mask, temperature=spec.temperature))


# In the order tables show them.
REGISTRY = {
    m.name: m
    for m in (
        Method("vanilla", "gold NLL only"),
        # A softmax student's scores are a CRF's with zero transitions: the
        # efficient term is the same (its pair scores are its logits).
        Method("efficient", "efficient sub-structured KD (Lin et al. 2022)", _scores_targets, _scores_kd,
               fits_head=True, token_kd=_scores_kd),
        Method("kbest", "K-best KD (Kim and Rush 2016)", _kbest_targets, _kbest_kd, learns_distribution=True,
               token_kd=_kbest_token_kd),
        Method("posterior", "posterior KD (Wang et al. 2020)", _posterior_targets, _posterior_kd,
               learns_distribution=True, token_kd=_unary_token_kd, span_targets=_span_unary_targets,
               span_token_targets=_span_unary_targets),
        # From a span teacher (scenario 4): its BIO marginals, unary for a
        # softmax student, unary and pairwise for a CRF student.
        Method("structkd", "factorised structural KD (Wang et al. 2021)", _pair_targets, _pair_kd,
               learns_distribution=True, in_step=True, token_targets=_posterior_targets, token_kd=_unary_token_kd,
               span_targets=_span_pair_targets, span_token_targets=_span_unary_targets),
    )
}
METHODS = tuple(REGISTRY)


def get(name: str) -> Method:
    """The method called ``name``; ValueError naming the choices otherwise."""
    if name not in REGISTRY:
        raise ValueError(f"unknown distillation method {name!r}; choose from {', '.join(METHODS)}")
    return REGISTRY[name]


# ---------------------------------------------------------------------------
# the one compatibility rule: method x student head x teacher head
# ---------------------------------------------------------------------------

# Structural KD's scenarios (Wang et al. 2021) by (teacher head, student head);
# a pair not listed (softmax -> softmax: token-level KD) is none of the four.
SCENARIOS = {("crf", "crf"): 1, ("crf", "softmax"): 2, ("softmax", "crf"): 3, ("span", "crf"): 4,
             ("span", "softmax"): 4}

# Why a method cannot learn from a span teacher.
SPAN_TEACHER_GAPS = {
    "efficient": "it matches the teacher's emission and transition scores, and a span model has neither",
    "kbest": "it learns from the teacher's k best tag sequences, and greedy span decoding ranks none",
}


class Scenario(NamedTuple):
    """What a student learns from its teacher with one method.

    Attributes:
      number: Structural KD's scenario (1-4), or None: vanilla (no teacher),
        softmax -> softmax, or a teacher not known yet.
      targets: what the teacher computes per batch (``Method.targets`` for a
        CRF or softmax teacher: ``(spec, scores: CRFScores, mask, constraints)``;
        for a span teacher ``(spec, teacher, scores: SpanScores, mask)``);
        None without a teacher.
      kd: the student's term ``(spec, student: CRFScores, mask, targets,
        constraints) -> scalar``; None for vanilla.
      in_step: the targets may be computed inside each step from the
        teacher's :class:`TeacherScores` (``Method.in_step``; a CRF student of
        a CRF or softmax teacher).
    """

    number: int | None
    targets: Callable | None
    kd: Callable | None
    in_step: bool = False


class Refused(NamedTuple):
    """A combination that cannot be trained, and why (a whole sentence, with the choices)."""

    reason: str


def scenario(
    method: str,
    student_head: str,
    teacher_head: str | None = None,
    *,
    student_constrained: bool = False,
    teacher_constrained: bool = True,
    fit_head: bool = False,
) -> Scenario | Refused:
    """The one rule of which method may distil which student head from which
    teacher head (each "crf", "softmax" or "span"); every caller asks it.

    ``teacher_head=None``: the teacher is not read yet (configuration checks):
    only the rules of the method and the student apply. ``student_constrained``
    (a CRF student's ``model.constraints``) and ``teacher_constrained`` (the
    teacher's) matter to the methods that match distributions; ``fit_head``
    is ``distill.fit_head``.
    """
    if method not in REGISTRY:
        return Refused(f"distill.method must be one of {', '.join(METHODS)}; got {method!r}")
    m = REGISTRY[method]
    if m.targets is None:
        return Scenario(None, None, None)
    if student_head == "span":
        return Refused(
            f"a span student (model.head = 'span') learns from gold spans only: {method!r} has no term for it "
            "(Structural KD's scenarios distil into token-level students). Use --config.distill.method=vanilla, "
            "or a crf or softmax student (--config.model.head=crf)"
        )
    if fit_head and m.fits_head and student_head != "crf":
        return Refused(
            "distill.fit_head solves for a CRF student's emission layer and transition scores; a softmax student "
            "(model.head = 'softmax') has no transition scores to absorb the fit: use --config.distill.fit_head=false"
        )
    kd = m.kd if student_head == "crf" else m.token_kd
    if teacher_head is None:
        return Scenario(None, None, kd)
    if teacher_head == "span":
        targets = m.span_targets if student_head == "crf" else m.span_token_targets
        if targets is None:
            return Refused(
                f"{method!r} cannot learn from the span teacher: "
                f"{SPAN_TEACHER_GAPS.get(method, 'it has no targets from one')}. "
                "A span teacher gives its per-word BIO marginals (Structural KD's scenario 4): use "
                "--config.distill.method=posterior or structkd"
            )
    else:
        targets = (m.token_targets or m.targets) if student_head == "softmax" else m.targets
    # A span teacher's marginals are over valid BIO sequences only.
    loose = student_head == "crf" and student_constrained and not teacher_constrained and teacher_head != "span"
    if loose and m.learns_distribution:
        what = "a product of per-word softmaxes" if teacher_head == "softmax" else "the teacher"
        return Refused(
            f"a constrained student (model.constraints = True) cannot learn {method!r} from an unconstrained "
            f"teacher ({teacher_head} head, trained with model.constraints = False): {what} puts mass on moves the "
            "student forbids, and the loss has no lower bound. Use --config.model.constraints=false, a constrained "
            "teacher (whose distribution is then over valid tag sequences), or the efficient method"
        )
    in_step = m.in_step and student_head == "crf" and teacher_head != "span"
    return Scenario(SCENARIOS.get((teacher_head, student_head)), targets, kd, in_step)


def require(method: str, student_head: str, teacher_head: str | None = None, **flags) -> Scenario:
    """:func:`scenario`, raising ValueError with the reason of a refusal."""
    verdict = scenario(method, student_head, teacher_head, **flags)
    if isinstance(verdict, Refused):
        raise ValueError(verdict.reason)
    return verdict


def compatibility_table() -> str:
    """The rule of :func:`scenario` as a markdown table, one row per pair of
    heads (constrained students of constrained teachers) and one column per
    distilling method: the scenario's number, or "refused"."""
    distilling = [m for m in METHODS if REGISTRY[m].targets is not None]
    rows = ["| teacher -> student | " + " | ".join(f"`{m}`" for m in distilling) + " |",
            "| --- |" + " --- |" * len(distilling)]
    for teacher in ("crf", "softmax", "span"):
        for student in ("crf", "softmax", "span"):
            cells = []
            for m in distilling:
                verdict = scenario(m, student, teacher, student_constrained=True)
                if isinstance(verdict, Refused):
                    cells.append("refused")
                else:
                    cells.append(f"scenario {verdict.number}" if verdict.number else "token-level KD")
            rows.append(f"| {teacher} -> {student} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
