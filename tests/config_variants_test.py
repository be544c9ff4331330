"""`--help` lists every study config's variants, from the VARIANTS each config file
declares; every variant listed builds, and every variant a config accepts is listed."""
import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from conftest import load_config
from conftest import load_config_module
from scaling_jax import config_variants

CONFIG_NAMES = sorted(p.stem for p in (REPO_ROOT / "configs").glob("*.py"))


def _variants(name: str) -> dict[str, str]:
  return config_variants.declared(REPO_ROOT / "configs" / f"{name}.py")[1]


def _accepted(name: str) -> list[str]:
  """The knob names get_config accepts, from config_lib.parse_arg's own refusal."""
  with pytest.raises(ValueError, match="unknown variant") as refused:
    load_config_module(name).get_config("no_such_variant")
  return re.search(r"known: (.*)$", str(refused.value)).group(1).split(", ")


def test_the_study_configs_are_the_ones_expected():
  # A new config file is listed by --help once it declares VARIANTS (checked below).
  assert {"grid", "testbed", "curves"} <= set(CONFIG_NAMES)


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_every_config_declares_its_variants(name):
  assert _variants(name), f"configs/{name}.py declares no VARIANTS"
  # What ast read is what the module holds when it runs.
  assert _variants(name) == load_config_module(name).VARIANTS


@pytest.mark.parametrize("name, variant", [
    (name, variant) for name in CONFIG_NAMES for variant in _variants(name)])
def test_every_variant_listed_builds(name, variant):
  load_config(name, variant)


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_the_variants_listed_give_different_configs(name):
  built = {variant: load_config(name, variant).to_json() for variant in _variants(name)}
  assert len(set(built.values())) == len(built), sorted(built)


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_every_variant_a_config_accepts_is_listed(name):
  listed = {variant.partition("=")[0] for variant in _variants(name)}
  missing = [knob for knob in _accepted(name) if knob not in listed]
  assert not missing, f"configs/{name}.py accepts {missing} but VARIANTS omits them"


def test_every_training_set_of_the_testbed_is_listed():
  listed = {v.partition("=")[2] for v in _variants("testbed") if v.startswith("train=")}
  assert listed == set(load_config_module("testbed").TRAIN_SETS)


def test_help_lists_each_config_and_variant_from_any_directory(tmp_path):
  # From another directory: the configs are found beside the package, not the cwd.
  proc = subprocess.run([sys.executable, "-m", "scaling_jax.main", "--help"],
                        cwd=tmp_path, capture_output=True, text=True, timeout=120)
  assert "Traceback" not in proc.stderr, proc.stderr
  assert proc.returncode == 0, proc.returncode  # asked-for help is no failure
  assert "--config.study.fit.loss=auto|squares|huber" in proc.stdout
  # What a user runs comes first; the error policy after every config's variants.
  opening = "\n".join(proc.stdout.splitlines()[:12])
  assert "python -m scaling_jax.main --config=configs/testbed.py" in opening, opening
  assert "python -m scaling_jax.main --config=configs/grid.py --workdir=" in opening
  assert (proc.stdout.index("Configs and their variants")
          < proc.stdout.index("Errors. Input a user can fix"))
  listing = proc.stdout.split("Configs and their variants", 1)[1]
  listing = listing.split("\nflags:", 1)[0]
  for name in CONFIG_NAMES:
    assert f"  configs/{name}.py  " in listing
    for variant, what in _variants(name).items():
      shown = f":{variant}" if variant else "(none)"
      line = rf"^    {re.escape(shown)} +{re.escape(what.split()[0])}"
      assert re.search(line, listing, re.MULTILINE), (name, variant, listing)


def test_help_names_a_config_whose_variants_cannot_be_read(tmp_path):
  (tmp_path / "good.py").write_text('"""A study."""\nVARIANTS = {"x=1": "one x"}\n')
  (tmp_path / "plain.py").write_text('"""No variants."""\n')
  (tmp_path / "broken.py").write_text("VARIANTS = {\n")
  text = config_variants.help_text(tmp_path)
  assert "configs/good.py  A study." in text and ":x=1" in text
  assert "configs/plain.py  No variants.\n    (no VARIANTS declared)" in text
  assert "configs/broken.py: cannot read its VARIANTS (SyntaxError" in text
  assert config_variants.help_text(tmp_path / "missing") == ""
