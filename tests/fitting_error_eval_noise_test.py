"""The error law's evaluation-noise floor: a task average scored on few examples is
noisy by the binomial alone, whatever the prior measured on large suites says."""
import numpy as np
import pytest

from conftest import eq4_rows
from scaling_jax.fitting import task_subset
from scaling_jax.laws import prediction_interval as pi_lib
from scaling_jax.runs import table as runs_table

TASKS = ("a", "b", "c")
COUNTS = (40, 80, 200)


def _row(accs, counts=COUNTS):
  row = {f"acc/{t}": a for t, a in zip(TASKS, accs)}
  row.update({f"acc_n/{t}": n for t, n in zip(TASKS, counts) if n is not None})
  return row


def test_the_eval_sd_is_the_binomial_spread_of_the_task_average():
  # Planted bugs this catches: the sum not divided by the task count, the
  # variance's square root forgotten, or n used where 1/n belongs.
  accs = np.array([0.3, 0.55, 0.8])
  rng = np.random.default_rng(0)
  draws = rng.binomial(np.array(COUNTS), accs, size=(40_000, 3)) / np.array(COUNTS)
  simulated = np.std(np.mean(1.0 - draws, axis=1))
  # The sd of a sample sd over 40k draws is about 0.35% of it.
  assert task_subset.error_eval_sd(_row(accs), TASKS) == pytest.approx(simulated, rel=0.02)


def test_no_eval_sd_without_every_tasks_count():
  assert task_subset.error_eval_sd(_row([0.5] * 3, (40, None, 200)), TASKS) is None
  assert task_subset.error_eval_sd(_row([0.5] * 3), []) is None


@pytest.mark.parametrize("bad", [0, 2.5, True, -3])
def test_the_runs_table_refuses_a_count_that_is_not_a_positive_whole_number(bad):
  row = dict(run="r", N=1e6, tokens=2e7, M=20.0, flops=1.2e14, step=1, final=True,
             **{"acc/a": 0.5, "acc_n/a": bad})
  with pytest.raises(runs_table.RecordsError, match="acc_n/a"):
    runs_table.validate_row(row)


def test_the_floor_raises_a_smaller_noise_and_leaves_a_larger_one():
  noise = pi_lib.RunNoise(0.01, 31.0, "residuals")
  floored = pi_lib.with_eval_floor(noise, 0.04)
  assert (floored.sigma, floored.df) == (0.04, 31.0)
  assert "evaluation noise" in floored.source and "residuals" in floored.source
  assert pi_lib.with_eval_floor(noise, 0.005) is noise
  assert pi_lib.with_eval_floor(noise, None) is noise


def _with_tasks(rows, counts, seed=0):
  """eq4_rows with three tasks' accuracies (Eq. 5 of the loss, drawn on 5000
  examples so the law fits closely) and `counts` recorded (None: no count)."""
  rng = np.random.default_rng(seed)
  out = []
  for r in rows:
    err = 0.85 - 2.0 * np.exp(-0.6 * r["loss/validation"])
    accs = rng.binomial(5000, 1.0 - err, size=3) / 5000
    out.append(dict(r, **_row(accs, counts)))
  return out


@pytest.mark.slow  # two real fits of both laws: compiles the solver
def test_the_study_floors_the_error_laws_run_noise_at_its_runs_eval_noise():
  # Planted bug: the floor computed but not handed to the error law's run noise
  # (or a target's interval not drawn from the floored noise).
  from scaling_jax import config_lib  # pylint: disable=import-outside-toplevel
  from scaling_jax.fitting import study_fit  # pylint: disable=import-outside-toplevel
  study = config_lib.default_config().study
  study.bootstrap.num_resamples = 64
  study.targets = "m8e+06@40"
  study.downstream = "all"
  baselines = {t: 0.0 for t in TASKS}
  counted = _with_tasks(eq4_rows(), (20, 20, 20))
  floored = study_fit.fit(counted, baselines, study)
  design = [r for r in floored.rows if r["run"] in floored.error.runs]
  expected = np.median([task_subset.error_eval_sd(r, TASKS) for r in design])
  assert floored.error.run_noise.sigma == pytest.approx(expected)
  assert expected > 3 * pi_lib.ERROR_PRIOR.run_noise  # the floor binds here
  assert "evaluation noise" in floored.error.run_noise.source
  bare = study_fit.fit(_with_tasks(eq4_rows(), (None,) * 3), baselines, study)
  assert bare.error.run_noise.sigma < expected / 2
  width = lambda fit: fit.targets[0]["err_hi"] - fit.targets[0]["err_lo"]
  assert width(floored) > 2 * width(bare)
  from scaling_jax.report import summary  # pylint: disable=import-outside-toplevel
  text = summary.render(floored, {"workdir": "w"})
  assert f"the error law's is {expected:.3g} (the evaluation noise" in text
