"""The run advisor (issue 11): which (N, M) to train next so a target's prediction
gets most certain for the FLOPs spent.

Delta method: linearised at the fitted optimum p, a least-squares law has
Var f(x*) ~= g^T Info^-1 g, Info = J^T W J / sigma^2 (+ a prior's precision), with
J = d law(p, x_i) / d p over the runs, W their weights, sigma the noise of a
unit-weight run, g = d f(x*) / d p. A candidate run adds a row j to J, and by
Sherman-Morrison the variance drops by (g^T A j)^2 / (sigma^2 + j^T A j), A =
Info^-1: exact in the linear coefficients, first order in the exponent. It needs
where a run sits, not its outcome: advice before training. `advise_check.confirm`
checks it by simulating outcomes and refitting with the project's fit and bootstrap.

Chained error (Eq. 5 on the loss): Var Err* ~= (dErr/dL)^2 Var L* + g_e^T Cov_e g_e,
Cov_e the error law's own delta-method covariance. Kept simple: the noise of the
observed losses the error law takes as inputs, and the correlation of the two laws
(they share runs), are ignored. A candidate also evaluated downstream
(`err_measured`) adds a row to the error law, at its loss as the loss law predicts.

Candidates are compared at equal spend (see `_table`): with a budget, by the drop
if the budget went into runs at that point; without, by one run's drop per FLOP.

Widths: sigma estimated on df residual degrees of freedom makes the residual_t
bootstrap span about t_df(0.975) standard errors, so a run's expected width is
2 t_{df+1} std (the run adds a df too: at the paper's df = 1, t falls from 12.7
to 4.3); with sigma given, 2 x 1.96 std. The ranking uses variances.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from scaling_jax.laws import delta_method
from scaling_jax.laws import forms
from scaling_jax.laws import predict as predict_lib

# A Design says where a law is linearised and how noisy its runs are: advise takes
# one built by hand (a prior guess, before any run) as well as a fit.
Design = delta_method.Design
design_of = delta_method.design_of

LEVEL = 0.95
CRITERIA = ("loss", "error", "both")


def six_n_d(N, M):
  """Training FLOPs of a run, C = 6 N D with D = N M tokens (the paper's C)."""
  return 6.0 * np.asarray(N, np.float64) ** 2 * np.asarray(M, np.float64)


def candidate_inputs(law: forms.Law, M, flops) -> dict[str, np.ndarray]:
  """Eq. 4's inputs for runs at multiplier M costing `flops`: C is a run's FLOPs."""
  if law.inputs != ("C", "M"):
    raise ValueError(f"advise places runs by (N, M) for Eq. 4's inputs (C, M), not for "
                     f"{law.inputs} of {law.name}")
  return {"C": np.atleast_1d(np.asarray(flops, np.float64)),
          "M": np.atleast_1d(np.asarray(M, np.float64))}


@dataclasses.dataclass(frozen=True)
class _Law:
  """One law's state during advice: its information, covariance and df."""
  design: Design
  info: np.ndarray  # [P, P]
  cov: np.ndarray   # [P, P] = info^-1
  df: float

  @classmethod
  def of(cls, design: Design) -> "_Law":
    info = delta_method.information(design)
    return cls(design, info, delta_method.covariance(info, design.law), design.df)

  def add(self, rows: np.ndarray) -> "_Law":
    """Info + rows^T rows / sigma^2 (rows [k, P]), one degree of freedom per row."""
    info = self.info + rows.T @ rows / self.design.sigma**2
    return _Law(self.design, info, delta_method.covariance(info, self.design.law),
                self.df + len(rows))

  def after(self, grad: np.ndarray, rows: np.ndarray, copies: np.ndarray) -> np.ndarray:
    """Variance of grad . p after adding each row [K, P] alone, with weight `copies`
    [K] (that many runs there), by Sherman-Morrison."""
    a_g, a_j = self.cov @ grad, rows @ self.cov
    return grad @ a_g - copies * (rows @ a_g) ** 2 / (
        self.design.sigma**2 + copies * np.sum(a_j * rows, 1))


def _t(df: float) -> float:
  """Half-width of a 95% interval in standard errors (t-corrected unless sigma given)."""
  return float(stats.norm.ppf(0.5 + LEVEL / 2) if np.isinf(df)
               else stats.t.ppf(0.5 + LEVEL / 2, df))


def _predict(design: Design, x) -> np.ndarray:
  return predict_lib.law_samples(design.law, design.params[None], x)[0]


@functools.partial(jax.jit, static_argnames="law")
def _slope(law, params, loss):
  return jax.grad(lambda v: law(params, {"L": v[None]})[0])(loss)


@dataclasses.dataclass(frozen=True)
class _Chain:
  """The target's prediction and its gradients: loss law, and the error law if any."""
  loss: _Law
  loss_grad: np.ndarray         # [P] d L* / d p
  loss_value: float
  err: _Law | None = None
  err_grad: np.ndarray | None = None  # [Q] d Err* / d q
  err_slope: float = 0.0        # d Err / d L at L*
  err_value: float = np.nan


def _chain(loss: Design, err: Design | None, x_target) -> _Chain:
  loss_law = _Law.of(loss)
  grad = delta_method.jacobian(loss.law, loss.params, x_target)[0]
  value = float(_predict(loss, x_target)[0])
  if err is None:
    return _Chain(loss_law, grad, value)
  at = {"L": np.array([value])}
  with jax.enable_x64(True):
    slope = float(_slope(err.law, jnp.asarray(err.params), jnp.float64(value)))
  return _Chain(loss_law, grad, value, _Law.of(err),
                delta_method.jacobian(err.law, err.params, at)[0], slope,
                float(_predict(err, at)[0]))


def _rows(chain: _Chain, x_cand, err_measured: bool):
  """What each candidate adds: a row to the loss law's J [K, P], and one to the error
  law's [K, Q] at its predicted loss (None: it gets no error measurement)."""
  d = chain.loss.design
  loss_rows = delta_method.jacobian(d.law, d.params, x_cand)
  if chain.err is None or not err_measured:
    return loss_rows, None
  e = chain.err.design
  return loss_rows, delta_method.jacobian(e.law, e.params, {"L": _predict(d, x_cand)})


def _variances(chain: _Chain, rows, copies: np.ndarray) -> dict[str, np.ndarray]:
  """Per candidate [K]: target variances after `copies` runs there, and the 95%
  half-widths (t on one more residual df, as after one run)."""
  loss_rows, err_rows = rows
  loss_var = chain.loss.after(chain.loss_grad, loss_rows, copies)
  out = {"loss_var": loss_var, "loss_half": _t(chain.loss.df + 1) * np.sqrt(loss_var)}
  if chain.err is None:
    nan = np.full(len(copies), np.nan)
    return dict(out, err_var=nan, err_half=nan)
  e = chain.err
  if err_rows is None:
    own, err_df = np.full(len(copies), chain.err_grad @ e.cov @ chain.err_grad), e.df
  else:
    own, err_df = e.after(chain.err_grad, err_rows, copies), e.df + 1
  via_loss = chain.err_slope**2 * loss_var
  out["err_var"] = via_loss + own
  # Each law's part scaled by its own t: how two t-corrected bootstraps add up.
  out["err_half"] = np.sqrt(_t(chain.loss.df + 1) ** 2 * via_loss + _t(err_df) ** 2 * own)
  return out


def _criterion(chain: _Chain, name: str, var: dict[str, np.ndarray]) -> np.ndarray:
  """The variance the advisor shrinks: the loss's, the error's, or both relative."""
  if name == "loss":
    return var["loss_var"]
  if name == "error":
    return var["err_var"]
  return var["loss_var"] / chain.loss_value**2 + var["err_var"] / chain.err_value**2


def _add(chain: _Chain, rows, i: int) -> _Chain:
  """The chain with candidate i trained (linearisation point unchanged)."""
  loss_rows, err_rows = rows
  err = chain.err if err_rows is None else chain.err.add(err_rows[i:i + 1])
  return dataclasses.replace(chain, loss=chain.loss.add(loss_rows[i:i + 1]), err=err)


@dataclasses.dataclass(frozen=True)
class Candidate:
  """One row of the advice: a run at (N, M) and what it is expected to buy.

  Stds and widths are of the target's prediction after this run (after it and the
  batch's earlier picks, in `Advice.batch`); err_* are NaN without an error law.
  """
  N: float
  M: float
  flops: float
  budget_share: float          # flops / budget (NaN without a budget)
  loss_std_before: float
  loss_std: float
  loss_width: float            # expected 95% interval width
  err_std_before: float
  err_std: float
  err_width: float
  reduction_per_flop: float    # the criterion's variance drop per FLOP (see _table)
  cum_flops: float             # FLOPs of the batch up to and including this run


@dataclasses.dataclass(frozen=True)
class Advice:
  target: tuple[float, float]  # (N, M)
  target_x: dict               # the law's inputs at the target
  criterion: str               # 'loss', 'error' or 'both' (relative variances added)
  loss: Design                 # each law as linearised (sigma, df: inf where given)
  err: Design | None
  err_measured: bool           # candidates get an error measurement too
  ranked: list[Candidate]      # every candidate alone, best first
  batch: list[Candidate]       # the greedy proposal, in the order picked


def candidate_grid(sizes, multipliers) -> dict[str, np.ndarray]:
  """Every (N, M) of sizes x multipliers, as advise's candidates."""
  n, m = np.meshgrid(np.asarray(sizes, np.float64), np.asarray(multipliers, np.float64),
                     indexing="ij")
  return {"N": n.ravel(), "M": m.ravel()}


def _positive(name: str, values) -> np.ndarray:
  values = np.atleast_1d(np.asarray(values, np.float64))
  bad = ~(np.isfinite(values) & (values > 0))
  if bad.any():
    raise ValueError(f"{name} must be positive finite numbers; bad at positions "
                     f"{np.flatnonzero(bad).tolist()}: {values[bad].tolist()}")
  return values


def parse_candidates(candidates, flops: Callable = six_n_d) -> dict[str, np.ndarray]:
  """{'N', 'M', 'flops'} arrays from a mapping (flops optional) or (N, M[, flops]) rows."""
  if isinstance(candidates, Mapping):
    table = {k: np.atleast_1d(np.asarray(v, np.float64)) for k, v in candidates.items()}
    if "N" not in table or "M" not in table:
      raise ValueError(f"candidates need 'N' and 'M' (and may give 'flops'); got "
                       f"{sorted(table)}")
  else:
    items = [tuple(c) for c in candidates]
    if any(len(c) not in (2, 3) for c in items):
      raise ValueError("each candidate must be (N, M) or (N, M, flops)")
    table = {"N": np.array([c[0] for c in items], np.float64),
             "M": np.array([c[1] for c in items], np.float64)}
    if items and all(len(c) == 3 for c in items):
      table["flops"] = np.array([c[2] for c in items], np.float64)
  if table["N"].size == 0:
    raise ValueError("no candidates: give at least one (N, M) to consider")
  if len({v.size for v in table.values()}) != 1:
    raise ValueError(f"candidate columns differ in length: "
                     f"{ {k: v.size for k, v in table.items()} }")
  n, m = _positive("candidate N", table["N"]), _positive("candidate M", table["M"])
  cost = table["flops"] if "flops" in table else flops(n, m)
  return {"N": n, "M": m, "flops": _positive("candidate FLOPs", cost)}


def _check_budget(budget_flops, cands, k):
  if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer))
                        or k < 1):
    raise ValueError(f"k must be a positive integer (runs to propose), got {k!r}")
  if budget_flops is None:
    if k is None:
      raise ValueError("k=None proposes as many runs as fit the budget: give budget_flops")
    return
  if not (np.isfinite(budget_flops) and budget_flops > 0):
    raise ValueError(f"budget_flops must be a positive number, got {budget_flops!r}")
  if budget_flops < cands["flops"].min():
    raise ValueError(f"budget_flops={budget_flops:.3g} is smaller than the cheapest "
                     f"candidate ({cands['flops'].min():.3g} FLOPs): no run fits; raise "
                     f"the budget or add cheaper candidates")


