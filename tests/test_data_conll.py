"""CoNLL reader and tagging-scheme conversion (jaxkd.data.conll, .scheme)."""

from __future__ import annotations

import pytest

from jaxkd.data import DataError, Sentence, iob1_to_iob2, parse_conll, read_conll
from jaxkd.data.conll import ColumnCountError, Dialect, read_columns
from jaxkd.data.scheme import (
    IOBES_PREFIXES,
    bio_constraints,
    first_iob1_start,
    split_tag,
)
from jaxkd.evaluate import chunks

CONLL2003 = """\
-DOCSTART- -X- -X- O

EU NNP B-NP I-ORG
rejects VBZ B-VP O
German JJ B-NP I-MISC
call NN I-NP O
. . O O

Peter NNP B-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

Spain NNP B-NP I-LOC
Italy NNP I-NP B-LOC
"""


def write(tmp_path, text, name="f.txt", newline="\n"):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def test_conll2003_iob1_is_converted_and_docstart_skipped(tmp_path):
    parsed = parse_conll(write(tmp_path, CONLL2003))
    assert parsed.scheme == "iob1"
    assert parsed.sentences == [
        Sentence(("EU", "rejects", "German", "call", "."), ("B-ORG", "O", "B-MISC", "O", "O")),
        Sentence(("Peter", "Blackburn"), ("B-PER", "I-PER")),
        Sentence(("Spain", "Italy"), ("B-LOC", "B-LOC")),
    ]
    assert parsed.retagged == 4  # I-ORG, I-MISC, I-PER, I-LOC opened chunks
    assert parsed.lines[1] == (9, 10)


def test_columns_are_chosen_by_the_user(tmp_path):
    path = write(tmp_path, CONLL2003)
    chunks = read_conll(path, tag_col=2, scheme="iob1")
    assert chunks[0].tags == ("B-NP", "B-VP", "B-NP", "I-NP", "O")
    pos_as_words = read_conll(path, word_col=1, tag_col=-1)
    assert pos_as_words[0].words[:2] == ("NNP", "VBZ")


def test_strict_iob2_rejects_iob1_with_line_number(tmp_path):
    path = write(tmp_path, CONLL2003)
    with pytest.raises(DataError, match=r"f\.txt:3: tag 'I-ORG' opens a chunk.*scheme='iob1'"):
        read_conll(path, scheme="iob2")


def test_iob2_file_is_unchanged_by_auto_and_iob1(tmp_path):
    text = "a B-X\nb I-X\nc B-X\nd O\ne B-Y\n\n"
    path = write(tmp_path, text)
    for scheme in ("auto", "iob1", "iob2"):
        parsed = parse_conll(path, scheme=scheme)
        assert parsed.sentences[0].tags == ("B-X", "I-X", "B-X", "O", "B-Y")
        assert parsed.scheme == "iob2" and parsed.retagged == 0


def test_iob1_to_iob2_cases():
    assert iob1_to_iob2(["I-PER", "I-PER", "B-PER", "I-PER", "O", "I-LOC", "I-ORG"]) == (
        "B-PER",
        "I-PER",
        "B-PER",
        "I-PER",
        "O",
        "B-LOC",
        "B-ORG",
    )
    assert iob1_to_iob2([]) == ()
    assert first_iob1_start(["B-A", "I-A", "O"]) is None
    assert first_iob1_start(["B-A", "I-B"]) == 1
    assert split_tag("B-geo-loc") == ("B", "geo-loc")


def test_crlf_trailing_spaces_tabs_and_whitespace_separators(tmp_path):
    # Tab-separated like the WNUT file: a lone tab separates sentences.
    text = "@user\tO \nNew\tB-geo-loc\t\nYork\tI-geo-loc  \n\t\n  \nhi\tO\n\t\n"
    for newline in ("\n", "\r\n"):
        sents = read_conll(write(tmp_path, text, newline=newline))
        assert sents == [
            Sentence(("@user", "New", "York"), ("O", "B-geo-loc", "I-geo-loc")),
            Sentence(("hi",), ("O",)),
        ]


