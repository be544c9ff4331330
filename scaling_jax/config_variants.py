"""What each study config accepts after the colon, for `--help`.

Each configs/*.py declares VARIANTS, a dict literal: the text after the colon
(e.g. 'smoke', 'train=rpj'; '' for none) -> what it gives. It is read with `ast`,
without running the file: --help stays fast (a config imports jax) and still works
when a config's imports fail. tests/config_variants_test.py builds every variant
listed and checks that every variant a config accepts is listed.
"""
from __future__ import annotations

import ast
import pathlib
import textwrap

# Beside the package in a clone (pip install -e .); absent from a plain install.
CONFIGS_DIR = pathlib.Path(__file__).resolve().parents[1] / "configs"
WIDTH = 80


def declared(path: pathlib.Path) -> tuple[str, dict[str, str]]:
  """(its docstring's first paragraph, VARIANTS) of a config file, not run."""
  tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
  title = " ".join((ast.get_docstring(tree) or "").strip().split("\n\n", 1)[0].split())
  for node in tree.body:
    names = [t.id for t in getattr(node, "targets", ()) if isinstance(t, ast.Name)]
    if isinstance(node, ast.Assign) and "VARIANTS" in names:
      return title, dict(ast.literal_eval(node.value))
  return title, {}


def _wrap(text: str, first: str, rest: str) -> list[str]:
  # Flags and field names stay whole: no break at their hyphens.
  return textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=rest,
                       break_on_hyphens=False)


def _entry(path: pathlib.Path) -> list[str]:
  name = f"configs/{path.name}"
  try:
    title, variants = declared(path)
  except (OSError, SyntaxError, ValueError) as e:  # help must not fail on one file
    return [f"  {name}: cannot read its VARIANTS ({type(e).__name__}: {e})"]
  lines = _wrap(f"{name}  {title}", "  ", "      ")
  if not variants:
    return lines + ["    (no VARIANTS declared)"]
  shown = {key: f":{key}" if key else "(none)" for key in variants}
  column = max(len(s) for s in shown.values()) + 6
  for key, what in variants.items():
    lines += _wrap(what, f"    {shown[key]}".ljust(column), " " * column)
  return lines


def help_text(configs_dir: pathlib.Path = CONFIGS_DIR) -> str:
  """The configs and their variants, as --help prints them ('' without configs/)."""
  paths = sorted(pathlib.Path(configs_dir).glob("*.py"))
  if not paths:
    return ""
  lines = ["Configs and their variants (--config=configs/FILE.py[:VARIANT]):"]
  for path in paths:
    lines += _entry(path)
  return "\n".join(lines) + "\n"
