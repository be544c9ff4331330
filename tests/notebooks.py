"""Running the notebooks of colabs/ in tests (nbclient), and reading their outputs."""
import pathlib

import nbformat
from nbclient import NotebookClient

COLABS = pathlib.Path(__file__).resolve().parents[1] / "colabs"


def execute(name, monkeypatch, **env):
  for key, value in env.items():
    monkeypatch.setenv(key, str(value))
  notebook = nbformat.read(COLABS / name, as_version=4)
  # Run from colabs/, as Jupyter would open it; the set-up cell finds the root.
  NotebookClient(notebook, timeout=1200, kernel_name="python3",
                 resources={"metadata": {"path": str(COLABS)}}).execute()
  return notebook


def text(notebook) -> str:
  parts = []
  for cell in notebook.cells:
    for output in cell.get("outputs", []):
      parts.append(output.get("text", ""))
      parts.append(output.get("data", {}).get("text/plain", ""))
  return "\n".join(parts)


def output_types(notebook) -> set:
  return {kind for cell in notebook.cells for output in cell.get("outputs", [])
          for kind in output.get("data", {})}
