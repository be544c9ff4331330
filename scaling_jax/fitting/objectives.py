"""The other objective's fit, beside the one used: does the choice change the answer?

Least squares lets one outlier run drag a law (a published table's stray run can
move beta from 0.3 to 0.66); Huber on log residuals (Chinchilla's) ignores it but
also down-weights honest large residuals. Neither is right for every table, so a
study fits its loss law by the objective config.study.fit.loss chooses and refits
it by the other. The difference is material when the other fit's exponent or
target prediction lies outside the used fit's own bootstrap interval: the choice
of objective then moves the answer by more than the data's uncertainty, and the
report shows both laws.

With one residual degree of freedom (the paper's five-run Eq. 4 design) there is
nothing to compare: leaving out any one run leaves an exact fit, so no objective can
tell an outlier from the law, and the refit is not made (MIN_RESIDUAL_DF).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from scaling_jax.fitting import law_settings
from scaling_jax.laws import bootstrap as bootstrap_lib
from scaling_jax.laws import fit as fit_lib
from scaling_jax.laws import predict as predict_lib

OTHER = {"squares": "huber", "huber": "squares"}
LABELS = {"squares": "least squares", "huber": "Huber on log residuals"}
# A run can only be found out as an outlier by the others if, without it, the law
# is still over-determined: n - 1 > P, i.e. n - P >= 2.
MIN_RESIDUAL_DF = 2


@dataclasses.dataclass
class Comparison:
  used: str                         # 'squares' or 'huber'
  other: str
  params: dict[str, float] | None   # the other objective's fit; None if it failed
  converged: bool
  differences: list[str]            # what lies outside the used fit's intervals
  failure: str = ""                 # why the other fit could not be made
  skipped: str = ""                 # why it was not tried

  @property
  def material(self) -> bool:
    return bool(self.differences)

  def brief(self, shown: int = 3) -> str:
    """The exponents that differ, and the first `shown` targets (a count of the rest)."""
    targets = [d for d in self.differences if d.startswith("target ")]
    kept = [d for d in self.differences if d not in targets] + targets[:shown]
    more = len(targets) - shown
    return "; ".join(kept) + (f"; and {more} more of the targets (fit.json)" if more > 0
                              else "")

  def note(self, label: str) -> str | None:
    """A line for the report's warnings, when the objectives disagree."""
    if self.failure or self.skipped or not self.material:
      return None
    return (f"{label}: the {LABELS[self.other]} fit gives a materially different law "
            f"({self.brief()}), outside this fit's "
            f"intervals; both are shown (Objectives). Fitted by {LABELS[self.used]} "
            f"(study.fit.loss); which to trust: README, 'Fitting a published table'")

  def as_json(self) -> dict:
    return {"used": self.used, "other": self.other, "other_params": self.params,
            "other_converged": self.converged, "material": self.material,
            "differences": self.differences, "failure": self.failure,
            "skipped": self.skipped}


def compare(result: fit_lib.FitResult, replicate_params: np.ndarray, level: float,
            study, kind: str, targets: Mapping[str, Mapping[str, float]]) -> Comparison:
  """Refits `result`'s data by the other objective and compares exponents and the
  predictions at `targets` ({name: law inputs}) with the used fit's intervals."""
  used = "huber" if result.settings.robust else "squares"
  other = OTHER[used]
  df = len(result.y) - result.law.num_params
  if df < MIN_RESIDUAL_DF:
    return Comparison(used, other, None, False, [], skipped=(
        f"{len(result.y)} points for {result.law.num_params} parameters leave {df} "
        f"residual degree(s) of freedom: without any one run the law fits the rest "
        f"exactly, so no objective can single out an outlier"))
  try:
    # From the used fit's parameters alone: the other objective's nearest optimum,
    # i.e. how far the choice moves this law (and 1 start, not 128: cheap to run).
    refit = fit_lib.fit(result.law, result.x, result.y, weights=result.weights,
                        starts=result.params[None],
                        settings=law_settings.fit_settings(study, kind, loss=other))
  except fit_lib.FitError as e:
    return Comparison(used, other, None, False, [], failure=str(e))
  law = result.law
  finite = np.all(np.isfinite(replicate_params), axis=1)
  reps = replicate_params[finite]
  differences = []
  if len(reps):
    lo, hi = bootstrap_lib.interval(reps, level)
    for name in law.nonlinear:
      i = law.param_names.index(name)
      if not lo[i] <= refit.params[i] <= hi[i]:
        differences.append(f"{name} {refit.params[i]:.4g} vs {result.params[i]:.4g} "
                           f"[{lo[i]:.4g}, {hi[i]:.4g}]")
    for name, x in targets.items():
      inputs = {k: np.atleast_1d(np.asarray(v, float)) for k, v in x.items()}
      mine = float(result.predict(inputs)[0])
      theirs = float(refit.predict(inputs)[0])
      t_lo, t_hi = bootstrap_lib.interval(
          predict_lib.law_samples(law, reps, inputs)[:, 0], level)
      if not t_lo <= theirs <= t_hi:
        differences.append(f"target {name}: {theirs:.4g} vs {mine:.4g} "
                           f"[{t_lo:.4g}, {t_hi:.4g}]")
  return Comparison(used, other, law.as_dict(refit.params), bool(refit.converged),
                    differences)
