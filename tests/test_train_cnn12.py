"""CNN12 supervised training, probe and fine-tune, configs and entry point."""
import concurrent.futures
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from recon_jax import provenance
from recon_jax.data import audio_folder
from recon_jax.train import cnn12_data
from recon_jax.train import cnn12_eval
from recon_jax.train import cnn12_supervised as sup
from recon_jax.train import loop

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)
from configs import cnn12_events  # noqa: E402
from configs import cnn12_finetune  # noqa: E402
from configs import cnn12_keywords  # noqa: E402
from configs import cnn12_probe  # noqa: E402
from configs import cnn12_simclr  # noqa: E402

CLIP = 2400  # 0.3 s: just over CNN12's receptive field of 2370 samples.


def keyword_data(classes=4, n_train=32, n_eval=16, seed=0, fingerprint=None):
  """A KeywordData of tones, one octave per class (easy to learn)."""
  rng = np.random.default_rng(seed)
  t = np.arange(CLIP) / 8000.0

  def split(n, first):
    labels = (np.arange(n) % classes).astype(np.int32)
    f = 300.0 * 2.0**labels[:, None] * rng.uniform(0.95, 1.05, (n, 1))
    x = np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    x = x + 0.1 * rng.normal(size=x.shape)
    x /= np.abs(x).max(1, keepdims=True)
    return audio_folder.KeywordSplit(
        x.astype(np.float32), labels,
        tuple(f"c{l}/{first + i}.wav" for i, l in enumerate(labels)))

  return audio_folder.KeywordData(
      train=split(n_train, 0), validation=split(n_eval, 1000),
      test=split(n_eval, 2000),
      class_names=tuple(f"c{i}" for i in range(classes)),
      background=(rng.normal(size=3000).astype(np.float32),),
      background_names=("noise.wav",), sample_rate=8000,
      fingerprint=fingerprint or f"tones{seed}")


def supervised_config(**train):
  c = cnn12_keywords.get_config("tiny")
  c.train.crop_seconds = CLIP / 8000
  c.train.num_epochs = 20
  c.train.warmup_epochs = 1
  c.train.learning_rate = 1e-2
  c.train.eval_every_epochs = 10
  c.train.checkpoint_every = 100
  c.train.keep_period = 10
  c.train.log_every = 10
  for k, v in train.items():
    c.train[k] = v
  return c


def quiet(c):
  """No augmentation: nothing random to compile but crops and dropout."""
  for name in ("gain_p", "noise_p", "mask_p", "mixup_p"):
    c.augment[name] = 0.0
  return c


@pytest.fixture(scope="module")
def supervised_run(tmp_path_factory):
  """One supervised run (8 devices, every augmentation on, mixup)."""
  workdir = str(tmp_path_factory.mktemp("cnn12") / "keywords")
  data = keyword_data()
  result = sup.train_classifier(supervised_config(), workdir, data, seed=0)
  return workdir, data, result


def test_supervised_run_learns_records_and_keeps_a_series(supervised_run):
  workdir, data, result = supervised_run
  assert result["steps"] == 40  # 20 epochs of 32 // 16 batches.
  assert result["chance"] == {"accuracy": 0.25}
  # Four tones an octave apart: well above chance in 40 steps.
  assert result["test"]["accuracy"] >= 0.5, result
  saved = provenance.read_json(os.path.join(workdir, "eval.json"))
  assert saved["test"] == pytest.approx(result["test"])
  made_by = provenance.read_json(os.path.join(workdir, "made_by.json"))
  assert made_by["data"] == data.fingerprint and made_by["seed"] == 0
  assert made_by["model"]["encoder"]["widths"] == [1, 1, 2, 2, 4, 4, 8, 8, 16,
                                                    16, 32]
  # keep_period=10: the series 0 (the initialisation), 10, 20, 30, 40 is
  # never pruned.
  assert loop.list_checkpoint_steps(workdir) == [0, 10, 20, 30, 40]
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["step"] for r in rows if "eval/accuracy" in r] == [20, 40]


