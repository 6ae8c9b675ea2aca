"""Any clip source -> sharded ArrayRecord files that training streams.

A data set larger than one host's memory (AudioSet: ~1.9M clips of 10 s,
~600 GB as float32 at 8 kHz) is packed once into shards that every host
reads record by record (recon_jax.data.pipeline). Every clip is decoded,
mixed to mono, resampled to the network's rate, peak-normalised and checked
exactly as the in-memory readers do (recon_jax.data.audio_io.load_clip), then
stored as one record: 16-bit PCM ('int16', raw little-endian samples) or a
FLAC file's bytes ('flac', lossless, about half the size, more CPU to read).

A packed folder:
  <split>-SSSSS-of-NNNNN.array_record  the clips of one shard, in listing
      order (bad clips left out when skipped).
  <split>-SSSSS-of-NNNNN.json  that shard's index: names, lengths, labels
      and skipped clips; written after its shard, so its presence means the
      shard is complete (a killed pack resumes at the first shard without
      one).
  index-<split>.npz  every clip's length and labels (sparse), what a reader
      holds in memory (~12 bytes a clip).
  report.json  clips skipped as bad (with why) and clips the source lists
      but has no file for (AudioSet downloads always lack some).
  made_by.json  the source (kind, fingerprint of its listing, settings).
  pack.json  the manifest, written last: a folder without it is unfinished.

Bad clips (unreadable, corrupt, NaN, silent, too short) are one error
naming the file unless `skip_bad` is set; then they are listed in
report.json and left out.
"""
import io
import os

from absl import logging
import numpy as np
import soundfile

from recon_jax import checks
from recon_jax import provenance
from recon_jax.data import audio_io
from recon_jax.data import listing as listing_lib
from recon_jax.data import workers

FORMAT_VERSION = 1
MANIFEST = "pack.json"
MADE_BY = "made_by.json"
REPORT = "report.json"
ENCODINGS = ("int16", "flac")
# One record per chunk: any record is read without decoding its neighbours.
# int16 audio gains little from a general-purpose compressor; FLAC records
# are compressed already.
WRITER_OPTIONS = "group_size:1,uncompressed"
_INT16_SCALE = 32767.0


def shard_name(split: str, index: int, count: int) -> str:
  return f"{split}-{index:05d}-of-{count:05d}.array_record"


def index_name(split: str) -> str:
  return f"index-{split}.npz"


def encode(x: np.ndarray, encoding: str, sample_rate: int) -> bytes:
  """float32 (T,) in [-1, 1] -> one record's bytes."""
  pcm = np.round(np.clip(x, -1.0, 1.0) * _INT16_SCALE).astype("<i2")
  if encoding == "int16":
    return pcm.tobytes()
  buf = io.BytesIO()
  soundfile.write(buf, pcm, sample_rate, format="FLAC", subtype="PCM_16")
  return buf.getvalue()


def decode(record: bytes, encoding: str) -> np.ndarray:
  """One record's bytes -> float32 (T,)."""
  if encoding == "int16":
    pcm = np.frombuffer(record, "<i2")
  else:
    pcm, _ = soundfile.read(io.BytesIO(record), dtype="int16")
  return pcm.astype(np.float32) / _INT16_SCALE


def pack_config_fields(sample_rate, peak, encoding, records_per_shard,
                       min_samples, skip_bad) -> dict:
  """The settings a packed folder's bytes depend on, checked."""
  audio_io.check_rate(sample_rate)
  audio_io.check_peak_mode(peak)
  audio_io.check_min_samples(min_samples)
  checks.one_of(encoding, "encoding", ENCODINGS)
  checks.integer(records_per_shard, "records_per_shard", lo=1)
  checks.boolean(skip_bad, "skip_bad")
  return {"format_version": FORMAT_VERSION, "sample_rate": int(sample_rate),
          "peak": peak, "encoding": encoding,
          "records_per_shard": int(records_per_shard),
          "min_samples": int(min_samples), "skip_bad": skip_bad}


