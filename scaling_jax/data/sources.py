"""Document sources: the embedded corpus (this interpreter's standard library) and
local text / JSON-lines files. TFDS and seqio live in `external.py`, imported only
when chosen, because they bring TensorFlow.

A source yields raw text documents per split in a fixed order and gives a cheap
`content_fingerprint()` (a listing, not a read) that keys the prepared-data cache.
Both sources here can also be read in parts, `shard_documents(split, i)` for i in
range(num_document_shards(split)), whose concatenation is `documents(split)`: the
unit of work when preparing in parallel (parallel_prepare.py).

The embedded corpus is split three ways:
  ood         the language reference prose in pydoc_data/topics.py (one document per
              topic): English documentation, unlike the code the model trains on;
  validation  the .py files whose relative path hashes below `validation_fraction`;
  train       every other .py file.
Assignment hashes each relative POSIX path on its own, so it is the same on every
machine with the same Python, and adding or removing one file moves no other file.
"""
from __future__ import annotations

import ast
import functools
import glob
import gzip
import hashlib
import json
import os
import pathlib
import sys
import sysconfig
from typing import Iterator

SPLITS = ("train", "validation", "ood")
# Test packages are dropped by many installs (Debian, Docker's python images), so
# leaving them out by default keeps the corpus equal across installs of a version.
_TEST_DIRS = frozenset({"test", "tests", "idle_test"})
_NEVER_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__",
                         "pydoc_data"})
# Embedded .py files per document shard when preparing in parallel: ~25 shards.
FILES_PER_SHARD = 64


def _hash_fraction(key: str) -> float:
  """A uniform number in [0, 1) fixed by `key` alone (stable across machines)."""
  digest = hashlib.sha256(("scaling_jax/split/" + key).encode("utf-8")).digest()
  return int.from_bytes(digest[:8], "big") / 2.0**64


def _read_text(path: pathlib.Path) -> str:
  # A few files are not UTF-8; replacing their bad bytes keeps them deterministic.
  return path.read_bytes().decode("utf-8", errors="replace")


def _utf8_lines(lines, path: pathlib.Path) -> Iterator[str]:
  """The lines of a JSON-lines file, or an error naming the file if it is not
  UTF-8 (a JSON string may hold any text, but the file itself must be UTF-8)."""
  try:
    yield from lines
  except UnicodeDecodeError as e:
    raise ValueError(
        f"{path}: not UTF-8 text (byte 0x{e.object[e.start:e.start + 1].hex()} cannot "
        f"be decoded); save it as UTF-8 (e.g. iconv -f latin1 -t utf-8), or set data "
        f"config 'files.format' to 'text' to read it as plain text with bad bytes "
        f"replaced") from None


def unknown_split(split: str, known) -> ValueError:
  return ValueError(f"unknown split {split!r}; this source has {list(known)}")


@functools.lru_cache(maxsize=8)
def _stdlib_files(root: str, include_tests: bool) -> tuple[str, ...]:
  """Sorted relative POSIX paths of the standard library's own .py files."""
  skip = _NEVER_DIRS if include_tests else _NEVER_DIRS | _TEST_DIRS
  found = []
  for dirpath, dirnames, filenames in os.walk(root):
    rel_dir = os.path.relpath(dirpath, root)
    # config-3.x-<platform> and _sysconfigdata_* describe this build, not Python,
    # and their names differ between platforms.
    dirnames[:] = [d for d in dirnames
                   if d not in skip and not (rel_dir == "." and d.startswith("config-"))]
    for name in filenames:
      if name.endswith(".py") and not name.startswith("_sysconfigdata"):
        found.append(pathlib.PurePath(rel_dir, name).as_posix().removeprefix("./"))
  return tuple(sorted(found))


