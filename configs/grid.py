r"""Scaling studies in the paper's design (Gadre et al. 2024), from CPU to cluster.

  python -m scaling_jax.main --config=configs/grid.py --workdir=OUT
  python -m scaling_jax.main --config=configs/grid.py:smoke --workdir=OUT
  python -m scaling_jax.main --config=configs/grid.py:paper --workdir=OUT \
      --config.launch.dry_run=True

Variants (after the colon, comma-separated `key=value` or bare flags):
  (none)   a CPU-sized replication on the embedded corpus: Eq. 4 is fitted on
           FIT_UNITS (four sizes at M = 20, the smallest at M = 320); the held-out
           TARGET_UNITS (a larger model at M = 20, an over-trained run) each cost
           at least 4x the compute (6 N D) of the largest fit run, as in the paper.
  smoke    six tiny runs (five to fit, one target) for tests, about 2 minutes on 2 cores.
  paper    the paper's 104-model testbed for GPU/TPU clusters (see paper_sweep).
  ladder   the default study's sizes as warmup-stable-decay ladders
           (scaling_jax/ladder.py): per size one trunk at its largest M
           (LADDER_FIT) and a cooldown branch at each smaller M: 19 fit points
           for 3.1e12 FLOPs (the default's five cost 2.2e12); the same two
           targets, trained alone with the WSD schedule. Measured in
           experiments/ladder_main_job: Eq. 4 misfits these runs (targets 21%
           off at this LR, 5-8% at --config.optim.peak_lr=0.01 with E < 0), so
           it is not the default.
           With paper: the paper's 104 design points as ladders (a trunk per
           dataset and size at its largest M); the dry run lists trunks,
           branches and the FLOPs saved against separate runs.
  width_lr with the default or ladder study: each size's peak LR scaled as 1/width
           (ladder_peak_lr; experiments/ladder_main_job, third run: targets 2.5%
           and 6.9% off, E < 0 still).
  seeds=K  K seeds per unit (default 1).
  advise   the default study, then the run advisor (scaling_jax/fitting/advice.py): it
           proposes runs for study.advise.budget_flops (default ADVISE_BUDGET) and
           trains them next, then refits; the loss and error laws use every run
           that is not a target, so each call adds one advised batch.

Any leaf can be overridden, e.g. `--config.train.global_batch=32`; the launcher
with `--config.launch.backend=slurm --config.launch.max_parallel=16` (see
scaling_jax/launch). `config.study` records the fit design and targets as
'preset@M' names for the report. The laws are fitted by least squares, the paper's
objective (`--config.study.fit.loss=huber` for Huber on log residuals; with six or
more fit runs the report also shows the other objective's law where it differs).
"""
from scaling_jax import config_lib

# (preset, M) tables of the default variant: change a size here, in one line.
# Sized so the whole study runs in well under 15 minutes on 2 CPU cores and every
# unit fits the embedded corpus (10.8M train tokens) without repeating a token.
FIT_UNITS = (("tiny-0", 20), ("tiny-0.5", 20), ("tiny-1", 20), ("tiny-2", 20),
             ("tiny-0", 320))
TARGET_UNITS = (("tiny-3", 20), ("tiny-2", 80))
# The smoke study: the fewest runs a 4-parameter law can be fitted (and bootstrapped)
# on, plus one held-out target, each a few seconds of training.
SMOKE_FIT_UNITS = (("tiny-0", 10), ("tiny-0", 20), ("tiny-0.5", 20), ("tiny-1", 20),
                   ("tiny-0", 80))
SMOKE_TARGET_UNITS = (("tiny-0.5", 40),)
# The ladder variant: per size, the multipliers its trunk (the largest) and its
# branches train; a trunk costs about what the default's single run of that size
# does (tiny-0 at 320, tiny-2 at 20), and the smaller sizes reach larger M.
LADDER_FIT = {"tiny-0": (5, 10, 20, 40, 80, 160, 320), "tiny-0.5": (5, 10, 20, 40, 80),
              "tiny-1": (5, 10, 20, 40), "tiny-2": (5, 10, 20)}
# The ladder's peak LR per size: LADDER_LR at width LADDER_LR_WIDTH, scaled as
# 1/width (the muP rule for hidden matrices under Adam). Anchored on the one
# optimum experiments/lr_per_size brackets (tiny-2, width 48: 1e-2); it gives
# 3e-2, 2e-2 and 1.5e-2 to the widths 16-32, whose measured optima lie at 1e-2
# to 3e-2, and 7.5e-3 to the width-64 target, which no measurement tuned.
LADDER_LR, LADDER_LR_WIDTH = 1e-2, 48