def _shard_job(job):
  """Packs one shard: (path, entries, settings) -> its index dict."""
  path, entries, s = job
  from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
  names, lengths, labels, bad = [], [], [], []
  partial = path + ".partial"
  writer = array_record_module.ArrayRecordWriter(partial, WRITER_OPTIONS)
  try:
    for name, clip_path, clip_labels in entries:
      try:
        x = audio_io.load_clip(clip_path, s["sample_rate"], s["peak"],
                               s["min_samples"])
      except (audio_io.AudioError, FileNotFoundError) as e:
        if not s["skip_bad"]:
          raise
        bad.append([name, str(e)])
        continue
      if s["pad_to"]:
        if len(x) > s["pad_to"]:
          error = audio_io.AudioError(
              f"{clip_path}: {len(x)} samples, longer than the source's "
              f"{s['pad_to']}-sample clips")
          if not s["skip_bad"]:
            raise error
          bad.append([name, str(error)])
          continue
        x = np.pad(x, (0, s["pad_to"] - len(x)))
      writer.write(encode(x, s["encoding"], s["sample_rate"]))
      names.append(name)
      lengths.append(int(len(x)))
      labels.append([int(i) for i in clip_labels])
  finally:
    writer.close()
  os.replace(partial, path)
  index = {"names": names, "lengths": lengths, "labels": labels, "bad": bad}
  provenance.write_json_atomic(path[:-len(".array_record")] + ".json", index)
  return len(entries)


