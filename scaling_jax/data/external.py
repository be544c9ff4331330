"""TFDS datasets and seqio tasks as document sources (optional extras).

Both bring TensorFlow, so it is imported only when documents are read, that is
while the launcher prepares a dataset. Building a source reads the config alone:
its cache key (`content_fingerprint`) comes from config fields, so a worker that
reopens the prepared shards by key never imports TensorFlow, TFDS or seqio. Each
source yields the text of its examples; our own tokenizer then encodes them, so
every source packs the same way.
"""
from __future__ import annotations

import difflib
import importlib
from typing import Iterator

from scaling_jax.data import sources


def _lazy_import(module: str, extra: str):
  try:
    return importlib.import_module(module)
  except ImportError as e:
    raise ImportError(f"data config source needs {module!r}, which is not installed; "
                      f"fix: pip install 'scaling_jax[{extra}]', or prepare the data "
                      "on a machine that has it and copy the cache dir") from e


def _as_text(value, where: str) -> str:
  if hasattr(value, "numpy"):  # a tf.Tensor from the as_dataset fallback
    value = value.numpy()
  if hasattr(value, "item") and getattr(value, "shape", None) == ():
    value = value.item()
  if isinstance(value, bytes):
    return value.decode("utf-8", errors="replace")
  if isinstance(value, str):
    return value
  raise ValueError(f"{where} is a {type(value).__name__}, not text; set the text "
                   "field to a string feature")


def _split_map(sub_cfg) -> dict[str, str]:
  """Our split name -> the dataset's split name, for the splits configured."""
  mapping = {"train": sub_cfg.train_split, "validation": sub_cfg.validation_split,
             "ood": sub_cfg.ood_split}
  return {ours: theirs for ours, theirs in mapping.items() if theirs}


class TfdsSource:
  """A TFDS dataset by name, read through `tfds.data_source` (random access)."""
  name = "tfds"

  def __init__(self, name: str, data_dir: str = "", text_field: str = "text",
               splits: dict[str, str] | None = None):
    if not name:
      raise ValueError("data config source='tfds' needs 'tfds.name', e.g. 'lm1b'")
    self._tfds = None
    self.dataset_name, self.data_dir, self.text_field = name, data_dir or None, text_field
    self.splits = splits or {"train": "train", "validation": "validation"}
    self.split_names = tuple(s for s in sources.SPLITS if s in self.splits)

  @property
  def tfds(self):
    if self._tfds is None:
      self._tfds = _lazy_import("tensorflow_datasets", "tfds")
    return self._tfds

  def _not_found(self) -> ValueError:
    base = self.dataset_name.split("/")[0].split(":")[0]
    known = list(self.tfds.list_builders(with_community_datasets=False))
    close = difflib.get_close_matches(base, known, n=8)
    return ValueError(f"data config field 'tfds.name' is {self.dataset_name!r}, which "
                      f"TFDS does not know (data_dir {self.data_dir!r}); close names: "
                      f"{close}; `tfds.list_builders()` lists all")

  def _records(self, split: str):
    try:
      return self.tfds.data_source(self.dataset_name, split=split,
                                   data_dir=self.data_dir, download=False)
    except NotImplementedError:
      # Datasets prepared as TFRecord have no random access; stream them instead.
      ds = self.tfds.load(self.dataset_name, split=split, data_dir=self.data_dir,
                          shuffle_files=False, download=False)
      return self.tfds.as_numpy(ds)
    except Exception as e:  # pylint: disable=broad-except
      # TFDS's own error class lives in a private module; match it by name.
      if type(e).__name__ == "DatasetNotFoundError":
        raise self._not_found() from None
      raise

  def documents(self, split: str) -> Iterator[str]:
    """The split's texts; imports TFDS and opens the split now, not on first use."""
    if split not in self.split_names:
      raise sources.unknown_split(split, self.split_names)
    theirs = self.splits[split]
    return self._texts(theirs, self._records(theirs))

  def _texts(self, theirs: str, records) -> Iterator[str]:
    for i, example in enumerate(records):
      if self.text_field not in example:
        raise ValueError(f"TFDS {self.dataset_name} split {theirs!r} example {i} has "
                         f"no feature {self.text_field!r} (has {sorted(example)}); "
                         "set data config 'tfds.text_field'")
      yield _as_text(example[self.text_field],
                     f"TFDS {self.dataset_name}[{theirs}][{i}].{self.text_field}")

  def content_fingerprint(self) -> dict:
    return {"dataset": self.dataset_name, "data_dir": self.data_dir,
            "splits": self.splits}


