"""Metric writers: plain log lines, a JSON-lines file and TensorBoard events.

The TensorBoard writer encodes the event protocol by hand (TFRecord framing
with masked CRC-32C, `Event{wall_time, step, summary{value{tag,
simple_value}}}`), so logging needs neither TensorFlow nor tensorboard.
"""
import json
import os
import socket
import struct
import time

from absl import logging
import numpy as np


def _make_crc32c_table():
  table = []
  for i in range(256):
    crc = i
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    table.append(crc)
  return table


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data: bytes) -> int:
  """CRC-32C (Castagnoli), as TFRecord uses."""
  crc = 0xFFFFFFFF
  for byte in data:
    crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
  crc = crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
  out = bytearray()
  while True:
    bits = n & 0x7F
    n >>= 7
    if n:
      out.append(bits | 0x80)
    else:
      out.append(bits)
      return bytes(out)


def _field(number: int, wire_type: int, payload: bytes) -> bytes:
  return _varint((number << 3) | wire_type) + payload


def _length_delimited(number: int, payload: bytes) -> bytes:
  return _field(number, 2, _varint(len(payload)) + payload)


def encode_scalar_event(step: int, tag: str, value: float,
                        wall_time: float) -> bytes:
  """Serialised tensorflow.Event holding one scalar summary."""
  summary_value = (_length_delimited(1, tag.encode("utf-8")) +
                   _field(2, 5, struct.pack("<f", float(value))))
  summary = _length_delimited(1, summary_value)
  return (_field(1, 1, struct.pack("<d", wall_time)) +
          _field(2, 0, _varint(int(step))) + _length_delimited(5, summary))


def encode_file_version_event(wall_time: float) -> bytes:
  return (_field(1, 1, struct.pack("<d", wall_time)) +
          _length_delimited(3, b"brain.Event:2"))


def tfrecord(data: bytes) -> bytes:
  header = struct.pack("<Q", len(data))
  return (header + struct.pack("<I", masked_crc32c(header)) + data +
          struct.pack("<I", masked_crc32c(data)))


def read_tfrecords(path: str) -> list[bytes]:
  """Reads back a TFRecord file, checking every CRC (used by tests)."""
  records = []
  with open(path, "rb") as f:
    while header := f.read(8):
      (length,) = struct.unpack("<Q", header)
      (hcrc,) = struct.unpack("<I", f.read(4))
      if hcrc != masked_crc32c(header):
        raise ValueError(f"{path}: corrupt record header")
      data = f.read(length)
      (dcrc,) = struct.unpack("<I", f.read(4))
      if dcrc != masked_crc32c(data):
        raise ValueError(f"{path}: corrupt record data")
      records.append(data)
  return records


class MetricWriter:
  """Writes scalars as log lines, to metrics.jsonl and to TensorBoard.

  Files are appended to, so a run resumed from a checkpoint re-logs the
  steps between that checkpoint and the kill: readers keep the last row of
  each step (as TensorBoard does, and as `read_jsonl_metrics` does).

  Only process 0 of a multi-host job should write; pass `enabled=False`
  elsewhere.
  """

  def __init__(self, logdir: str, enabled: bool = True):
    self.enabled = enabled
    self._events = None
    self._jsonl = None
    if not enabled:
      return
    os.makedirs(logdir, exist_ok=True)
    now = time.time()
    name = f"events.out.tfevents.{int(now)}.{socket.gethostname()}"
    self._events = open(os.path.join(logdir, name), "ab")
    self._events.write(tfrecord(encode_file_version_event(now)))
    self._jsonl = open(os.path.join(logdir, "metrics.jsonl"), "a")

  def write_scalars(self, step: int, scalars: dict):
    if not self.enabled or not scalars:
      return
    now = time.time()
    scalars = {k: float(np.asarray(v)) for k, v in scalars.items()}
    for tag, value in scalars.items():
      self._events.write(tfrecord(encode_scalar_event(step, tag, value, now)))
    self._jsonl.write(json.dumps({"step": int(step), **scalars}) + "\n")
    self._events.flush()
    self._jsonl.flush()
    logging.info("[%d] %s", step,
                 ", ".join(f"{k}={v:.6g}" for k, v in scalars.items()))

  def close(self):
    for f in (self._events, self._jsonl):
      if f is not None:
        f.close()


def read_jsonl_metrics(logdir: str) -> list[dict]:
  path = os.path.join(logdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  rows = {}
  with open(path) as f:
    for line in f:
      if line.strip():
        row = json.loads(line)
        # A resumed run re-logs steps; the newest row of a step wins, and
        # rows of one step with different keys (train vs eval) are kept.
        rows[(row["step"], tuple(sorted(row)))] = row
  return sorted(rows.values(), key=lambda r: r["step"])
