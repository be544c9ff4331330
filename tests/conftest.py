"""Test set-up shared by every test module.

Eight fake CPU devices let the sharding tests build real meshes on one CPU; the flag
must be set before JAX initialises its backend, hence here, before any test imports.
"""
import faulthandler
import gc
import importlib.util
import os
import pathlib
import signal
import shutil
import sys
import tempfile
import threading

# LLVM at -O0: the suite compiles a few thousand programs that each run a few times,
# and half its time was XLA:CPU's backend compile. At -O0 a 5-point Eq. 4 solver
# compiles in 3.6 s instead of 5.4 s, the fast tier ran in 2 min 55 s instead of
# 3 min 31 s, and train_test + preemption_test in 4 min 20 s instead of 6 min 1 s
# (docs/benchmarks.md, Test tiers). The programs (HLO) are the ones users run;
# only the machine code is less optimised, so results agree to rounding.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8 "
                      "--xla_backend_optimization_level=0")
os.environ.setdefault("MPLBACKEND", "Agg")

# One persistent compilation cache for the whole run, shared by both xdist workers and
# the subprocesses tests start: the suite compiles the same fitting programs (a 5-point
# Eq. 4 fit with its vmapped bootstrap, say) in file after file, each for seconds.
# Made here, in the first process to load this file (xdist's controller, before it
# starts the workers, who inherit it), and removed by that process at the end. Only
# programs that take half a second to compile are written. A JAX_COMPILATION_CACHE_DIR
# set by the caller is used as it is and kept.
if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="scaling_jax_tests_jax_cache-")
  # Its maker's pid: a pytest that a test starts (suite_time_limits_test) inherits the
  # environment and ends first, and must not remove the cache under the rest.
  os.environ["SCALING_JAX_TEST_CACHE_OWNER"] = str(os.getpid())
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
SESSION_JAX_CACHE = os.environ["JAX_COMPILATION_CACHE_DIR"]

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


# No test may hang the suite: CI stops a run at 30 minutes and shows only its start,
# so a test stuck past this fails with its traceback (and every thread's stack on
# stderr) and the rest still run. The slowest test takes about a minute idle.
# The smoke study's set-up (6 units trained) has taken 261-425 s of CI runs sharing
# the two cores with the other worker (past 300 s the limit took the worker down),
# hence the margin.
TEST_TIME_LIMIT_S = int(os.environ.get("SCALING_JAX_TEST_TIME_LIMIT_S", "600"))


