"""README.md's Outputs section names every column the report's CSV files have."""
import re

from conftest import REPO_ROOT
from scaling_jax.report import curve_report
from scaling_jax.report import outputs


def _section(title: str) -> str:
  text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
  return re.search(rf"^## {title}\n(.*?)^## ", text, re.MULTILINE | re.DOTALL).group(1)


def test_every_predictions_csv_column_is_described():
  described = set(re.findall(r"`(\w+)`", _section("Outputs")))
  missing = [c for c in outputs.PREDICTION_COLUMNS if c not in described]
  assert not missing, f"README.md, Outputs: predictions.csv columns {missing} undescribed"


def test_the_curve_fits_predictions_csv_columns_are_listed():
  row = next(line for line in _section("Outputs").splitlines()
             if line.startswith("| `configs/curves.py`"))
  listed = re.search(r"one row per checkpoint: ([^)]*)\)", row).group(1).split(", ")
  assert tuple(listed) == curve_report.CHECKPOINT_COLUMNS
