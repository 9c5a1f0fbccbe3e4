"""The one compatibility rule (jaxkd.methods.scenario) over every method,
student head, teacher head and constraint setting, against a table written
out by hand from Structural KD's scenarios and jaxkd's refusals, and the
table that docs/heads.md shows."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from jaxkd import methods
from jaxkd.config import ConfigError, validate
from jaxkd.models.heads import HEADS, unsupported
from tests.runs import tiny_config

REPO = Path(__file__).resolve().parent.parent
DISTILLING = ("efficient", "kbest", "posterior", "structkd")
# (teacher head, student head) -> scenario number for a method that is not refused.
NUMBERS = {("crf", "crf"): 1, ("crf", "softmax"): 2, ("softmax", "crf"): 3, ("softmax", "softmax"): None,
           ("span", "crf"): 4, ("span", "softmax"): 4}
MATCHES_DISTRIBUTIONS = ("kbest", "posterior", "structkd")


def expected(method, student, teacher, student_constrained, teacher_constrained, fit_head):
    """The scenario number, or the word the refusal must contain."""
    if method == "vanilla":
        return None
    if student == "span":
        return "gold spans only"
    if fit_head and method == "efficient" and student != "crf":
        return "distill.fit_head"
    if teacher == "span" and method in ("efficient", "kbest"):
        return "cannot learn from the span teacher"
    loose = student == "crf" and student_constrained and not teacher_constrained and teacher != "span"
    if loose and method in MATCHES_DISTRIBUTIONS:
        return "unconstrained teacher"
    return NUMBERS[(teacher, student)]


@pytest.mark.parametrize("method", methods.METHODS)
def test_every_combination_gets_its_scenario_or_its_reason(method):
    flags = (False, True)
    for student, teacher, s_con, t_con, fit in itertools.product(HEADS, HEADS, flags, flags, flags):
        want = expected(method, student, teacher, s_con, t_con, fit)
        got = methods.scenario(method, student, teacher, student_constrained=s_con, teacher_constrained=t_con,
                               fit_head=fit)
        where = (method, student, teacher, s_con, t_con, fit)
        if isinstance(want, str):
            assert isinstance(got, methods.Refused) and want in got.reason, (where, got)
        else:
            assert isinstance(got, methods.Scenario) and got.number == want, (where, got)
            assert (got.kd is None) == (got.targets is None) == (method == "vanilla"), where
            assert got.in_step == (method == "structkd" and student == "crf" and teacher != "span"), where


def test_before_the_teacher_is_read_only_the_students_rules_apply():
    assert isinstance(methods.scenario("efficient", "crf"), methods.Scenario)
    assert isinstance(methods.scenario("kbest", "span"), methods.Refused)
    assert "one of" in methods.scenario("nope", "crf").reason
    with pytest.raises(ValueError, match="gold spans only"):
        methods.require("posterior", "span", "crf")


def test_configuration_checks_ask_the_rule(tmp_path):
    with pytest.raises(ConfigError, match="gold spans only"):
        validate(tiny_config(tmp_path, tmp_path, **{"mode": "student", "teacher_workdir": "t",
                                                    "distill.method": "posterior", "model.head": "span"}))
    validate(tiny_config(tmp_path, tmp_path, **{"mode": "student", "model.head": "span"}))  # vanilla: fine


def test_what_a_head_cannot_do_is_said_once():
    assert "token classifier" in unsupported("span", "hf") and unsupported("crf", "hf") is None
    assert unsupported("softmax", "crf scores") is None and "spans" in unsupported("span", "crf scores")


def test_the_docs_table_is_the_rule():
    text = (REPO / "docs" / "heads.md").read_text()
    found = re.search(r"<!-- compatibility -->\n(.*?)<!-- end compatibility -->", text, re.S)
    assert found, "docs/heads.md has no table between <!-- compatibility --> and <!-- end compatibility -->"
    assert found.group(1).strip() == methods.compatibility_table().strip()
