"""The measured tables and figures of README.md, benchmarks/README.md and
docs/*.md are what benchmarks/tables.py builds from benchmarks/results/
(no JAX work: JSON in, Markdown out)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks import tables

ROOT = Path(__file__).resolve().parents[1]


def _copy(tmp_path: Path) -> Path:
    """The documents and every committed source of their generated parts, under ``tmp_path``."""
    for doc in tables.documents(ROOT):
        target = tmp_path / doc.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(doc, target)
    for source in tables.SOURCES:
        if (ROOT / source).is_file():
            (tmp_path / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / source, tmp_path / source)
    return tmp_path


def _summary() -> dict:
    """A summary.json as jaxkd/demo.py writes it (made-up figures)."""

    def scores(f1):
        return {"precision": f1 + 1.0, "recall": f1 - 1.0, "f1": f1}

    def student(f1, cache):
        phases = {
            "teacher_forward_s": 0.0,
            "student_forward_s": 0.5,
            "student_backward_s": 1.0,
            "total_s": 1.5 + cache / 10,
        }
        return {
            "dev": scores(f1 + 10),
            "test": scores(f1),
            "epoch_seconds": phases,
            "teacher_cache_s": cache,
            "workdir": "w",
        }

    methods = ("vanilla", "efficient", "kbest", "posterior", "structkd")
    return {
        "teacher": {"dev": scores(56.25), "test": scores(46.5), "workdir": "runs/demo/teacher"},
        "student_setup": {
            "name": "tiny",
            "checkpoint": "offline:bert-tiny",
            "num_layers": 0,
            "epochs": 10,
            "unlabeled": True,
        },
        "students": {m: student(35.0 + i, 0.0 if m == "vanilla" else 12.0) for i, m in enumerate(methods)},
        "minutes": 8.4,
    }


def test_every_generated_table_matches_its_results_file():
    report = tables.check(ROOT)
    assert not report.errors, report.errors
    assert report.ok, "run `python -m benchmarks.tables`:\n" + "\n".join(report.diffs(ROOT))
    used = set()
    for doc in tables.documents(ROOT):
        text = doc.read_text()
        used |= {m.group(1) for m in tables.BLOCK.finditer(text)} | {m.group(1) for m in tables.INLINE.finditer(text)}
    assert set(tables.TABLES) <= used, f"tables no document shows: {sorted(set(tables.TABLES) - used)}"


def test_a_changed_figure_is_found_and_rewritten(tmp_path):
    root = _copy(tmp_path)
    readme = root / "benchmarks" / "README.md"
    text = readme.read_text()
    start = text.index("<!-- table: vs_pytorch_cpu -->")
    row = text.index("| training step, teacher |", start)
    end = text.index("\n", row)
    cells = text[row:end].split("|")
    cells[2] = f" 9{cells[2].strip()} "  # one figure changed by hand
    readme.write_text(text[:row] + "|".join(cells) + text[end:])
    report = tables.check(root)
    assert not report.ok and not report.errors
    diff = "\n".join(report.diffs(root))
    assert "benchmarks/README.md" in diff and "training step, teacher" in diff
    tables.write(root)  # puts the figure back
    assert readme.read_text() == text
    assert tables.check(root).ok


def test_a_changed_results_file_is_found(tmp_path):
    root = _copy(tmp_path)
    path = root / tables.RESULTS / "scaling_cpu.json"
    result = json.loads(path.read_text())
    result["rows"][1]["dev_f1"] += 1.0
    path.write_text(json.dumps(result))
    report = tables.check(root)
    assert not report.ok
    assert "43.79" in "\n".join(report.diffs(root))


def test_a_changed_inline_figure_is_found(tmp_path):
    root = _copy(tmp_path)
    readme = root / "README.md"
    text = readme.read_text()
    readme.write_text(text.replace("<!-- figure: labelling_shapes -->19<", "<!-- figure: labelling_shapes -->11<"))
    assert not tables.check(root).ok


def test_unknown_names_and_broken_markers_are_errors(tmp_path):
    root = _copy(tmp_path)
    doc = root / "docs" / "extra.md"
    doc.write_text("<!-- table: no_such_table -->\nold\n<!-- end table -->\n")
    assert any("no_such_table" in e for e in tables.check(root).errors)
    doc.write_text("<!-- table: scaling_cpu -->\nnever closed\n")
    assert any("unbalanced" in e for e in tables.check(root).errors)


def test_a_missing_results_file_is_an_error(tmp_path):
    root = _copy(tmp_path)
    (root / tables.RESULTS / "inference_cpu.json").unlink()
    report = tables.check(root)
    assert any("inference_cpu.json" in e and "missing" in e for e in report.errors)


def test_the_demo_tables_wait_for_their_file_then_are_generated(tmp_path):
    root = _copy(tmp_path)
    demo = root / tables.DEMO
    if demo.exists():
        demo.unlink()
    before = (root / "README.md").read_text()
    report = tables.write(root)
    assert not report.errors, report.errors
    assert any("demo_cpu.json" in note and "demo_accuracy" in note for note in report.notes)
    assert (root / "README.md").read_text() == before  # left as it is while the file is missing

    demo.write_text(json.dumps(_summary()))
    report = tables.write(root)
    assert not report.errors and not report.notes
    readme = (root / "README.md").read_text()
    assert "| teacher MiniLM-L6 (6 layers) | 56.25 | 47.50 | 45.50 | 46.50 | +11.50 |" in readme
    assert "| student BERT-tiny efficient + unlabelled | 46.00 | 37.00 | 35.00 | 36.00 | +1.00 |" in readme
    assert "| kbest | 0.00 | 0.50 | 1.00 | 2.70 | 1.80x | 12.0 |" in readme
    assert "the whole demo took 8.4 min" in readme
    assert tables.check(root).ok
    assert len(readme.splitlines()) <= 250, "README.md must stay a five-minute read (at most 250 lines)"


@pytest.mark.parametrize("name", sorted(tables.TABLES))
def test_every_table_cites_its_sources(name):
    part = tables.TABLES[name]
    if part.pending and not (ROOT / part.sources[0]).is_file():
        pytest.skip(f"{part.sources[0]} is not committed yet")
    sources = tables._Sources(ROOT)
    body = part.build(*(sources.get(s) for s in part.sources))
    for source in part.sources:
        assert f"`{source}`" in body


def test_the_readme_maps_every_module():
    """README.md's "Map of the modules" has one line per module of jaxkd and its sub-packages, and no stale one."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Map of the modules") :]
    packages = {"Package `jaxkd`": "jaxkd"}
    packages |= {f"`jaxkd/{p}/`": f"jaxkd/{p}" for p in ("crf", "data", "models", "training")}
    listed: dict = {}
    current = None
    for line in section.splitlines():
        current = next((d for head, d in packages.items() if line.startswith(head)), current)
        if line.startswith("* `") and current:
            listed.setdefault(current, set()).add(line[3 : line.index("`", 3)])
    for directory in packages.values():
        modules = {p.name for p in (ROOT / directory).glob("*.py") if p.name != "__init__.py"}
        assert listed.get(directory, set()) == modules, (directory, sorted(modules ^ listed.get(directory, set())))
