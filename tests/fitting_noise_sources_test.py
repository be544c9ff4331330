"""fitting/noise_sources.py: which noise scale a study's bootstrap draws from, and what it says."""
import numpy as np
import pytest

from scaling_jax import config_lib
from scaling_jax import fitting
from scaling_jax.fitting import noise_sources
from scaling_jax.fitting import study_fit
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import forms

TRUTH = np.array([1.8, 200.0, 350.0, 0.14])  # E, a, b, eta of Eq. 4
DESIGN = ((1e7, 20), (8e7, 20), (1.5e8, 20), (4e8, 20), (1e7, 320))


def _loss(n, m):
  c = 6.0 * n * n * m
  e, a, b, eta = TRUTH
  return e + (a * m**eta + b * m**-eta) * c**-eta


def _rows(seeds, noise=0.02, seed=0):
  rng = np.random.default_rng(seed)
  rows = []
  for i, (n, m) in enumerate(DESIGN):
    for s in range(seeds):
      rows.append(dict(run=f"r{i}_s{s}", model=f"m{i}", M=float(m), N=n, tokens=n * m,
                       flops=6.0 * n * n * m, step=1, final=True, seed=s, dataset="d",
                       **{"loss/validation": _loss(n, m) + noise * rng.standard_normal(),
                          "loss_ci/validation": 0.01}))
  return rows


def _study(**bootstrap):
  study = config_lib.default_config().study
  study.downstream = "none"
  study.bootstrap.num_resamples = 32
  study.bootstrap.update(bootstrap)
  return study


def test_seed_scale_is_the_pooled_seed_spread_divided_by_root_seeds():
  scale = noise_sources.seed_scale([[1.0, 1.2, 1.4], [2.0, 2.2], [3.0]], ["a", "b", "c"])
  # ss = 0.08 + 0.02 over df = 2 + 1: sigma of one run sqrt(0.1 / 3).
  one_run = np.sqrt(0.1 / 3)
  np.testing.assert_allclose(scale.sigma, one_run / np.sqrt([3, 2, 1]))
  assert scale.df == 3 and "seed-to-seed spread over 2 design point(s)" in scale.source


def test_seeds_without_repeats_name_the_fix():
  with pytest.raises(noise_sources.NoiseSourceError, match="configs/grid.py:seeds=3"):
    noise_sources.seed_scale([[1.0], [2.0]], ["a", "b"])


@pytest.mark.slow
def test_a_study_with_seeds_draws_from_their_spread():
  rows = _rows(seeds=3)
  result = study_fit.fit(rows, {}, _study(noise="seeds"))
  noise = result.loss.boot.noise
  assert noise.df == 5 * 2 and result.loss.boot.calibration is None
  # Each fitted point is a mean of 3 seeds: its scale is the one-run spread / sqrt(3).
  values = np.array([r["loss/validation"] for r in rows]).reshape(5, 3)
  one_run = np.sqrt(np.sum((values - values.mean(1, keepdims=True)) ** 2) / 10)
  np.testing.assert_allclose(noise.sigma, one_run / np.sqrt(3), rtol=1e-9)
  # The residual default on the same means: 1 df, flagged.
  default = study_fit.fit(rows, {}, _study())
  assert default.loss.boot.noise.df == 1 and default.loss.boot.calibration


def test_pooled_needs_the_design_on_another_dataset():
  with pytest.raises(fitting.StudyError, match="noise 'pooled' needs the same design"):
    study_fit.fit(_rows(seeds=1), {}, _study(noise="pooled"))


def test_pooled_adds_every_other_dataset_that_has_the_whole_design():
  rows = _rows(seeds=1)
  other = [dict(r, dataset="e", run=r["run"] + "_e") for r in _rows(seeds=1, seed=1)]
  partial = [dict(r, dataset="f", run=r["run"] + "_f") for r in _rows(seeds=1, seed=2)[:4]]
  study = _study(noise="pooled")
  study.dataset = "d"
  result = study_fit.fit(rows + other + partial, {}, study)
  noise = result.loss.boot.noise
  # 'f' lacks a design point. One residual df each: whether e shares d's residual
  # pattern cannot be told, so the two count once (noise.pooled_noise).
  assert noise.df == 1 and "on e (" in noise.source and "effective df of 2" in noise.source
  own = result.loss.result
  e_fit = fit_lib.fit(forms.OVERTRAINING, own.x, [r["loss/validation"] for r in other])
  rss = lambda f: float(np.sum((f.y - f.predict(f.x)) ** 2))
  np.testing.assert_allclose(noise.sigma, np.sqrt((rss(own) + rss(e_fit)) / 2), rtol=1e-6)


def test_eval_floor_lifts_a_scale_below_the_recorded_noise():
  rows = _rows(seeds=1, noise=1e-4)  # residuals far below the recorded 0.01 / 1.96
  result = study_fit.fit(rows, {}, _study(eval_floor=True))
  noise = result.loss.boot.noise
  np.testing.assert_allclose(noise.floor, 0.01 / 1.96)
  draws = noise.for_points(5).scales(np.random.default_rng(0), 200)
  assert draws.min() >= 0.01 / 1.96


def test_seeds_that_share_their_points_offset_are_not_called_calibrated():
  # The audit: real seeds of one configuration share its offset (misfit, data
  # order), which their spread cannot see; noise=seeds then covered 0.36-0.49 and
  # was reported calibrated. Planted bug: the misfit check against seeds dropped.
  rng = np.random.default_rng(5)
  offsets = {f"m{i}": 0.05 * rng.standard_normal() for i in range(len(DESIGN))}
  rows = _rows(seeds=3, noise=0.005, seed=6)
  for r in rows:
    r["loss/validation"] += offsets[r["model"]]
  shared = study_fit.fit(rows, {}, _study(noise="seeds")).loss.boot
  assert shared.calibration is not None and "scatter more than their seeds" in shared.calibration
  independent = study_fit.fit(_rows(seeds=3, noise=0.02, seed=7), {}, _study(noise="seeds"))
  assert independent.loss.boot.calibration is None
