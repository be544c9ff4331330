"""The last fit, kept beside the report so a second call only redraws it.

The key hashes everything the fit depends on: its inputs (the source's rows and task
chance levels, config.study) and the code (versions of the package and its numeric
dependencies, plus a digest of every source file of the package, since an editable
install changes code without changing its version).

A workdir is shared, copied and downloaded, so opening its cache must never run
code: the fit is stored as data alone, in one `.npz` read with
`allow_pickle=False`. Its arrays hold the numbers; one uint8 array holds a JSON
tree that says how to rebuild the objects: dataclasses of this package by their
dotted name (nothing outside `scaling_jax` is ever looked up), laws by name
(code tests them by identity, `law is forms.OVERTRAINING`), tuples, dicts and
non-finite floats. Anything else (a file that does not parse, a name outside the
package, a class that is not one of its dataclasses) is ignored with a warning and
the fit is made afresh. A fit holding a type the format cannot say is not cached.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import io
import json
import logging
import math
import pathlib
import platform
import sys
import types

import numpy as np

from scaling_jax.laws import forms

FILENAME = ".fit_cache.npz"
_PACKAGE = "scaling_jax"
_PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[1]
_TREE = "__tree__"


class CacheFormatError(ValueError):
  """The file is not a fit cache this code wrote, or holds what it cannot say."""


def package_versions() -> dict[str, str]:
  """Versions of Python, this package and what its numbers depend on."""
  versions = {"python": platform.python_version()}
  for name in ("scaling_jax", "jax", "jaxlib", "jaxopt", "numpy", "scipy", "matplotlib"):
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = "not installed"
  return versions


def key(rows, task_baselines, study) -> str:
  """Hash of the fit's inputs and of the code that computes it."""
  digest = hashlib.sha256(json.dumps(
      [rows, task_baselines, study.to_dict(), package_versions()], sort_keys=True,
      default=str).encode())
  for path in sorted(_PACKAGE_DIR.rglob("*.py")):
    digest.update(path.read_bytes())
  return digest.hexdigest()


class _Encoder:
  """Turns a fit into a JSON tree plus named arrays."""

  def __init__(self):
    self.arrays: dict[str, np.ndarray] = {}

  def __call__(self, obj):
    if isinstance(obj, np.generic):  # before float: np.float64 is a float subclass
      return {"__scalar__": self(np.asarray(obj))}
    if obj is None or isinstance(obj, (bool, str)):
      return obj
    if isinstance(obj, int) and not isinstance(obj, bool):
      return obj
    if isinstance(obj, float):
      return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, np.ndarray):
      if obj.dtype.hasobject:
        raise CacheFormatError("an array of Python objects")
      name = f"a{len(self.arrays)}"
      self.arrays[name] = obj
      return {"__array__": name}
    if isinstance(obj, forms.Law):
      return {"__law__": obj.name}
    if isinstance(obj, list):
      return [self(v) for v in obj]
    if isinstance(obj, tuple):
      return {"__tuple__": [self(v) for v in obj]}
    if isinstance(obj, dict):
      return {"__dict__": [[self(k), self(v)] for k, v in obj.items()]}
    if isinstance(obj, types.SimpleNamespace):
      return {"__namespace__": {k: self(v) for k, v in vars(obj).items()}}
    if dataclasses.is_dataclass(obj) and type(obj).__module__.startswith(_PACKAGE + "."):
      cls = type(obj)
      return {"__dataclass__": f"{cls.__module__}:{cls.__qualname__}",
              "fields": {f.name: self(getattr(obj, f.name))
                         for f in dataclasses.fields(obj)}}
    raise CacheFormatError(f"a {type(obj).__name__}")


def _dataclass(name: str):
  """The package's dataclass called `name` ('module:Qualname'), never anything else."""
  module_name, _, qualname = name.partition(":")
  if not (module_name.startswith(_PACKAGE + ".") and qualname.isidentifier()):
    raise CacheFormatError(f"class {name!r} is not one of {_PACKAGE}'s")
  module = sys.modules.get(module_name) or importlib.import_module(module_name)
  cls = getattr(module, qualname, None)
  if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)
          and cls.__module__ == module_name):
    raise CacheFormatError(f"{name!r} is not a dataclass of {_PACKAGE}")
  return cls


def _decode(node, arrays):
  if isinstance(node, list):
    return [_decode(v, arrays) for v in node]
  if not isinstance(node, dict):
    return node
  if "__float__" in node:
    return float(node["__float__"])
  if "__array__" in node:
    return arrays[node["__array__"]]
  if "__scalar__" in node:
    return _decode(node["__scalar__"], arrays)[()]
  if "__law__" in node:
    return forms.get_law(node["__law__"])
  if "__tuple__" in node:
    return tuple(_decode(v, arrays) for v in node["__tuple__"])
  if "__dict__" in node:
    return {_hashable(_decode(k, arrays)): _decode(v, arrays) for k, v in node["__dict__"]}
  if "__namespace__" in node:
    return types.SimpleNamespace(**{k: _decode(v, arrays)
                                    for k, v in node["__namespace__"].items()})
  if "__dataclass__" in node:
    cls = _dataclass(node["__dataclass__"])
    values = {k: _decode(v, arrays) for k, v in node["fields"].items()}
    init = {f.name for f in dataclasses.fields(cls) if f.init}
    obj = cls(**{k: v for k, v in values.items() if k in init})
    for name, value in values.items():  # fields the constructor does not take
      if name not in init:
        object.__setattr__(obj, name, value)
    return obj
  raise CacheFormatError(f"an unknown node with keys {sorted(node)}")


def _hashable(value):
  return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def dumps(cache_key: str, fit) -> bytes | None:
  """The fit as the bytes of an .npz file; None (and a log line) if it cannot be said."""
  encode = _Encoder()
  try:
    tree = json.dumps({"key": cache_key, "fit": encode(fit)}, allow_nan=False)
  except (CacheFormatError, ValueError) as e:
    logging.warning("the fit is not cached (it holds %s); a second call refits", e)
    return None
  buffer = io.BytesIO()
  np.savez(buffer, **encode.arrays, **{_TREE: np.frombuffer(tree.encode(), np.uint8)})
  return buffer.getvalue()


def load(path, cache_key: str):
  """The fit stored at `path` under `cache_key`, else None (missing, stale, unreadable,
  or anything but data this module wrote)."""
  path = pathlib.Path(path)
  if not path.exists():
    return None
  try:
    with np.load(path, allow_pickle=False) as npz:
      arrays = {name: npz[name] for name in npz.files}
    tree = json.loads(arrays.pop(_TREE).tobytes().decode())
    if tree.get("key") != cache_key:
      return None
    return _decode(tree["fit"], arrays)
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("ignoring unreadable fit cache %s (%s); fitting afresh", path, e)
    return None