def test_a_run_made_by_other_data_or_seed_is_refused(supervised_run):
  workdir, data, _ = supervised_run
  with pytest.raises(provenance.ProvenanceError, match="data"):
    sup.train_classifier(supervised_config(), workdir,
                         keyword_data(fingerprint="other"), seed=0)
  with pytest.raises(provenance.ProvenanceError, match="seed"):
    sup.train_classifier(supervised_config(), workdir, data, seed=1)


def _encoder_config(config_module, encoder_workdir, epochs=2):
  c = quiet(config_module.get_config("tiny"))
  c.train.crop_seconds = CLIP / 8000
  c.train.num_epochs = epochs
  c.encoder.workdir = encoder_workdir
  return c


def test_probe_trains_only_the_head_and_finetune_both(supervised_run,
                                                     tmp_path):
  workdir, data, _ = supervised_run
  encoder = cnn12_eval.load_encoder(workdir)
  assert encoder.record["kind"] == "cnn12_classifier"
  assert encoder.record["step"] == 40
  trained = loop.restore_params_at(workdir, 40)
  start_head = None
  for recipe, module in (("probe", cnn12_probe), ("finetune", cnn12_finetune)):
    run = str(tmp_path / recipe)
    result = cnn12_eval.train_once(_encoder_config(module, workdir), run, data,
                                   seed=3)
    assert set(result["test"]) == {"accuracy"}
    made_by = provenance.read_json(os.path.join(run, "made_by.json"))
    assert made_by["encoder"] == encoder.record
    assert made_by["encoder"]["fingerprint"] == provenance.fingerprint_arrays(
        trained["encoder"])
    steps = loop.list_checkpoint_steps(run)
    first, last = (loop.restore_params_at(run, s) for s in (steps[0],
                                                             steps[-1]))
    assert steps[0] == 0  # The pretrained start.
    np.testing.assert_array_equal(first["encoder"]["conv3"]["kernel"],
                                  trained["encoder"]["conv3"]["kernel"])
    if start_head is None:
      start_head = first["head"]["fc"]["kernel"]
    # Both start from the same head (fit's init for seed 3).
    np.testing.assert_array_equal(first["head"]["fc"]["kernel"], start_head)
    assert not np.allclose(last["head"]["fc"]["kernel"], start_head)
    moved = [float(np.max(np.abs(a - b))) for a, b in zip(
        jax.tree.leaves(last["encoder"]), jax.tree.leaves(trained["encoder"]))]
    if recipe == "probe":
      assert max(moved) == 0.0
    else:  # Dead units' biases may get no gradient; most leaves move.
      assert sum(m > 0 for m in moved) > len(moved) // 2, moved


def test_best_validation_checkpoint_is_reported_and_handed_on(tmp_path):
  """checkpoint_choice='best_validation': every evaluated step is kept, the
  run reports the one with the best validation accuracy, and
  load_classifier hands that one on."""
  data = keyword_data(seed=1)
  c = quiet(supervised_config(num_epochs=8, eval_every_epochs=2,
                              keep_period=0,
                              checkpoint_choice="best_validation"))
  workdir = str(tmp_path / "best")
  result = sup.train_classifier(c, workdir, data, seed=0)
  rows = [json.loads(l) for l in open(os.path.join(workdir,
                                                   "metrics.jsonl"))]
  evals = {r["step"]: r["eval/accuracy"] for r in rows
           if "eval/accuracy" in r}
  assert sorted(evals) == [4, 8, 12, 16]  # 2 steps an epoch, every 2 epochs
  best = max(sorted(evals), key=evals.get)
  assert result["checkpoint"] == {"choice": "best_validation", "step": best}
  assert set(evals) <= set(loop.list_checkpoint_steps(workdir))
  clf = cnn12_eval.load_classifier(workdir)
  assert clf.record["step"] == best
  store = cnn12_data.clip_store(data, "test")
  again = sup.evaluate(clf.encoder, clf.head, clf.params, store, 16)
  assert again["accuracy"] == pytest.approx(result["test"]["accuracy"])
  assert result["validation"]["accuracy"] == pytest.approx(evals[best])
  with pytest.raises(ValueError, match="eval_every_epochs"):
    sup.check_config(supervised_config(checkpoint_choice="best_validation",
                                       eval_every_epochs=0), 8)


