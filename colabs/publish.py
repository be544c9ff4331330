"""Executes the committed notebooks and writes copies with their outputs to docs/notebooks/.

  python colabs/publish.py               # every notebook
  python colabs/publish.py testbed       # just one
  SCALING_JAX_REPOSITORY=org/scaling_jax python colabs/publish.py --no-execute
                                         # refill the published copies' links only

The notebooks in colabs/ are committed without outputs (CI executes those, and
Colab opens them clean); the published copies show what a run prints and draws.
Each runs from colabs/, as Jupyter would open it, with its default parameters and a
workdir emptied first, so that a rerun reproduces it rather than resuming an old
study.

The committed notebooks point their Colab badge and the clone in their set-up cell
at the placeholder OWNER/REPO; the published copies get the repository named by one
setting, SCALING_JAX_REPOSITORY (owner/name; the placeholder stays while it is
unset). Outputs carry no path of the machine that published them: the checkout
becomes <checkout> and the fixed publishing workdir the notebook's own default.
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
PLACEHOLDER = "OWNER/REPO"
REPOSITORY_SETTING = "SCALING_JAX_REPOSITORY"
# Each notebook's default WORKDIR (its parameters cell): what a reader's run prints.
DEFAULT_WORKDIRS = {"quickstart": "/tmp/scaling_jax_quickstart",
                    "testbed": "/tmp/scaling_jax_testbed"}


def repository() -> str:
  """owner/name from SCALING_JAX_REPOSITORY, else the placeholder."""
  value = os.environ.get(REPOSITORY_SETTING, "").strip() or PLACEHOLDER
  if value.count("/") != 1 or " " in value:
    raise SystemExit(f"{REPOSITORY_SETTING}={value!r}: give the GitHub path as "
                     f"owner/name, e.g. google/scaling_jax")
  return value


def publishing_workdir(name: str) -> pathlib.Path:
  # A fixed path keeps the published outputs the same from one run to the next.
  return pathlib.Path(tempfile.gettempdir()) / "scaling_jax_publish" / name


def finish(notebook, name: str, repo: str) -> None:
  """Fills the repository into the sources and strips this machine's paths from the
  outputs, in place."""
  local = {str(publishing_workdir(name)): DEFAULT_WORKDIRS[name],
           str(COLABS.parent): "<checkout>"}
  for cell in notebook.cells:
    cell.source = cell.source.replace(PLACEHOLDER, repo)
    for output in cell.get("outputs", ()):
      if "text" in output:
        output.text = _replace(output.text, local)
      for kind, value in output.get("data", {}).items():
        if kind.startswith("text/") and isinstance(value, str):
          output.data[kind] = _replace(value, local)
  notebook.metadata["scaling_jax"] = {"repository": repo}


def _replace(text: str, replacements: dict) -> str:
  for old, new in replacements.items():  # the longer (workdir) before the checkout
    text = text.replace(old, new)
  return text


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
  workdir = publishing_workdir(name)
  shutil.rmtree(workdir, ignore_errors=True)
  with _environment(SCALING_JAX_WORKDIR=str(workdir)):
    # No timing metadata: a republished notebook differs only where its outputs do.
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(COLABS)}}).execute()
  finish(notebook, name, repository())
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  path = out_dir / f"{name}.ipynb"
  nbformat.write(notebook, path)
  return path


def refill(name: str, out_dir=PUBLISHED) -> pathlib.Path:
  """The published copy with the current repository setting, its outputs kept: the
  committed sources refilled (so a rename needs no rerun)."""
  path = pathlib.Path(out_dir) / f"{name}.ipynb"
  published = nbformat.read(path, as_version=4)
  committed = nbformat.read(COLABS / f"{name}.ipynb", as_version=4)
  if len(published.cells) != len(committed.cells):
    raise SystemExit(f"{path} has other cells than colabs/{name}.ipynb: publish it "
                     f"again (without --no-execute)")
  for cell, source in zip(published.cells, committed.cells):
    cell.source = source.source
  finish(published, name, repository())
  nbformat.write(published, path)
  return path


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("names", nargs="*", metavar="NAME",
                      help=f"notebooks to publish, of {', '.join(NOTEBOOKS)} (default: all)")
  parser.add_argument("--no-execute", action="store_true",
                      help="only refill the published copies' repository links and "
                           "paths (after changing SCALING_JAX_REPOSITORY)")
  args = parser.parse_args()
  unknown = sorted(set(args.names) - set(NOTEBOOKS))
  if unknown:
    parser.error(f"no notebook colabs/{unknown[0]}.ipynb; choose from {', '.join(NOTEBOOKS)}")
  for name in args.names or NOTEBOOKS:
    path = refill(name) if args.no_execute else publish(name)
    print(f"{path}: {path.stat().st_size / 1e3:.0f} kB")

if __name__ == "__main__":
  main()