def _table(chain, rows, cands, criterion, budget, spend=None) -> list[Candidate]:
  """Every candidate scored alone against `chain`, in the candidates' order.

  Stds and widths are after one run. The score compares candidates at equal spend:
  the criterion's drop if `spend` FLOPs went into runs at that point (spend / cost
  of them, a fraction where it costs more), per FLOP; spend None: each one run, its
  own cost (the marginal rate). Equal spend is what makes spreading beat repeating:
  a cheap point's repeats pin one direction ever more tightly, with diminishing
  returns that one run's marginal rate does not see.
  """
  num = len(cands["N"])
  spend = cands["flops"] if spend is None else np.full(num, float(spend))
  before, one, scored = (_variances(chain, rows, copies) for copies in
                         (np.zeros(num), np.ones(num), spend / cands["flops"]))
  score = (_criterion(chain, criterion, before) - _criterion(chain, criterion, scored)
           ) / spend
  share = cands["flops"] / budget if budget else np.full(num, np.nan)
  return [Candidate(
      float(cands["N"][i]), float(cands["M"][i]), float(cands["flops"][i]),
      float(share[i]),
      *(float(np.sqrt(v[i])) for v in (before["loss_var"], one["loss_var"])),
      float(2 * one["loss_half"][i]),
      *(float(np.sqrt(v[i])) for v in (before["err_var"], one["err_var"])),
      float(2 * one["err_half"][i]), float(score[i]), float(cands["flops"][i]))
      for i in range(num)]


