"""The last fit, kept beside the report so a second call only redraws it.

The key hashes everything the fit depends on: its inputs (the source's rows and task
chance levels, config.study) and the code (versions of the package and its numeric
dependencies, plus a digest of every source file of the package, since an editable
install changes code without changing its version). Laws are pickled by name: code
tests them by identity (`law is forms.OVERTRAINING`).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import logging
import pathlib
import pickle
import platform

from scaling_jax.laws import forms

FILENAME = ".fit_cache.pkl"
_PACKAGE_DIR = pathlib.Path(__file__).parent


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


class _LawPickler(pickle.Pickler):

  def persistent_id(self, obj):
    return obj.name if isinstance(obj, forms.Law) else None


class _LawUnpickler(pickle.Unpickler):

  def persistent_load(self, pid):
    return forms.get_law(pid)


def load(path, cache_key: str):
  """The fit stored at `path` under `cache_key`, else None (missing, stale, unreadable)."""
  try:
    with pathlib.Path(path).open("rb") as f:
      cached = _LawUnpickler(f).load()
  except FileNotFoundError:
    return None
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("ignoring unreadable fit cache %s (%s); fitting afresh", path, e)
    return None
  return cached["fit"] if cached.get("key") == cache_key else None


def dumps(cache_key: str, fit) -> bytes:
  buffer = io.BytesIO()
  _LawPickler(buffer).dump({"key": cache_key, "fit": fit})
  return buffer.getvalue()
