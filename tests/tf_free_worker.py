"""Trains one smoke unit through the launcher, then asks its worker what it imported.

The launcher (this test process) prepares the dataset, importing TFDS or seqio as
it needs; the worker it starts must open the prepared shards by key alone. A
`sitecustomize.py` put on the worker's PYTHONPATH writes, as the worker exits, every
`tensorflow`, `tensorflow_datasets` or `seqio` module it has loaded. (A hook that
refused the imports would also refuse etils' `find_spec('tensorflow')` probe,
which orbax makes and which is no import.) Where the packages are not installed
at all, a worker that reached for them fails its unit instead.
"""
import json
import os
import pathlib

from conftest import load_config_module
from scaling_jax import launch
from scaling_jax.runs import table as runs_table

TENSORFLOW_FAMILY = ("tensorflow", "tensorflow_datasets", "seqio")

_SITECUSTOMIZE = '''\
import atexit
import sys


def _record_tensorflow_modules():
  loaded = sorted(m for m in sys.modules if m.split(".")[0] in {family!r})
  with open({log!r}, "a") as f:
    f.write("".join(m + "\\n" for m in loaded))


atexit.register(_record_tensorflow_modules)
'''


def install_import_record(directory: pathlib.Path, monkeypatch) -> pathlib.Path:
  """Puts the recorder on child processes' PYTHONPATH; returns its output file."""
  directory.mkdir(parents=True, exist_ok=True)
  record = directory / "tensorflow_modules.txt"
  (directory / "sitecustomize.py").write_text(
      _SITECUSTOMIZE.format(family=TENSORFLOW_FAMILY, log=str(record)))
  monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
      filter(None, [str(directory), os.environ.get("PYTHONPATH")])))
  return record


def synthetic_documents(count: int, seed: int) -> list[str]:
  """`count` ~600-character texts, varied enough for a loss to fall on.

  The smoke sweep's smallest unit trains on 151,552 byte tokens: 300 of them.
  """
  return [f"document {seed}-{i}: " + " ".join(
      f"w{(i * 7 + j * 13 + seed) % 97}" for j in range(150)) for i in range(count)]


def smoke_unit_config(data_fields: dict):
  """configs/grid.py:smoke cut to its first (smallest) unit, on the given data."""
  config = load_config_module("grid").get_config("smoke")
  config.sweep = config.sweep[:1]
  config.data.update(data_fields)
  config.launch.update(dict(backend="local", max_parallel=1, progress_every_s=600.0))
  return config


def train_smoke_unit(data_fields: dict, workdir: pathlib.Path, monkeypatch) -> dict:
  """Launches the unit as a user would; returns its final row."""
  loaded = install_import_record(workdir / "hook", monkeypatch)
  [unit] = launch.run(smoke_unit_config(data_fields), str(workdir / "study"))
  assert unit.finished()
  assert loaded.exists(), "the worker never ran the recorder (sitecustomize.py)"
  assert not loaded.read_text().split(), f"the worker imported {loaded.read_text()}"
  rows = runs_table.read_rows(os.path.join(unit.workdir, "records.jsonl"))
  final = [r for r in rows if r.get("final")][-1]
  unit_data = json.loads((pathlib.Path(unit.workdir) / "unit_config.json").read_text())
  assert unit_data["data"]["source"] == data_fields["source"]
  return final