# The paper's testbed: four small sizes x eight multipliers x three datasets.
PAPER_SIZES = ("openlm-11m", "openlm-79m", "openlm-154m", "openlm-411m")
PAPER_MULTIPLIERS = (5, 10, 20, 40, 80, 160, 320, 640)
PAPER_DATASETS = ("c4", "rpj", "rw")
# Runs of the grid the released testbed does not have.
PAPER_MISSING = (("c4", "openlm-411m", 640),)
# 1.4B and 6.9B runs of the released testbed, as (dataset, preset, M).
PAPER_LARGE = (("c4", "openlm-1b", 20), ("rpj", "openlm-1b", 20),
               ("rw", "openlm-1b", 20), ("c4", "openlm-1b", 80),
               ("rpj", "openlm-1b", 640), ("rw", "openlm-1b", 320),
               ("c4", "openlm-7b", 20), ("rpj", "openlm-7b", 20),
               ("rw", "openlm-7b", 20))
PAPER_SEQ_LEN = 2048
PAPER_VOCAB = 50432  # the GPT-NeoX tokenizer's, padded
# Released hyperparameters.global_bs and warmup (steps) per size.
PAPER_BATCH = {"openlm-11m": 64, "openlm-79m": 512, "openlm-154m": 512,
               "openlm-411m": 512, "openlm-1b": 256, "openlm-7b": 2048}
PAPER_WARMUP = {"openlm-11m": 100, "openlm-79m": 400, "openlm-154m": 400,
                "openlm-411m": 2000, "openlm-1b": 5000, "openlm-7b": 5000}
_PAPER_LOSS = ("openlm-11m@20", "openlm-79m@20", "openlm-154m@20",
               "openlm-411m@20", "openlm-11m@320")

# The advise variant's budget per call and candidate multipliers: about 20% of the
# default study's 1.45e13 FLOPs, with M small enough that every candidate's tokens
# fit the embedded corpus.
ADVISE_BUDGET = 3e12
ADVISE_MULTIPLIERS = "10,20,40,80"

# Variants after the colon: `configs/grid.py:smoke`, `:paper`, `:seeds=3`, `:advise`.
_KNOBS = dict(smoke=False, paper=False, seeds=1, advise=False, ladder=False,
              width_lr=False)
# What `python -m scaling_jax.main --help` lists for this file (the text after the
# colon -> what it gives); scaling_jax/config_variants.py reads it without running
# this file, and tests/config_variants_test.py builds each and checks none is missing.
VARIANTS = {
    "": "the default study: seven tiny runs on the embedded corpus, five to fit "
        "and two held-out targets, each with at least 4x the compute of the "
        "largest fit run",
    "smoke": "six tiny runs (five to fit, one target), for tests and a first look",
    "paper": "the paper's 104 runs, for a GPU/TPU cluster "
             "(--config.launch.dry_run=True lists them)",
    "seeds=3": "seeds per unit (default 1); combines, e.g. smoke,seeds=3",
    "advise": "the default study, then the run advisor: trains the batch it proposes "
              "for study.advise.budget_flops and refits on every non-target run",
    "ladder": "the default study from WSD ladders: a trunk per size and a cooldown "
              "branch per smaller M, 19 fit points, the same two targets",
    "width_lr": "the default study with each size's peak LR scaled as 1/width from "
                "1e-2 at width 48 (LADDER_LR)",
    "ladder,width_lr": "the ladder study with each size's peak LR scaled as 1/width "
                       "from 1e-2 at width 48 (LADDER_LR)",
    "paper,ladder": "the paper's design points from WSD ladders: a trunk per dataset "
                    "and size, a cooldown branch per smaller M (the dry run says "
                    "what it saves)",
}


def _parse(arg: str) -> dict:
  variant = config_lib.parse_arg(arg, _KNOBS, "configs/grid.py")
  if variant["smoke"] and variant["paper"]:
    raise ValueError("configs/grid.py: choose one of 'smoke' and 'paper'")
  if variant["ladder"] and variant["smoke"]:
    raise ValueError("configs/grid.py: choose one of 'smoke' and 'ladder'")
  if variant["width_lr"] and variant["paper"]:
    raise ValueError("configs/grid.py: width_lr scales the tiny sizes' LR; the paper "
                     "variant keeps its released LR")
  if variant["seeds"] < 1:  # no seeds would be an empty sweep: nothing to train
    raise ValueError(f"configs/grid.py: variant seeds={variant['seeds']} must be at "
                     f"least 1 (seeds per unit)")
  return variant


