"""Which document source a data config names: the built-in ones or the TF-backed.

Kept apart from sources.py because the TF-backed sources (external.py) build on
sources.py; dispatching from here keeps the imports flowing one way.
"""
from __future__ import annotations

from scaling_jax.data.sources import EmbeddedSource, FilesSource


def make_source(cfg):
  """The document source a resolved data config names."""
  if cfg.source == "embedded":
    return EmbeddedSource(cfg.embedded.stdlib_dir, cfg.embedded.include_tests,
                          cfg.validation_fraction)
  if cfg.source == "files":
    f = cfg.files
    return FilesSource(f.path, f.validation_path, f.ood_path, f.text_field, f.format,
                       cfg.validation_fraction)
  if cfg.source in ("tfds", "seqio"):
    from scaling_jax.data import external  # pylint: disable=g-import-not-at-top
    return external.make_source(cfg)
  raise ValueError(f"data config field 'source' is {cfg.source!r}; known sources: "
                   "['embedded', 'files', 'tfds', 'seqio']")
