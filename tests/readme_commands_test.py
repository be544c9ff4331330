"""Every README command that reads ../shared is one a new user can paste: its flags
parse, its config builds, its input reads, and the runs it names exist in the data.

The fit itself is left out (the study tests fit these sources; the README quotes
the results with the day and machine); what broke for users was the command: a
template with PATH in it, a variant that does not exist, a column or run misnamed.
"""
import re
import shlex

import pytest

import cli_runner
from conftest import REPO_ROOT
from conftest import TESTBED_DIR
from conftest import CURVES_DIR
from scaling_jax import runs as runs_lib
from scaling_jax import study
from scaling_jax.fitting import curve_points
from scaling_jax.fitting import points
from scaling_jax.fitting import run_selection
from scaling_jax.runs import table as runs_table

SHARED = REPO_ROOT.parent / "shared"


def _commands() -> list[str]:
  """The README's command lines that read ../shared (the install prefix dropped)."""
  text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
  lines = [line.strip().split("&& ", 1)[-1] for line in text.splitlines()
           if "python -m scaling_jax.main" in line and "../shared" in line
           and line.startswith("    ")]
  return [line for line in lines if line.startswith("python -m scaling_jax.main")]


def _absolute(arg: str) -> str:
  arg = arg.replace("../shared/", f"{SHARED}/")
  return re.sub(r"(--config=)(configs/)", rf"\g<1>{REPO_ROOT}/\g<2>", arg)


def _accepted(argv, monkeypatch, capsys) -> dict:
  """Runs the command line in this process up to the fit; what it would have fitted."""
  seen = {}

  def read_only(config, workdir, **unused):
    source = runs_lib.load(config, workdir)
    seen.update(config=config, rows=source.rows)
  monkeypatch.setattr(study, "fit_and_report", read_only)
  code, err = cli_runner.run_main(argv, monkeypatch, capsys)
  if code:
    pytest.fail(f"{' '.join(argv)}\nexited {code}: {err}")
  return seen


def test_the_readme_has_its_runnable_examples():
  commands = _commands()
  assert any("testbed.py:train=rpj,heldout" in c for c in commands)  # the quickstart
  assert any("datablations_losses.csv" in c for c in commands)  # curves
  assert any("datablations_contour_losses.csv" in c for c in commands)  # a table


@pytest.mark.parametrize("command", _commands(), ids=lambda c: c.split()[3][:60])
def test_a_readme_command_on_shared_data_reads_its_input_and_finds_its_runs(
    command, tmp_path, monkeypatch, capsys):
  needed = TESTBED_DIR if "openlm_testbed" in command else CURVES_DIR
  if not needed.is_dir():
    pytest.skip(f"{needed} not found (README.md, Tests)")
  argv = [_absolute(a) for a in shlex.split(command)]
  argv = [a if not a.startswith("--workdir=") else f"--workdir={tmp_path / 'out'}"
          for a in argv][3:]  # the flags after 'python -m scaling_jax.main'
  seen = _accepted(argv, monkeypatch, capsys)
  config, rows = seen["config"], seen["rows"]
  assert rows, command
  if run_selection.requested(config.study.curves):
    runs = curve_points.by_run(points.of_dataset(rows, config.study.dataset))
    fit, targets = run_selection.select(runs, config.study.curves, config.study.val_set)
    named = fit + targets + points.names(config.study.curves.borrow_from)
    assert targets and fit and set(named) <= set(runs), (named, sorted(runs))
  else:  # a final-point study: its designs are runs of the data; targets named by
    # model (the quickstart's heldout) are measured runs, 'N@M' ones may be unmeasured
    keys = {runs_table.run_key(r) for r in rows if r.get("dataset") == config.study.dataset}
    loss_design, err_design, targets = points.designs(config.study, rows)
    design = [points.parse_point(p) for p in loss_design + err_design]
    assert design and all(p in keys for p in design), (design, sorted(keys)[:5])
    named = [points.parse_point(t) for t in targets if not t[0].isdigit()]
    assert targets and all(t in keys for t in named), (named, sorted(keys)[:5])
    if "heldout" in command:
      assert len(named) == len(targets) == 2
