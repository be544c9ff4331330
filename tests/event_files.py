"""Reads TensorBoard event files for tests, apart from the code that writes them.

The TFRecord framing (length, masked CRC-32C of the length, payload, masked CRC of
the payload) is parsed here and every CRC checked with a bit-by-bit CRC-32C; the
payloads are decoded with tensorboardX's copies of TensorFlow's `Event` and
HParams protos, which define the format TensorBoard reads.
"""
import pathlib
import struct

from tensorboardX.proto import api_pb2
from tensorboardX.proto import event_pb2
from tensorboardX.proto import plugin_hparams_pb2


def crc32c(data: bytes) -> int:
  crc = 0xFFFFFFFF
  for byte in data:
    crc ^= byte
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 * (crc & 1))
  return crc ^ 0xFFFFFFFF


def _masked(crc: int) -> int:
  # The TFRecord spec: rotate right by 15 bits, add 0xa282ead8.
  return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def records(blob: bytes) -> list[bytes]:
  """Payloads of a TFRecord stream; asserts every length and CRC."""
  pos, out = 0, []
  while pos < len(blob):
    header = blob[pos:pos + 8]
    (length,) = struct.unpack("<Q", header)
    (len_crc,) = struct.unpack("<I", blob[pos + 8:pos + 12])
    payload = blob[pos + 12:pos + 12 + length]
    (data_crc,) = struct.unpack("<I", blob[pos + 12 + length:pos + 16 + length])
    assert len_crc == _masked(crc32c(header)), f"length CRC of record at {pos}"
    assert data_crc == _masked(crc32c(payload)), f"payload CRC of record at {pos}"
    out.append(payload)
    pos += 16 + length
  assert pos == len(blob), "a torn record at the end"
  return out


def event_files(logdir) -> list[pathlib.Path]:
  return sorted(pathlib.Path(logdir).glob("events.out.tfevents.*"))


def read_file(path) -> list[event_pb2.Event]:
  """The events of one file; the first must be TensorBoard's version marker."""
  events = [event_pb2.Event.FromString(p) for p in records(pathlib.Path(path).read_bytes())]
  assert events and events[0].file_version == "brain.Event:2", path
  return events[1:]


def read_events(logdir) -> list[event_pb2.Event]:
  """The events of every file in `logdir`, file by file (oldest name first)."""
  return [e for path in event_files(logdir) for e in read_file(path)]


def scalars(events) -> list[tuple[int, str, float]]:
  """(step, tag, value) of every simple-value scalar, in order."""
  return [(e.step, v.tag, v.simple_value) for e in events for v in e.summary.value
          if v.WhichOneof("value") == "simple_value"]


def hparams_plugin_data(events) -> list[tuple[str, plugin_hparams_pb2.HParamsPluginData]]:
  """(tag, HParamsPluginData) of every hparams-plugin summary value, in order."""
  out = []
  for e in events:
    for v in e.summary.value:
      if v.metadata.plugin_data.plugin_name == "hparams":
        out.append((v.tag, plugin_hparams_pb2.HParamsPluginData.FromString(
            v.metadata.plugin_data.content)))
  return out


def _value(proto_value):
  return getattr(proto_value, proto_value.WhichOneof("kind"))


def hparams_session(events) -> dict:
  """The one HParams session in `events`: its hparams, metric tags and status."""
  data = hparams_plugin_data(events)
  by_tag = {}
  for tag, content in data:
    assert tag not in by_tag, f"{tag} written twice"
    by_tag[tag] = content
  assert set(by_tag) == {"_hparams_/experiment", "_hparams_/session_start_info",
                         "_hparams_/session_end_info"}, sorted(by_tag)
  experiment = by_tag["_hparams_/experiment"].experiment
  start = by_tag["_hparams_/session_start_info"].session_start_info
  end = by_tag["_hparams_/session_end_info"].session_end_info
  return dict(hparams={k: _value(v) for k, v in start.hparams.items()},
              columns={h.name: api_pb2.DataType.Name(h.type)
                       for h in experiment.hparam_infos},
              metrics={m.name.tag for m in experiment.metric_infos},
              status=api_pb2.Status.Name(end.status))
