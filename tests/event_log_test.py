"""The unit's TensorBoard log, read back with an independent TFRecord reader."""
import time

import jax.numpy as jnp
import numpy as np
import pytest

import event_files
from scaling_jax import event_log

SCALARS = [
    (0, {"train/loss": 5.5, "train/lr": 0.0}),
    (1, {"train/loss": np.float32(4.25), "loss/validation": -1e-3}),
    (300, {"loss/ood": jnp.asarray(3.0), "grad_norm": 1e30,   # a jax scalar
           "train/tokens": np.int64(7)}),                     # step: two varint bytes
    (2**40 + 7, {"δ/résumé": jnp.asarray(2.5e-7, jnp.bfloat16)}),  # UTF-8 tag
]
HPARAMS = dict(N=np.int64(43_680), M=0.15, model="tiny-1", dataset="c4/en:3.1.0",
               seed=0, peak_lr=np.float32(3e-3), steps=26, global_batch=8,
               note=None)


def _expected():
  return [(step, tag, float(np.float32(np.asarray(v, np.float32))))
          for step, values in SCALARS for tag, v in values.items()]


@pytest.fixture
def written(tmp_path):
  start = time.time()
  log = event_log.EventLog(tmp_path / "tb")
  for step, values in SCALARS:
    log.scalars(step, values)
  # Read while the log is still open, as TensorBoard does during a run.
  live = event_files.scalars(event_files.read_events(tmp_path / "tb"))
  log.close()
  return tmp_path / "tb", live, start


def test_scalars_of_any_numeric_type_read_back_in_order_even_before_close(written):
  logdir, live, start = written
  assert live == _expected()  # each write is flushed
  events = event_files.read_events(logdir)
  assert event_files.scalars(events) == _expected()
  assert [e.step for e in events] == [step for step, _ in SCALARS]
  for e in events:
    assert start - 1 <= e.wall_time <= time.time() + 1


def test_values_that_are_not_scalar_numbers_are_skipped(tmp_path):
  log = event_log.EventLog(tmp_path)
  written = log.scalars(3, {"loss": 2.0, "note": "text", "missing": None,
                            "vector": np.zeros(2), "complex": 1 + 2j, "raw": b"1"})
  assert log.scalars(4, {"note": "nothing numeric here"}) == {}
  log.close()
  assert written == {"loss": 2.0}
  assert event_files.read_events(tmp_path)[0].step == 3
  assert event_files.scalars(event_files.read_events(tmp_path)) == [(3, "loss", 2.0)]
  assert len(event_files.read_events(tmp_path)) == 1  # no event for step 4


def test_two_logs_in_one_directory_and_second_keep_both_files(tmp_path):
  # A resumed unit reopens its tb/ at once: tensorboardX alone would reuse the name.
  first = event_log.EventLog(tmp_path)
  first.scalars(1, {"a": 1.0})
  first.close()
  second = event_log.EventLog(tmp_path)
  second.scalars(2, {"a": 2.0})
  second.close()
  assert len(event_files.event_files(tmp_path)) == 2
  assert event_files.scalars(event_files.read_events(tmp_path)) == [
      (1, "a", 1.0), (2, "a", 2.0)]


def test_many_logs_in_one_second_read_back_in_the_order_written(tmp_path):
  # TensorBoard reads a folder's files in name order; a counter past 9 within one
  # second once sorted '.10' before '.9' (CI, 2026-12-07).
  for step in range(12):
    log = event_log.EventLog(tmp_path)
    log.scalars(step, {"a": float(step)})
    log.close()
  assert event_files.scalars(event_files.read_events(tmp_path)) == [
      (step, "a", float(step)) for step in range(12)]


def test_hparams_session_names_the_unit_and_its_final_metrics(tmp_path):
  log = event_log.EventLog(tmp_path)
  metrics = log.scalars(26, {"loss/validation": 2.5, "acc/arc": np.float32(0.25)})
  log.hparams(26, HPARAMS, metric_tags=metrics)
  log.close()
  events = event_files.read_events(tmp_path)
  session = event_files.hparams_session(events)
  assert session["hparams"] == dict(
      N=43_680.0, M=0.15, model="tiny-1", dataset="c4/en:3.1.0", seed=0.0,
      peak_lr=float(np.float32(3e-3)), steps=26.0, global_batch=8.0)
  assert session["columns"]["N"] == "DATA_TYPE_FLOAT64"  # numpy ints included
  assert session["columns"]["dataset"] == "DATA_TYPE_STRING"
  assert session["metrics"] == {"loss/validation", "acc/arc"}
  assert session["status"] == "STATUS_SUCCESS"
  # TensorBoard takes a metric's value from the session run's last scalar of it.
  assert (26, "loss/validation", 2.5) in event_files.scalars(events)
  assert {e.step for e in events} == {26}


def test_the_independent_reader_rejects_a_corrupted_byte(written):
  logdir, _, _ = written
  (path,) = event_files.event_files(logdir)
  blob = bytearray(path.read_bytes())
  blob[len(blob) // 2] ^= 0x10
  path.write_bytes(bytes(blob))
  with pytest.raises(AssertionError, match="CRC"):
    event_files.read_events(logdir)


def test_crc32c_reference_matches_the_known_check_value():
  assert event_files.crc32c(b"123456789") == 0xE3069283
