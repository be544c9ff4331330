r"""Run a scaling study: train (if the config has a sweep), fit the laws, write a report.

  python -m scaling_jax.main --config=configs/testbed.py:train=rpj \
      --config.runs.path=../shared/data/openlm_testbed --workdir=/tmp/testbed
        fit the released testbed (no training, about a minute)
  python -m scaling_jax.main --config=configs/grid.py --workdir=/tmp/study
        the default study: train seven tiny models, fit, predict two (7 minutes)
  python -m scaling_jax.main --config=configs/grid.py:paper \
      --config.launch.dry_run=True --workdir=/tmp/paper
        list the paper's 104 runs with their FLOPs, training nothing

The answer is WORKDIR/report/summary.md (targets, verdict, laws, warnings); the
command ends by printing each target's measured and predicted values. Any config
field can be overridden with --config.FIELD=VALUE; a config file's variants follow
the colon (listed below).
"""
import os
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from scaling_jax import config_variants
from scaling_jax import refusals
from scaling_jax.laws import prediction_interval

# The rules a user meets only when something goes wrong, or when reading closely:
# the end of --help, after what they run.
_POLICY = """\
Fit objective: --config.study.fit.loss=auto|squares|huber (Huber on log residuals,
turning linear past --config.study.fit.huber_delta, default 1e-3). auto: least
squares for final-point studies, Huber for curve and table fits (measured on
../shared by benchmarks/objective_choice.py). The other objective is fitted too;
summary.md shows both laws where they differ by more than the fit's intervals.

Errors. Input a user can fix ends the command with one line, `error: ...`
(continued on indented lines at most), and exit status 2, as argparse does for bad
arguments: missing or unknown flags, a config file that is missing or refuses its
variant, a value of the wrong type, and every refusal from the study. The study's
refusals are ValueErrors that the package raises itself (fitting.StudyError,
runs.RunsError, the testbed's TestbedError... each naming the file, field and fix)
and the OSErrors about a path (missing, not a directory, no permission); see
refusals.py. Anything else is a bug and keeps its traceback, a ValueError from
inside numpy or jax too; `--traceback` shows it for a refusal too. A
`--config.<field>` override that the sweep replaces in every unit would change
nothing, so it is refused, naming the field; one the sweep replaces in some units
applies to the rest, with a warning line naming those it does not reach.

Trust. A config file is Python: `--config=` runs it (and `--help` runs every file
under configs/ to list its variants), so run configs you trust, as any script; a
workdir, by contrast, is only read as data, and nothing is created in it before the
input is accepted. Flags live here only; everything else is
`scaling_jax.study.run(config, workdir)`, which notebooks call directly."""

# absl's --help prints this module's docstring: end it with each config's variants,
# read from the VARIANTS each config file declares, so the list cannot go stale.
__doc__ += ("\n" + config_variants.help_text() + "\n\n" + prediction_interval.help_text()
            + "\n\n" + _POLICY)

_CONFIG = config_flags.DEFINE_config_file("config", None, "Study config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for all outputs.")
_TRACEBACK = flags.DEFINE_bool("traceback", False, "On a refused input, print the "
                               "Python traceback too (for reporting a bug).")

USAGE = ("usage: python -m scaling_jax.main --config=configs/grid.py[:variant] "
         "--workdir=OUT [--config.FIELD=VALUE ...] [--traceback]")
USER_ERROR_EXIT = 2
_TRACEBACK_HINT = "(--traceback shows where it was raised)"


def refuse(message: str, *more: str, status: int = USER_ERROR_EXIT):
  """Prints `error: message` (continuation lines indented) and exits with `status`."""
  lines = [line for part in (message, *more) for line in str(part).splitlines()]
  lines = lines or [""]
  body = [lines[0]] + [l if l.startswith(" ") else f"  {l}" for l in lines[1:]]
  print("error: " + "\n".join(body), file=sys.stderr, flush=True)
  raise SystemExit(status)


def _message(error: BaseException) -> str:
  """ml_collections' own text (with its "did you mean"), unwrapped from the
  KeyError it wraps in an AttributeError."""
  while error.args and isinstance(error.args[0], BaseException):
    error = error.args[0]
  return str(error.args[0]) if error.args else str(error)


