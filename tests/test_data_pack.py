"""recon_jax.data.pack and .pipeline: packed shards read back exactly as the
in-memory path reads the source, resumable packing, bad clips, the Grain
epoch iterator (process rows, resume by state, worker processes)."""
import os
import shutil

import numpy as np
import pytest

from recon_jax import provenance
from recon_jax.data import audio_folder
from recon_jax.data import audio_io
from recon_jax.data import clips
from recon_jax.data import events
from recon_jax.data import listing
from recon_jax.data import pack
from recon_jax.data import pipeline


@pytest.fixture(scope="module")
def event_root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("events") / "set")
  events.generate_events(root, events.get_config("tiny"))
  return root


@pytest.fixture(scope="module")
def packed(event_root, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("packed") / "p")
  pack.pack(audio_folder.fsd50k_listing(event_root), out,
            records_per_shard=5)
  return out


def _quantised(x):
  return np.round(x * 32767.0) / 32767.0


def test_packed_store_reads_what_the_in_memory_reader_reads(event_root,
                                                             packed):
  memory = audio_folder.load_fsd50k(event_root)
  data = pipeline.open_packed(packed)
  assert data.class_names == memory.class_names and data.multilabel
  for split in ("train", "validation", "test"):
    store, ref = data.split(split), clips.clip_store(memory, split)
    assert len(store.shards) == -(-len(ref) // 5)
    np.testing.assert_array_equal(store.lengths, ref.lengths)
    np.testing.assert_array_equal(store.labels, ref.labels)
    for i in range(len(ref)):
      # 16-bit records: exactly the source rounded to 16 bits.
      np.testing.assert_allclose(store.clip(i), _quantised(ref.clip(i)),
                                 atol=1e-7)
    idx = np.array([3, 0, len(ref) - 1])
    starts = np.array([0, 100, 2000])
    got, valid = store.windows(idx, 7000, starts)
    want, want_valid = ref.windows(idx, 7000, starts)
    np.testing.assert_array_equal(valid, want_valid)
    np.testing.assert_allclose(got, _quantised(want), atol=1e-7)


def test_flac_records_are_lossless_16_bit(event_root, tmp_path, packed):
  out = str(tmp_path / "flac")
  pack.pack(audio_folder.fsd50k_listing(event_root), out, encoding="flac",
            records_per_shard=7)
  a, b = pipeline.open_packed(out), pipeline.open_packed(packed)
  store_a, store_b = a.split("train"), b.split("train")
  for i in range(len(store_a)):
    np.testing.assert_array_equal(store_a.clip(i), store_b.clip(i))
  size = lambda d, s: sum(os.path.getsize(os.path.join(d, f))  # noqa: E731
                          for f in s.shards)
  assert size(out, store_a) < size(packed, store_b)


def test_a_killed_pack_resumes_at_its_first_unfinished_shard(event_root,
                                                            tmp_path):
  source = audio_folder.fsd50k_listing(event_root)
  out = str(tmp_path / "p")
  whole = pack.pack(source, out, records_per_shard=4)
  # As a kill leaves it: no manifest, one shard half-written, the rest done.
  os.remove(os.path.join(out, pack.MANIFEST))
  victim = os.path.join(out, whole["splits"]["train"]["shards"][1])
  os.remove(victim[:-len(".array_record")] + ".json")
  os.replace(victim, victim + ".partial")
  kept = os.path.join(out, whole["splits"]["train"]["shards"][0])
  mtime = os.stat(kept).st_mtime_ns
  with pytest.raises(FileNotFoundError, match="rerun the same pack command"):
    pipeline.open_packed(out)
  again = pack.pack(source, out, records_per_shard=4)
  assert again == whole
  assert os.stat(kept).st_mtime_ns == mtime  # Not rewritten.
  assert not os.path.exists(victim + ".partial")
  # A finished pack is reused as it is; another source is refused.
  assert pack.pack(source, out, records_per_shard=4) == whole
  with pytest.raises(provenance.ProvenanceError, match="pack"):
    pack.pack(source, out, records_per_shard=3)


def _listing_with_bad_clip(event_root, tmp_path):
  source = audio_folder.fsd50k_listing(event_root)
  bad = tmp_path / "corrupt.wav"
  bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
  silent = tmp_path / "silent.wav"
  audio_io.write_wav(str(silent), np.zeros(8000, np.float32))
  train = source.splits["train"] + (
      listing.ClipEntry(str(bad), "corrupt", (0,)),
      listing.ClipEntry(str(silent), "silent", (1,)))
  return listing.Listing(kind=source.kind, class_names=source.class_names,
                         multilabel=True, splits={**source.splits,
                                                  "train": train})


def test_a_bad_clip_is_one_error_naming_it_or_skipped_into_the_report(
    event_root, tmp_path):
  source = _listing_with_bad_clip(event_root, tmp_path)
  with pytest.raises(audio_io.AudioError, match="corrupt.wav"):
    pack.pack(source, str(tmp_path / "strict"))
  out = str(tmp_path / "lenient")
  manifest = pack.pack(source, out, skip_bad=True)
  assert manifest["splits"]["train"]["skipped"] == 2
  report = provenance.read_json(os.path.join(out, pack.REPORT))
  skipped = dict(report["skipped"]["train"])
  assert set(skipped) == {"corrupt", "silent"}
  assert "silent clip" in skipped["silent"]
  n_good = len(source.splits["train"]) - 2
  assert len(pipeline.open_packed(out).split("train")) == n_good


def test_one_file_in_two_splits_is_refused(event_root, tmp_path):
  source = audio_folder.fsd50k_listing(event_root)
  leak = listing.Listing(
      kind="x", class_names=source.class_names, multilabel=True,
      splits={"train": source.splits["train"],
              "test": source.splits["test"] + source.splits["train"][:1]})
  with pytest.raises(ValueError, match="in both the 'train' and 'test'"):
    pack.pack(leak, str(tmp_path / "p"))


def test_pipeline_load_picks_memory_or_streaming_by_the_budget(packed):
  small = pipeline.load(packed, in_memory_limit_gb=1.0)
  big = pipeline.load(packed, in_memory_limit_gb=0.0)
  assert isinstance(small.split("train"), clips.ClipStore)
  assert pipeline.is_streaming(big.split("train"))
  assert small.fingerprint == big.fingerprint
  a = clips.EpochBatches(small.split("train"), 4, 3, 1, 9000)[1]
  b = clips.EpochBatches(big.split("train"), 4, 3, 1, 9000)[1]
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])


