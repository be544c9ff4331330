"""Every plot renders whatever numbers a study holds: outside intervals, NaN, None, one point."""
import dataclasses

import numpy as np
import pytest

from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms
from scaling_jax.report import plots

from scaling_jax.fitting import study_fit as study_fit_lib

C = np.array([1e16, 8e16, 7e17, 3e18, 2e17])
M = np.array([20.0, 20.0, 20.0, 20.0, 320.0])
LOSS_LAW = np.array([1.8, 210.0, 370.0, 0.135])
ERR_LAW = np.array([0.86, 2.2, 0.71])


def _law_fit(law, x, true, runs):
  import jax
  import jax.numpy as jnp
  with jax.enable_x64(True):
    y = np.asarray(law(jnp.asarray(true), {k: jnp.asarray(v) for k, v in x.items()}))
  y = y * (1 + 0.002 * np.resize([1.0, -1.0, 0.5], len(y)))
  result = fit_lib.fit(law, x, y)
  return study_fit_lib.LawFit(result, bootstrap_lib.bootstrap(result, num_resamples=8), runs)


@pytest.fixture(scope="module")
def laws():
  runs = [f"run{i}" for i in range(len(C))]
  loss = _law_fit(forms.OVERTRAINING, {"C": C, "M": M}, LOSS_LAW, runs)
  err = _law_fit(forms.DOWNSTREAM, {"L": np.linspace(2.6, 4.0, 5)}, ERR_LAW, runs)
  return loss, err


def _row(run, n, m, **values):
  """A prediction row; every loss/err column defaults to a sane value unless given."""
  row = dict(run=run, N=n, M=m, flops=6.0 * n * n * m, used_in_fit=True,
             used_in_err_fit=True, loss=3.0, loss_pred=3.01, loss_lo=2.9, loss_hi=3.1,
             loss_rel_err=0.003, err=0.6, err_pred=0.61, err_lo=0.55, err_hi=0.65,
             err_rel_err=0.01)
  row.update(values)
  return row


def _study(laws, predictions, targets, with_error=True):
  loss, err = laws
  fields = dict(rows=[], val_set="validation", tasks=["a", "b"], task_rule="test",
                level=0.95, loss=loss, error=err if with_error else None,
                predictions=predictions, targets=targets, compute_optimal=None, notes=[])
  known = {f.name for f in dataclasses.fields(study_fit_lib.StudyFit)}
  return study_fit_lib.StudyFit(**{k: v for k, v in fields.items() if k in known})


# Predictions outside their own interval (both sides), measured values outside it,
# NaN and None wherever a value can be missing, an M no fit run has.
AWKWARD_PREDICTIONS = [
    _row("ok", 1e6, 20.0),
    _row("pred_above_hi", 3e6, 20.0, loss_pred=3.5, err_pred=0.9, used_in_fit=False),
    _row("pred_below_lo", 1e7, 320.0, loss_pred=2.0, err_pred=0.1, used_in_err_fit=False),
    _row("measured_outside", 3e7, 20.0, loss=4.0, err=0.99, loss_rel_err=0.3),
    _row("unmeasured", 5e7, 80.0, loss=None, err=None, loss_rel_err=None,
         err_rel_err=None),
    _row("nan_interval", 7e7, 20.0, loss_lo=np.nan, loss_hi=np.nan, err_lo=np.nan,
         err_hi=np.nan),
    _row("nan_everything", 9e7, 40.0, loss=np.nan, loss_pred=np.nan, err=np.nan,
         err_pred=np.nan, loss_rel_err=np.nan, err_rel_err=np.nan),
    _row("below_floor", 2e8, 20.0, loss=1.0, loss_pred=1.0, loss_lo=0.5, loss_hi=1.5),
]
AWKWARD_TARGETS = [
    _row("target_outside", 1e9, 640.0, loss_pred=2.5, loss_lo=2.6, loss_hi=2.9,
         err_pred=0.3, err_lo=0.4, err_hi=0.5, loss=None, err=None),
    _row("target_none", 5e9, 20.0, loss=None, err=None, err_pred=None, err_lo=None,
         err_hi=None),
    _row("target_nan", 8e9, 20.0, loss_pred=np.nan, loss_lo=np.nan, loss_hi=np.nan),
]


def _render_all(study, tmp_path):
  for name, plot in plots.PLOTS.items():
    path = tmp_path / name
    plot(study, path)
    if name == "error_vs_loss.png" and study.error is None:
      continue
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 1000, name
  plots.figure_1(study)
  plots.plt.close("all")


@pytest.mark.slow
@pytest.mark.parametrize("with_error", [True, False])
def test_every_plot_draws_awkward_numbers(laws, tmp_path, with_error):
  targets = AWKWARD_TARGETS + [dict(AWKWARD_PREDICTIONS[3], run="measured_target")]
  study = _study(laws, AWKWARD_PREDICTIONS + targets[-1:], targets, with_error)
  _render_all(study, tmp_path)


def test_every_plot_draws_a_single_point(laws, tmp_path):
  target = _row("only", 1e6, 20.0, loss_pred=3.5)  # and outside its interval
  _render_all(_study(laws, [target], [target]), tmp_path)


def test_every_plot_draws_no_points_at_all(laws, tmp_path):
  _render_all(_study(laws, [], []), tmp_path)


def test_write_all_writes_every_named_plot(laws, tmp_path):
  study = _study(laws, AWKWARD_PREDICTIONS, AWKWARD_TARGETS)
  written = plots.write_all(study, tmp_path, names=tuple(plots.PLOTS))
  assert sorted(written) == sorted(plots.PLOTS)
  assert all((tmp_path / name).stat().st_size > 1000 for name in written)


def test_legends_say_what_the_markers_are_and_the_heatmap_boxes_fit_runs(laws):
  study = _study(laws, [_row("fit", 1e6, 20.0), _row("held", 3e6, 20.0, used_in_fit=False,
                                                     used_in_err_fit=False)],
                 [_row("target", 1e9, 640.0, loss=None, err=None)])
  fig, ax = plots.plt.subplots()
  plots.draw_loss_vs_compute(ax, study)
  labels = [t.get_text() for t in ax.get_legend().get_texts()]
  assert {"measured, fit run", "measured, held out",
          "target: predicted, 95% interval"} <= set(labels)
  fig, ax = plots.plt.subplots()
  plots.draw_error_vs_loss(ax, study)
  labels = [t.get_text() for t in ax.get_legend().get_texts()]
  assert "target: predicted, 95% interval" in labels and "measured, held out" in labels
  fig, ax = plots.plt.subplots()
  plots._heatmap(ax, study.predictions, "loss_rel_err", "loss")  # pylint: disable=protected-access
  boxes = [p for p in ax.patches if isinstance(p, plots.plt.Rectangle)]
  assert len(boxes) == 1  # the fit run's cell only, not the held-out one
  assert "boxed = fit runs" in ax.get_title()
  plots.plt.close("all")


def test_a_negative_floor_is_not_subtracted(laws):
  loss, err = laws
  negative = dataclasses.replace(loss, result=dataclasses.replace(
      loss.result, params=np.array([-0.5, 210.0, 370.0, 0.135])))
  study = _study((negative, err), [_row("fit", 1e6, 20.0)], [])
  fig, ax = plots.plt.subplots()
  plots.draw_loss_vs_compute(ax, study)
  assert "not subtracted" in ax.get_ylabel()
  plots.plt.close("all")