def _label(preset: str, multiplier) -> str:
  return f"{preset}@{multiplier:g}"


def paper_sweep() -> list[dict]:
  """The released testbed's 104 runs (mlfoundations/scaling, exp_data/models).

  The paper trains 104 models. The released list is the full 4 x 8 x 3 grid of
  small models less one run (C4, d=1024, M = 640: never released) = 95, plus
  nine 1.4B/6.9B runs: 1.4B at M = 20 on each dataset (the error law's extra
  point), 1.4B over-trained on each dataset (M = 80 on C4, 640 on RedPajama,
  the headline target, and 320 on RefinedWeb), and 6.9B at M = 20 on each (the
  other headline target). 95 + 9 = 104, matching the local copy's 98 models
  plus the six it withholds (C4 1.4B M=80, RedPajama 1.4B M=640, RefinedWeb
  1.4B M=320 and the three 6.9B runs).
  """
  units = [dict(dataset=d, model=p, tokens_per_param=float(m))
           for d in PAPER_DATASETS for p in PAPER_SIZES for m in PAPER_MULTIPLIERS
           if (d, p, m) not in PAPER_MISSING]
  units += [dict(dataset=d, model=p, tokens_per_param=float(m))
            for d, p, m in PAPER_LARGE]
  for unit in units:
    # The released batch and warmup (in steps) of each size. The 411m run at M = 5
    # was released with 2000 warmup steps of its 1963: it never reaches its decay.
    unit["train.global_batch"] = PAPER_BATCH[unit["model"]]
    unit["optim.warmup_steps"] = PAPER_WARMUP[unit["model"]]
  return units


# A WSD cooldown over the last 20% of steps: the length Hägele et al. (2024) find
# matches a cosine run's final loss.
LADDER_COOLDOWN_FRACTION = 0.2


def _cools_down_after_warmup(unit: dict) -> bool:
  """Whether the unit's cooldown would start after its released warmup: the short
  runs of the larger sizes (79M-411M at M = 5) spend most or all of their steps
  warming up, leaving no constant phase to branch from, so they train alone."""
  from scaling_jax import model as model_lib  # pylint: disable=import-outside-toplevel
  from scaling_jax import optim  # pylint: disable=import-outside-toplevel
  n = model_lib.num_params(model_lib.preset(unit["model"], vocab_size=PAPER_VOCAB,
                                            seq_len=PAPER_SEQ_LEN))
  steps = round(unit["tokens_per_param"] * n / (unit["train.global_batch"] * PAPER_SEQ_LEN))
  return optim.cooldown_start(steps, LADDER_COOLDOWN_FRACTION) > unit["optim.warmup_steps"]


def ladder_sweep(units: list[dict]) -> list[dict]:
  """`units` as WSD ladders: per (dataset, preset) the M values of its units that
  can branch; a group of one M trains alone (with the WSD schedule)."""
  groups: dict[tuple, list[float]] = {}
  for u in units:
    if _cools_down_after_warmup(u):
      groups.setdefault((u.get("dataset"), u["model"]), []).append(u["tokens_per_param"])
  out = []
  for u in units:
    ladder = groups.get((u.get("dataset"), u["model"]), [])
    branches = len(ladder) > 1 and u["tokens_per_param"] in ladder
    out.append(dict(u, **{"train.branch_multipliers":
                          ",".join(f"{m:g}" for m in sorted(ladder)) if branches else ""}))
  return out


def _tables(variant: dict):
  if variant["smoke"]:
    return SMOKE_FIT_UNITS, SMOKE_TARGET_UNITS
  if variant["ladder"]:
    return (tuple((p, m) for p, ms in LADDER_FIT.items() for m in ms), TARGET_UNITS)
  return FIT_UNITS, TARGET_UNITS


def ladder_peak_lr(preset: str) -> float:
  """LADDER_LR scaled by 1/width from LADDER_LR_WIDTH (rounded to 3 digits)."""
  from scaling_jax import model as model_lib  # pylint: disable=import-outside-toplevel
  return float(f"{LADDER_LR * LADDER_LR_WIDTH / model_lib.preset(preset).width:.3g}")


def _with_ladders(units: list[dict]) -> list[dict]:
  """Each fit unit joins its size's ladder (LADDER_FIT); a target trains alone."""
  return [dict(u, **{"train.branch_multipliers": ",".join(
      f"{m:g}" for m in LADDER_FIT[u["model"]])
      if u["tokens_per_param"] in LADDER_FIT.get(u["model"], ()) else ""})
          for u in units]


