"""Reading the input of jaxkd.predict (no tagger needed): the format choice
and the CoNLL columns, read by jaxkd.data.conll's one column reader."""

from __future__ import annotations

import pytest

from jaxkd.predict import InputError, parse, read_inputs


def test_conll_input_keeps_the_last_column_as_gold_and_loose_fields():
    doc = parse("-DOCSTART-\tO\n\nbob\tNNP\tB-PER\n\tmet \t\tVBD\tO\n\nrome\tNNP\tB-LOC\n", "in", "conll")
    assert doc.sentences == [["bob", "met"], ["rome"]]
    assert doc.gold == [["B-PER", "O"], ["B-LOC"]]
    one_column = parse("bob\nmet\n\nrome\n", "in", "conll")
    assert one_column.sentences == [["bob", "met"], ["rome"]] and one_column.gold is None
    # Any white space separates words; a -DOCSTART- line does not end the sentence.
    assert parse("a\u00a0O\n-DOCSTART- O\nb O\n", "in", "conll").sentences == [["a", "b"]]


def test_conll_input_with_uneven_columns_names_the_line(capsys):
    with pytest.raises(InputError, match=r"^in:3: 3 columns where earlier lines have 2 \(if this file is raw text"):
        parse("bob B-PER\n\nmet x O\n", "in", "conll")
    assert parse("bob met alice\nparis\n", "in", "auto").sentences == [["bob", "met", "alice"], ["paris"]]
    assert "as raw text" in capsys.readouterr().err


def test_no_sentences_and_missing_files(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n-DOCSTART- O\n\n")
    with pytest.raises(InputError, match="empty.txt: no sentences to label"):
        read_inputs([str(empty)], "conll")
    with pytest.raises(InputError, match="never.conll: no such file"):
        read_inputs([str(tmp_path / "never.conll")], "conll")
