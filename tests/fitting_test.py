"""fitting: design points, seed means, designs, and config checks (no solver calls)."""
import pytest

from scaling_jax import config_lib
from scaling_jax import fitting
from scaling_jax.fitting import points as points_lib
from scaling_jax.fitting import settings as fitting_settings


def _row(run, model, m, loss, step=10, final=True, seed=0, ci=0.01):
  return dict(run=run, model=model, M=float(m), N=100, tokens=100 * m, flops=6e4 * m,
              step=step, final=final, seed=seed, **{"loss/validation": loss,
                                                   "loss_ci/validation": ci})


def test_parse_point_reads_model_at_m_once():
  assert points_lib.parse_point("tiny-0@20") == ("tiny-0", 20.0)
  assert points_lib.parse_point("d=96_l=8_h=4@0.5") == ("d=96_l=8_h=4", 0.5)
  assert points_lib.parse_point("1439795200@640") == ("1439795200", 640.0)
  for bad in ("tiny-0", "@20", "tiny-0@twenty"):
    with pytest.raises(fitting.StudyError, match="design entry"):
      points_lib.parse_point(bad)


def test_point_rows_take_final_rows_and_average_seeds():
  rows = [_row("a_s0", "a", 20, 3.0, step=5, final=False), _row("a_s0", "a", 20, 2.0),
          _row("a_s1", "a", 20, 2.4, seed=1, ci=0.03),
          _row("b_s0", "b", 20, 1.5), _row("a_m40", "a", 40, 1.9)]
  points = {(p["model"], p["M"]): p for p in points_lib.point_rows(rows)}
  assert set(points) == {("a", 20.0), ("a", 40.0), ("b", 20.0)}
  mean = points[("a", 20.0)]
  assert mean["seeds"] == 2 and mean["loss/validation"] == pytest.approx(2.2)
  # The interval of a mean of two: sqrt(0.01^2 + 0.03^2) / 2.
  assert mean["loss_ci/validation"] == pytest.approx((0.01**2 + 0.03**2) ** 0.5 / 2)
  assert mean["run"] == "a@20" and points[("b", 20.0)]["run"] == "b_s0"


def test_select_points_names_what_is_available():
  points = points_lib.point_rows([_row("a", "a", 20, 2.0), _row("b", "b", 20, 1.5)])
  assert [p["run"] for p in points_lib.select_points(points, ["b@20", "a@20"])] == ["b", "a"]
  with pytest.raises(fitting.StudyError, match=r"'c@20' matches no run.*a@20"):
    points_lib.select_points(points, ["c@20"])


def test_designs_default_to_every_non_target_point():
  study = fitting_settings.default_study_config()
  study.targets = "b@20"
  points = points_lib.point_rows([_row("a", "a", 20, 2.0), _row("b", "b", 20, 1.5),
                               _row("c", "c", 40, 1.7)])
  loss, err, targets = points_lib.designs(study, points)
  assert loss == ["a@20", "c@40"] and err == loss and targets == ["b@20"]


@pytest.mark.parametrize("field,value,message", [
    ("downstream", "some", "study.downstream"),
    ("subset.pool", "everyone", "study.subset.pool"),
    ("fit.maxiter", -1, "fit.maxiter"),
    ("fit.loss", "l1", r"study.fit.loss.*auto, squares, huber"),
    ("bootstrap.num_resamples", 1, "num_resamples"),
    ("targets", "tiny-0", "must read 'model@M'"),
    ("fit.bounds", "positive", "study.fit.bounds"),
    ("bootstrap.noise", "seed", r"study.bootstrap.noise.*'residuals'"),
])
def test_check_study_names_the_field(field, value, message):
  config = config_lib.default_config()
  node, _, leaf = field.rpartition(".")
  (config.study[node] if node else config.study)[leaf] = value
  with pytest.raises(fitting.StudyError, match=message):
    fitting_settings.check(config.study)


def test_a_noise_source_needs_a_method_that_draws_from_one():
  config = config_lib.default_config()
  config.study.bootstrap.update(method="pairs", noise="seeds")
  with pytest.raises(fitting.StudyError, match="use study.bootstrap.method=residual_t"):
    fitting_settings.check(config.study)