def pack(source: listing_lib.Listing, out_dir: str, *, sample_rate: int = 8000,
         peak: str = "always", encoding: str = "int16",
         records_per_shard: int = 1024,
         min_samples: int = audio_io.CNN12_RECEPTIVE_FIELD,
         skip_bad: bool = False, num_workers: int = 1) -> dict:
  """Packs every clip of `source` into `out_dir` (module doc); resumable.

  Args:
    source: what to pack (recon_jax.data.listing.Listing).
    out_dir: the packed folder (created; a finished one with the same
      source and settings is reused, one made from anything else refused).
    sample_rate, peak, min_samples: as audio_io.load_clip.
    encoding: 'int16' or 'flac'.
    records_per_shard: clips per shard file.
    skip_bad: leave out bad clips (listed in report.json) instead of
      stopping at the first with its error.
    num_workers: processes decoding shards in parallel.

  Returns:
    The manifest (pack.json's content).

  Raises:
    ProvenanceError: out_dir was packed from another source or settings.
    AudioError / FileNotFoundError naming the first bad clip (skip_bad off).
  """
  settings = pack_config_fields(sample_rate, peak, encoding,
                                records_per_shard, min_samples, skip_bad)
  out_dir = provenance.check_workdir(out_dir, "pack output folder")
  listing_lib.check_disjoint(source)
  made_by = {"source": {"kind": source.kind,
                        "fingerprint": source.fingerprint(),
                        "settings": source.settings},
             "pack": settings}
  os.makedirs(out_dir, exist_ok=True)
  what = f"the packed data in {out_dir}"
  remedy = "use a new output folder, or delete it to pack again"
  manifest_path = os.path.join(out_dir, MANIFEST)
  provenance.check_or_write_record(os.path.join(out_dir, MADE_BY), made_by,
                                   what, remedy)
  if os.path.exists(manifest_path):
    return provenance.read_json(manifest_path)

  # Sources of fixed-length clips (Speech Commands: 1 s) are zero-padded
  # to it, as their in-memory reader pads them.
  clip_seconds = source.settings.get("clip_seconds")
  pad_to = int(round(clip_seconds * sample_rate)) if clip_seconds else 0
  plan, jobs = {}, []
  for split in listing_lib.SPLITS:
    entries = source.splits.get(split, ())
    if not entries:
      continue
    count = -(-len(entries) // records_per_shard)
    plan[split] = [shard_name(split, k, count) for k in range(count)]
    for k, name in enumerate(plan[split]):
      path = os.path.join(out_dir, name)
      if os.path.exists(path[:-len(".array_record")] + ".json"):
        continue  # Packed by an earlier (killed) run.
      chunk = entries[k * records_per_shard:(k + 1) * records_per_shard]
      jobs.append((path, [(e.name, e.path, e.labels) for e in chunk],
                   dict(settings, pad_to=pad_to)))
  if not plan:
    raise ValueError(f"{source.kind}: no clips to pack")
  done = source.num_clips() - sum(len(j[1]) for j in jobs)
  if done:
    logging.info("Resuming the pack in %s: %d of %d clips already packed",
                 out_dir, done, source.num_clips())
  workers.map_jobs(_shard_job, jobs, num_workers,
                   desc=f"packing {source.kind} ({len(jobs)} shards)")

  splits, bad = {}, {}
  for split, names in plan.items():
    lengths, label_ids, label_offsets, skipped = [], [], [0], []
    for name in names:
      index = provenance.read_json(
          os.path.join(out_dir, name[:-len(".array_record")] + ".json"))
      lengths += index["lengths"]
      for ids in index["labels"]:
        label_ids += ids
        label_offsets.append(len(label_ids))
      skipped += index["bad"]
    if not lengths:
      raise ValueError(f"{source.kind}: every {split} clip was bad "
                       f"({len(skipped)} skipped; see the shards' .json)")
    lengths = np.asarray(lengths, np.int64)
    provenance.write_npz_atomic(
        os.path.join(out_dir, index_name(split)),
        {"lengths": lengths,
         "label_ids": np.asarray(label_ids, np.int32),
         "label_offsets": np.asarray(label_offsets, np.int64)})
    splits[split] = {"shards": names, "clips": int(len(lengths)),
                     "samples": int(lengths.sum()),
                     "max_length": int(lengths.max()),
                     "skipped": len(skipped),
                     "missing": len(source.missing.get(split, ()))}
    bad[split] = skipped
  provenance.write_json_atomic(os.path.join(out_dir, REPORT), {
      "skipped": bad,
      "missing": {s: list(v) for s, v in source.missing.items()}})
  manifest = {"format_version": FORMAT_VERSION, "source": made_by["source"],
              "settings": settings, "class_names": list(source.class_names),
              "multilabel": bool(source.multilabel), "splits": splits}
  manifest["fingerprint"] = provenance.fingerprint_json(manifest)
  provenance.write_json_atomic(manifest_path, manifest)
  return manifest


def pack_arrays(kind: str, data, out_dir: str, **kwargs) -> dict:
  """Packs an in-memory KeywordData / EventData (e.g. a TFDS set) by
  writing its clips as 16-bit WAVs under out_dir/source_wavs first."""
  from recon_jax.data import clips  # pylint: disable=g-import-not-at-top
  wav_dir = os.path.join(out_dir, "source_wavs")
  rate = int(data.sample_rate)
  splits = {}
  for split in listing_lib.SPLITS:
    store = clips.clip_store(data, split)
    entries = []
    for i in range(len(store)):
      path = os.path.join(wav_dir, split, f"{i:08d}.wav")
      if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        audio_io.write_wav(path + ".partial", store.clip(i), rate)
        os.replace(path + ".partial", path)
      y = store.labels[i]
      ids = (tuple(int(k) for k in np.flatnonzero(y)) if store.multilabel
             else (int(y),))
      entries.append(listing_lib.ClipEntry(path, f"{split}/{i}", ids))
    splits[split] = tuple(entries)
  source = listing_lib.Listing(
      kind=kind, class_names=tuple(data.class_names),
      multilabel=clips.clip_store(data, "train").multilabel, splits=splits,
      settings={"data_fingerprint": data.fingerprint})
  kwargs.setdefault("sample_rate", rate)
  return pack(source, out_dir, **kwargs)
