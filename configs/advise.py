r"""The run advisor, replayed on released runs: would it have reached the paper
design's accuracy for less compute? (issue 11; experiments/advisor_retrospective)

  python -m scaling_jax.main --config=configs/advise.py:train=rpj \
      --config.runs.testbed_dir=../shared/data/openlm_testbed --workdir=OUT

The testbed study (configs/testbed.py, same `train` values) plus
config.study.retrospective: starting from the two smallest sizes at M = 20, runs
of that training set are added one at a time in the order of each strategy
(the advisor, random orders, cheapest first; the paper's Table 1 design for
reference), refitting both laws after each. Targets are the largest models in the
folder at their M (here the 1.4B runs). Writes OUT/report/retrospective.csv (one
row per target and metric after each addition), retrospective.png and a summary.md
table of the FLOPs each strategy needs to match the paper design. Knobs:
--config.study.retrospective.random_trials, .num_resamples, .advisor_budget_share.
"""
import importlib.util
import pathlib

# What `python -m scaling_jax.main --help` lists for this file (the text after the
# colon -> what it gives); the values are configs/testbed.py's TRAIN_SETS.
VARIANTS = {
    "train=rpj": "replay the RedPajama-trained runs (the default); every variant "
                 "needs --config.runs.testbed_dir=DIR, the released exp_data/ folder",
    "train=c4_original": "replay the C4-trained runs",
    "train=rw_original": "replay the RefinedWeb-trained runs",
}


def _testbed_config(arg: str):
  # The sibling config file, loaded by path: config files are not a package.
  spec = importlib.util.spec_from_file_location(
      "_testbed_config", pathlib.Path(__file__).with_name("testbed.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def get_config(arg: str = ""):
  config = _testbed_config(arg)
  # The folder of the released runs, under the name the command uses (the
  # testbed config's --config.testbed_dir stays as an alias).
  config.runs.testbed_dir = config.get_ref("testbed_dir")
  config.study.retrospective.enabled = True
  return config
