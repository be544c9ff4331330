"""colabs/colab_install.py: the notebooks' install keeps an accelerator's jax.

The pip command is checked, not run: running it needs a fresh environment and PyPI.
Run by hand in fresh venvs (`python -m venv v && v/bin/pip install jax==X jaxlib==X
packaging`, then `colab_install.install(copy_of_the_repo)`): jax 0.10.0 stayed 0.10.0;
jax 0.9.2 against a setup.py asking jax>=0.9 stayed 0.9.2 (flax 0.12.6 was chosen,
where a plain `pip install -e` would have pulled jax 0.10.2 for flax 0.12.8); jax 0.9.2
against jax>=0.10 was upgraded to 0.10.2.
"""
import pathlib
import sys

import pytest
from conftest import load_colab_module
from packaging.requirements import Requirement

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


colab_install = load_colab_module("colab_install")
GPU_JAX = {"jax": "0.10.1", "jaxlib": "0.10.1", "jax-cuda12-plugin": "0.10.1",
           "jax-cuda12-pjrt": "0.10.1"}


def test_reads_the_jax_requirement_of_setup_py():
  requirement = colab_install.jax_requirement(REPO_ROOT)
  assert requirement.name == "jax"  # not jaxopt, listed beside it
  setup = (REPO_ROOT / "setup.py").read_text()
  assert requirement.specifier and all(str(s) in setup for s in requirement.specifier)


def test_a_setup_py_without_jax_is_named(tmp_path):
  (tmp_path / "setup.py").write_text('CORE = ["jaxopt>=0.8"]\n')
  with pytest.raises(ValueError, match=r"setup\.py: no requirement on jax"):
    colab_install.jax_requirement(tmp_path)


def test_a_satisfying_jax_is_pinned_with_its_plugins(tmp_path):
  constraints = tmp_path / "keep_jax.txt"
  command, plan = colab_install.pip_command("/repo", Requirement("jax>=0.10"), GPU_JAX,
                                            constraints)
  assert command[:3] == [sys.executable, "-m", "pip"]
  assert command[-4:] == ["-e", "/repo", "-c", str(constraints)]
  assert sorted(constraints.read_text().split()) == sorted(
      f"{name}=={version}" for name, version in GPU_JAX.items())
  assert "keeping" in plan and "jax-cuda12-plugin 0.10.1" in plan


def test_an_old_accelerator_jax_is_upgraded_with_its_extra(tmp_path):
  old = {name: "0.5.2" for name in GPU_JAX}
  command, plan = colab_install.pip_command("/repo", Requirement("jax>=0.10"), old,
                                            tmp_path / "c.txt")
  assert command[-1] == "jax[cuda12]>=0.10" and "-c" not in command
  assert "restart the session" in plan and not (tmp_path / "c.txt").exists()
  tpu = {"jax": "0.5.2", "jaxlib": "0.5.2", "libtpu": "0.0.10"}
  command, _ = colab_install.pip_command("/repo", Requirement("jax>=0.10"), tpu,
                                         tmp_path / "c.txt")
  assert command[-1] == "jax[tpu]>=0.10"


def test_without_jax_pip_is_left_alone(tmp_path):
  command, plan = colab_install.pip_command("/repo", Requirement("jax>=0.10"), {},
                                            tmp_path / "c.txt")
  assert command[-2:] == ["-e", "/repo"] and "CPU" in plan


def test_finds_the_installed_jax_parts():
  parts = colab_install.installed_jax_parts()
  import jax
  assert parts["jax"] == jax.__version__ and "jaxlib" in parts
  assert "jaxopt" not in parts and "flax" not in parts


def test_this_environment_needs_no_install():
  # The test environment is set up by `pip install -e '.[test]'`: nothing missing,
  # though optional extras (xmanager, seqio...) are not installed.
  assert colab_install.missing_requirements() == []
  assert colab_install.missing_requirements("no-such-distribution") is None