@pytest.fixture(autouse=True)
def _persistent_compile_cache_stays_in_its_test():
  """A unit trained inline points JAX's persistent compilation cache at its sweep's
  folder for the rest of the process (compile_cache.configure), and writes every
  program there; so each test leaves the cache as it found it: the run's own
  (SESSION_JAX_CACHE), at its threshold."""
  yield
  jax = sys.modules.get("jax")
  if jax is None or jax.config.jax_compilation_cache_dir == SESSION_JAX_CACHE:
    return
  from jax.experimental.compilation_cache import compilation_cache  # pylint: disable=g-import-not-at-top
  compilation_cache.reset_cache()
  jax.config.update("jax_compilation_cache_dir", SESSION_JAX_CACHE)
  jax.config.update("jax_persistent_cache_min_compile_time_secs",
                    float(os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", 1)))
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _memory_map_count() -> int | None:
  try:
    with open("/proc/self/maps", "rb") as maps:
      return sum(1 for _ in maps)
  except OSError:  # not Linux
    return None


def _memory_map_limit() -> int:
  try:
    with open("/proc/sys/vm/max_map_count") as limit:
      return int(limit.read())
  except (OSError, ValueError):
    return 65530  # Linux's default


@pytest.fixture(autouse=True, scope="module")
def _compiled_programs_freed_before_the_map_limit():
  """Every program XLA:CPU compiles holds a few memory maps until JAX's caches drop
  it, and a full run compiles tens of thousands in one process: past the kernel's
  vm.max_map_count (65530) the next compile gets no memory and XLA crashes (a
  segfault or an abort inside backend_compile, 94% into the suite). So once a module
  leaves the process past half the limit, JAX's caches are cleared: later modules
  recompile what they use again, and nothing else changes."""
  yield
  count = _memory_map_count()
  jax = sys.modules.get("jax")
  if jax is not None and count is not None and count > _memory_map_limit() // 2:
    jax.clear_caches()
    gc.collect()


class TestTimeLimitExceeded(Exception):
  """Raised in a test that ran past TEST_TIME_LIMIT_S."""


def _on_time_limit(signum, frame):
  raise TestTimeLimitExceeded(
      f"test ran past {TEST_TIME_LIMIT_S} s (SCALING_JAX_TEST_TIME_LIMIT_S); every "
      "thread's stack is on stderr")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
  if TEST_TIME_LIMIT_S <= 0 or not hasattr(signal, "SIGALRM"):
    yield
    return
  previous = signal.signal(signal.SIGALRM, _on_time_limit)
  # The stacks come a little before the exception, so the dump shows where it hung
  # rather than the unwinding.
  faulthandler.dump_traceback_later(max(TEST_TIME_LIMIT_S - 2, 1), file=sys.stderr)
  signal.alarm(TEST_TIME_LIMIT_S)
  try:
    yield
  finally:
    signal.alarm(0)
    faulthandler.cancel_dump_traceback_later()
    signal.signal(signal.SIGALRM, previous)


# Nor may a thread a test left behind (a library's non-daemon pool, say) keep the
# finished suite from exiting: past this grace, every thread's stack is printed and
# the process exits with the tests' own status.
EXIT_GRACE_S = float(os.environ.get("SCALING_JAX_EXIT_GRACE_S", "60"))
_session_status = {"exitstatus": 0}


def pytest_sessionfinish(session, exitstatus):
  _session_status["exitstatus"] = int(exitstatus)
  if os.environ.get("SCALING_JAX_TEST_CACHE_OWNER") == str(os.getpid()):
    shutil.rmtree(SESSION_JAX_CACHE, ignore_errors=True)


def _exit_if_still_running():
  threading.Event().wait(EXIT_GRACE_S)
  stuck = [t.name for t in threading.enumerate()
           if t.is_alive() and not t.daemon and t is not threading.main_thread()]
  if not stuck and os.environ.get("PYTEST_XDIST_WORKER"):
    # A worker that ran out of files waits for the controller to close it, with no
    # thread of its own left: not stuck (CI's 3.12 check printed this as a hang).
    return
  sys.stderr.write(f"\nThe tests finished {EXIT_GRACE_S:g} s ago but the process has "
                   f"not exited; threads still running: {stuck}. Their stacks:\n")
  sys.stderr.flush()
  faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
  os._exit(_session_status["exitstatus"])


def pytest_unconfigure(config):
  if EXIT_GRACE_S > 0:
    threading.Thread(target=_exit_if_still_running, name="exit-guard",
                     daemon=True).start()


# Run first, longest first: CI splits the suite over two workers by file (pytest -n 2
# --dist loadfile), and a long file started last leaves the other worker idle at the
# end. The smoke study trains for minutes (in CI it runs in the 3.12 check instead);
# the rest are the longest of a full run on 2026-12-07 (`--durations`), 30-120 s
# each. pytest-xdist would reorder files by their number of tests, which put the
# 90-second calibration file last; pytest_configure keeps this order instead.
# (A stale list only costs balance.)
LONGEST_FILES_FIRST = (
    "study_smoke_test.py", "fitting_curves_test.py", "fitting_curves_calibration_test.py",
    "study_published_table_test.py", "study_testbed_e2e_test.py", "laws_fit_test.py",
    "laws_calibration_test.py", "preemption_test.py", "fitting_advice_test.py",
    "study_report_test.py", "launch_probe_test.py", "hostile_input_test.py",
    "laws_bootstrap_test.py", "train_test.py", "laws_influence_test.py",
    "attention_test.py", "launch_local_test.py", "ladder_test.py", "ladder_launch_test.py",
    "wandb_source_test.py", "colabs_test.py")


def pytest_configure(config):
  if hasattr(config.option, "loadscopereorder"):  # pytest-xdist's --no-loadscope-reorder
    config.option.loadscopereorder = False


def _run_order(item) -> int:
  name = item.path.name
  return LONGEST_FILES_FIRST.index(name) if name in LONGEST_FILES_FIRST else len(
      LONGEST_FILES_FIRST)


def pytest_collection_modifyitems(items):
  items.sort(key=_run_order)  # stable: files keep their tests' order
  # CI trains the smoke study once, under Python 3.12 (tests/python312.sh, the path a
  # 3.12 study died on); .ci/run sets this for its 3.11 suite, which runs the rest.
  elsewhere = os.environ.get("SCALING_JAX_SMOKE_STUDY_ELSEWHERE")
  if elsewhere:
    skip = pytest.mark.skip(reason=f"the smoke study runs in {elsewhere} "
                                   f"(SCALING_JAX_SMOKE_STUDY_ELSEWHERE)")
    for item in items:
      if item.get_closest_marker("smoke_study"):
        item.add_marker(skip)


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


# The smallest real training run the tests use: tiny-1 narrowed to width 32, two
# layers, sequences of 32 tokens. At M = 0.15 it is 6,552 tokens, 26 steps of 256.
TINY_MODEL = dict(name="tiny-1", width=32, num_layers=2, num_heads=2, seq_len=32)
TINY_TRAIN = dict(tokens_per_param=0.15, global_batch=8, eval_every_tokens=2048,
                  checkpoint_every_tokens=2048, log_every_steps=5)


def tiny_train_config(data_cache: str, **train_overrides):
  """The default config with TINY_MODEL, the embedded corpus prepared in `data_cache`,
  and TINY_TRAIN updated by `train_overrides`."""
  from scaling_jax import config_lib  # pylint: disable=import-outside-toplevel
  config = config_lib.default_config()
  config.model.update(TINY_MODEL)
  config.data.cache_dir = str(data_cache)
  config.train.update(dict(TINY_TRAIN, **train_overrides))
  config.evals.val.update(dict(max_tokens=2048, batch_size=8))
  return config


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory) -> str:
  """One prepared-corpus cache for the whole session: each test module that trains
  prepared the embedded corpus again before (seconds each, every time)."""
  return str(tmp_path_factory.mktemp("data_cache"))


SMOKE_RESAMPLES = 64  # the smoke study's intervals are checked, not their precision


def smoke_config():
  """configs/grid.py:smoke as the tests run it."""
  config = load_config("grid", "smoke")
  config.study.bootstrap.num_resamples = SMOKE_RESAMPLES
  return config


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory):
  """(workdir, StudyFit) of configs/grid.py:smoke, trained and reported once per
  session: the study's own test and the quickstart notebook's both read it, each
  from a copy, instead of training the six runs twice."""
  from scaling_jax import study  # pylint: disable=import-outside-toplevel
  workdir = tmp_path_factory.mktemp("smoke_study")
  return workdir, study.run(smoke_config(), workdir)


def eq4_rows(sizes=(1e6, 2e6, 4e6, 8e6), multipliers=(10.0, 20.0, 40.0)):
  """Final rows of runs whose loss follows Eq. 4 (E 1.5, a 10, b 30, eta 0.15) with
  a little deterministic scatter: a quick study for the fitting layer's tests."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  rows = []
  for n in sizes:
    for m in multipliers:
      c = 6 * n * n * m
      loss = 1.5 + (10 * m**0.15 + 30 * m**-0.15) * c**-0.15
      rows.append(dict(run=f"r{n:g}_{m:g}", model=f"m{n:g}", N=n, M=m, seed=0,
                       tokens=n * m, flops=c, step=1, final=True,
                       **{"loss/validation": loss * (1 + 1e-3 * np.sin(n * m))}))
  return rows
