"""The fit cache is data only: a planted file never runs code, and a real fit returns whole."""
import dataclasses
import io
import json
import os
import pickle

import numpy as np
import pytest

from conftest import eq4_rows
from scaling_jax.fitting import points
from scaling_jax.fitting import study_fit
from scaling_jax.laws import forms
from scaling_jax.report import fit_cache


class _Planted:
  """What an attacker leaves in a shared workdir: unpickling it runs a command."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f"touch {self.marker}",))


def _npz(path, **arrays):
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  path.write_bytes(buffer.getvalue())


def test_a_planted_pickle_is_never_opened(tmp_path):
  marker = tmp_path / "ran"
  payload = pickle.dumps({"key": "k", "fit": _Planted(marker)})
  # Under the cache's name, and under the name the pickle-based cache used.
  for name in (fit_cache.FILENAME, ".fit_cache.pkl"):
    (tmp_path / name).write_bytes(payload)
    assert fit_cache.load(tmp_path / name, "k") is None
  assert not marker.exists()


def test_a_planted_object_array_is_refused_without_unpickling(tmp_path):
  marker = tmp_path / "ran"
  tree = json.dumps({"key": "k", "fit": {"__array__": "a0"}}).encode()
  _npz(tmp_path / fit_cache.FILENAME, a0=np.array([_Planted(marker)], dtype=object),
       __tree__=np.frombuffer(tree, np.uint8))
  assert fit_cache.load(tmp_path / fit_cache.FILENAME, "k") is None
  assert not marker.exists()


@pytest.mark.parametrize("name", [
    "os:system", "subprocess:Popen", "builtins:eval",
    "scaling_jax.report.fit_cache:_Encoder",  # in the package, but no dataclass
    "scaling_jax.fitting.study_fit:fit",      # a function
])
def test_only_the_packages_dataclasses_are_rebuilt(tmp_path, name):
  tree = json.dumps({"key": "k", "fit": {"__dataclass__": name,
                                          "fields": {"command": "touch x"}}}).encode()
  _npz(tmp_path / fit_cache.FILENAME, __tree__=np.frombuffer(tree, np.uint8))
  assert fit_cache.load(tmp_path / fit_cache.FILENAME, "k") is None


def test_a_stale_key_or_a_torn_file_gives_no_fit(tmp_path):
  data = fit_cache.dumps("k", {"x": 1.0})
  path = tmp_path / fit_cache.FILENAME
  path.write_bytes(data)
  assert fit_cache.load(path, "k") == {"x": 1.0}
  assert fit_cache.load(path, "other") is None
  path.write_bytes(data[: len(data) // 2])
  assert fit_cache.load(path, "k") is None
  assert fit_cache.load(tmp_path / "missing.npz", "k") is None


def test_values_of_every_kind_come_back_equal(tmp_path):
  value = {"nan": float("nan"), "inf": -float("inf"), "int": 3, "none": None,
           "tuple": (1, "a"), ("tuple", 2): [True, np.float64(0.25)],
           "array": np.arange(6.0).reshape(2, 3), "law": forms.OVERTRAINING}
  path = tmp_path / fit_cache.FILENAME
  path.write_bytes(fit_cache.dumps("k", value))
  back = fit_cache.load(path, "k")
  assert np.isnan(back["nan"]) and back["inf"] == -np.inf and back["int"] == 3
  assert back["none"] is None and back["tuple"] == (1, "a")
  assert back[("tuple", 2)] == [True, 0.25] and isinstance(back[("tuple", 2)][1], np.float64)
  np.testing.assert_array_equal(back["array"], value["array"])
  assert back["law"] is forms.OVERTRAINING  # laws are compared by identity


def test_what_the_format_cannot_say_is_not_cached():
  assert fit_cache.dumps("k", {"f": lambda: None}) is None
  assert fit_cache.dumps("k", np.array([object()], dtype=object)) is None


@pytest.mark.slow  # a real fit and bootstrap: compiles the solver
def test_a_real_fit_comes_back_whole(tmp_path):
  from scaling_jax import config_lib  # pylint: disable=import-outside-toplevel
  study = config_lib.default_config().study
  study.bootstrap.num_resamples = 8
  study.targets = "m8e+06@40"
  study.downstream = "none"
  fit = study_fit.fit(eq4_rows(), {}, study)
  path = tmp_path / fit_cache.FILENAME
  path.write_bytes(fit_cache.dumps("k", fit))
  back = fit_cache.load(path, "k")
  assert type(back) is study_fit.StudyFit and back.loss.result.law is forms.OVERTRAINING
  np.testing.assert_array_equal(back.loss.boot.params, fit.loss.boot.params)
  assert back.targets == fit.targets or json.dumps(back.targets, default=str) == json.dumps(
      fit.targets, default=str)
  assert dataclasses.asdict(back.compute_optimal).keys() == dataclasses.asdict(
      fit.compute_optimal).keys()
  assert [p["run"] for p in back.rows] == [p["run"] for p in points.point_rows(eq4_rows())]
