"""Event files: round trip, the TFRecord framing and Event protobuf read independently."""
import struct
import time

import numpy as np
import pytest
from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory

from scaling_jax import event_log

SCALARS = [
    (0, {"train/loss": 5.5, "train/lr": 0.0}),
    (1, {"train/loss": 4.25, "loss/validation": -1e-3}),
    (300, {"loss/ood": 3, "grad_norm": 1e30}),      # step needs two varint bytes
    (2**40 + 7, {"δ/résumé": 2.5e-7}),              # beyond 32 bits; UTF-8 tag
]


def _crc32c_bitwise(data: bytes) -> int:
  """CRC-32C computed bit by bit (no table): the reference for the module's table."""
  crc = 0xFFFFFFFF
  for byte in data:
    crc ^= byte
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 * (crc & 1))
  return crc ^ 0xFFFFFFFF


def _masked(crc: int) -> int:
  # The TFRecord spec: rotate right by 15 bits, add 0xa282ead8.
  return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _event_class():
  """tensorflow.Event's scalar fields, built with protobuf itself (no TensorFlow)."""
  f = descriptor_pb2.FileDescriptorProto(name="event_test.proto", package="t",
                                         syntax="proto3")
  T = descriptor_pb2.FieldDescriptorProto
  value = f.message_type.add(name="Value")
  value.field.add(name="tag", number=1, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
  value.field.add(name="simple_value", number=2, type=T.TYPE_FLOAT,
                  label=T.LABEL_OPTIONAL)
  summary = f.message_type.add(name="Summary")
  summary.field.add(name="value", number=1, type=T.TYPE_MESSAGE, type_name=".t.Value",
                    label=T.LABEL_REPEATED)
  event = f.message_type.add(name="Event")
  event.field.add(name="wall_time", number=1, type=T.TYPE_DOUBLE, label=T.LABEL_OPTIONAL)
  event.field.add(name="step", number=2, type=T.TYPE_INT64, label=T.LABEL_OPTIONAL)
  event.field.add(name="file_version", number=3, type=T.TYPE_STRING,
                  label=T.LABEL_OPTIONAL)
  event.field.add(name="summary", number=5, type=T.TYPE_MESSAGE, type_name=".t.Summary",
                  label=T.LABEL_OPTIONAL)
  pool = descriptor_pool.DescriptorPool()
  pool.Add(f)
  return message_factory.GetMessageClass(pool.FindMessageTypeByName("t.Event"))


def _records(blob: bytes):
  """Payloads of a TFRecord stream, every length and CRC checked against the spec."""
  pos, out = 0, []
  while pos < len(blob):
    header = blob[pos:pos + 8]
    (length,) = struct.unpack("<Q", header)
    (len_crc,) = struct.unpack("<I", blob[pos + 8:pos + 12])
    payload = blob[pos + 12:pos + 12 + length]
    (data_crc,) = struct.unpack("<I", blob[pos + 12 + length:pos + 16 + length])
    assert len_crc == _masked(_crc32c_bitwise(header))
    assert data_crc == _masked(_crc32c_bitwise(payload))
    out.append(payload)
    pos += 16 + length
  assert pos == len(blob)
  return out


@pytest.fixture
def written(tmp_path):
  start = time.time()
  log = event_log.EventLog(tmp_path / "tb")
  for step, values in SCALARS:
    log.scalars(step, values)
  # Read while the log is still open, as TensorBoard does during a run.
  live = event_log.read_scalars(log.path)
  log.close()
  return log.path, live, start


def _expected():
  return [(step, tag, float(np.float32(v))) for step, values in SCALARS
          for tag, v in values.items()]


def test_crc32c_matches_a_bitwise_reference():
  rng = np.random.default_rng(0)
  for n in (0, 1, 7, 64, 1000):
    data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    assert event_log.crc32c(data) == _crc32c_bitwise(data)


def test_scalars_read_back_in_order_even_before_close(written):
  path, live, _ = written
  assert live == _expected()  # each write is flushed
  assert event_log.read_scalars(path) == _expected()


def test_file_follows_the_tfrecord_and_event_protobuf_formats(written):
  path, _, start = written
  with open(path, "rb") as f:
    payloads = _records(f.read())
  event_cls = _event_class()
  events = [event_cls.FromString(p) for p in payloads]
  # TensorBoard recognises a file by its first event's version string.
  assert events[0].file_version == "brain.Event:2"
  assert not events[0].summary.value
  got = [(e.step, v.tag, v.simple_value) for e in events[1:] for v in e.summary.value]
  assert got == _expected()
  assert [e.step for e in events[1:]] == [step for step, _ in SCALARS]
  for e in events:
    assert start - 1 <= e.wall_time <= time.time() + 1


def test_values_that_are_not_numbers_are_skipped(tmp_path):
  log = event_log.EventLog(tmp_path)
  log.scalars(3, {"loss": 2.0, "note": "text", "missing": None})
  log.scalars(4, {"note": "nothing numeric here"})
  log.close()
  assert event_log.read_scalars(log.path) == [(3, "loss", 2.0)]
  with open(log.path, "rb") as f:
    assert len(_records(f.read())) == 2  # the version event and step 3 only


@pytest.mark.parametrize("where", ["payload", "payload_crc", "length_crc"])
def test_a_corrupted_byte_is_detected_and_located(written, where):
  path, _, _ = written
  with open(path, "rb") as f:
    blob = bytearray(f.read())
  first_len = struct.unpack_from("<Q", blob, 0)[0]
  second = 16 + first_len  # the second record, the first with scalars
  second_len = struct.unpack_from("<Q", blob, second)[0]
  offset = {"payload": second + 12 + second_len // 2,
            "payload_crc": second + 12 + second_len + 1,
            "length_crc": second + 9}[where]
  blob[offset] ^= 0x10
  with open(path, "wb") as f:
    f.write(bytes(blob))
  with pytest.raises(ValueError, match=f"bad CRC in record at byte {second}$"):
    event_log.read_scalars(path)