def _with_width_lr(units: list[dict]) -> list[dict]:
  """Every unit at its width's peak LR (ladder_peak_lr)."""
  return [dict(u, **{"optim.peak_lr": ladder_peak_lr(u["model"])}) for u in units]


def get_sweep(variant: dict | None = None) -> list[dict]:
  """Override dicts, one per unit (see scaling_jax/launch/sweep.py for the keys)."""
  variant = dict(_KNOBS, **(variant or {}))
  seeds = range(variant["seeds"])
  if variant["paper"]:
    units = ladder_sweep(paper_sweep()) if variant["ladder"] else paper_sweep()
  else:
    fit, targets = _tables(variant)
    units = [dict(model=p, tokens_per_param=float(m)) for p, m in fit + targets]
    if variant["ladder"]:
      units = _with_ladders(units)
    if variant["width_lr"]:
      units = _with_width_lr(units)
  return [dict(u, seed=s) for u in units for s in seeds]


def _designs(config, loss_design, err_design, targets) -> None:
  config.study.loss_design = ",".join(loss_design)
  config.study.err_design = ",".join(err_design)
  config.study.targets = ",".join(targets)


def _paper_config(config) -> None:
  """Data sources and hyperparameters of the paper's testbed."""
  config.model.seq_len = PAPER_SEQ_LEN
  config.model.vocab_size = PAPER_VOCAB
  config.model.z_loss = 1e-4
  config.model.compute_dtype = "bfloat16"
  config.optim.update(dict(peak_lr=3e-3, final_lr=3e-5, weight_decay=0.033,
                           beta2=0.95))
  # The GPT-NeoX tokenizer (vocab 50432 with padding), which lives on the cluster:
  #   --config.data.hf.path=/path/to/gpt-neox-20b/tokenizer.json
  config.data.tokenizer = "hf"
  config.data.hf.path = ""
  # The paper's three training sets, where each is published. Only C4 is in TFDS
  # (`tfds build c4/en` prepares it, with Apache Beam; point
  # --config.datasets.c4.tfds.data_dir at it). RedPajama and RefinedWeb are on the
  # Hugging Face hub, which this project does not read: download them as JSON
  # lines (.jsonl or .jsonl.gz) and give their globs:
  #   togethercomputer/RedPajama-Data-1T (JSON lines, some .zst: decompress them)
  #     --config.datasets.rpj.files.path='/data/rpj/**/*.jsonl'
  #   tiiuae/falcon-refinedweb (Parquet, text in 'content': write it as JSON lines)
  #     --config.datasets.rw.files.path='/data/rw/*.jsonl.gz'
  config.datasets.update(dict(
      c4=dict(source="tfds", tfds=dict(name="c4/en:3.0.1")),
      rpj=dict(source="files", files=dict(path="", text_field="text")),
      rw=dict(source="files", files=dict(path="", text_field="content")),
  ))
  config.train.eval_every_tokens = 1_000_000_000
  config.train.checkpoint_every_tokens = 1_000_000_000
  config.mesh.update(dict(data=-1, fsdp=1, tensor=1))


def get_config(arg: str = ""):
  variant = _parse(arg)
  config = config_lib.default_config()
  if variant["paper"]:
    _paper_config(config)
    loss = _PAPER_LOSS
    _designs(config, loss, loss + ("openlm-1b@20",), ("openlm-1b@640", "openlm-7b@20"))
    # Judge tasks on the 154M runs, as the paper does (there: the 0.154B models).
    config.study.subset.reference_model = "openlm-154m"
  else:
    table, targets = _tables(variant)
    loss = [_label(p, m) for p, m in table]
    # No larger M = 20 run outside the targets here, so the error law uses the
    # loss law's runs (the paper adds its 1.4B model).
    _designs(config, loss, loss, [_label(p, m) for p, m in targets])
  if variant["ladder"]:
    config.optim.update(dict(schedule="wsd", cooldown_fraction=LADDER_COOLDOWN_FRACTION))
  if variant["smoke"]:
    config.train.eval_every_tokens = 150_000
    config.evals.val.max_tokens = 32768
    config.evals.icl.examples_per_task = 20
    config.launch.max_parallel = 2  # two cores: compiles overlap
  if variant["advise"]:
    # Fit on every run that is not a target, so advised runs join the laws.
    config.study.loss_design = config.study.err_design = ""
    config.study.advise.update(dict(budget_flops=ADVISE_BUDGET,
                                    multipliers=ADVISE_MULTIPLIERS, train_next=True))
  config.sweep = get_sweep(variant)
  return config