def test_probe_refuses_an_encoder_of_other_widths(supervised_run, tmp_path):
  workdir, data, _ = supervised_run
  c = _encoder_config(cnn12_probe, workdir)
  c.model.width_multiplier = 2
  with pytest.raises(ValueError, match="widths"):
    cnn12_eval.check_config(c)
  c = _encoder_config(cnn12_probe, str(tmp_path / "absent"))
  with pytest.raises(FileNotFoundError, match="encoder.workdir"):
    cnn12_eval.check_config(c)
  with pytest.raises(FileNotFoundError, match="no checkpoint at step 7"):
    cnn12_eval.load_encoder(workdir, step=7)


@pytest.mark.parametrize("field,value,message", [
    ("train.batch_size", 12, "divisible by the 8 devices"),
    ("train.learning_rate", -1e-3, "learning_rate"),
    ("train.warmup_epochs", 30, "warmup_epochs"),
    ("train.weight_decay_mode", "l2", "weight_decay_mode"),
    ("train.crop_seconds", 0.2, "receptive field"),
    ("model.width_divisor", 3, "width_divisor"),
    ("model.dropout_rate", 1.0, "dropout_rate"),
    ("data.source", "audioset_v9", "data.source"),
    ("augment.gain_p", 2.0, "gain_p"),
    ("seeds", (1, 1), "seeds"),
])
def test_bad_config_values_are_refused_before_any_work(field, value, message):
  c = cnn12_keywords.get_config("tiny")
  block, _, name = field.rpartition(".")
  (c[block] if block else c)[name] = value
  with pytest.raises(ValueError, match=message):
    cnn12_eval.check_config(c, num_devices=8)


def test_settings_the_data_cannot_meet_are_refused(tmp_path):
  data = keyword_data()
  c = supervised_config(crop_seconds=0.5)  # Longer than every clip.
  with pytest.raises(ValueError, match="longer than every training clip"):
    sup.train_classifier(c, str(tmp_path), data, seed=0)
  c = supervised_config(batch_size=64)  # 32 training clips.
  with pytest.raises(ValueError, match="fewer than one batch"):
    sup.train_classifier(c, str(tmp_path), data, seed=0)
  assert not os.listdir(tmp_path)


def test_configs_lock_variants_and_name_their_sources():
  for module in (cnn12_keywords, cnn12_events, cnn12_simclr, cnn12_probe,
                 cnn12_finetune):
    for variant in ("default", "tiny", "paper"):
      c = module.get_config(variant)
      x2 = module.get_config(variant + ",x2")
      assert x2.model.width_multiplier == 2 * c.model.width_multiplier
      assert c.data.source in cnn12_data.SOURCES
      with pytest.raises(AttributeError):
        c.train.batchsize = 3  # Locked: a misspelt field fails.
    assert module.get_config("paper").model.width_divisor == 1
  assert cnn12_simclr.get_config("paper").train.batch_size == 2048
  authors = cnn12_simclr.get_config("authors")
  assert (authors.contrastive.negatives, authors.train.weight_decay_mode,
          authors.train.weight_decay) == ("per_device", "coupled", 1e-5)
  assert cnn12_keywords.get_config("authors").train.weight_decay == 0.0
  assert cnn12_probe.get_config("events").data.source == "generated_events"
  assert cnn12_finetune.get_config("tiny").recipe == "finetune"
  with pytest.raises(ValueError, match="variant"):
    cnn12_keywords.get_config("huge")
  with pytest.raises(ValueError, match="data.dir is empty"):
    cnn12_eval.check_config(cnn12_keywords.get_config("paper"), 8)


