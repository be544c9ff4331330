"""The package's imports flow one way, and the study flow stays light.

Edges are every `import` of a scaling_jax module anywhere in a file (module level
or inside a function), so a lazy import cannot hide a cycle either. Importing a
submodule counts as an edge to that submodule alone: package __init__ files are
kept free of imports that would make the parent a hub (see runs/__init__.py).
"""
import pytest
import ast
import pathlib
import subprocess
import sys

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "scaling_jax"


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(REPO_ROOT).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, pathlib.Path]:
  return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
  modules = _modules()
  graph = {name: set() for name in modules}
  for name, path in modules.items():
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
      targets = []
      if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
        targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                   else node.module for a in node.names]
      graph[name] |= {t for t in targets if t in modules and t != name}
  return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One cycle as a path [a, b, ..., a], or None."""
  state, stack = {}, []

  def visit(node):
    state[node] = "open"
    stack.append(node)
    for nxt in sorted(graph[node]):
      if state.get(nxt) == "open":
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state:
        found = visit(nxt)
        if found:
          return found
    state[node] = "done"
    stack.pop()
    return None

  for node in sorted(graph):
    if node not in state:
      found = visit(node)
      if found:
        return found
  return None


def test_the_cycle_finder_finds_a_planted_cycle():
  graph = import_graph()
  assert "scaling_jax.fitting.study_fit" in graph["scaling_jax.study"]
  planted = {k: set(v) for k, v in graph.items()}
  planted["scaling_jax.runs.table"].add("scaling_jax.study")
  cycle = find_cycle(planted)
  assert cycle and cycle[0] == cycle[-1] and "scaling_jax.study" in cycle


def test_no_import_cycle_among_scaling_jax_modules():
  assert find_cycle(import_graph()) is None


def folder_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
  """The module graph with each subpackage (fitting, laws, runs, ...) as one node;
  modules at the package root stay nodes of their own."""
  def node(module: str) -> str:
    parts = module.split(".")
    is_package = len(parts) == 2 and (PACKAGE / parts[1]).is_dir()
    return ".".join(parts[:2]) if len(parts) > 2 or is_package else module
  folders = {}
  for module, targets in graph.items():
    folders.setdefault(node(module), set()).update(
        node(t) for t in targets if node(t) != node(module))
  return folders


def test_no_import_cycle_between_folders():
  # A loop between folders (runs -> evals -> runs, say) would tie layers together
  # even without a module-level cycle.
  folders = folder_graph(import_graph())
  assert "scaling_jax.fitting" in folders["scaling_jax.report"]
  planted = {k: set(v) for k, v in folders.items()}
  planted["scaling_jax.laws"].add("scaling_jax.report")  # a known loop is found
  assert find_cycle(planted)
  assert find_cycle(folders) is None


def test_the_fitting_layer_is_one_folder():
  # No fitting module at the package root; laws/ reads no config.
  root = {p.stem for p in PACKAGE.glob("*.py")}
  assert not root & {"fitting", "curves", "advice", "retrospective", "fit_noise",
                     "predictions", "fit_cache"}
  for path in (PACKAGE / "laws").glob("*.py"):
    assert "ml_collections" not in path.read_text(encoding="utf-8"), path


@pytest.mark.slow
def test_study_flow_imports_neither_training_nor_tensorflow():
  code = ("import sys, scaling_jax.study; "
          "bad = [m for m in sys.modules if m == 'scaling_jax.train' or "
          "m.startswith(('tensorflow', 'seqio', 'tensorflow_datasets'))]; "
          "print(bad); sys.exit(1 if bad else 0)")
  proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stdout + proc.stderr
