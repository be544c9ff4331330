"""curves.png stays readable for a published table: hundreds of runs, bands that
extrapolate far, sizes named 160m / 1.4b / 12b."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from scaling_jax.fitting import curves  # noqa: E402
from scaling_jax.laws import forms  # noqa: E402
from scaling_jax.report import curve_report  # noqa: E402


def _fit(runs):
  """A CurveFit of `runs` ({name: N}), three checkpoints each; bands reach 1e16."""
  rows = []
  for name, n in runs.items():
    for d in (1e9, 3e9, 1e10):
      loss = 2.0 + 400 * n**-0.34 + 400 * d**-0.28
      rows.append(dict(run=name, N=n, tokens=d, step=1, loss=loss, loss_pred=loss * 1.01,
                       loss_lo=0.0, loss_hi=1e16, loss_mean_lo=loss, loss_mean_hi=loss,
                       extrapolation_decades=0.0, used_in_fit=True))
  return curves.CurveFit(law=forms.CHINCHILLA, level=0.95, val_set="validation", fits={},
                         checkpoints=rows, targets=[], seed_spread=[])


def test_runs_are_drawn_and_listed_by_size_not_by_name():
  fit = _fit({"12b": 12e9, "1.4b": 1.4e9, "160m": 160e6})
  assert curve_report._plot_order(fit.checkpoints) == ["160m", "1.4b", "12b"]
  fig = curve_report.draw_curves(fit)
  labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
  plt.close(fig)
  assert labels == ["160m", "1.4b", "12b"]


def test_a_far_band_does_not_flatten_the_curves():
  fit = _fit({"a": 1e8, "b": 1e9})
  fig = curve_report.draw_curves(fit)
  lo, hi = fig.axes[0].get_ylim()
  plt.close(fig)
  losses = [r["loss"] for r in fit.checkpoints] + [r["loss_pred"] for r in fit.checkpoints]
  assert lo < min(losses) and max(losses) < hi < 1.2 * max(losses)


def test_hundreds_of_runs_get_a_colour_bar_by_size_instead_of_a_legend():
  sizes = np.geomspace(1e7, 1e10, 200)
  fig = curve_report.draw_curves(_fit({f"r{i}": n for i, n in enumerate(sizes)}))
  ax, bar = fig.axes
  plt.close(fig)
  assert ax.get_legend() is None
  assert "parameters N (200 runs)" in bar.get_ylabel()