class SeqioSource:
  """A registered seqio task or mixture; documents are its pre-tokenized text."""
  name = "seqio"

  def __init__(self, task: str, module: str = "", feature: str = "targets",
               splits: dict[str, str] | None = None):
    if not task:
      raise ValueError("data config source='seqio' needs 'seqio.task'")
    self.task_name, self.module, self.feature = task, module, feature
    self.splits = splits or {"train": "train", "validation": "validation"}
    self.split_names = tuple(s for s in sources.SPLITS if s in self.splits)
    self._task = None

  @property
  def task(self):
    """The registered task or mixture (imports seqio and `module` on first use)."""
    if self._task is None:
      seqio = _lazy_import("seqio", "seqio")
      if self.module:
        importlib.import_module(self.module)  # registers the task
      try:
        self._task = seqio.get_mixture_or_task(self.task_name)
      except (KeyError, ValueError):
        known = list(seqio.TaskRegistry.names()) + list(seqio.MixtureRegistry.names())
        close = difflib.get_close_matches(self.task_name, known, n=8)
        raise ValueError(f"data config field 'seqio.task' is {self.task_name!r}, "
                         f"which is not registered; close names: {close}; set "
                         "'seqio.module' to the module that registers it") from None
    return self._task

  def _text(self, example, where: str) -> str:
    raw = f"{self.feature}_pretokenized"
    if raw in example:
      return _as_text(example[raw], where)
    if self.feature not in example:
      raise ValueError(f"{where} has neither {raw!r} nor {self.feature!r} (has "
                       f"{sorted(example)}); set data config 'seqio.feature'")
    vocab = self.task.output_features[self.feature].vocabulary
    return vocab.decode([int(t) for t in example[self.feature]])

  def documents(self, split: str) -> Iterator[str]:
    """The split's texts; imports seqio and builds the split's dataset now."""
    if split not in self.split_names:
      raise sources.unknown_split(split, self.split_names)
    theirs = self.splits[split]
    try:
      ds = self.task.get_dataset(sequence_length=None, split=theirs, shuffle=False,
                                 num_epochs=1)
    except NotImplementedError as e:
      if "ArrayRecord" not in str(e):
        raise
      raise self._array_record_hint() from e
    return self._texts(theirs, ds.as_numpy_iterator())

  def _array_record_hint(self) -> ValueError:
    # seqio reads TFDS through tf.data, which TFDS implements for TFRecord files
    # only; TFDS's own random access (our 'tfds' source) reads ArrayRecord.
    tfds_dataset = getattr(getattr(self.task, "source", None), "tfds_dataset", None)
    name = getattr(tfds_dataset, "name", None) or "NAME"
    data_dir = getattr(tfds_dataset, "data_dir", None)
    return ValueError(
        f"seqio task {self.task_name!r} reads TFDS dataset {name!r}, which was "
        "prepared as ArrayRecord files, and seqio can only read TFRecord ones; fix: "
        f"prepare it again as TFRecord (`tfds build --file_format=tfrecord`, or "
        f"builder.download_and_prepare(file_format='tfrecord')) into another data "
        f"dir (now {data_dir!r}), or read it without seqio: "
        f"--config.data.source=tfds --config.data.tfds.name={name}"
        + (f" --config.data.tfds.data_dir={data_dir}" if data_dir else ""))

  def _texts(self, theirs: str, examples) -> Iterator[str]:
    for i, example in enumerate(examples):
      yield self._text(example, f"seqio task {self.task_name}[{theirs}][{i}]")

  def content_fingerprint(self) -> dict:
    return {"task": self.task_name, "feature": self.feature, "splits": self.splits}


def prepared_documents(dataset, split: str) -> Iterator[str]:
  """The texts of a prepared split, decoded from its shards, without TensorFlow.

  For workers that need a TFDS/seqio split's text (the embedded ICL suite builds
  its tasks from held-out documents): the launcher read the source once to prepare
  the shards, and reading it again would import TensorFlow in every worker.
  """
  tokens = dataset.tokens(split)
  starts = [int(s) for s in dataset.document_starts(split)] + [len(tokens)]
  for start, end in zip(starts[:-1], starts[1:]):
    yield dataset.tokenizer.decode(tokens.read(start, end - start - 1))  # less eos


def make_source(cfg):
  """The TFDS or seqio source of a resolved data config."""
  if cfg.source == "tfds":
    t = cfg.tfds
    return TfdsSource(t.name, t.data_dir, t.text_field, _split_map(t))
  if cfg.source == "seqio":
    s = cfg.seqio
    return SeqioSource(s.task, s.module, s.feature, _split_map(s))
  raise ValueError(f"external.make_source got source {cfg.source!r}; expected "
                   "'tfds' or 'seqio'")