def _greedy(chain, rows, cands, criterion, budget, k) -> list[Candidate]:
  """Best score, add its row(s), repeat: k runs, or as many as fit the budget.
  With a budget, candidates are compared at the spend that is left."""
  picked, spent, batch = set(), 0.0, []
  while k is None or len(batch) < k:
    left = None if budget is None else budget - spent
    options = [i for i in range(len(cands["N"])) if i not in picked
               and (left is None or cands["flops"][i] <= left)]
    if not options:
      break
    table = _table(chain, rows, cands, criterion, budget, left)
    best = max(options, key=lambda i: table[i].reduction_per_flop)
    picked.add(best)
    spent += table[best].flops
    batch.append(dataclasses.replace(table[best], cum_flops=spent))
    chain = _add(chain, rows, best)
  return batch


def advise(loss_fit, candidates, target, budget_flops=None, *, err_fit=None, sigma=None,
           err_sigma=None, k=1, flops: Callable = six_n_d, criterion=None,
           err_measured: bool = True, prior_sd=None) -> Advice:
  """Ranks candidate runs by the expected drop of the target's variance per FLOP.

  loss_fit / err_fit: FitResults of Eq. 4 and Eq. 5 (or Designs). candidates: a
  mapping {'N', 'M'[, 'flops']} (e.g. candidate_grid) or (N, M[, flops]) rows.
  target: (N, M). flops(N, M): a run's cost and Eq. 4's input C (6 N^2 M). sigma /
  err_sigma: noise sd of a run, needed when a fit has no residual df. criterion:
  'loss', 'error' or 'both' (relative variances added; the default with an error
  law). k: runs in the greedy batch; None: as many as fit budget_flops. Each
  candidate enters a batch at most once: list it twice to allow a second seed.
  prior_sd ([P] or scalar) adds a Gaussian prior on the loss law's parameters.
  """
  cands = parse_candidates(candidates, flops)
  if np.ndim(target) != 1 or len(target) != 2:
    raise ValueError(f"target must be one (N, M) pair, got {target!r}")
  t_n, t_m = (_positive(f"target {name}", v)[0] for name, v in zip("NM", target))
  criterion = criterion or ("both" if err_fit is not None else "loss")
  if criterion not in CRITERIA or (criterion != "loss" and err_fit is None):
    raise ValueError(f"criterion {criterion!r}: use one of {CRITERIA} ('error' and "
                     f"'both' need err_fit)")
  _check_budget(budget_flops, cands, k)
  loss = loss_fit if isinstance(loss_fit, Design) else design_of(loss_fit, sigma, prior_sd)
  err = err_fit if err_fit is None or isinstance(err_fit, Design) else design_of(
      err_fit, err_sigma)
  target_x = candidate_inputs(loss.law, t_m, flops(t_n, t_m))
  chain = _chain(loss, err, target_x)
  rows = _rows(chain, candidate_inputs(loss.law, cands["M"], cands["flops"]),
               err_measured)
  table = _table(chain, rows, cands, criterion, budget_flops, budget_flops)
  return Advice(
      (float(t_n), float(t_m)), target_x, criterion, loss, err, err_measured,
      sorted(table, key=lambda c: -c.reduction_per_flop),
      _greedy(chain, rows, cands, criterion, budget_flops, k))
