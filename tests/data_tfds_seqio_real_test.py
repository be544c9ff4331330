"""The TFDS and seqio sources with the real packages, on datasets built here.

A tiny `tfds.core.GeneratorBasedBuilder` writes to a temporary data_dir in both of
TFDS's file formats, and a seqio TextLine task reads local text files; one smoke
unit of configs/grid.py trains from each through the launcher, whose worker must
not import TensorFlow (tests/tf_free_worker.py). Skipped where the extras are not
installed: pip install -e '.[tfds,seqio,test]' (README, "Extras").
"""
import functools

import pytest

from scaling_jax import data
from tf_free_worker import synthetic_documents
from tf_free_worker import train_smoke_unit

SPLITS = {"train": synthetic_documents(300, 0), "validation": synthetic_documents(70, 1),
          "test": synthetic_documents(70, 2)}
TFDS_FIELDS = {"source": "tfds", "tfds": {"name": "tiny_text", "ood_split": "test"}}


def _tfds():
  return pytest.importorskip("tensorflow_datasets", reason="the 'tfds' extra is not "
                             "installed: pip install -e '.[tfds,seqio,test]'")


def _seqio():
  return pytest.importorskip("seqio", reason="the 'seqio' extra is not installed: "
                             "pip install -e '.[tfds,seqio,test]'")


def build_tiny_text(data_dir: str, file_format: str) -> None:
  """Writes SPLITS as TFDS dataset 'tiny_text' 1.0.0 under `data_dir`."""
  tfds = _tfds()

  class TinyText(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      return tfds.core.DatasetInfo(
          builder=self, features=tfds.features.FeaturesDict({"text": tfds.features.Text()}))

    def _split_generators(self, dl_manager):
      return {split: self._generate_examples(split) for split in SPLITS}

    def _generate_examples(self, split):
      for i, text in enumerate(SPLITS[split]):
        yield i, {"text": text}

  # Unregistered: readers find it by name in data_dir, as for any prepared dataset.
  TinyText(data_dir=data_dir, file_format=file_format).download_and_prepare()


@pytest.fixture(scope="module")
def tiny_text_dirs(tmp_path_factory):
  """{file format: data_dir holding tiny_text in that format}."""
  dirs = {}
  for file_format in ("array_record", "tfrecord"):
    dirs[file_format] = str(tmp_path_factory.mktemp(file_format))
    build_tiny_text(dirs[file_format], file_format)
  return dirs


def _tfds_cfg(data_dir: str, cache_dir) -> dict:
  return dict(TFDS_FIELDS, tfds=dict(TFDS_FIELDS["tfds"], data_dir=data_dir),
              cache_dir=str(cache_dir))


def test_both_tfds_file_formats_give_every_document(tiny_text_dirs, tmp_path):
  # ArrayRecord is read by random access, TFRecord through tf.data (the fallback).
  for data_dir in tiny_text_dirs.values():
    cfg = _tfds_cfg(data_dir, tmp_path)
    for split, ours in (("train", "train"), ("validation", "validation"),
                        ("test", "ood")):
      assert sorted(data.documents(cfg, ours)) == sorted(SPLITS[split])
    prepared = data.prepare_dataset(cfg)
    assert prepared.num_documents("train") == len(SPLITS["train"])


def test_a_tfds_array_record_unit_trains_and_its_worker_skips_tensorflow(
    tiny_text_dirs, tmp_path, monkeypatch):
  cfg = _tfds_cfg(tiny_text_dirs["array_record"], tmp_path / "cache")
  final = train_smoke_unit(cfg, tmp_path, monkeypatch)
  assert final["loss/validation"] < 5.5 and final["loss/ood"] < 5.5  # ln 258 = 5.55


def _lines_to_targets(dataset):
  return dataset.map(lambda line: {"targets": line})


def register_task(name: str, source, to_targets) -> None:
  """A task whose targets are byte-tokenized text, as a seqio LM task would be."""
  seqio = _seqio()
  seqio.TaskRegistry.remove(name)  # a no-op unless an earlier test registered it
  seqio.TaskRegistry.add(
      name, source=source,
      preprocessors=[to_targets, seqio.preprocessors.tokenize],
      output_features={"targets": seqio.Feature(seqio.ByteVocabulary(),
                                                add_eos=False)})


def test_a_seqio_text_line_unit_trains_and_its_worker_skips_tensorflow(
    tmp_path, monkeypatch):
  seqio = _seqio()
  files = {}
  for split, docs in SPLITS.items():
    files[split] = tmp_path / f"{split}.txt"
    files[split].write_text("\n".join(docs) + "\n")
  register_task("scaling_jax_test_lines", seqio.TextLineDataSource(
      {split: str(path) for split, path in files.items()}), _lines_to_targets)
  cfg = {"source": "seqio", "cache_dir": str(tmp_path / "cache"),
         "seqio": {"task": "scaling_jax_test_lines", "ood_split": "test"}}
  assert list(data.documents(cfg, "validation")) == SPLITS["validation"]
  final = train_smoke_unit(cfg, tmp_path, monkeypatch)
  assert final["loss/validation"] < 5.5 and final["loss/ood"] < 5.5


def test_seqio_over_tfds_reads_tfrecord_and_names_the_fix_for_array_record(
    tiny_text_dirs, tmp_path):
  seqio = _seqio()
  for file_format, data_dir in tiny_text_dirs.items():
    register_task(f"scaling_jax_test_tfds_{file_format}",
                  seqio.TfdsDataSource("tiny_text:1.0.0", tfds_data_dir=data_dir),
                  functools.partial(seqio.preprocessors.rekey,
                                    key_map={"targets": "text"}))

  def cfg(file_format):
    return {"source": "seqio", "cache_dir": str(tmp_path),
            "seqio": {"task": f"scaling_jax_test_tfds_{file_format}",
                      "validation_split": ""}}
  assert sorted(data.documents(cfg("tfrecord"), "train")) == sorted(SPLITS["train"])
  with pytest.raises(ValueError, match=r"prepared as ArrayRecord.*file_format=tfrecord"
                     r".*--config.data.source=tfds --config.data.tfds.name=tiny_text:1.0.0"):
    data.documents(cfg("array_record"), "train")
