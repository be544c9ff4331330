r"""Command line: run a study from an ml-collections config.

  python -m scaling_jax.main --config=configs/grid.py --workdir=OUT
  python -m scaling_jax.main --config=configs/testbed.py:train=rpj \
      --config.testbed_dir=../shared/data/openlm_testbed --workdir=OUT

Flags live here only; everything else is `scaling_jax.study.run(config, workdir)`,
which notebooks call directly. The config is locked, so an override of a field it
lacks fails with ml_collections' own message and its "did you mean" hint.
"""
from absl import app
from absl import flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Study config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for all outputs.")
_TRACEBACK = flags.DEFINE_bool("traceback", False, "On a refused input, print the "
                               "Python traceback too (for reporting a bug).")
flags.mark_flags_as_required(["config", "workdir"])


def _message(error: BaseException) -> str:
  """ml_collections' own text (with its "did you mean"), unwrapped from the
  KeyError it wraps in an AttributeError."""
  while error.args and isinstance(error.args[0], BaseException):
    error = error.args[0]
  return str(error.args[0]) if error.args else str(error)


def _parse_flags(argv):
  """absl parsing; an override of a field the config lacks ends in one message.

  ml_collections raises it from deep inside flag parsing: the user needs the flag
  and ml_collections' own hint, not the traceback.
  """
  try:
    return flags.FLAGS(argv)
  except (KeyError, AttributeError) as e:
    overrides = [a for a in argv[1:] if a.startswith("--config.")]
    raise SystemExit(f"error: the config has no field {_message(e)}\n"
                     f"  (overrides given: {' '.join(overrides)})") from None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  from scaling_jax import study  # imported late so --help stays fast
  try:
    study.run(_CONFIG.value, _WORKDIR.value)
  except ValueError as e:
    # Every refusal of bad input (a config field, a runs table, a testbed file, a
    # fit the data cannot support) is a ValueError whose message names the file,
    # field and fix: the user needs that line, not the stack under it.
    if _TRACEBACK.value:
      raise
    raise SystemExit(f"error: {e}\n(--traceback shows where it was raised)") from None


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