def test_epoch_batches_are_deterministic_windows_of_long_clips():
  lengths = np.array([5000, 3000, 9000, 4000])
  store = cnn12_data.ClipStore(
      flat=np.arange(lengths.sum(), dtype=np.float32),
      offsets=np.concatenate([[0], np.cumsum(lengths)[:-1]]),
      lengths=lengths, labels=np.arange(4, dtype=np.int32), num_classes=4)
  a = cnn12_data.EpochBatches(store, 2, seed=5, epoch=1, window=4500)
  b = cnn12_data.EpochBatches(store, 2, seed=5, epoch=1, window=4500)
  assert len(a) == 2
  for i in range(2):
    for k in ("waveforms", "lengths", "labels"):
      np.testing.assert_array_equal(a[i][k], b[i][k])
  rows = {int(l): (w, n) for bt in (a[0], a[1])
          for w, n, l in zip(bt["waveforms"], bt["lengths"], bt["labels"])}
  assert rows[1][1] == 3000 and not rows[1][0][3000:].any()  # Zero-padded.
  w, n = rows[2]  # 9000 samples: a 4500-sample window inside the clip.
  assert n == 4500 and np.all(np.diff(w) == 1) and 8000 <= w[0] <= 12500
  groups = cnn12_data.eval_groups(store, 4000)
  assert [(n, list(i)) for n, i in groups] == [(4000, [1, 3]), (8000, [0]),
                                               (12000, [2])]
  x = cnn12_data.eval_inputs(store, [1], 4000)[0]  # 3000 samples, tiled.
  np.testing.assert_array_equal(x, store.clip(1)[np.arange(4000) % 3000])
  # The authors' evaluation: at least 5 s (here 6000 samples), centred with
  # the edges repeated (their PadToSize, torch 'replicate').
  groups = cnn12_data.eval_groups(store, 1, 6000)
  assert [(n, list(i)) for n, i in groups] == [(6000, [0, 1, 3]),
                                               (9000, [2])]
  x = cnn12_data.eval_inputs(store, [1, 0], 6000, "edge")
  for row, clip in enumerate((1, 0)):
    pad = 6000 - lengths[clip]
    want = np.pad(store.clip(clip), (pad // 2, pad - pad // 2), mode="edge")
    np.testing.assert_array_equal(x[row], want)
  with pytest.raises(ValueError, match="pad='wrap'"):
    cnn12_data.eval_inputs(store, [1], 6000, "wrap")


def test_over_seeds_gives_mean_and_t_interval():
  summary = cnn12_eval.over_seeds(
      lambda s: {"test": {"accuracy": 0.5 + 0.1 * s}, "steps": 4}, (0, 1, 2))
  m = summary["metrics"]["test/accuracy"]
  assert m["mean"] == pytest.approx(0.6)
  assert m["ci95"] == pytest.approx(4.302653 * 0.1 / np.sqrt(3), rel=1e-5)
  assert m["values"] == pytest.approx([0.5, 0.6, 0.7])
  lines = cnn12_eval.format_summary(summary)
  assert lines == ["test/accuracy: 0.6000 +- 0.2484 (3 seeds)"]
  with pytest.raises(ValueError, match="seeds"):
    cnn12_eval.over_seeds(lambda s: {}, ())


def _cli(args, tmp_path):
  env = dict(os.environ, RECON_JAX_CACHE=str(tmp_path / "cache"))
  return subprocess.run(
      [sys.executable, "-m", "recon_jax"] + args, capture_output=True, text=True, env=env, cwd=str(tmp_path),
      timeout=600)


def test_entry_point_makes_events_trains_and_prints_metrics(tmp_path):
  workdir = tmp_path / "run"
  out = _cli([f"--config={_ROOT}/configs/cnn12_events.py:tiny",
              f"--workdir={workdir}", "--config.train.num_epochs=1",
              "--config.train.warmup_epochs=0"]
             + [f"--config.augment.{p}=0" for p in ("gain_p", "noise_p",
                                                     "mask_p", "mixup_p")],
             tmp_path)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "supervised CNN12 on generated_events, 14 classes" in out.stdout
  # JAX's accelerator probe is not news on a CPU-only machine.
  assert "Unable to initialize backend" not in out.stderr
  for metric in ("test/mAP", "test/mAUC", "test/d_prime", "chance/mAP"):
    assert metric in out.stdout, out.stdout
  assert os.path.isdir(workdir / "data" / "generated_events_tiny")
  summary = json.loads((workdir / "summary.json").read_text())
  assert summary["seeds"] == [0]
  assert 0 <= summary["metrics"]["test/mAP"]["mean"] <= 1
  assert loop.list_checkpoint_steps(str(workdir / "seed_0")) == [2]


def test_entry_point_errors_are_one_line(tmp_path):
  out = _cli([f"--config={_ROOT}/configs/cnn12_probe.py:tiny",
              f"--workdir={tmp_path / 'run'}"], tmp_path)
  assert out.returncode == 1
  assert out.stderr.strip().splitlines()[-1].startswith(
      "error: ValueError: encoder.workdir is empty")
  assert "Traceback" not in out.stderr
  assert not os.path.exists(tmp_path / "run")


def test_entry_point_trains_on_a_users_folder_and_csv(tmp_path):
  """data.source='labelled_folder': one folder of clips, one CSV with
  fname,labels,split (made here from a tiny generated event set)."""
  import csv  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  from recon_jax.data import events  # pylint: disable=g-import-not-at-top
  gen = str(tmp_path / "gen")
  events.generate_events(gen, events.get_config("tiny"))
  clips = tmp_path / "my_clips"
  clips.mkdir()
  rows = [("fname", "labels", "split")]
  for audio, table, fixed in (("FSD50K.dev_audio", "dev.csv", None),
                              ("FSD50K.eval_audio", "eval.csv", "test")):
    with open(os.path.join(gen, "FSD50K.ground_truth", table)) as f:
      for r in csv.DictReader(f):
        shutil.copy(os.path.join(gen, audio, r["fname"] + ".wav"),
                    clips / f"clip_{r['fname']}.wav")
        rows.append((f"clip_{r['fname']}", r["labels"],
                     fixed or r["split"]))
  labels = tmp_path / "labels.csv"
  with open(labels, "w", newline="") as f:
    csv.writer(f).writerows(rows)
  base = [f"--config={_ROOT}/configs/cnn12_events.py:tiny",
          "--config.data.source=labelled_folder", f"--config.data.dir={clips}",
          "--config.train.num_epochs=1", "--config.train.warmup_epochs=0"]
  no_split = tmp_path / "labels_no_split.csv"
  with open(no_split, "w", newline="") as f:
    csv.writer(f).writerows([r[:2] for r in rows])
  # The run, and beside it (independent work dirs) the CSV missing or its
  # rows lacking a split: one clear line each.
  with concurrent.futures.ThreadPoolExecutor(3) as pool:
    out, missing, unsplit = pool.map(lambda a: _cli(base + a, tmp_path), [
        [f"--config.data.csv={labels}", f"--workdir={tmp_path / 'run'}"],
        [f"--workdir={tmp_path / 'run2'}"],
        [f"--config.data.csv={no_split}", f"--workdir={tmp_path / 'run3'}"]])
  assert out.returncode == 0, out.stderr[-3000:]
  assert "supervised CNN12 on labelled_folder, 14 classes" in out.stdout
  assert "test/mAP" in out.stdout
  assert missing.returncode == 1 and "data.csv is empty" in missing.stderr
  assert unsplit.returncode == 1, unsplit.stderr[-2000:]
  assert "no split column; give every row a split" in unsplit.stderr
  assert "Traceback" not in unsplit.stderr
