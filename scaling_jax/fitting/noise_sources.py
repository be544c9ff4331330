"""Which noise scale a study's bootstraps draw from: config.study.bootstrap.noise.

The residual_t and parametric bootstraps are only as honest as their noise scale
(scaling_jax/laws/noise.py). A study picks where it comes from:

- 'residuals' (default): the fit's own residuals, on n - p degrees of freedom. On
  the paper's 5-point design that is 1 df: calibrated but very wide intervals, and
  a report warning that says what to add;
- 'seeds': the spread between seeds of the design points that have several; each
  point's scale is that of the mean of its k seeds. Measures run-to-run noise only,
  so a law that misfits its design (or design points whose seeds share an offset)
  gets too narrow intervals: the misfit check (residuals against this scale, an F
  test in noise.calibration_problem) then marks the fit as not calibrated;
- 'pooled': the residuals of this fit and of the same design fitted on every other
  dataset of the source that has it (the testbed's three training sets), their
  degrees of freedom added less what a shared residual pattern takes back
  (noise.pooled_noise);
- 'eval': each run's recorded loss interval (loss_ci / 1.96) taken as known. A
  finite evaluation set's noise alone: measured to cover about 0.4 on the paper's
  design, where run-to-run noise dominates; the report's chi-square check says so.
  The error law has no recorded noise and falls back to its residuals.

`study.bootstrap.eval_floor` additionally floors every loss-law point's scale at its
recorded evaluation noise (a scale estimated below what the finite validation set
alone makes is certainly too small).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from scaling_jax import config_fields
from scaling_jax.fitting import StudyError
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import noise as noise_lib

NOISE_SOURCES = ("residuals", "seeds", "pooled", "eval")


class NoiseSourceError(ValueError):
  """The chosen noise source is not available for this design; says why and what to do."""


def default_config() -> dict:
  """The noise fields of config.study.bootstrap (see the module docstring)."""
  return dict(noise="residuals", eval_floor=False, ci_column="loss_ci")


def check(boot_cfg, field: str) -> None:
  """Refuses a bad `field`.noise / .eval_floor, naming the field and the fix."""
  config_fields.require_choice(f"{field}.noise", boot_cfg.noise, NOISE_SOURCES, StudyError)
  if not isinstance(boot_cfg.eval_floor, (bool, np.bool_)):
    raise StudyError(f"config field '{field}.eval_floor' is {boot_cfg.eval_floor!r}; "
                     f"use True or False")
  if boot_cfg.noise != "residuals" and boot_cfg.method not in ("residual_t", "parametric"):
    raise StudyError(
        f"config field '{field}.noise' is {boot_cfg.noise!r}, but the "
        f"{boot_cfg.method!r} bootstrap draws from the residuals themselves; use "
        f"{field}.method=residual_t (or parametric) with it")


def seed_scale(groups: Sequence[Sequence[float]], runs: Sequence[str]) -> noise_lib.NoiseScale:
  """Per-point scale from the seeds of each design point (a list of values each).

  The fit uses each point's mean over its k seeds, whose noise is sigma / sqrt(k).
  """
  groups = [np.asarray(g, np.float64) for g in groups]
  repeated = [g for g in groups if len(g) > 1]
  if not repeated:
    raise NoiseSourceError(
        f"noise 'seeds' needs a design point trained with two or more seeds; the design "
        f"points {list(runs)} have one each. Train seeds (configs/grid.py:seeds=3) or "
        f"use --config.study.bootstrap.noise=residuals")
  scale = noise_lib.seed_noise(repeated, f"{len(repeated)} design point(s) with seeds")
  counts = np.array([len(g) for g in groups], np.float64)
  return dataclasses.replace(scale, sigma=scale.sigma / np.sqrt(counts))


def pooled_scale(result: fit_lib.FitResult, others: dict[str, fit_lib.FitResult],
                 dataset: str) -> noise_lib.NoiseScale:
  """This fit's residuals pooled with the same design's fits on other datasets."""
  if not others:
    raise NoiseSourceError(
        f"noise 'pooled' needs the same design on another dataset of the source, and "
        f"none has all of its points (this fit: dataset {dataset!r}). Use "
        f"--config.study.bootstrap.noise=residuals, or add the runs")
  names = ", ".join(sorted(others))
  return noise_lib.pooled_noise([result, *others.values()],
                                f"this fit and the same design on {names}")


def eval_scale(sigma: np.ndarray, key: str) -> noise_lib.NoiseScale:
  return noise_lib.NoiseScale(sigma, np.inf, f"recorded evaluation noise ({key} / 1.96), "
                                             f"taken as known")


def choose(boot_cfg, result: fit_lib.FitResult, *, seeds: Callable[[], noise_lib.NoiseScale],
           pooled: Callable[[], noise_lib.NoiseScale],
           eval_sigma: Callable[[], np.ndarray | None], eval_key: str
           ) -> noise_lib.NoiseScale | None:
  """The NoiseScale for one law's bootstrap (None: the method's own default).

  Sources are callables so that only the chosen one is computed (pooling refits
  the design on other datasets). `eval_sigma` returns None for a law without
  recorded noise (the error law), which then uses its residuals.
  """
  if boot_cfg.method not in ("residual_t", "parametric"):
    return None
  source = boot_cfg.noise
  recorded = eval_sigma() if (source == "eval" or boot_cfg.eval_floor) else None
  if source == "seeds":
    scale = seeds()
  elif source == "pooled":
    scale = pooled()
  elif source == "eval" and recorded is not None:
    scale = eval_scale(recorded, eval_key)
  else:
    scale = noise_lib.residual_noise(result)
  if boot_cfg.eval_floor and recorded is not None:
    scale = scale.with_floor(recorded, f"recorded evaluation noise ({eval_key} / 1.96)")
  return scale
