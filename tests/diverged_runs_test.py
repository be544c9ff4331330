"""A diverging unit is recorded as diverged, the sweep goes on, the fit leaves it out."""
import pytest

from scaling_jax import launch
from scaling_jax import study as study_lib
from scaling_jax.runs import own_runs
from scaling_jax.runs import table as runs_table
from study_report_test import LOSS_DESIGN, TARGETS, make_config, write_runs

# tiny-0@20 is a point of the fit's design: a second seed of it that diverged must
# not be averaged into it.
DIVERGING = dict(model="tiny-0", tokens_per_param=20.0, seed=1,
                 **{"optim.peak_lr": 1e9})
HEALTHY = dict(model="tiny-0", tokens_per_param=0.5, seed=0)


def _sweep_config(tmp_path):
  # study_report_test's resample count: the solver it compiled serves this fit too.
  config = make_config(downstream="none")
  config.data.cache_dir = str(tmp_path / "cache")
  config.sweep = [DIVERGING, HEALTHY]  # the diverging unit first: the sweep goes on
  config.launch.backend = "inline"
  config.train.update(global_batch=8, eval_every_tokens=10**9)
  del config.evals["icl"]
  config.evals.val.update(max_tokens=2048, batch_size=8)
  return config


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("diverged")
  config = _sweep_config(workdir)
  units = {u.name: u for u in launch.run(config, str(workdir))}  # raises on a failure
  return workdir, config, units


@pytest.mark.slow
def test_the_diverged_unit_is_finished_at_the_step_it_diverged(swept):
  workdir, config, units = swept
  assert all(u.finished() for u in units.values())
  bad = units["tiny-0_M20_s1"]
  *_, last = runs_table.read_rows(f"{bad.workdir}/records.jsonl")
  assert last["diverged"] is True and last["final"] is True
  assert 1 <= last["step"] < bad.tokens // (8 * 256)  # it stopped early
  assert not any(k.startswith(runs_table.LOSS_PREFIX) for k in last)
  good = runs_table.read_rows(f"{units['tiny-0_M0.5_s0'].workdir}/records.jsonl")
  assert good[-1]["final"] and "diverged" not in good[-1]
  assert good[-1]["loss/validation"] > 0

  # A second launch retrains neither unit.
  sizes = {p: p.stat().st_size for p in workdir.rglob("records.jsonl")}
  launch.run(config, str(workdir))
  assert {p: p.stat().st_size for p in workdir.rglob("records.jsonl")} == sizes


@pytest.mark.slow
def test_the_fit_leaves_the_diverged_run_out_and_the_summary_says_so(swept):
  workdir, config, _ = swept
  write_runs(workdir, LOSS_DESIGN + TARGETS)  # the design's other runs, synthetic
  bad_step = runs_table.read_rows(workdir / "runs" / "tiny-0_M20_s1")[-1]["step"]
  runs = own_runs.load(workdir / "runs", config.evals)
  assert "tiny-0_M20_s1" not in {r["run"] for r in runs.rows}
  assert len(runs.notes) == 1
  assert f"tiny-0_M20_s1 (at step {bad_step}," in runs.notes[0]

  fit = study_lib.fit_and_report(config, workdir)
  point = next(r for r in fit.rows if r["model"] == "tiny-0" and r["M"] == 20)
  assert point["seeds"] == 1 and point["run"] == "tiny-0_M20_s0"
  summary = (workdir / "report" / "summary.md").read_text()
  assert "1 run(s) diverged" in summary and "tiny-0_M20_s1" in summary


def test_a_table_of_diverged_runs_alone_names_them():
  rows = [dict(run="a", N=1, tokens=8, M=1.0, flops=48.0, step=1, final=False,
               **{"loss/validation": 3.0}),
          dict(run="a", N=1, tokens=16, M=1.0, flops=96.0, step=2, final=True,
               diverged=True)]
  kept, diverged = runs_table.split_diverged(rows)
  assert kept == [] and list(diverged) == ["a"] and diverged["a"]["step"] == 2
  with pytest.raises(runs_table.RecordsError, match="'diverged' must be true or false"):
    runs_table.validate_row(dict(rows[1], diverged="yes"))
