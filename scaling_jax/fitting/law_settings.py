"""config.study.fit and .bootstrap as the frozen settings `laws/` takes.

`laws/` never reads a ConfigDict: the fitting layer converts its sections here, and a
bad value is refused as a StudyError naming the config field.
"""
from __future__ import annotations

from scaling_jax.fitting import StudyError
from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import fit as fit_lib


OBJECTIVES = ("auto", "squares", "huber")
# study.fit.loss='auto' by study kind: 'final' fits Eq. 4/5 on design points (one
# mean per (model, M)), 'curves' fits Eq. 3 on runs of a log or table. Measured on
# the real data in ../shared (benchmarks/objective_choice.py, docs/benchmarks.md).
OBJECTIVE_BY_KIND = {"final": "squares", "curves": "huber"}


def objective(study, kind: str) -> str:
  """'squares' or 'huber': study.fit.loss, 'auto' resolved for the study `kind`."""
  loss = study.fit.loss
  if loss not in OBJECTIVES:
    raise StudyError(f"config field 'study.fit.loss' is {loss!r}; use one of "
                     f"{', '.join(OBJECTIVES)} ('auto': {OBJECTIVE_BY_KIND})")
  return OBJECTIVE_BY_KIND[kind] if loss == "auto" else loss


def fit_settings(study, kind: str = "final", loss: str | None = None
                 ) -> fit_lib.FitSettings:
  """study.fit as the solver's settings (refused with the field named); `loss`
  overrides the objective (the other objective's comparison fit)."""
  values = study.fit.to_dict()
  values["robust"] = (loss or objective(study, kind)) == "huber"
  del values["loss"]
  if values["maxiter"] == 0:  # the objective's own default
    values["maxiter"] = None
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
