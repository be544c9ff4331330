"""Expand a study config's sweep into unit configs.

`config.sweep` is a list of override dicts (from a config's `get_sweep()`). Keys:
  dataset           a name in `config.datasets` (partial data configs); its fields
                    are laid over config.data and `config.dataset` records the name
  model             a preset name (model.PRESETS); replaces config.model whole
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

from scaling_jax import model as model_lib

_SHORT = {"dataset": "", "model": "", "tokens_per_param": "M", "seed": "s"}


def unit_name(overrides: dict) -> str:
  """A stable, readable run name from an override dict."""
  if overrides.get("name"):
    return str(overrides["name"])
  parts = []
  order = list(_SHORT)
  for key in sorted(overrides, key=lambda k: (order.index(k) if k in _SHORT
                                              else len(order), k)):
    value = overrides[key]
    value = f"{value:g}" if isinstance(value, float) else str(value)
    parts.append(_SHORT.get(key, key.rsplit(".", 1)[-1] + "=") + value)
  return "_".join(parts).replace("/", "-")


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


def _flatten(prefix: str, tree) -> dict:
  if not hasattr(tree, "items"):
    return {prefix: tree}
  out = {}
  for key, value in tree.items():
    out.update(_flatten(f"{prefix}.{key}", value))
  return out


def _apply_dataset(unit, name: str) -> None:
  datasets = unit.get("datasets") or {}
  if name not in datasets:
    raise ValueError(f"sweep override dataset={name!r}: config.datasets has no "
                     f"entry {name!r}; known: {sorted(datasets)}")
  for key, value in _flatten("data", datasets[name]).items():
    _set_leaf(unit, key, value)
  unit.dataset = str(name)


def _typed(key: str, value, kind):
  try:
    return kind(value)
  except (TypeError, ValueError):
    raise ValueError(f"sweep override {key}={value!r} must be a "
                     f"{kind.__name__}") from None


def unit_config(config, overrides: dict):
  """A copy of `config` with one unit's overrides applied and its name set."""
  unit = config.copy_and_resolve_references()
  unit.unlock()
  for key, value in overrides.items():
    if key == "model":
      unit.model = dataclasses.asdict(model_lib.preset(value))
    elif key == "dataset":
      _apply_dataset(unit, value)
    elif key == "tokens_per_param":
      unit.train.tokens_per_param = _typed(key, value, float)
    elif key == "seed":
      unit.seed = _typed(key, value, int)
    elif key != "name":
      _set_leaf(unit, key, value)
  unit.name = unit_name(overrides)
  unit.sweep = []
  return unit


def expand(config) -> list:
  """Unit configs of the sweep (or the config itself when it names no sweep)."""
  overrides = list(config.get("sweep") or [])
  units = [unit_config(config, o) for o in overrides] or [config]
  names = [u.get("name") or "run" for u in units]
  duplicates = sorted({n for n in names if names.count(n) > 1})
  if duplicates:
    raise ValueError(f"config.sweep gives several units the name(s) {duplicates}; "
                     f"add a 'name' or a distinguishing key to each override")
  return units
