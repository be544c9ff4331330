"""Without ../shared, pytest's summary says once per missing folder how many tests it
skipped and why (conftest.pytest_terminal_summary), not just a count of skips."""
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # every test here is of the full tier

# A plugin for the inner pytest: points conftest at folders that do not exist and
# keeps only the tests that read them, so the run is quick and every test skips.
_HIDE_SHARED = '''
import pathlib, sys
import pytest

@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
  conftest = sys.modules["conftest"]
  missing = pathlib.Path(conftest.REPO_ROOT.parent, "no_shared_here", "data")
  conftest.TESTBED_DIR = missing / "openlm_testbed"
  conftest.CURVES_DIR = missing / "colpret_curves"
  items[:] = [i for i in items
              if {"testbed_dir", "curves_dir"} & set(getattr(i, "fixturenames", ()))]
'''


def test_a_run_without_shared_says_why_tests_skipped(tmp_path):
  (tmp_path / "hide_shared.py").write_text(_HIDE_SHARED)
  env = {k: v for k, v in os.environ.items() if k != "SCALING_JAX_REQUIRE_TESTBED"}
  env["PYTHONPATH"] = os.pathsep.join(
      filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
  proc = subprocess.run(
      [sys.executable, "-m", "pytest", "-q", "-p", "hide_shared",
       "-p", "no:cacheprovider",
       "tests/runs_openlm_testbed_test.py", "tests/runs_csv_logs_test.py"],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  said = re.findall(r"^(\d+) skipped: (\S+) not found", proc.stdout, re.MULTILINE)
  assert sorted(folder for _, folder in said) == [
      "../no_shared_here/data/colpret_curves", "../no_shared_here/data/openlm_testbed"
  ], proc.stdout
  total = int(re.search(r"^(\d+) skipped in ", proc.stdout, re.MULTILINE).group(1))
  assert all(int(count) > 0 for count, _ in said)
  assert sum(int(count) for count, _ in said) == total, proc.stdout
