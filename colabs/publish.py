"""Executes the committed notebooks and writes copies with their outputs to docs/notebooks/.

  python colabs/publish.py               # every notebook
  python colabs/publish.py testbed       # just one

The notebooks in colabs/ are committed without outputs (CI executes those, and
Colab opens them clean); the published copies show what a run prints and draws.
Each runs from colabs/, as Jupyter would open it, with its default parameters and a
workdir emptied first, so that a rerun reproduces it rather than resuming an old
study.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import shutil
import tempfile

import nbformat
from nbclient import NotebookClient

COLABS = pathlib.Path(__file__).resolve().parent
PUBLISHED = COLABS.parent / "docs" / "notebooks"
NOTEBOOKS = ("quickstart", "testbed")
# The parameters the notebooks read from the environment; published runs use defaults.
OVERRIDES = ("SCALING_JAX_WORKDIR", "SCALING_JAX_RESAMPLES", "SCALING_JAX_TESTBED")


@contextlib.contextmanager
def _environment(**values):
  """os.environ (which the kernel inherits) with OVERRIDES cleared and `values` set."""
  saved = {key: os.environ.get(key) for key in (*OVERRIDES, *values)}
  for key in OVERRIDES:
    os.environ.pop(key, None)
  os.environ.update(values)
  try:
    yield
  finally:
    for key, value in saved.items():
      if value is None:
        os.environ.pop(key, None)
      else:
        os.environ[key] = value


def publish(name: str, out_dir=PUBLISHED, timeout: int = 3600) -> pathlib.Path:
  """Executes colabs/<name>.ipynb and writes it, outputs included, to out_dir."""
  notebook = nbformat.read(COLABS / f"{name}.ipynb", as_version=4)
  # A fixed path keeps the published outputs the same from one run to the next.
  workdir = pathlib.Path(tempfile.gettempdir()) / "scaling_jax_publish" / name
  shutil.rmtree(workdir, ignore_errors=True)
  with _environment(SCALING_JAX_WORKDIR=str(workdir)):
    # No timing metadata: a republished notebook differs only where its outputs do.
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(COLABS)}}).execute()
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  path = out_dir / f"{name}.ipynb"
  nbformat.write(notebook, path)
  return path


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("names", nargs="*", metavar="NAME",
                      help=f"notebooks to publish, of {', '.join(NOTEBOOKS)} (default: all)")
  args = parser.parse_args()
  unknown = sorted(set(args.names) - set(NOTEBOOKS))
  if unknown:
    parser.error(f"no notebook colabs/{unknown[0]}.ipynb; choose from {', '.join(NOTEBOOKS)}")
  for name in args.names or NOTEBOOKS:
    path = publish(name)
    print(f"{path}: {path.stat().st_size / 1e3:.0f} kB")

if __name__ == "__main__":
  main()
