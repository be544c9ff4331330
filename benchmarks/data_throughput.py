r"""Data throughput: preparing (tokens/s per core) and reading (tokens/s), against
what one training step of the paper's 411M model consumes on one H100.

  python benchmarks/data_throughput.py                    # byte tokenizer
  python benchmarks/data_throughput.py --tokenizer=hf     # BPE (needs `tokenizers`)

The corpus is the embedded corpus's train documents (the standard library's .py
files) written `--copies` times over `--files` JSON-lines files, the layout C4,
RedPajama and RefinedWeb ship in. With --tokenizer=hf a byte-level BPE of
`--bpe_vocab` pieces is first trained on it here, standing in for GPT-NeoX's.
Preparation runs once per entry of --workers (1 is the one-process path) into its
own cache; the prepared files must be identical. Reading times BatchReader's
batches of the paper's 411M run (global batch and seq_len from configs/grid.py's
paper variant) through grain_reader.batch_iterator, with and without grain.

What a step consumes: tokens per step / step time, where the step time is
tokens per step x model.flops_per_token / (--mfu x --peak_tflops), by default 45%
of an H100's 989 dense bf16 TFLOP/s.
"""
import datetime
import hashlib
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

from absl import app
from absl import flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
# pylint: disable=g-import-not-at-top,wrong-import-position
from configs import grid
from scaling_jax import data
from scaling_jax import model as model_lib
from scaling_jax.data import grain_reader

_FILES = flags.DEFINE_integer("files", 16, "JSON-lines files of the corpus.")
_COPIES = flags.DEFINE_integer("copies", 8, "Times the embedded train split is "
                               "written into the corpus.")
_WORKERS = flags.DEFINE_list("workers", ["1", "2"], "Worker counts to prepare with.")
_TOKENIZER = flags.DEFINE_enum("tokenizer", "byte", ["byte", "hf"], "Tokenizer.")
_BPE_VOCAB = flags.DEFINE_integer("bpe_vocab", 16384, "BPE pieces (--tokenizer=hf).")
_READ_STEPS = flags.DEFINE_integer("read_steps", 20, "Training steps to read.")
_MFU = flags.DEFINE_float("mfu", 0.45, "Assumed model-FLOPs utilisation.")
_PEAK = flags.DEFINE_float("peak_tflops", 989.0, "Accelerator peak (H100 bf16 "
                           "dense).")
_MODEL = "openlm-411m"


def _write_corpus(out_dir: pathlib.Path) -> int:
  docs = list(data.documents(None, "train"))
  files = [open(out_dir / f"part-{i:05d}.jsonl", "w", encoding="utf-8")
           for i in range(_FILES.value)]
  written = 0
  for copy in range(_COPIES.value):
    for i, doc in enumerate(docs):
      line = json.dumps({"text": doc}) + "\n"
      files[(copy * len(docs) + i) % len(files)].write(line)
      written += len(line)
  for f in files:
    f.close()
  return written


def _train_bpe(corpus_dir: pathlib.Path, out_file: pathlib.Path) -> None:
  import tokenizers  # the [hf] extra
  from tokenizers import decoders, models, pre_tokenizers, trainers
  tok = tokenizers.Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=_BPE_VOCAB.value,
                                special_tokens=["<|endoftext|>"],
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
  with open(corpus_dir / "part-00000.jsonl", encoding="utf-8") as f:
    tok.train_from_iterator((json.loads(line)["text"] for line in f), trainer)
  tok.save(str(out_file))


def _digest(ds) -> str:
  h = hashlib.sha256()
  for f in sorted(ds.path.glob("*.npy")):
    h.update(f.name.encode() + f.read_bytes())
  return h.hexdigest()[:16]


def _prepare(base_cfg: dict, workers: int, cache: pathlib.Path) -> dict:
  start = time.perf_counter()
  ds = data.prepare_dataset(dict(base_cfg, prepare_workers=workers), str(cache))
  seconds = time.perf_counter() - start
  tokens = sum(ds.metadata["counts"].values())
  return dict(workers=workers, seconds=seconds, tokens=tokens, ds=ds,
              per_core=tokens / seconds / workers, digest=_digest(ds))