class EmbeddedSource:
  """The standard library's source (train, validation) and reference docs (ood)."""
  name = "embedded"
  split_names = SPLITS

  def __init__(self, stdlib_dir: str = "", include_tests: bool = False,
               validation_fraction: float = 0.03):
    self.root = pathlib.Path(stdlib_dir or sysconfig.get_paths()["stdlib"])
    if not self.root.is_dir():
      raise FileNotFoundError(f"data config field 'embedded.stdlib_dir' points at "
                              f"{str(self.root)!r}, not a directory; leave it '' to "
                              "use this interpreter's standard library")
    self.include_tests = include_tests
    self.validation_fraction = validation_fraction

  def files(self, split: str) -> list[str]:
    """Relative paths of the .py files of `split` (empty for ood)."""
    if split not in ("train", "validation"):
      return []
    want_validation = split == "validation"
    return [f for f in _stdlib_files(str(self.root), self.include_tests)
            if (_hash_fraction(f) < self.validation_fraction) == want_validation]

  def _topics(self) -> dict[str, str]:
    path = self.root / "pydoc_data" / "topics.py"
    if not path.is_file():
      raise FileNotFoundError(f"the embedded corpus takes its ood split from {path}, "
                              "which this install lacks; use a full Python install "
                              "or another data source (data.source='files')")
    # Parsed rather than imported, so that `stdlib_dir` may name another Python.
    for node in ast.parse(_read_text(path)).body:
      if isinstance(node, ast.Assign) and any(
          isinstance(t, ast.Name) and t.id == "topics" for t in node.targets):
        return ast.literal_eval(node.value)
    raise ValueError(f"{path} has no `topics = {{...}}` assignment")

  def documents(self, split: str) -> Iterator[str]:
    if split not in self.split_names:
      raise unknown_split(split, self.split_names)
    if split == "ood":
      topics = self._topics()
      for key in sorted(topics):
        yield topics[key]
      return
    for rel in self.files(split):
      yield _read_text(self.root / rel)

  def num_document_shards(self, split: str) -> int:
    """How many consecutive runs of documents `split` is cut into for preparing in
    parallel: the documents of shard 0, 1, ... in turn are `documents(split)`."""
    if split not in self.split_names:
      raise unknown_split(split, self.split_names)
    if split == "ood":
      return 1
    return max(1, -(-len(self.files(split)) // FILES_PER_SHARD))

  def shard_documents(self, split: str, index: int) -> Iterator[str]:
    if split == "ood":
      yield from self.documents(split)
      return
    for rel in self.files(split)[index * FILES_PER_SHARD:(index + 1) * FILES_PER_SHARD]:
      yield _read_text(self.root / rel)

  def content_fingerprint(self) -> dict:
    listing = _stdlib_files(str(self.root), self.include_tests)
    sizes = [(f, (self.root / f).stat().st_size) for f in listing]
    return {"python_version": self.python_version(), "file_count": len(listing),
            "listing_sha256": hashlib.sha256(repr(sizes).encode()).hexdigest()}

  def python_version(self) -> str:
    if self.root == pathlib.Path(sysconfig.get_paths()["stdlib"]):
      return ".".join(map(str, sys.version_info[:3]))
    return f"stdlib at {self.root}"


def _glob(pattern: str, field: str) -> list[pathlib.Path]:
  paths = sorted(pathlib.Path(p) for p in glob.glob(os.path.expanduser(pattern),
                                                    recursive=True))
  paths = [p for p in paths if p.is_file()]
  if not paths:
    raise FileNotFoundError(f"data config field 'files.{field}' = {pattern!r} matches "
                            "no file; give a glob such as '/data/*.jsonl' or "
                            "'corpus/**/*.txt'")
  return paths


class FilesSource:
  """Local text files (one file, one document) or JSON lines (one line, one doc)."""
  name = "files"

  def __init__(self, path: str, validation_path: str = "", ood_path: str = "",
               text_field: str = "text", format: str = "auto",  # noqa: A002
               validation_fraction: float = 0.03):
    if not path:
      raise ValueError("data config source='files' needs 'files.path', a glob of "
                       "text or .jsonl files")
    if format not in ("auto", "text", "jsonl"):
      raise ValueError(f"data config field 'files.format' is {format!r}; expected "
                       "'auto', 'text' or 'jsonl'")
    self.globs = {"train": ("path", path)}
    if validation_path:
      self.globs["validation"] = ("validation_path", validation_path)
    if ood_path:
      self.globs["ood"] = ("ood_path", ood_path)
    self.hash_split = not validation_path and validation_fraction > 0
    has = set(self.globs) | ({"validation"} if self.hash_split else set())
    self.split_names = tuple(s for s in SPLITS if s in has)
    self.text_field, self.format = text_field, format
    self.validation_fraction = validation_fraction

  def _is_jsonl(self, path: pathlib.Path) -> bool:
    if self.format != "auto":
      return self.format == "jsonl"
    return path.name.endswith((".jsonl", ".jsonl.gz", ".ndjson"))

  def _file_documents(self, path: pathlib.Path) -> Iterator[tuple[str, str]]:
    """(key, text) pairs; the key (file name and line) drives the hash split."""
    opener = gzip.open if path.suffix == ".gz" else open
    if not self._is_jsonl(path):
      with opener(path, "rb") as f:
        yield path.name, f.read().decode("utf-8", errors="replace")
      return
    with opener(path, "rt", encoding="utf-8") as f:
      for lineno, line in enumerate(_utf8_lines(f, path), start=1):
        if not line.strip():
          continue
        try:
          row = json.loads(line)
        except json.JSONDecodeError as e:
          raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get(self.text_field), str):
          fields = sorted(row) if isinstance(row, dict) else type(row).__name__
          raise ValueError(f"{path}:{lineno}: no string field {self.text_field!r} "
                           f"(has {fields}); set data config 'files.text_field'")
        yield f"{path.name}:{lineno}", row[self.text_field]

  def _paths(self, split: str) -> list[pathlib.Path]:
    if split not in self.split_names:
      raise unknown_split(split, self.split_names)
    field, pattern = self.globs["train" if split == "validation" and self.hash_split
                                else split]
    return _glob(pattern, field)

  def _split_documents(self, split: str, path: pathlib.Path) -> Iterator[str]:
    for key, text in self._file_documents(path):
      if self.hash_split and split in ("train", "validation"):
        held_out = _hash_fraction(key) < self.validation_fraction
        if held_out != (split == "validation"):
          continue
      yield text

  def documents(self, split: str) -> Iterator[str]:
    for path in self._paths(split):
      yield from self._split_documents(split, path)

  def num_document_shards(self, split: str) -> int:
    """One shard per file of the split's glob (C4 and the like ship in many
    files), in the order `documents(split)` reads them."""
    return len(self._paths(split))

  def shard_documents(self, split: str, index: int) -> Iterator[str]:
    yield from self._split_documents(split, self._paths(split)[index])

  def content_fingerprint(self) -> dict:
    listing = {}
    for split, (field, pattern) in self.globs.items():
      listing[split] = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns)
                        for p in _glob(pattern, field)]
    return {"file_count": sum(len(v) for v in listing.values()),
            "listing_sha256": hashlib.sha256(repr(listing).encode()).hexdigest()}
