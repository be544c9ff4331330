"""fitting.objectives: the other objective's refit, and when its difference is material
(outside the used fit's own intervals)."""
import numpy as np
import pytest

from scaling_jax.fitting import objectives
from scaling_jax.fitting import settings as fitting_settings
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms

pytestmark = pytest.mark.slow  # compiles the Huber solver: the full tier

TRUTH = np.array([1.69, 406.4, 410.7, 0.34, 0.28])


def _eq3(p, n, d):
  return p[0] + p[1] * n**-p[3] + p[2] * d**-p[4]


def _data(outliers: int):
  rng = np.random.default_rng(1)
  n = np.repeat(np.geomspace(2e7, 1e9, 6), 5)
  d = n * np.tile([5.0, 10.0, 20.0, 60.0, 200.0], 6)
  y = _eq3(TRUTH, n, d) * np.exp(rng.normal(0, 0.003, n.size))
  y[np.argsort(n / d)[:outliers]] *= 1.3  # the most over-trained small runs
  return {"N": n, "D": d}, y


@pytest.fixture(scope="module")
def study():
  config = fitting_settings.default_study_config()
  config.fit.loss = "squares"
  return config


def _replicates(params, rel_sd, num=400, seed=0):
  rng = np.random.default_rng(seed)
  return params * (1 + rel_sd * rng.standard_normal((num, params.size)))


TARGET = {"big": {"N": 7e10, "D": 1.4e12}}


def test_outliers_move_the_other_fit_outside_a_tight_interval_and_the_note_says_so(study):
  x, y = _data(outliers=6)
  used = fit_lib.fit(forms.CHINCHILLA, x, y)
  tight = _replicates(used.params, 1e-4)
  comparison = objectives.compare(used, tight, 0.95, study, "final", TARGET)
  assert (comparison.used, comparison.other) == ("squares", "huber")
  assert comparison.material and comparison.params is not None
  assert any(d.startswith("target big:") for d in comparison.differences)
  assert any(d.startswith(("alpha ", "beta ")) for d in comparison.differences)
  note = comparison.note("loss law")
  assert note.startswith("loss law: the Huber on log residuals fit gives a materially "
                         "different law")
  # The same refit, judged against intervals far wider than the gap: not material.
  wide = objectives.compare(used, _replicates(used.params, 0.5), 0.95, study, "final",
                            TARGET)
  assert not wide.material and wide.note("loss law") is None
  assert wide.params == pytest.approx(comparison.params)


def test_on_clean_data_huber_and_squares_agree_within_the_fits_uncertainty(study):
  x, y = _data(outliers=0)
  used = fit_lib.fit(forms.CHINCHILLA, x, y)
  # A parametric bootstrap's spread for 0.3% noise on 30 points: refit noisy copies.
  rng = np.random.default_rng(5)
  ys = _eq3(used.params, x["N"], x["D"])[None] * np.exp(
      rng.normal(0, 0.003, (64, y.size)))
  reps, _ = fit_lib.fit_many(forms.CHINCHILLA, x, ys, np.ones_like(ys))
  comparison = objectives.compare(used, np.asarray(reps), 0.95, study, "final", TARGET)
  assert not comparison.material, comparison.differences
  assert comparison.params["beta"] == pytest.approx(TRUTH[4], abs=0.03)


def test_a_refit_the_other_objective_cannot_make_is_reported_not_raised(study):
  x = {"L": np.linspace(2.0, 4.0, 8)}
  y = np.linspace(0.2, -0.1, 8)  # an error below zero: no log residual for Huber
  used = fit_lib.fit(forms.DOWNSTREAM, x, y)
  comparison = objectives.compare(used, np.tile(used.params, (10, 1)), 0.95, study,
                                  "final", {})
  assert comparison.params is None and "y must be positive" in comparison.failure
  assert comparison.note("error law") is None
  assert comparison.as_json()["failure"] == comparison.failure


def test_one_residual_degree_of_freedom_is_not_compared(study, monkeypatch):
  x, y = _data(outliers=0)
  keep = np.arange(0, 30, 5)[:6]  # six runs, five parameters
  used = fit_lib.fit(forms.CHINCHILLA, {k: v[keep] for k, v in x.items()}, y[keep])
  monkeypatch.setattr(fit_lib, "fit", lambda *a, **k: pytest.fail("refit attempted"))
  comparison = objectives.compare(used, np.tile(used.params, (10, 1)), 0.95, study,
                                  "final", TARGET)
  assert "1 residual degree(s) of freedom" in comparison.skipped
  assert comparison.params is None and comparison.note("loss law") is None
