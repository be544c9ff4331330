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


@pytest.fixture(autouse=True)
def _no_start_up_estimate(monkeypatch):
  """Sweeps in tests skip the launcher's start-up probe (launch/probe.py SKIP_ENV):
  it costs seconds a sweep, and tests run many; launch_probe_test.py turns it on."""
  monkeypatch.setenv("SCALING_JAX_NO_ESTIMATE", "1")
TESTBED_DIR = REPO_ROOT.parent / "shared" / "data" / "openlm_testbed"


CURVES_DIR = REPO_ROOT.parent / "shared" / "data" / "colpret_curves"


# The skip message of each ../shared folder found missing -> the summary's line.
_MISSING_SHARED: dict[str, str] = {}


def _shared(directory: pathlib.Path, marker: str, what: str) -> pathlib.Path:
  """`directory` of ../shared, read in place; a skip (a failure in CI) without it."""
  if not (directory / marker).exists():
    message = f"{what} not found at {directory}"
    if os.environ.get("SCALING_JAX_REQUIRE_TESTBED"):
      pytest.fail(message + " (CI requires it: ../shared must sit beside the clone)")
    _MISSING_SHARED[message] = (f"{os.path.relpath(directory, REPO_ROOT)} not found "
                                f"({what}; see README.md, Tests)")
    pytest.skip(message)
  return directory


def pytest_terminal_summary(terminalreporter):
  """One line per missing ../shared folder with the tests it skipped: `-q` prints only
  the count of skips, which would leave a user without ../shared guessing why."""
  skipped = [str(report.longrepr) for report in terminalreporter.stats.get("skipped", [])]
  for message, line in _MISSING_SHARED.items():
    count = sum(message in reason for reason in skipped)
    if count:
      terminalreporter.write_line(f"{count} skipped: {line}")


@pytest.fixture(scope="session")
def testbed_dir() -> pathlib.Path:
  """The released over-training testbed, read in place from ../shared."""
  return _shared(TESTBED_DIR, "models", "released testbed")


@pytest.fixture(scope="session")
def curves_dir() -> pathlib.Path:
  """ColPret's training curves (IBM/ColPret aggregated_eval), read in place."""
  return _shared(CURVES_DIR, "SOURCE.md", "training curves")


def _load_file(path: pathlib.Path, module_name: str):
  spec = importlib.util.spec_from_file_location(module_name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_config_module(name: str):
  """The module of configs/<name>.py (e.g. 'grid', 'tasks/embedded'), freshly loaded."""
  return _load_file(REPO_ROOT / "configs" / f"{name}.py",
                    f"config_{name.replace('/', '_')}")


def load_colab_module(name: str):
  """The module of colabs/<name>.py (the notebooks' helpers, not a package)."""
  return _load_file(REPO_ROOT / "colabs" / f"{name}.py", name)


def load_config(name: str, arg: str = ""):
  """`get_config(arg)` of configs/<name>.py, locked as main.py locks it."""
  config = load_config_module(name).get_config(arg)
  config.lock()
  return config
