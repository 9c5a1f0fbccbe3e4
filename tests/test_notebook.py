"""notebooks/inspect_scores: the jupytext pair is in sync, and the notebook runs
top to bottom (training its tiny runs) in a real kernel."""

from __future__ import annotations

import os
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"



def _code(nb) -> list[str]:
    return [c.source.strip() for c in nb.cells if c.cell_type == "code"]


def test_ipynb_and_py_are_the_same_notebook():
    py = jupytext.read(NOTEBOOKS / "inspect_scores.py")
    ipynb = nbformat.read(NOTEBOOKS / "inspect_scores.ipynb", as_version=4)
    assert _code(py) == _code(ipynb), (
        "notebooks/inspect_scores.{py,ipynb} differ: run `jupytext --sync notebooks/inspect_scores.py`"
    )
    assert len(_code(py)) >= 6


def test_notebook_executes_and_plots(teacher, student, tmp_path, monkeypatch):
    """On the session's tiny teacher and efficient student (its own fallback,
    training tiny MiniLM runs when none are found, is the demo's code path)."""
    nb = jupytext.read(NOTEBOOKS / "inspect_scores.py")
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "teacher").symlink_to(teacher[0])
    (runs / "efficient").symlink_to(student[0])
    monkeypatch.setenv("JAXKD_NOTEBOOK_RUNS", str(runs))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute(env=dict(os.environ))
    text = "\n".join(
        o.get("text", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "stream"
    )
    assert "training tiny ones" not in text  # the runs given, not trained anew
    assert f"teacher: 2 layers ({runs / 'teacher'}); student: 1 layers ({runs / 'efficient'})" in text
    assert "efficient-KD loss of this sentence" in text
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # 3 heatmap figures and the loss bar chart

