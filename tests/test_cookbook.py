"""The cookbook notebooks run top to bottom, offline, on the embedded model."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

COOKBOOK = Path(__file__).resolve().parents[1] / "cookbook"
NOTEBOOKS = sorted(COOKBOOK.glob("*.ipynb"))

pytestmark = pytest.mark.integration


def test_the_four_notebooks_are_there_with_outputs_stripped():
    assert [p.name for p in NOTEBOOKS] == [
        "01_quickstart.ipynb", "02_explainers.ipynb", "03_reproduce_the_paper.ipynb",
        "04_amplified_chatbot.ipynb"]
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        for cell in book.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("SELFAMPLIFY_COOKBOOK_SMALL", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    book = nbformat.read(path, as_version=4)
    NotebookClient(book, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(COOKBOOK)}}).execute()
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