def test_streaming_epoch_serves_this_process_rows_and_resumes_by_state(
    packed):
  data = pipeline.open_packed(packed)
  store = data.split("train")
  epochs = pipeline.streaming_epochs(store, 4, seed=5, window=9000,
                                     rows=(1, 3), read_threads=2,
                                     prefetch_batches=2)
  plan = clips.EpochBatches(store, 4, 5, 2, 9000)
  epoch = epochs(2)
  assert epoch.process_local and len(epoch) == len(plan)
  got = [epoch[i] for i in range(len(epoch))]
  for i, batch in enumerate(got):
    want = plan[i]
    for k in batch:
      np.testing.assert_array_equal(batch[k], want[k][1:3])
  resumed = epochs(2)
  resumed.set_state({"next_index": 2})
  np.testing.assert_array_equal(resumed[2]["waveforms"], got[2]["waveforms"])
  with pytest.raises(ValueError, match="outside this epoch"):
    resumed.set_state({"next_index": len(plan) + 1})


def test_worker_processes_give_the_same_batches(packed):
  store = pipeline.open_packed(packed).split("train")
  threads = pipeline.streaming_epochs(store, 4, 0, 9000, (0, 4))(0)
  workers = pipeline.streaming_epochs(store, 4, 0, 9000, (0, 4),
                                      worker_processes=2)(0)
  for i in range(len(threads)):
    np.testing.assert_array_equal(threads[i]["waveforms"],
                                  workers[i]["waveforms"])


def test_damaged_packs_are_named(packed, tmp_path):
  copy = str(tmp_path / "copy")
  shutil.copytree(packed, copy)
  store = pipeline.open_packed(copy).split("train")
  os.remove(os.path.join(copy, store.shards[-1]))
  with pytest.raises(FileNotFoundError, match="shard train-"):
    pipeline.open_packed(copy)
  with pytest.raises(FileNotFoundError, match="no such packed data folder"):
    pipeline.open_packed(str(tmp_path / "nothing"))


def test_the_pack_experiment_packs_a_speech_commands_layout(tmp_path):
  """configs/pack.py on the generated keyword set (Speech Commands layout):
  every split packed as the in-memory reader reads it (1-s clips, zero-
  padded), multi-class labels, lines that say what was made."""
  import importlib  # pylint: disable=g-import-not-at-top
  from recon_jax.experiments import pack as pack_experiment  # pylint: disable=g-import-not-at-top
  from recon_jax.experiments import registry  # pylint: disable=g-import-not-at-top
  config = importlib.import_module("configs.pack").get_config("tiny")
  config.unlock()
  config.source.source = "generated_keywords"
  config.source.size = "tiny"
  out = str(tmp_path / "packed")
  result = pack_experiment.run(registry.without_experiment(config), out)
  data = pipeline.open_packed(out)
  assert not data.multilabel and len(data.class_names) == 35
  assert result["manifest"]["source"]["kind"] == "speech_commands"
  assert any(l.startswith("train: ") for l in result["lines"])
  assert result["lines"][-1].endswith(f"--config.data.dir={out}")
  keywords = audio_folder.load_speech_commands(
      os.path.join(out, "data", "generated_keywords_tiny"))
  store = data.split("test")
  np.testing.assert_array_equal(store.labels, keywords.test.labels)
  # Zero-padded to 1 s as the in-memory reader pads them.
  assert set(store.lengths) == {8000}
  for i in range(len(store)):
    np.testing.assert_allclose(store.clip(i),
                               _quantised(keywords.test.waveforms[i]),
                               atol=1e-7)
  with pytest.raises(ValueError, match="encoding='mp3'"):
    config.encoding = "mp3"
    pack_experiment.check_config(config)
