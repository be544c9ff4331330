"""Bad input ends the command with one `error:` line and exit status 2, before any
compute: flags, config fields, sweep overrides, the workdir, the mesh and batch
against the devices. Run in process through main's own parse_flags and main, with
dry runs where a missing check would otherwise start training; two subprocess
runs check the real exit status and stderr end to end."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import cli_runner
from conftest import REPO_ROOT
from scaling_jax import main as main_lib

GRID = str(REPO_ROOT / "configs" / "grid.py")
REPLAY = str(REPO_ROOT / "configs" / "testbed.py") + ":train=rpj,replay"


_cli = cli_runner.run_main


def _refused(code: int, err: str) -> str:
  """The error line(s), after checking they are one refusal without a traceback."""
  assert code == 2, err
  assert "Traceback" not in err
  errors = [line for line in err.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1, err
  after = err.split(errors[0], 1)[1].splitlines()
  assert all(line.startswith("  ") for line in after if line), err  # continuations only
  return err


# --- flags --------------------------------------------------------------------------

@pytest.mark.parametrize("argv, said", [
    ([f"--config={GRID}"], "--workdir is required"),
    ([f"--config={REPO_ROOT}/configs/nope.py", "--workdir=W"], "no config file"),
    ([f"--config={GRID}:bogus", "--workdir=W"], "unknown variant 'bogus'"),
    ([f"--config={GRID}", "--workdir=W", "stray"], "unexpected argument(s) ['stray']"),
    ([f"--config={GRID}", "--workdir=W", "--config.train.global_batch=abc"],
     "--config.train.global_batch=abc"),
])
def test_flag_mistakes_are_one_line_with_the_usage(argv, said, monkeypatch, capsys):
  err = _refused(*_cli(argv, monkeypatch, capsys))
  assert said in err and "usage: python -m scaling_jax.main" in err


def test_no_arguments_print_the_usage_and_exit_2():
  proc = subprocess.run([sys.executable, "-m", "scaling_jax.main"], cwd=REPO_ROOT,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  assert proc.stderr.splitlines() == [
      "error: --config and --workdir are required", f"  {main_lib.USAGE}"]


# --- config fields ------------------------------------------------------------------

@pytest.mark.parametrize("value", [-1, 0, 1])
@pytest.mark.parametrize("config, field", [
    (f"{GRID}:smoke", "study.bootstrap.num_resamples"),
    (REPLAY, "study.retrospective.num_resamples"),
])
def test_too_few_resamples_are_refused_naming_the_field(config, field, value, tmp_path,
                                                        monkeypatch, capsys):
  # An interval is a pair of percentiles over resamples: fewer than two give none.
  # The replay's own resamples were read only after the study's fit (a minute and
  # more), where numpy and matplotlib failed on them.
  err = _refused(*_cli([f"--config={config}", f"--workdir={tmp_path / 'out'}",
                        f"--config.{field}={value}"], monkeypatch, capsys))
  assert f"'{field}' is {value}; use an integer >= 2" in err
  assert not (tmp_path / "out").exists()  # refused before anything ran


@pytest.mark.parametrize("override, said", [
    ("study.bootstrap.level=1.5", "'study.bootstrap.level' must lie in (0, 1)"),
    ("study.retrospective.random_trials=0", "'study.retrospective.random_trials' is 0"),
    ("study.retrospective.strategies=advisor,bogus", "'study.retrospective.strategies'"),
    ("study.retrospective.advisor_budget_share=-0.5",
     "'study.retrospective.advisor_budget_share' is -0.5"),
])
def test_other_interval_and_replay_fields_are_checked_up_front(override, said, tmp_path,
                                                               monkeypatch, capsys):
  err = _refused(*_cli([f"--config={REPLAY}", f"--workdir={tmp_path / 'out'}",
                        f"--config.{override}"], monkeypatch, capsys))
  assert said in err


# --- the sweep and the top-level config ----------------------------------------------

def test_zero_seeds_is_refused_rather_than_an_empty_sweep(tmp_path, monkeypatch, capsys):
  err = _refused(*_cli([f"--config={GRID}:smoke,seeds=0", f"--workdir={tmp_path}"],
                       monkeypatch, capsys))
  assert "seeds=0 must be at least 1" in err


@pytest.mark.parametrize("override, said", [
    # Shadowed by the sweep in every unit: the override would change nothing.
    ("train.tokens_per_param=0", "--config.train.tokens_per_param=0.0 has no effect"),
    ("seed=3", "--config.seed=3 has no effect"),
    # Each unit takes its preset's name: the shape of tiny-3 renamed, before.
    ("model.name=tiny-1", "--config.model.name=tiny-1 has no effect"),
    # tiny-3's own width is no explicit field: every unit's preset replaces it.
    ("model.width=64", "--config.model.width=64 has no effect"),
    # Kept by every unit (an explicit model field wins over the preset), invalid.
    ("model.width=0", "model.width must be a positive int, got 0"),
])
def test_top_level_overrides_a_sweep_drops_or_cannot_use_are_refused(
    override, said, tmp_path, monkeypatch, capsys):
  err = _refused(*_cli([f"--config={GRID}:smoke", f"--workdir={tmp_path / 'out'}",
                        "--config.launch.dry_run=True", f"--config.{override}"],
                       monkeypatch, capsys))
  assert said in err


def test_an_override_the_sweep_replaces_in_some_units_warns(tmp_path, monkeypatch, capsys):
  config_file = tmp_path / "partial.py"
  config_file.write_text(
      "import importlib.util\n"
      f"spec = importlib.util.spec_from_file_location('grid', {GRID!r})\n"
      "grid = importlib.util.module_from_spec(spec)\n"
      "spec.loader.exec_module(grid)\n\n"
      "def get_config():\n"
      "  config = grid.get_config('smoke')\n"
      "  config.sweep[0]['optim.peak_lr'] = 1e-3\n"
      "  return config\n")
  code, err = _cli([f"--config={config_file}", f"--workdir={tmp_path / 'out'}",
                    "--config.launch.dry_run=True", "--config.optim.peak_lr=0.002"],
                   monkeypatch, capsys)
  assert code == 0, err
  assert ("WARNING: --config.optim.peak_lr=0.002 reaches only 5 of 6 units: "
          "config.sweep sets config.optim.peak_lr in tiny-0_M10_s0") in err


def test_an_invalid_top_level_value_is_refused_even_where_the_sweep_sets_it(tmp_path):
  from scaling_jax.launch import units  # pylint: disable=g-import-not-at-top
  from conftest import load_config  # pylint: disable=g-import-not-at-top
  config = load_config("grid", "smoke")
  config.train.tokens_per_param = 0.0  # a notebook's setting; every unit sets M
  with pytest.raises(ValueError, match=r"top-level config \(under config.sweep\): "
                                       r"config.train.tokens_per_param \(M\) must be "
                                       r"positive, got 0.0"):
    units.build_units(config, str(tmp_path))


# --- input files ----------------------------------------------------------------------

LATIN1 = "caf\u00e9".encode("latin-1")  # 0xe9 on its own is not UTF-8


def _assert_names_the_file(error, path):
  assert not isinstance(error, UnicodeDecodeError)
  assert str(error).startswith(f"{path}: not UTF-8 text (byte 0xe9")
  assert "save it as UTF-8" in str(error)


def test_a_testbed_file_that_is_not_utf8_is_named(tmp_path, testbed_dir):
  from scaling_jax.runs import openlm_testbed  # pylint: disable=g-import-not-at-top
  copy = tmp_path / "testbed"
  shutil.copytree(testbed_dir, copy)
  model = sorted((copy / "models").glob("*.json"))[0]
  model.write_bytes(b'{"name": "' + LATIN1 + b'"}')
  with pytest.raises(ValueError) as raised:
    openlm_testbed.load_rows(copy)
  _assert_names_the_file(raised.value, model)
  metadata = copy / "eval_metadata.csv"
  metadata.write_bytes(metadata.read_bytes() + LATIN1 + b"\n")
  with pytest.raises(ValueError) as raised:
    openlm_testbed.load_task_info(copy)
  _assert_names_the_file(raised.value, metadata)


def test_the_cli_names_a_testbed_file_that_is_not_utf8(tmp_path, testbed_dir,
                                                       monkeypatch, capsys):
  copy = tmp_path / "testbed"
  shutil.copytree(testbed_dir, copy)
  model = sorted((copy / "models").glob("*.json"))[0]
  model.write_bytes(LATIN1)
  err = _refused(*_cli([f"--config={REPO_ROOT}/configs/testbed.py:train=rpj",
                        f"--config.runs.path={copy}", f"--workdir={tmp_path / 'out'}"],
                       monkeypatch, capsys))
  assert f"error: {model}: not UTF-8 text" in err


@pytest.mark.parametrize("name", ["runs.csv", "runs.jsonl"])
def test_a_runs_log_that_is_not_utf8_is_named(name, tmp_path):
  from scaling_jax.runs import csv_logs  # pylint: disable=g-import-not-at-top
  path = tmp_path / name
  path.write_bytes(b"run,N\n" + LATIN1 + b",1\n" if name.endswith(".csv")
                   else b'{"run": "' + LATIN1 + b'"}\n')
  with pytest.raises(ValueError) as raised:
    csv_logs.read_records(path)
  _assert_names_the_file(raised.value, path)


def test_own_records_that_are_not_utf8_are_named(tmp_path):
  from scaling_jax.runs import table  # pylint: disable=g-import-not-at-top
  path = tmp_path / "run" / table.RECORDS_FILENAME
  path.parent.mkdir()
  path.write_bytes(b'{"run": "' + LATIN1 + b'"}\n')
  with pytest.raises(ValueError) as raised:
    table.read_rows(tmp_path)
  _assert_names_the_file(raised.value, path)


def test_a_jsonl_corpus_that_is_not_utf8_is_named(tmp_path):
  from scaling_jax.data import sources  # pylint: disable=g-import-not-at-top
  path = tmp_path / "corpus.jsonl"
  path.write_bytes(b'{"text": "ok"}\n{"text": "' + LATIN1 + b'"}\n')
  with pytest.raises(ValueError) as raised:
    list(sources.FilesSource(str(path)).documents("train"))
  _assert_names_the_file(raised.value, path)
  assert "files.format" in str(raised.value)


# --- the workdir --------------------------------------------------------------------

def _unwritable_dir(tmp_path) -> pathlib.Path:
  if os.geteuid() != 0:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    return locked / "out"
  if not os.path.isdir("/sys"):  # root writes anywhere but in sysfs
    pytest.skip("no unwritable directory for root here")
  return pathlib.Path("/sys/scaling_jax_cli_errors_test")


@pytest.mark.parametrize("kind", ["existing file", "under a file", "unwritable"])
def test_a_workdir_that_cannot_take_files_is_refused_first(kind, tmp_path, monkeypatch,
                                                           capsys):
  (tmp_path / "file").write_text("")
  workdir = {"existing file": tmp_path / "file", "under a file": tmp_path / "file" / "out",
             "unwritable": _unwritable_dir(tmp_path) if kind == "unwritable" else None}[kind]
  err = _refused(*_cli([f"--config={GRID}:smoke", f"--workdir={workdir}",
                        "--config.launch.dry_run=True"], monkeypatch, capsys))
  assert f"error: workdir {workdir} " in err and "pass a --workdir that is a directory" in err
  assert "[sweep" not in err  # before the launcher said anything


def test_refused_input_leaves_no_workdir_behind(tmp_path, monkeypatch, capsys):
  # The README's curves command run as a template (PATH never replaced) once left an
  # empty OUT/ in the checkout: the workdir was made before the input was read.
  workdir = tmp_path / "new" / "OUT"
  err = _refused(*_cli([f"--config={REPO_ROOT / 'configs' / 'curves.py'}:csv=PATH",
                        "--config.study.curves.fit_runs=a,b,c",
                        "--config.study.curves.targets=d", f"--workdir={workdir}"],
                       monkeypatch, capsys))
  assert "PATH" in err and "runs.path" in err
  assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_a_refused_study_input_ends_the_process_with_status_2(tmp_path):
  (tmp_path / "file").write_text("")
  proc = subprocess.run(
      [sys.executable, "-m", "scaling_jax.main", "--config=configs/grid.py:smoke",
       f"--workdir={tmp_path / 'file'}"],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  assert proc.stderr.splitlines()[-2:] == [
      f"error: workdir {tmp_path / 'file'} is an existing file, not a directory; pass a "
      f"--workdir that is a directory you can write (it is created if missing)",
      "  (--traceback shows where it was raised)"]


# --- mesh, batch and devices ----------------------------------------------------------

@pytest.mark.parametrize("overrides, said", [
    # The tests' process has 8 devices: a data axis of 8 cannot split 12 sequences.
    (["launch.backend=inline", "train.global_batch=12"],
     "config.train.global_batch=12 does not split over the mesh's batch axes "
     "(data=8 x fsdp=1, on this process's 8 JAX device(s))"),
    (["launch.cpu_devices_per_unit=3"],
     "config.train.global_batch=16 does not split over the mesh's batch axes "
     "(data=3 x fsdp=1, on 3 XLA host device(s) "
     "(config.launch.cpu_devices_per_unit=3))"),
    (["mesh.data=2"], "needs 2 devices but 1 are available"),
    (["launch.cpu_devices_per_unit=4", "mesh.fsdp=3"],
     "fsdp x tensor = 3 does not divide the 4 devices"),
    # Only the cluster knows its devices, but no count splits 16 over fsdp = 3.
    (["launch.backend=slurm", "mesh.fsdp=3"],
     "config.train.global_batch=16 does not split over the mesh's batch axes "
     "(data=1 x fsdp=3, on the cluster's devices)"),
])
def test_mesh_and_batch_are_checked_against_each_units_devices_before_launch(
    overrides, said, tmp_path, monkeypatch, capsys):
  monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # CPU slices even on a GPU machine
  err = _refused(*_cli([f"--config={GRID}:smoke", f"--workdir={tmp_path / 'out'}",
                        "--config.launch.dry_run=True",
                        *(f"--config.{o}" for o in overrides)], monkeypatch, capsys))
  assert "error: unit 'tiny-0_M10_s0': " in err and said in err


def test_a_mesh_that_fits_each_units_devices_passes(tmp_path, monkeypatch, capsys):
  monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
  code, err = _cli([f"--config={GRID}:smoke", f"--workdir={tmp_path / 'out'}",
                    "--config.launch.dry_run=True", "--config.launch.cpu_devices_per_unit=4",
                    "--config.mesh.fsdp=2"], monkeypatch, capsys)
  assert code == 0, err


def test_gpu_slices_count_the_gpus_each_unit_gets():
  import ml_collections  # pylint: disable=g-import-not-at-top
  from scaling_jax.launch import devices  # pylint: disable=g-import-not-at-top
  launch = ml_collections.ConfigDict(dict(backend="local", max_parallel=2, gpus_per_unit=0,
                                          cpu_devices_per_unit=1))
  assert devices.unit_devices(launch, gpus=["0", "1", "2", "3"])[0] == 2
  launch.backend = "slurm"
  assert devices.unit_devices(launch, gpus=["0"]) is None
