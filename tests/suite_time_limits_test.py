"""The suite's time limits (conftest.py): a hung test fails with where it hung and
the tests after it still run, and a thread left running cannot keep the finished
suite from exiting, so a hang never times a CI run out without saying where."""
import pytest
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

from conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # every test here is of the full tier

_TESTS = '''
import subprocess, sys, threading, time

def test_sleeping():
  time.sleep(60)

def test_waiting_on_a_lock():
  lock = threading.Lock()
  lock.acquire()
  lock.acquire()

def test_waiting_on_a_child():
  subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]).wait()

def test_after_them():
  pass
'''


def _pytest_with_this_conftest(tmp_path, name, tests, **env) -> tuple[int, str]:
  """pytest run on `tests` beside a copy of this suite's conftest; (status, output).
  It also writes report.xml (JUnit), whose per-test outcomes do not depend on the
  terminal's width the way the printed summary lines do."""
  shutil.copy(REPO_ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
  (tmp_path / name).write_text(tests)
  done = subprocess.run(
      [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
       "--junitxml=report.xml", name],
      cwd=tmp_path, capture_output=True, text=True, timeout=120,
      env={**os.environ, **env})
  return done.returncode, done.stdout + done.stderr


def _failure_messages(report_path) -> dict[str, str | None]:
  """Each test's failure message from a JUnit report, None where it passed."""
  return {case.get("name"): (failure.get("message") if
                             (failure := case.find("failure")) is not None else None)
          for case in ElementTree.parse(report_path).iter("testcase")}


def test_hung_tests_fail_with_their_stack_and_the_rest_run(tmp_path):
  status, out = _pytest_with_this_conftest(tmp_path, "hangs_test.py", _TESTS,
                                           SCALING_JAX_TEST_TIME_LIMIT_S="2")
  assert status == 1, out
  assert "3 failed, 1 passed" in out, out
  failures = _failure_messages(tmp_path / "report.xml")
  assert failures.keys() == {"test_sleeping", "test_waiting_on_a_lock",
                             "test_waiting_on_a_child", "test_after_them"}, out
  for test in ("test_sleeping", "test_waiting_on_a_lock", "test_waiting_on_a_child"):
    assert "TestTimeLimitExceeded: test ran past 2 s" in (failures[test] or ""), out
  assert failures["test_after_them"] is None, out
  # faulthandler's dump of every thread names the line each test hung on.
  for line, test in ((5, "test_sleeping"), (10, "test_waiting_on_a_lock"),
                     (13, "test_waiting_on_a_child")):
    assert f'hangs_test.py", line {line} in {test}' in out, out


_LEFT_THREAD = '''
import threading

def test_leaves_a_thread_that_never_ends():
  threading.Thread(target=threading.Event().wait, name="left-behind").start()
'''


def test_a_thread_left_running_does_not_keep_the_suite_from_exiting(tmp_path):
  status, out = _pytest_with_this_conftest(tmp_path, "leaves_test.py", _LEFT_THREAD,
                                           SCALING_JAX_EXIT_GRACE_S="2")
  assert status == 0 and "1 passed" in out, out  # the tests' own status
  assert "threads still running: ['left-behind']" in out, out
  assert 'Thread 0x' in out and "in wait" in out, out