def test_tab_files_keep_spaces_inside_fields_and_bom_is_dropped(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffa\u00a0b\tO\nc\tB-X\n".encode("utf-8"))
    assert read_conll(path)[0].words == ("a\u00a0b", "c")


def test_no_final_blank_line(tmp_path):
    assert len(read_conll(write(tmp_path, "a O\n\nb O"))) == 2


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "a X1 O\nb O\n",
            r"f\.txt:2: expected 3 column\(s\) like the first token line \(line 1\), found 2",
        ),
        ("a O\n\nb c O\n", r"f\.txt:3: expected 2 column"),
        ("a\tO\n\tO\n", r"f\.txt:2: empty word"),
        ("a\tO\nb\t\t\n", r"f\.txt:2: expected 2 column"),
        ("a O\nb B_PER\n", r"f\.txt:2: tag 'B_PER' is not 'O', 'B-TYPE' or 'I-TYPE'"),
        ("a O\nb S-PER\n", r"f\.txt:2: tag 'S-PER'"),
        ("onecolumn\n", r"f\.txt:1: word and tag columns are the same"),
        ("a O\n", None),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, text, message):
    path = write(tmp_path, text)
    if message is None:
        read_conll(path)
        with pytest.raises(DataError, match=r"f\.txt:1: tag_col=5 is out of range"):
            read_conll(path, tag_col=5)
        return
    with pytest.raises(DataError, match=message):
        read_conll(path)


@pytest.mark.parametrize("text", ["", "\n\n\t\n", "-DOCSTART- -X- O\n\n"])
def test_empty_file_is_an_error(tmp_path, text):
    with pytest.raises(DataError, match=r"f\.txt: no sentences"):
        read_conll(write(tmp_path, text))


