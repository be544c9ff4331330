r"""Does a WSD cooldown branch end where a separate run of its length ends?

  python experiments/wsd_branches/compare.py --workdir=/tmp/wsd_branches

For each seed, one size (tiny-1 on the embedded corpus) trained three ways to each
M of LADDER: as a WSD ladder (one trunk at the largest M, a cooldown branch at each
smaller one; scaling_jax/ladder.py), as separate WSD runs (each with its own
warmup, 5% of its own steps), and as separate cosine runs (the paper's schedule).
experiments/wsd_branches/README.md reads the result.

Variants (after the colon): seeds=K (default 3), model=<preset> (default tiny-1).
"""
from scaling_jax import config_lib

LADDER = (10, 20, 40)
COOLDOWN_FRACTION = 0.2  # as configs/grid.py:ladder

_KNOBS = dict(seeds=3, model="tiny-1")
VARIANTS = {
    "": "tiny-1 at M = 10, 20, 40, three seeds: a WSD ladder, separate WSD runs and "
        "separate cosine runs",
    "seeds=1": "seeds per arm (default 3)",
    "model=tiny-0": "the model preset (default tiny-1)",
}
ARMS = ("branch", "wsd", "cosine")


def get_sweep(variant: dict) -> list[dict]:
  ladder = ",".join(f"{m:g}" for m in LADDER)
  units = []
  for seed in range(variant["seeds"]):
    for m in LADDER:
      base = dict(model=variant["model"], tokens_per_param=float(m), seed=seed)
      units.append(dict(base, name=f"branch_M{m}_s{seed}", **{
          "optim.schedule": "wsd", "train.branch_multipliers": ladder}))
      if m != max(LADDER):  # the trunk is itself a separate WSD run of its length
        units.append(dict(base, name=f"wsd_M{m}_s{seed}", **{"optim.schedule": "wsd"}))
      units.append(dict(base, name=f"cosine_M{m}_s{seed}", **{"optim.schedule": "cosine"}))
  return units


def get_config(arg: str = ""):
  variant = config_lib.parse_arg(arg, _KNOBS, "configs/ladder_check.py")
  if variant["seeds"] < 1:
    raise ValueError(f"configs/ladder_check.py: seeds={variant['seeds']} must be at least 1")
  config = config_lib.default_config()
  config.optim.cooldown_fraction = COOLDOWN_FRACTION
  config.launch.max_parallel = 2
  config.sweep = get_sweep(variant)
  return config
