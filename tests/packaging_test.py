"""What a fresh install gets: the license, and the tested pins for each supported Python.

setup.py gives lower bounds and a cap; constraints/py3.X.txt pin what CI tested on
each Python (tests/python312.sh installs with the 3.12 file). These tests keep the
three in step with each other and with what README.md tells a user.
"""
import ast
import re

from packaging.requirements import Requirement
import pytest

from conftest import REPO_ROOT

SUPPORTED = ("3.11", "3.12")


def _setup_lists() -> dict:
  """CORE and EXTRAS as setup.py writes them (read, not run: running it installs)."""
  tree = ast.parse((REPO_ROOT / "setup.py").read_text())
  found = {}
  for node in tree.body:
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
      if node.targets[0].id in ("CORE", "EXTRAS"):
        found[node.targets[0].id] = ast.literal_eval(node.value)
  return found


def _pins(version: str) -> dict[str, str]:
  path = REPO_ROOT / "constraints" / f"py{version}.txt"
  pins = {}
  for line in path.read_text().splitlines():
    line = line.split("#", 1)[0].strip()
    if line:
      name, pinned = line.split("==")
      pins[_normal(name)] = pinned
  return pins


def _normal(name: str) -> str:
  return re.sub(r"[-_.]+", "-", name).lower()


def test_the_license_is_apache_2_and_setup_says_so():
  assert "Apache License" in (REPO_ROOT / "LICENSE").read_text()[:200]
  setup = (REPO_ROOT / "setup.py").read_text()
  assert 'license="Apache-2.0"' in setup
  for version in SUPPORTED:
    assert f'"Programming Language :: Python :: {version}"' in setup


@pytest.mark.parametrize("version", SUPPORTED)
def test_each_python_pins_every_requirement_within_setups_bounds(version):
  lists = _setup_lists()
  pins = _pins(version)
  for text in lists["CORE"] + lists["EXTRAS"]["test"]:
    requirement = Requirement(text)
    name = _normal(requirement.name)
    assert name in pins, f"constraints/py{version}.txt does not pin {requirement.name}"
    assert requirement.specifier.contains(pins[name]), (
        f"constraints/py{version}.txt pins {name}=={pins[name]}, outside setup.py's "
        f"{text!r}")


def test_the_readme_names_the_jax_each_python_gets():
  readme = (REPO_ROOT / "README.md").read_text()
  for version in SUPPORTED:
    jax = _pins(version)["jax"]
    assert f"Python {version}: jax {jax}" in readme, (
        f"README.md should say which jax Python {version} gets (constraints/"
        f"py{version}.txt pins {jax})")
