"""Expand a study config's sweep into unit configs.

`config.sweep` is a list of override dicts (from a config's `get_sweep()`). Keys:
  dataset           a name in `config.datasets` (partial data configs); its fields
                    are laid over config.data and `config.dataset` records the name
  model             a preset name (model.PRESETS): the unit's model is that preset
                    under the config's explicit model fields, i.e. those where
                    config.model differs from its own named preset (so
                    `--config.model.compute_dtype=bfloat16` reaches every unit)
  tokens_per_param  M, i.e. config.train.tokens_per_param
  seed              config.seed
  name              optional run name; otherwise built from the keys above
  <a.dotted.path>   any other config leaf, e.g. 'optim.peak_lr'

`scaling_jax.launch` turns the unit configs into work units and trains them; each
unit trains in `workdir/runs/<name>/`, and a unit whose records hold a final row is
finished and skipped, so re-running a killed sweep resumes it.
"""
from __future__ import annotations

import dataclasses
import re

from scaling_jax import model as model_lib

_SHORT = {"dataset": "", "model": "", "tokens_per_param": "M", "seed": "s"}


def _part(key: str, value) -> str:
  value = f"{value:g}" if isinstance(value, float) else str(value)
  return _SHORT.get(key, key.rsplit(".", 1)[-1] + "=") + value


def unit_name(overrides: dict, keys=None) -> str:
  """A stable, readable run name from an override dict.

  Built from the main keys (dataset, model, M, seed) and, of the dotted keys, those
  in `keys` (default: all of them); an explicit 'name' wins.
  """
  if overrides.get("name"):
    return str(overrides["name"])
  named = [k for k in overrides if k in _SHORT or keys is None or k in keys]
  order = list(_SHORT)
  named.sort(key=lambda k: (order.index(k) if k in _SHORT else len(order), k))
  return "_".join(_part(k, overrides[k]) for k in named).replace("/", "-")


def unit_names(overrides: list[dict]) -> list[str]:
  """Names of a sweep's units: the main keys, plus the dotted keys needed to tell
  apart units that share them (so per-size hyperparameters stay out of names)."""
  base = [unit_name(o, keys=()) for o in overrides]
  names = []
  for name, o in zip(base, overrides):
    group = [other for n, other in zip(base, overrides) if n == name]
    varying = {k for k in o if k not in _SHORT
               and len({repr(g.get(k)) for g in group}) > 1}
    names.append(unit_name(o, keys=varying))
  return names


def _set_leaf(config, key: str, value) -> None:
  """Sets the dotted `key` of `config`, naming the field when it is unknown."""
  *parents, leaf = key.split(".")
  node = config
  for part in parents:
    if part not in node:
      raise ValueError(f"sweep override {key!r}: config has no field {part!r}")
    node = node[part]
  if leaf not in node:
    raise ValueError(f"sweep override {key!r}: config has no field {leaf!r}; "
                     f"fields there: {sorted(node.keys())}")
  try:
    node[leaf] = value
  except TypeError as e:  # ConfigDict refuses a value of another type
    raise ValueError(f"sweep override {key!r}={value!r}: wrong type for "
                     f"config.{key} ({e})") from None


def flatten(tree, prefix: str = "") -> dict:
  """A nested dict or ConfigDict as {'dotted.path': leaf} under `prefix`."""
  if not hasattr(tree, "items"):
    return {prefix: tree}
  out = {}
  for key, value in tree.items():
    out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
  return out


def _apply_dataset(unit, name: str) -> None:
  datasets = unit.get("datasets") or {}
  if name not in datasets:
    raise ValueError(f"sweep override dataset={name!r}: config.datasets has no "
                     f"entry {name!r}; known: {sorted(datasets)}")
  for key, value in flatten(datasets[name], "data").items():
    _set_leaf(unit, key, value)
  unit.dataset = str(name)


def _typed(key: str, value, kind):
  try:
    return kind(value)
  except (TypeError, ValueError):
    raise ValueError(f"sweep override {key}={value!r} must be a "
                     f"{kind.__name__}") from None


def explicit_model_fields(model_config) -> dict:
  """The fields where `config.model` differs from the preset it names (or, for a
  model that names no preset, from ModelConfig's defaults)."""
  name = model_config.get("name")
  base = (model_lib.preset(name) if name in model_lib.PRESETS
          else model_lib.ModelConfig())
  return {k: v for k, v in model_config.items()
          if k != "name" and hasattr(base, k) and getattr(base, k) != v}


def _preset_under(model_config, preset: str) -> dict:
  fields = dataclasses.asdict(model_lib.preset(preset))
  fields.update(explicit_model_fields(model_config))
  return fields


def _apply_order(key: str) -> int:
  # The preset first, then the dataset, then leaves: a leaf like 'model.z_loss' in
  # the same override dict must land on the preset, not be replaced by it.
  return {"model": 0, "dataset": 1}.get(key, 2)


def unit_config(config, overrides: dict, name: str | None = None):
  """A copy of `config` with one unit's overrides applied and its name set."""
  unit = config.copy_and_resolve_references()
  unit.unlock()
  for key in sorted(overrides, key=_apply_order):
    value = overrides[key]
    if key == "model":
      unit.model = _preset_under(config.model, value)
    elif key == "dataset":
      _apply_dataset(unit, value)
    elif key == "tokens_per_param":
      unit.train.tokens_per_param = _typed(key, value, float)
    elif key == "seed":
      unit.seed = _typed(key, value, int)
    elif key != "name":
      _set_leaf(unit, key, value)
  unit.name = name or unit_name(overrides)
  unit.sweep = []
  return unit


def fields_set(config, overrides: dict) -> set[str]:
  """The dotted config fields one unit's overrides set, as unit_config sets them
  (a preset sets model.name; its other fields yield to the config's explicit ones)."""
  fields = {"name"}
  for key, value in overrides.items():
    if key == "model":
      fields.add("model.name")
    elif key == "dataset":
      fields.add("dataset")
      fields.update(flatten((config.get("datasets") or {}).get(value, {}), "data"))
    elif key == "tokens_per_param":
      fields.add("train.tokens_per_param")
    elif key == "seed":
      fields.add("seed")
    elif key != "name":
      fields.add(key)
  return fields


# A unit's name becomes a directory under WORKDIR/runs: one path component of
# ordinary characters, so no name can reach outside the workdir ('../x', '/etc')
# or hide ('.x'), whatever a sweep override or config.name says.
_UNIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=@+,-]*")


def check_unit_name(name: str, where: str) -> None:
  """Refuses a run name that is not one safe directory name."""
  if not _UNIT_NAME.fullmatch(name) or ".." in name or len(name) > 200:
    raise ValueError(
        f"{where}: run name {name!r} cannot be a directory under WORKDIR/runs; use "
        f"letters, digits and _ . = @ + , - only, starting with a letter or digit, "
        f"without '..' (at most 200 characters)")


def expand(config) -> list:
  """Unit configs of the sweep (or the config itself when it names no sweep)."""
  overrides = list(config.get("sweep") or [])
  units = [unit_config(config, o, name)
           for o, name in zip(overrides, unit_names(overrides))] or [config]
  names = [u.get("name") or "run" for u in units]
  for name in names:
    check_unit_name(name, "config.sweep" if overrides else "config.name")
  duplicates = sorted({n for n in names if names.count(n) > 1})
  if duplicates:
    raise ValueError(f"config.sweep gives several units the name(s) {duplicates}; "
                     f"add a 'name' or a distinguishing key to each override")
  return units
