"""Test set-up shared by every test module.

Eight fake CPU devices let the sharding tests build real meshes on one CPU; the flag
must be set before JAX initialises its backend, hence here, before any test imports.
"""
import importlib.util
import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
TESTBED_DIR = REPO_ROOT.parent / "shared" / "data" / "openlm_testbed"


CURVES_DIR = REPO_ROOT.parent / "shared" / "data" / "colpret_curves"


def _shared(directory: pathlib.Path, marker: str, what: str) -> pathlib.Path:
  """`directory` of ../shared, read in place; a skip (a failure in CI) without it."""
  if not (directory / marker).exists():
    message = f"{what} not found at {directory}"
    if os.environ.get("SCALING_JAX_REQUIRE_TESTBED"):
      pytest.fail(message + " (CI requires it: ../shared must sit beside the clone)")
    pytest.skip(message)
  return directory


@pytest.fixture(scope="session")
def testbed_dir() -> pathlib.Path:
  """The released over-training testbed, read in place from ../shared."""
  return _shared(TESTBED_DIR, "models", "released testbed")


@pytest.fixture(scope="session")
def curves_dir() -> pathlib.Path:
  """ColPret's training curves (IBM/ColPret aggregated_eval), read in place."""
  return _shared(CURVES_DIR, "SOURCE.md", "training curves")


def load_config_module(name: str):
  """The module of configs/<name>.py (e.g. 'grid', 'tasks/embedded'), freshly loaded."""
  path = REPO_ROOT / "configs" / f"{name}.py"
  spec = importlib.util.spec_from_file_location(f"config_{name.replace('/', '_')}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_config(name: str, arg: str = ""):
  """`get_config(arg)` of configs/<name>.py, locked as main.py locks it."""
  config = load_config_module(name).get_config(arg)
  config.lock()
  return config
