"""The example notebook runs top to bottom, offline, on the embedded model (slow)."""

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def test_example_notebook_runs(embedded_model, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(ROOT / "examples" / "notebook.ipynb", as_version=4)
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "examples")}})
    client.execute()
    outputs = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for o in cell.get("outputs", []))
    assert "sharegpt pairwise 300 pairs" in outputs
    assert "rows dropped" in outputs