def _innermost(error: BaseException) -> BaseException:
  # ml_collections re-raises a config file's own error with the traceback as text,
  # and absl wraps that again: the first error raised is the one that explains. An
  # error raised `from None` replaced its context on purpose (parse_arg's "variant
  # seeds='abc' must be an integer" over int()'s own message): the walk stops there.
  while error.__context__ is not None and not error.__suppress_context__:
    error = error.__cause__ or error.__context__
  return error


def _config_path(argv) -> str | None:
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      return arg.split("=", 1)[1]
    if arg == "--config" and i + 1 < len(argv):
      return argv[i + 1]
  return None


_HELP_FLAGS = ("--help", "-help", "-?", "--helpshort", "--helpfull")


def parse_flags(argv):
  """absl parsing; every mistake in the flags ends in one message, exit status 2.

  ml_collections raises from deep inside flag parsing: the user needs the flag
  and ml_collections' own hint, not the traceback.
  """
  path = _config_path(argv)
  if path is not None and path.split(":", 1)[0]:
    file = path.split(":", 1)[0]
    if not os.path.isfile(file):
      refuse(f"--config={path}: no config file {file!r} (relative to "
             f"{os.getcwd()}); e.g. --config=configs/grid.py", USAGE)
  try:
    rest = flags.FLAGS(argv)
  except SystemExit as e:
    # absl's help flags print the help, then exit with status 1, which scripts and
    # CI read as a failure; help that was asked for is a success.
    if e.code == 1 and any(a.split("=")[0] in _HELP_FLAGS for a in argv[1:]):
      raise SystemExit(0) from None
    raise
  except (KeyError, AttributeError) as e:
    overrides = [a for a in argv[1:] if a.startswith("--config.")]
    refuse(f"the config has no field {_message(e)}",
           f"(overrides given: {' '.join(overrides)})")
  except flags.Error as e:
    text = str(e)
    if "Traceback" in text:  # the config file raised: its own message says why
      cause = _innermost(e)
      said = cause if isinstance(cause, ValueError) else f"{type(cause).__name__}: {cause}"
      text = f"--config={path}: {said}"
    refuse(text, USAGE)
  missing = [f"--{f.name}" for f in (_CONFIG, _WORKDIR) if f.value is None]
  if missing:
    refuse(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required",
           USAGE)
  if len(rest) > 1:
    refuse(f"unexpected argument(s) {rest[1:]}; every setting is a flag",
           USAGE)
  return rest


def check_overrides(config) -> None:
  """Refuses a `--config.` override the sweep replaces in every unit; warns when
  it replaces it in some (see the module docstring)."""
  from scaling_jax.launch import units  # pylint: disable=g-import-not-at-top
  given = config_flags.get_override_values(flags.FLAGS["config"])
  shadowed = units.shadowed_fields(config, sorted(given))
  count = len(config.sweep)
  for field, names in shadowed.items():
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    override = f"--config.{field}={given[field]}"
    if len(names) == count:
      refuse(f"{override} has no effect: config.sweep sets config.{field} in every "
             f"unit ({shown})",
             "drop the override, or change the sweep (a variant of the config file, "
             "e.g. configs/grid.py:seeds=3 for seeds)")
    print(f"WARNING: {override} reaches only {count - len(names)} of {count} units: "
          f"config.sweep sets config.{field} in {shown}", file=sys.stderr, flush=True)


def main(argv):
  del argv  # parse_flags refused any argument that is not a flag
  from scaling_jax import study  # imported late so --help stays fast
  try:
    check_overrides(_CONFIG.value)
    study.run(_CONFIG.value, _WORKDIR.value)
  except Exception as e:  # pylint: disable=broad-except
    # A refusal's message names the file, field and fix: the user needs that line,
    # not the stack under it. A bug keeps its traceback.
    if _TRACEBACK.value:
      raise
    if isinstance(e, refusals.Reported):
      refuse(str(e), status=e.exit_status)
    disk = refusals.disk_problem(e)
    if disk:
      refuse(disk, _TRACEBACK_HINT)
    if not refusals.is_refusal(e):
      raise
    refuse(str(e), _TRACEBACK_HINT)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
