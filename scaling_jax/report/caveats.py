"""What a careful reader would question in a study's numbers, said plainly, with a fix.

`laws/sanity.py` flags point estimates that break a law's premise. This module looks
at the intervals: a parameter whose interval reaches values no loss or error can take
(a negative irreducible loss, an exponent at or past 0 or 1), a prediction interval
that runs into the edge of the possible range (loss 0, error 0 or 1: the bootstrap's
replicates were clipped there, so that end says nothing), and a compute-optimal
multiplier whose interval spans orders of magnitude. Each sentence ends with what
would tighten it, worked out from the design actually fitted (its sizes, compute
range, residual degrees of freedom, seeds), because "more data" helps no one.
"""
from __future__ import annotations

import math

from scaling_jax.fitting import study_fit
from scaling_jax.laws import sanity

# An interval for M* whose ends differ by more than this factor cannot guide how
# many tokens per parameter to train: the paper's own M* range (about 10 to 80) is
# within a factor of 10; two decades is beyond any allocation decision.
UNINFORMATIVE_RATIO = 100.0
# A prediction interval wider than this share of the prediction (half-width) says
# little more than "somewhere near the fit runs": an honest flag, not an error.
WIDE_HALF_WIDTH = 0.5


def _g(value: float) -> str:
  return f"{value:.3g}"


def _design_facts(study: study_fit.StudyFit) -> dict:
  fit_runs = [p for p in study.predictions if p.get("used_in_fit")]
  flops = [p["flops"] for p in fit_runs if p.get("flops")]
  decades = math.log10(max(flops) / min(flops)) if len(flops) > 1 else 0.0
  seeds = bool(study.checkpoint_fit is not None and
               getattr(study.checkpoint_fit, "seed_spread", None))
  return dict(sizes=len({p["N"] for p in fit_runs}), multipliers=sorted(
      {p["M"] for p in fit_runs}), decades=decades, df=study.loss.boot.residual_df,
              seeds=seeds, points=len(fit_runs))


def _fix_for_the_law(facts: dict) -> str:
  """What would pin down the loss law's floor and exponent, for this design."""
  steps = [f"add sizes that extend the compute range (the loss fit spans "
           f"{facts['decades']:.1f} decades of compute over {facts['sizes']} sizes; the "
           f"floor E and the exponent are set by the curvature across that range)"]
  if facts["df"] is not None and facts["df"] < 5:
    steps.append(f"each added run also adds a residual degree of freedom (now "
                 f"{facts['df']}), which narrows the t-corrected intervals")
  if not facts["seeds"]:
    steps.append("a second seed of a few fit runs measures the noise directly "
                 "(--config.study.bootstrap.noise=seeds)")
  return "; ".join(steps)


def _parameter_caveats(study: study_fit.StudyFit, facts: dict) -> list[str]:
  out = []
  loss = study.loss.param_intervals(study.level)
  lo, hi = sanity.EXPONENT_RANGE
  pct = f"{study.level:.0%}"
  e = loss.get("E")
  if e and e["value"] < 0:  # the point itself is under Warnings (laws/sanity.py)
    out.append(f"The irreducible loss E = {_g(e['value'])} [{_g(e['lo'])}, "
               f"{_g(e['hi'])}] is below 0 (see Warnings): loss_vs_compute.png plots "
               f"the loss itself rather than L - E, which would exceed the loss, and "
               f"predictions far beyond the fit runs lean on a floor no loss can have")
  elif e and e["lo"] < 0:
    out.append(f"The irreducible loss E = {_g(e['value'])} has a {pct} interval "
               f"reaching {_g(e['lo'])} < 0, which no cross-entropy can be: the "
               f"runs do not pin down the loss floor, so L - E (the loss plot's axis) "
               f"and extrapolations far beyond the fit runs are uncertain")
  for name in ("eta", "alpha", "beta"):
    p = loss.get(name)
    if p and lo < p["value"] < hi and (p["lo"] <= lo or p["hi"] >= hi):
      out.append(f"The exponent {name} = {_g(p['value'])} has a {pct} interval "
                 f"[{_g(p['lo'])}, {_g(p['hi'])}] reaching outside ({lo:g}, {hi:g}), "
                 f"the range of any published language-model fit")
  if out:
    out[-1] += f". To fix: {_fix_for_the_law(facts)}"
  if study.error is not None:
    err = study.error.param_intervals(study.level)
    eps = err.get("eps")
    if eps and 0 < eps["value"] <= 1 and not 0 < eps["lo"] <= eps["hi"] <= 1:
      out.append(f"The error law's eps (the error at high loss, chance level) has a "
                 f"{pct} interval [{_g(eps['lo'])}, {_g(eps['hi'])}] leaving (0, 1], "
                 f"where an error rate lies. To fix: fit runs at higher loss (smaller "
                 f"or shorter runs) pin eps, and more downstream tasks cut the noise")
  return out


def _prediction_caveats(study: study_fit.StudyFit) -> list[str]:
  out = []
  pct = f"{study.level:.0%}"
  for column, label, edges in (("loss", "loss", (0.0, None)),
                               ("err", "error", (0.0, 1.0))):
    for t in study.targets:
      value, lo, hi = (t.get(f"{column}_{k}") for k in ("pred", "lo", "hi"))
      if value is None or lo is None or hi is None:
        continue
      at_edge = [f"{e:g}" for e, end in zip(edges, (lo, hi))
                 if e is not None and end is not None and abs(end - e) < 1e-12]
      if at_edge:
        out.append(f"{t['run']}: the {label} interval [{lo:.4f}, {hi:.4f}] runs into "
                   f"the edge of the possible range ({' and '.join(at_edge)}), where "
                   f"the bootstrap's replicates were clipped: the data do not bound "
                   f"the {label} on that side, so the {pct} interval is uninformative "
                   f"there")
      elif value > 0 and (hi - lo) / 2 > WIDE_HALF_WIDTH * value:
        out.append(f"{t['run']}: the {label} interval [{lo:.4f}, {hi:.4f}] is wider "
                   f"than +-{WIDE_HALF_WIDTH:.0%} of the prediction: it says little "
                   f"beyond the fit runs' own range")
  return out


def _compute_optimal_caveat(study: study_fit.StudyFit, facts: dict) -> list[str]:
  point, lo, hi = study.compute_optimal.multiplier
  if not (lo > 0 and hi > 0 and math.isfinite(lo) and math.isfinite(hi)):
    return [f"The compute-optimal multiplier M* = {_g(point)} has an interval "
            f"[{_g(lo)}, {_g(hi)}] that is not a range of token multipliers: M* is "
            f"undetermined by these runs"]
  if hi / lo <= UNINFORMATIVE_RATIO:
    return []
  ms = ", ".join(f"{m:g}" for m in facts["multipliers"])
  return [f"The compute-optimal multiplier M* = {_g(point)} has a {study.level:.0%} "
          f"interval [{_g(lo)}, {_g(hi)}] spanning {math.log10(hi / lo):.1f} decades: "
          f"uninformative for choosing tokens per parameter. M* comes from how loss "
          f"trades parameters against tokens at equal compute; the loss fit has M in "
          f"{{{ms}}}. To fix: train at least two sizes at several M on both sides of "
          f"the expected optimum (e.g. 10, 20, 40, 80)"]


def caveats(study: study_fit.StudyFit) -> list[str]:
  """Sentences, one per number a reader should question; [] when nothing stands out."""
  facts = _design_facts(study)
  return (_parameter_caveats(study, facts) + _prediction_caveats(study) +
          _compute_optimal_caveat(study, facts))
