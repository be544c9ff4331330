"""report/outputs: strict fit.json and the predictions table."""
import csv
import json

import numpy as np

from scaling_jax.report import outputs


def test_fit_json_is_strict_even_with_nan_and_numpy_values(tmp_path):
  summary = {"a": np.float64(np.nan), "b": [1.0, float("inf"), np.float32(2.5)],
             "c": {"d": np.array([np.nan, 3.0]), "e": np.int64(4)}, "f": None}
  path = tmp_path / "fit.json"
  outputs.write_fit_json(path, summary)
  text = path.read_text()
  assert "NaN" not in text and "Infinity" not in text

  def refuse(token):
    raise ValueError(f"non-strict JSON token {token}")

  loaded = json.loads(text, parse_constant=refuse)
  assert loaded == {"a": None, "b": [1.0, None, 2.5], "c": {"d": [None, 3.0], "e": 4},
                    "f": None}


def test_predictions_csv_has_the_documented_columns(tmp_path):
  path = tmp_path / "p.csv"
  outputs.write_predictions_csv(path, [
      {"run": "a", "N": 10, "M": 20.0, "loss": np.float64(2.5), "err": None,
       "extra": "dropped"}])
  with path.open() as f:
    rows = list(csv.DictReader(f))
  assert tuple(rows[0]) == outputs.PREDICTION_COLUMNS
  assert rows[0]["loss"] == "2.5" and rows[0]["err"] == "" and rows[0]["run"] == "a"
