"""The retrospective engine on six synthetic runs: the paper's five plus a target.

Every replay starts from the two smallest sizes at M = 20 and can add only the
paper design's other three runs, so every strategy ends on the paper's design:
its last fit must agree with the paper record, whatever the order.
"""
import numpy as np
import pytest

from scaling_jax.fitting import retrospective
from scaling_jax.laws import advise
from scaling_jax.laws import forms
from scaling_jax.laws import predict as predict_lib

# Trains (or fits) a shared module fixture: every test here is of the full tier.
pytestmark = pytest.mark.slow

TRUTH = np.array([1.84, 212.0, 367.0, 0.136])
EQ5 = np.array([0.857, 2.21, 0.715])
SIZES = np.array([1e7, 2e7, 4e7, 8e7, 6.4e8])
FIELDS = {"train", "strategy", "trial", "step", "run_added", "cum_flops", "target",
          "metric", "pred", "true", "rel_err", "lo", "hi"}


def _runs(noise=0.01):
  n = np.append(SIZES[:4], [SIZES[0], SIZES[4]])
  m = np.array([20.0, 20.0, 20.0, 20.0, 320.0, 20.0])
  flops = advise.six_n_d(n, m)
  rng = np.random.default_rng(0)
  loss = predict_lib.law_samples(forms.OVERTRAINING, TRUTH[None], {"C": flops, "M": m})[0]
  loss = loss + noise * rng.standard_normal(6)
  err = predict_lib.law_samples(forms.DOWNSTREAM, EQ5[None], {"L": loss})[0]
  rows = [{"run": f"n{x:.0e}_m{y:g}", "N": x, "M": y, "flops": f, "loss/val": l, "err": e}
          for x, y, f, l, e in zip(n, m, flops, loss, err + 0.003 * rng.standard_normal(6))]
  return retrospective.Runs.from_rows(rows, "val")


@pytest.fixture(scope="module")
def records():
  return retrospective.retrospective(_runs(), "synthetic", num_random=3, num_resamples=50)


def test_default_roles_are_the_papers():
  targets, start, paper = retrospective.default_roles(_runs())
  assert (targets, start, sorted(paper)) == ([5], [0, 1], [0, 1, 2, 3, 4])


def test_every_trajectory_adds_runs_until_the_pool_is_empty(records):
  assert all(set(r) == FIELDS for r in records)
  runs = _runs()
  for strategy, trials in (("advisor", 1), ("random", 3), ("compute", 1)):
    for trial in range(trials):
      losses = [r for r in records if (r["strategy"], r["trial"], r["metric"]) ==
                (strategy, trial, "loss")]
      assert [r["step"] for r in losses] == [0, 1, 2, 3]
      flops = [r["cum_flops"] for r in losses]
      assert flops == sorted(flops) and flops[-1] == pytest.approx(runs.flops[:5].sum())
      assert sorted(r["run_added"] for r in losses[1:]) == sorted(runs.names[2:5])
      # Eq. 4 needs 5 runs for one residual degree of freedom: NaN until then.
      assert np.isnan([r["rel_err"] for r in losses[:3]]).all()
      assert np.isfinite(losses[3]["rel_err"]) and losses[3]["lo"] < losses[3]["hi"]
  compute = [r["run_added"] for r in records if r["strategy"] == "compute"
             and r["metric"] == "loss"][1:]
  assert compute == [runs.names[i] for i in np.argsort(runs.flops[2:5]) + 2]
  random_orders = {tuple(r["run_added"] for r in records if r["strategy"] == "random"
                         and r["trial"] == t and r["metric"] == "loss") for t in range(3)}
  assert len(random_orders) > 1


def test_every_strategy_ends_on_the_paper_fit(records):
  paper = {r["metric"]: r for r in records if r["strategy"] == "paper"}
  assert set(paper) == {"loss", "err"} and paper["loss"]["step"] == 0
  runs = _runs()
  assert paper["loss"]["cum_flops"] == pytest.approx(runs.flops[:5].sum())
  assert paper["loss"]["true"] == runs.loss[5] and paper["err"]["true"] == runs.err[5]
  for r in records:
    if r["step"] == 3:  # same five runs in another order: the same point fit
      assert r["pred"] == pytest.approx(paper[r["metric"]]["pred"], rel=1e-6)
  assert paper["loss"]["rel_err"] == pytest.approx(
      abs(paper["loss"]["pred"] - runs.loss[5]) / runs.loss[5])


def test_max_flops_and_min_multiplier_shrink_the_replay():
  runs = _runs()
  short = retrospective.replay(runs, "compute", targets=[5], start=[0, 1],
                               max_flops=runs.flops[:3].sum(), num_resamples=50)
  assert [r["step"] for r in short if r["metric"] == "loss"] == [0, 1]
  over_40 = retrospective.replay(runs, "compute", targets=[5], start=[0, 1],
                                 min_multiplier=40.0, num_resamples=50)
  assert [r["run_added"] for r in over_40 if r["metric"] == "loss"] == ["", runs.names[4]]
  with pytest.raises(ValueError, match="unknown strategy"):
    retrospective.replay(runs, "bogus", targets=[5], start=[0, 1])


def test_a_budgeted_advisor_stays_within_its_budget():
  runs = _runs()
  budget = runs.flops[[0, 1, 4]].sum()  # the start plus one of the two cheapest others
  records = retrospective.retrospective(runs, "synthetic", strategies=(),
                                        advisor_budgets=[budget], num_resamples=50)
  assert {r["strategy"] for r in records} == {f"advisor@{budget:.3g}"}
  assert max(r["cum_flops"] for r in records) <= budget
  added = [r["run_added"] for r in records if r["metric"] == "loss"]
  assert len(added) == 2 and added[1] in (runs.names[2], runs.names[4])


def _record(strategy, trial, step, flops, rel_err, width):
  return dict(train="t", strategy=strategy, trial=trial, step=step, run_added="",
              cum_flops=flops, target="big", metric="loss", pred=0.0, true=1.0,
              rel_err=rel_err, lo=0.0, hi=width)


def test_summary_counts_flops_to_match_the_paper():
  records = [_record("paper", 0, 0, 100.0, 0.01, 1.0),
             # trial 0 matches at 20 (both), loses it at 30, regains it at 40.
             _record("random", 0, 0, 10.0, 0.005, 2.0),
             _record("random", 0, 1, 20.0, 0.005, 0.5),
             _record("random", 0, 2, 30.0, 0.02, 0.5),
             _record("random", 0, 3, 40.0, 0.01, 0.5),
             # trial 1 never gets narrow enough.
             _record("random", 1, 0, 10.0, np.nan, np.nan),
             _record("random", 1, 1, 60.0, 0.001, 3.0)]
  (row,) = retrospective.summarize(records)
  assert (row["paper_flops"], row["paper_rel_err"], row["paper_width"]) == (100.0, 0.01, 1.0)
  assert row["trials"] == 2 and row["share_matching"] == 0.5
  assert row["flops_accuracy"] == np.median([10.0, 60.0])
  assert row["flops_width"] == np.inf and row["flops_both"] == np.inf  # median of 20, inf
  assert retrospective._stable(records[1:5], lambda r: r["rel_err"] <= 0.01
                               and r["hi"] <= 1.0) == 40.0


def test_rows_without_the_loss_column_are_refused():
  with pytest.raises(ValueError, match="loss/val"):
    retrospective.Runs.from_rows([{"run": "a", "N": 1.0, "M": 20.0, "flops": 1.0}], "val")
