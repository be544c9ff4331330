"""`python -m scaling_jax.main ARGV` in the test's own process, as a new process would
parse it: the tests of refusals, hostile input and the README's commands share it."""
import sys

from absl import flags

from scaling_jax import main as main_lib


def run_main(argv, monkeypatch, capsys) -> tuple[int, str]:
  """(exit status, stderr) of `python -m scaling_jax.main ARGV`, in this process."""
  argv = ["scaling_jax.main", *argv]
  monkeypatch.setattr(sys, "argv", argv)  # ml_collections reads overrides from it
  # A fresh parse, as in a new process: ml_collections defines a flag for each
  # override it is given, and refuses to define one twice.
  for name in [n for n in flags.FLAGS if n.startswith("config.")]:
    delattr(flags.FLAGS, name)
  flags.FLAGS.unparse_flags()
  try:
    main_lib.main(main_lib.parse_flags(argv))
    code = 0
  except SystemExit as e:
    code = e.code
  return code, capsys.readouterr().err