def _paper_shape() -> tuple[int, int, int]:
  config = grid.get_config("paper=True")
  unit = next(u for u in config.sweep if u["model"] == _MODEL)
  return unit["train.global_batch"], config.model.seq_len, config.model.vocab_size


def _read_rate(ds, global_batch: int, seq_len: int, backend: str) -> float:
  reader = data.BatchReader(ds, "train", seq_len=seq_len, global_batch=global_batch,
                            seed=0, allow_repeat=True)
  batches = grain_reader.batch_iterator(reader, 0, _READ_STEPS.value + 1,
                                        backend=backend)
  next(batches)  # the first batch pays for opening the shards and grain's threads
  start = time.perf_counter()
  rows = sum(len(b) for b in batches)
  return rows * seq_len / (time.perf_counter() - start)


def main(argv):
  del argv
  # One thread per tokenizer, so that a worker is one core (tokenizers would
  # otherwise spread each call over every core).
  os.environ["TOKENIZERS_PARALLELISM"] = "false"
  print(f"date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{platform.processor() or platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} cores, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, grain "
        f"{'installed' if grain_reader.has_grain() else 'absent'}")
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    (tmp / "corpus").mkdir()
    size = _write_corpus(tmp / "corpus")
    cfg = {"source": "files", "files": {"path": str(tmp / "corpus" / "*.jsonl")},
           "tokenizer": _TOKENIZER.value}
    if _TOKENIZER.value == "hf":
      _train_bpe(tmp / "corpus", tmp / "tokenizer.json")
      cfg["hf"] = {"path": str(tmp / "tokenizer.json")}
    print(f"corpus: {_FILES.value} JSON-lines files, {size / 2**20:.0f} MiB, "
          f"tokenizer {_TOKENIZER.value}")
    runs = [_prepare(cfg, int(w), tmp / f"cache-{w}") for w in _WORKERS.value]
    print(f"{'workers':>8}{'seconds':>10}{'tokens':>14}{'tokens/s':>14}"
          f"{'per core':>14}  files")
    for r in runs:
      print(f"{r['workers']:>8}{r['seconds']:>10.1f}{r['tokens']:>14,}"
            f"{r['tokens'] / r['seconds']:>14,.0f}{r['per_core']:>14,.0f}  "
            f"{r['digest']}")
    same = len({r["digest"] for r in runs}) == 1
    print(f"prepared files {'identical' if same else 'DIFFER'} across worker counts")

    global_batch, seq_len, vocab = _paper_shape()
    rates = {b: _read_rate(runs[0]["ds"], global_batch, seq_len, b)
             for b in (("numpy", "grain") if grain_reader.has_grain() else ("numpy",))}
  cfg_411m = model_lib.preset(_MODEL, seq_len=seq_len, vocab_size=vocab)
  flops = model_lib.flops_per_token(cfg_411m)
  needed = _MFU.value * _PEAK.value * 1e12 / flops
  step_seconds = global_batch * seq_len / needed
  print(f"{_MODEL}: global batch {global_batch} x seq_len {seq_len} = "
        f"{global_batch * seq_len:,} tokens/step, {flops / 1e9:.2f} GFLOP/token; at "
        f"{_MFU.value:.0%} of {_PEAK.value:g} TFLOP/s a step takes "
        f"{step_seconds:.2f} s: {needed:,.0f} tokens/s needed")
  for backend, rate in rates.items():
    print(f"reader ({backend}): {rate:,.0f} tokens/s, "
          f"{global_batch * seq_len / rate * 1e3:.1f} ms per step")
  slowest = min(rates.values())
  if slowest > needed:
    print(f"reader never the bottleneck: {slowest:,.0f} tokens/s vs {needed:,.0f} "
          "needed")
  else:
    print(f"reader IS the bottleneck: {slowest:,.0f} tokens/s vs {needed:,.0f} needed")
  per_core = max(r["per_core"] for r in runs)
  print(f"preparing 1B tokens takes {1e9 / per_core / 3600:.2f} core-hours at "
        f"{per_core:,.0f} tokens/s per core")


if __name__ == "__main__":
  app.run(main)
