r"""Which peak learning rate each tiny size wants, under the WSD schedule at M = 20.

  python experiments/lr_per_size/compare.py --workdir=/tmp/lr_per_size

The default study trains every size at one peak LR (3e-3); a law fitted across
sizes assumes each is trained about as well as it can be. This sweep trains the
ladder main job's fit sizes (configs/grid.py:ladder) at M = 20 with the WSD
schedule at four peak LRs each; experiments/lr_per_size/README.md reads it.

Variants (after the colon): m=<M> (default 20), seeds=K (default 1).
"""
from scaling_jax import config_lib

SIZES = ("tiny-0", "tiny-0.5", "tiny-1", "tiny-2")
PEAK_LRS = (1e-3, 3e-3, 1e-2, 3e-2)

_KNOBS = dict(m=20.0, seeds=1)
VARIANTS = {"": "four tiny sizes x four peak LRs at M = 20, WSD, one seed",
            "m=40": "the token multiplier (default 20)",
            "seeds=2": "seeds per cell (default 1)"}


def unit_name(size: str, lr: float, seed: int) -> str:
  return f"{size}_lr{lr:g}" + (f"_s{seed}" if seed else "")


def get_config(arg: str = ""):
  variant = config_lib.parse_arg(arg, _KNOBS, "configs/lr_per_size.py")
  config = config_lib.default_config()
  config.optim.schedule = "wsd"
  if variant["seeds"] < 1:
    raise ValueError(f"configs/lr_per_size.py: seeds={variant['seeds']} must be at least 1")
  config.sweep = [dict(model=size, tokens_per_param=variant["m"], seed=seed,
                       name=unit_name(size, lr, seed), **{"optim.peak_lr": lr})
                  for size in SIZES for lr in PEAK_LRS for seed in range(variant["seeds"])]
  return config
