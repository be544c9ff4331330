"""config.study.fit and .bootstrap as the frozen settings `laws/` takes.

`laws/` never reads a ConfigDict: the fitting layer converts its sections here, and a
bad value is refused as a StudyError naming the config field.
"""
from __future__ import annotations

from scaling_jax.fitting import StudyError
from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import fit as fit_lib


def fit_settings(study) -> fit_lib.FitSettings:
  """study.fit as the solver's settings (refused with the field named)."""
  values = study.fit.to_dict()
  if isinstance(values["bounds"], list):  # a ConfigDict may hand tuples back as lists
    values["bounds"] = tuple(tuple(b) for b in values["bounds"])
  problem = fit_lib.settings_problem(field="study.fit", **values)
  if problem:
    raise StudyError(problem)
  return fit_lib.FitSettings(**values)


def bootstrap_settings(study) -> bootstrap_lib.BootstrapSettings:
  """study.bootstrap's resampling fields as the bootstrap's settings."""
  cfg = study.bootstrap
  values = dict(method=cfg.method, num_resamples=cfg.num_resamples, seed=cfg.seed,
                level=cfg.level)
  problem = bootstrap_lib.settings_problem(field="study.bootstrap", **values)
  if problem:
    raise StudyError(problem)
  return bootstrap_lib.BootstrapSettings(**values)