def test_missing_file_and_bad_encoding(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_conll(tmp_path / "absent.txt")
    path = tmp_path / "latin.txt"
    path.write_bytes(b"a O\n\ncaf\xe9 O\n")
    with pytest.raises(DataError, match=r"latin\.txt:3: not UTF-8"):
        read_conll(path)
    with pytest.raises(ValueError, match="scheme"):
        read_conll(path, scheme="bioes")


# ---------------------------------------------------------------- the one tag parser


@pytest.mark.parametrize(
    "tag, iob2, iobes, conlleval",
    [
        ("O", ("O", None), ("O", None), ("O", None)),
        ("B-PER", ("B", "PER"), ("B", "PER"), ("B", "PER")),
        ("I-geo-loc", ("I", "geo-loc"), ("I", "geo-loc"), ("I", "geo-loc")),  # the type holds a '-'
        ("B--X", ("B", "-X"), ("B", "-X"), ("B", "-X")),
        ("S-PER", None, ("S", "PER"), ("S", "PER")),
        ("E-PER", None, ("E", "PER"), ("E", "PER")),
        ("L-PER", None, None, ("L", "PER")),
        ("B", None, None, ("B", None)),  # a bare prefix
        ("B-", None, None, ("B", None)),
        ("BPER", None, None, ("B", "PER")),  # conlleval: the first letter is the prefix
        ("O-X", None, None, ("O", "X")),
        ("BX-PER", None, None, ("B", "PER")),
        ("B_PER", None, None, ("B", "_PER")),
        ("", None, None, IndexError),
    ],
)
def test_split_tag_strict_iob2_iobes_and_conlleval_reading(tag, iob2, iobes, conlleval):
    for prefixes, want in ((("B", "I"), iob2), (IOBES_PREFIXES, iobes)):
        if want is None:
            with pytest.raises(ValueError, match="is not 'O', 'B-TYPE'"):
                split_tag(tag, prefixes)
        else:
            assert split_tag(tag, prefixes) == want
    if iob2:
        assert split_tag(tag) == iob2  # the default: IOB2 prefixes
    if conlleval is IndexError:
        with pytest.raises(IndexError):
            split_tag(tag, prefixes=None)
    else:
        assert split_tag(tag, prefixes=None) == conlleval


def test_each_caller_keeps_its_reading_and_message():
    # Readers and the vocabulary: IOB2 only.
    with pytest.raises(ValueError, match=r"^tag 'S-PER' is not 'O', 'B-TYPE' or 'I-TYPE'$"):
        split_tag("S-PER")
    with pytest.raises(ValueError, match=r"^tag 'L-X' is not 'O', 'B-TYPE', 'I-TYPE', 'E-TYPE' or 'S-TYPE'$"):
        split_tag("L-X", IOBES_PREFIXES)
    # CRF constraints: any IOBES prefix, their own message.
    with pytest.raises(ValueError, match=r"^label 'PER' is not 'O' or PREFIX-TYPE with PREFIX in B, I, E, S$"):
        bio_constraints(["O", "PER"])
    with pytest.raises(ValueError, match="not IOB2; pass scheme='IOBES'"):
        bio_constraints(["O", "S-PER"])
    # Evaluation: conlleval's lenient reading (type '_' for O and a bare prefix).
    assert chunks(["B", "I", "O", "BPER", "I-PER"]) == [("_", 0, 1), ("PER", 3, 4)]
    assert chunks(["O-X", "I-geo-loc"]) == [("geo-loc", 1, 1)]


# ---------------------------------------------------------------- the one column reader


def numbered(text):
    return enumerate(text.split("\n"), 1)


def test_read_columns_groups_sentences_and_checks_column_counts():
    text = "-DOCSTART- -X- O\n\na x O\nb y B-X\n  \nc z O\n-DOCSTART- O\nd w O"
    rows = read_columns(numbered(text), lambda n, fields, line: fields[0], source="f")
    assert rows == ([["a", "b"], ["c"], ["d"]], [(3, 4), (6,), (8,)], 3)
    with pytest.raises(ColumnCountError, match=r"^f:2: expected 2 column\(s\) like the first token line \(line 1\)"):
        read_columns(numbered("a O\nb c O"), lambda *a: None, source="f")
    with pytest.raises(ColumnCountError) as caught:
        read_columns(numbered("a O\n\nb c O"), lambda *a: None, source="f")
    err = caught.value
    assert isinstance(err, DataError) and (err.line, err.found, err.expected, err.first_line) == (3, 3, 2, 1)
    assert read_columns(numbered(""), lambda *a: None, source="f") == ([], [], None)


def test_dialects_split_fields_as_files_and_prediction_input_need():
    # Labelled files: tabs when the first token line has one; spaces split on ' ' and tab only.
    files = Dialect()
    assert files._replace(tabs=True).fields("a b\t\tO ") == ["a b", "", "O"]
    assert files._replace(tabs=False).fields(" a\u00a0b  O") == ["a\u00a0b", "O"]
    assert files.is_docstart("-DOCSTART- x\tO") and not files.is_docstart("x -DOCSTART-")
    # Prediction input: tabs when any line has one; any white space; empty fields dropped.
    loose = Dialect.of_text(["a b", "c\tO"])
    assert loose == Dialect(True, True)
    assert loose.fields(" a b\t\tO ") == ["a b", "O"]
    assert Dialect.of_text(["a\u00a0b O"]).fields("a\u00a0b O") == ["a", "b", "O"]
    assert not loose.is_docstart("-DOCSTART- x\tO") and loose.is_docstart("\t-DOCSTART-\tO")
    # A -DOCSTART- line ends a sentence in files, not in prediction input.
    text = "a O\n-DOCSTART- O\nb O"
    first = lambda n, fields, line: fields[0]  # noqa: E731
    assert read_columns(numbered(text), first, source="f").sentences == [["a"], ["b"]]
    assert read_columns(numbered(text), first, source="f", dialect=Dialect.of_text([text])).sentences == [["a", "b"]]
