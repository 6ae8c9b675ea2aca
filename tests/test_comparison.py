"""The comparison experiment (every inversion method x both networks x
layers): the phone CNN's sonification as Griffin-Lim audio, the thesis's
measures and the paper's coherence on both networks, and the tiny config end
to end through `python -m recon_jax` on tiny trained networks (table cells,
finite scores, WAVs, the offline page's comparison section, resuming,
refusals, bad input as one error line)."""
import json
import os
import re
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest
import soundfile as sf

from configs import cnn12_events
from configs import comparison as comparison_config
from configs import thesis_tiny
from recon_jax import inversion
from recon_jax import metrics
from recon_jax import models
from recon_jax import ops
from recon_jax import provenance
from recon_jax.data import prepare
from recon_jax.experiments import comparison
from recon_jax.experiments import thesis
from recon_jax.report import comparison as report
from recon_jax.report import sonification_media as media
from recon_jax.report import sonification_page as page_lib
from recon_jax.train import cnn12_data
from recon_jax.train import cnn12_eval
from recon_jax.train import phone_classifier
import subprocess_env  # tests/subprocess_env.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHONE = models.PhoneCNN(conv_features=(4, 6, 5), dense_features=(12, 8),
                        num_classes=3, padding="SAME")
CNN12 = models.CNN12(widths=(2, 2, 4, 4, 4, 4, 4, 4, 8, 8, 8))
SETTINGS = ml_collections.ConfigDict({"seed": 0, "griffin_lim_iters": 8,
                                      "coherence_k": 5})


def _tones(n, length, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(length) / 8000
  waves = sum(rng.uniform(0.2, 1, (n, 1)) * np.sin(
      2 * np.pi * rng.uniform(100, 3000, (n, 1)) * t + rng.uniform(0, 6, (n, 1)))
              for _ in range(3))
  return (waves / np.abs(waves).max(1, keepdims=True)).astype(np.float32)


def _phone_subject(n=3, length=2000):
  """A random phone CNN on spectrograms of tones (thesis STFT)."""
  waves = _tones(n, length, seed=1)
  mag = np.asarray(np.abs(ops.stft(waves)))
  mean = mag.mean(0)
  x = mag - mean
  params = PHONE.init(jax.random.key(0), x)["params"]
  params = jax.tree.map(lambda a: a + 0.02 if a.ndim == 1 else a, params)
  return comparison.Subject(
      "phone_cnn", PHONE, params, x, waves, [f"p{i}" for i in range(n)],
      16000, {}, lambda: x, mean_spectrogram=mean, stft={})


def _cnn12_subject(n=3, length=4000):
  waves = _tones(n, length, seed=2)
  params = CNN12.init(jax.random.key(0), waves[:1])["params"]
  return comparison.Subject(
      "cnn12", CNN12, params, waves, waves, [f"c{i}" for i in range(n)],
      8000, {}, lambda: _tones(8, length, seed=3))


def test_phone_cnn_sonification_becomes_griffin_lim_audio():
  subject = _phone_subject()
  cell = comparison.compute_cell(subject, "sonify", 9, SETTINGS, None, None)
  rec, audio = cell["reconstructions"], cell["audio"]
  assert rec.shape == subject.inputs.shape  # a spectrogram, (N, 201, T)
  assert audio.shape == subject.waveforms.shape  # Griffin-Lim, (N, L)
  assert np.all(np.isfinite(audio)) and np.all(np.std(audio, axis=1) > 0)
  assert not cell["left_out"].any()
  np.testing.assert_array_equal(
      cell["maps"], np.asarray(inversion.map_activity(
          PHONE, subject.params, subject.inputs, 9)).argmax(-1) + 1)
  for m in comparison.MEASURES:
    assert np.all(np.isfinite(cell[f"measure_{m}"])), m
  assert np.all(np.abs(cell["measure_mxcorr2"]) <= 1)
  # Layer 10 is the first dense layer: the deconvnet stops before it.
  assert comparison.compute_cell(subject, "sonify", 10, SETTINGS, None,
                                 None) == {"not_applicable": np.array(True)}


@pytest.mark.parametrize("network", ["phone_cnn", "cnn12"])
def test_thesis_measures_and_coherence_on_both_networks(network):
  subject = _phone_subject() if network == "phone_cnn" else _cnn12_subject()
  x, n = subject.inputs, len(subject.inputs)
  # The input itself: mxcorr2 1, R 0; its audio is the original (CNN12) or
  # Griffin-Lim of the true spectrogram (phone CNN).
  audio = subject.audio(x, jax.random.key(0), 16)
  same = comparison.measures(subject, x, audio, np.zeros(n, bool), 5)
  np.testing.assert_allclose(same["mxcorr2"], 1, atol=1e-5)
  np.testing.assert_allclose(same["R"], 0, atol=1e-5)
  assert np.all((same["waveform_mxcorr"] > 0) & (same["waveform_mxcorr"] <= 1
                                                  + 1e-6))
  assert np.all((same["coherence"] > 0) & (same["coherence"] <= 1 + 1e-6))
  if network == "cnn12":
    np.testing.assert_allclose(same["waveform_mxcorr"], 1, atol=1e-5)
    np.testing.assert_allclose(same["coherence"], 1, atol=1e-4)
    # mxcorr2 compares log STFTs minus the decoder clips' mean.
    spec = subject.spectrograms(x)
    assert spec.shape[:2] == (n, 129)
  else:
    want = metrics.waveform_mxcorr(subject.waveforms, x,
                                   subject.mean_spectrogram,
                                   jax.random.key(0), 16)
    np.testing.assert_allclose(same["waveform_mxcorr"], want, rtol=1e-5)
  # Another example's input scores lower than the example's own.
  other = comparison.measures(subject, x[::-1], subject.audio(
      x[::-1], jax.random.key(0), 16), np.zeros(n, bool), 5)
  assert other["mxcorr2"][0] < same["mxcorr2"][0]
  assert other["R"][0] > 0
  # Examples left out are NaN in every measure.
  left = comparison.measures(subject, x, audio, np.array([True] + [False] *
                                                          (n - 1)), 5)
  assert all(np.isnan(v[0]) and np.all(np.isfinite(v[1:]))
             for v in left.values())


def test_backprop_cell_on_cnn12_waveforms():
  subject = _cnn12_subject(n=2)
  settings = inversion.ReconstructionConfig.from_dict(
      {"backprop": {"max_steps": 10, "num_starts": 1}})
  cell = comparison.compute_cell(subject, "backprop", 2, SETTINGS, settings,
                                 None)
  assert cell["reconstructions"].shape == subject.inputs.shape
  np.testing.assert_array_equal(cell["audio"], cell["reconstructions"])
  for m in ("mxcorr2", "waveform_mxcorr", "R"):
    assert np.all(np.isfinite(cell[f"measure_{m}"])), m


# --- End to end --------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A tiny thesis work dir (tiny corpus, padded phone CNN, its
  config.json) and a tiny supervised CNN12 run on the tiny event set."""
  root = tmp_path_factory.mktemp("comparison_inputs")
  c = thesis_tiny.get_config()
  thesis_dir = str(root / "thesis")
  data = prepare.phone_data_from_config(c.corpus, thesis_dir)
  phone_classifier.train_phone_classifier(
      thesis._network_config(c, c.encoder),  # pylint: disable=protected-access
      os.path.join(thesis_dir, "phone_cnn_padded"), data)
  provenance.write_json_atomic(os.path.join(thesis_dir, "config.json"),
                               provenance.to_jsonable(c))
  s = cnn12_events.get_config("tiny")
  s.unlock()
  s.data.dir = str(root / "events")
  s.train.num_epochs, s.train.warmup_epochs = 1, 0
  for p in ("gain_p", "noise_p", "mask_p", "mixup_p"):
    s.augment[p] = 0.0
  s.lock()
  cnn12_eval.run_recipe(s, str(root / "cnn12"), cnn12_data.load_data(
      s.data, str(root)))
  return {"thesis": thesis_dir, "cnn12": str(root / "cnn12"),
          "data": s.data.dir}


def _args(trained, workdir, *extra):
  return ["--config=configs/comparison.py:tiny", f"--workdir={workdir}",
          f"--config.thesis={trained['thesis']}",
          f"--config.cnn12={trained['cnn12']}",
          f"--config.data.dir={trained['data']}", *extra]


def _recon_jax(args):
  env = subprocess_env.env()
  return subprocess.run([sys.executable, "-m", "recon_jax"] + args, cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=400)


def _cells(workdir):
  return {os.path.join(n, f): os.path.getmtime(os.path.join(workdir, n,
                                                            "cells", f))
          for n in comparison.NETWORKS
          for f in os.listdir(os.path.join(workdir, n, "cells"))}


def _one_clip_page(folder):
  """A written offline page with one clip (what the sonification stage
  writes, in small)."""
  x = np.sin(np.linspace(0, 400, 4000)).astype(np.float32)
  clip = media.write_clip_media(folder, "m", "c0", x, 0.5 * x, 0.5 * x)
  return page_lib.write_page(folder, {"sample_rate": 8000, "models": {
      "supervised": {"layers": [{"layer": 1, "maps": [
          {"map": 1, "activity": 1.0, "silent": False, "clips": [clip]}]}]}}})


@pytest.fixture(scope="module")
def compared(trained, tmp_path_factory):
  """The tiny comparison, run once, added to a page."""
  workdir = str(tmp_path_factory.mktemp("comparison"))
  page = str(tmp_path_factory.mktemp("page"))
  _one_clip_page(page)
  proc = _recon_jax(_args(trained, workdir, f"--config.page={page}"))
  assert proc.returncode == 0, proc.stderr[-3000:]
  return workdir, proc, page


def test_every_cell_is_scored(compared):
  workdir, proc, _ = compared
  config = comparison_config.get_config("tiny")
  with open(os.path.join(workdir, "results.json")) as f:
    results = json.load(f)
  rows = results["rows"]
  want = {(n, m, l) for n in config.networks for m in config.methods
          for l in config.layers[n]}
  assert {(r["network"], r["method"], r["layer"]) for r in rows} == want
  for r in rows:
    assert not r["not_applicable"]
    assert r["num_examples"] == config.num_examples
    kept = r["num_examples"] - r["num_left_out"]
    assert kept > 0, r
    for m in ("mxcorr2", "waveform_mxcorr", "R"):
      assert np.isfinite(r[f"{m}_mean"]) and r[f"{m}_count"] == kept, (m, r)
    assert -1 <= r["mxcorr2_mean"] <= 1 and 0 <= r["waveform_mxcorr_mean"] <= 1
    # Coherence: finite, or undefined for a silent reconstruction (counted).
    assert (np.isfinite(r["coherence_mean"]) or r["coherence_count"] == 0), r
    if r["method"] in comparison.DECODER_METHODS:
      assert r["decoder"].startswith(os.path.join(workdir, r["network"]))
  assert {b["what"] for b in results["baselines"]} >= {
      "average spectrogram (kept nothing)", "silence (kept nothing)"}
  # The table, the caption's warning and the best methods are printed and
  # written.
  with open(os.path.join(workdir, "results.md")) as f:
    md = f.read()
  assert md.count("| phone CNN |") == 10 + 2 and md.count("| CNN12 |") == 11
  assert "inverts ONE feature map" in md
  assert "| network | method | layer | mxcorr2 |" in proc.stdout
  assert len(re.findall(r"^best by (mxcorr2|coherence), ", proc.stdout,
                        flags=re.M)) == 4
  for name in comparison.NETWORKS:
    assert os.path.getsize(os.path.join(workdir, f"figure_{name}.png")) > 0
    made = provenance.read_json(os.path.join(workdir, name, "made_by.json"))
    assert made["inputs"]["data"] and made["inputs"]["params"]
  # What a summary page shows, with paths relative to the page's folder.
  section = "\n".join(report.summary_section(workdir))
  base = os.path.basename(workdir)
  assert "| network | method | layer | mxcorr2 |" in section
  assert f"]({base}/figure_cnn12.png)" in section
  assert f"`{base}/wavs/`" in section


def test_wavs_of_every_cell(compared):
  workdir, _, _ = compared
  config = comparison_config.get_config("tiny")
  with open(os.path.join(workdir, "results.json")) as f:
    examples = json.load(f)["examples"]
  for name in comparison.NETWORKS:
    folder = os.path.join(workdir, "wavs", name)
    files = sorted(os.listdir(folder))
    assert sum(f.endswith("_original.wav") for f in files) == 1
    assert len(files) == 1 + len(config.methods) * len(config.layers[name])
    lengths = set()
    for f in files:
      wave, rate = sf.read(os.path.join(folder, f))
      assert rate == examples[name]["sample_rate"] and np.all(np.isfinite(
          wave))
      lengths.add(len(wave))
    assert len(lengths) == 1  # reconstructions as long as the original
  assert examples["cnn12"]["input_shape"] == [4000]  # 0.5 s at 8 kHz


def test_rerun_reuses_every_cell_and_other_inputs_are_refused(compared,
                                                              trained):
  workdir, first, page = compared
  before = _cells(workdir)
  proc = _recon_jax(_args(trained, workdir, f"--config.page={page}"))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert _cells(workdir) == before
  table = [l for l in proc.stdout.splitlines() if l.startswith("|")]
  assert table == [l for l in first.stdout.splitlines() if l.startswith("|")]
  # Other settings for the same cells: refused, naming the field, in-process
  # (nothing is computed).
  config = comparison_config.get_config("tiny")
  config.unlock()
  config.thesis, config.cnn12 = trained["thesis"], trained["cnn12"]
  config.data.dir = trained["data"]
  config.backprop.max_steps = 11
  del config["experiment"]
  with pytest.raises(provenance.ProvenanceError, match="backprop.max_steps"):
    comparison.run(config, workdir)
  assert _cells(workdir) == before


def test_the_page_gets_the_comparison(compared):
  """The table, the figures and every cell's WAV on the offline page,
  copied into its folder; the page's own clips kept."""
  workdir, proc, page = compared
  assert f"page: {os.path.join(page, 'index.html')}" in proc.stdout
  with open(os.path.join(workdir, "results.json")) as f:
    results = json.load(f)
  with open(os.path.join(page, "manifest.json")) as f:
    manifest = json.load(f)
  assert manifest["models"]["supervised"]["layers"][0]["maps"][0]["clips"]
  section = manifest["comparison"]
  assert [r["cells"] for r in section["rows"]] == [
      cells for cells, _ in report.table_rows(results["rows"],
                                              results["baselines"])]
  assert "**" not in section["caption"]
  config = comparison_config.get_config("tiny")
  assert [n["name"] for n in section["networks"]] == [
      report.NETWORK_NAMES[n] for n in config.networks]
  for name, net in zip(config.networks, section["networks"]):
    assert net["sample_rate"] == results["examples"][name]["sample_rate"]
    assert net["layers"] == list(config.layers[name])
    assert net["methods"] == [report.METHOD_NAMES[m] for m in config.methods]
    assert os.path.isfile(os.path.join(page, net["figure_png"]))
    assert len(net["examples"]) == config.num_wav_examples
    ex = net["examples"][0]
    assert ex["clip"] == results["examples"][name]["ids"][0]
    cells = {(c["method"], c["layer"]): c for c in ex["cells"]}
    assert len(cells) == len(config.methods) * len(config.layers[name])
    for c in cells.values():
      assert c["wav"].startswith("comparison/wavs/")  # every tiny cell kept
      copied, _ = sf.read(os.path.join(page, c["wav"]))
      written, _ = sf.read(os.path.join(
          workdir, "wavs", name, os.path.basename(c["wav"])))
      np.testing.assert_array_equal(copied, written)
  assert not [f for f in os.listdir(page) if f.startswith(".comparison")]
  html = open(os.path.join(page, "index.html"), encoding="utf-8").read()
  assert "Every method on both networks" in html


@pytest.mark.parametrize("extra, pattern", [
    ("--config.page=/nonexistent/page",
     r"config\.page='/nonexistent/page': no offline page there"),
    ("--config.methods=('sonify','invert')",
     r"config\.methods: unknown method 'invert'"),
    ("--config.layers.cnn12=(1,12)",
     r"config\.layers\.cnn12: block 12 does not exist: CNN12 has blocks "
     r"1\.\.11"),
])
def test_bad_input_is_one_error_line(trained, tmp_path, extra, pattern):
  proc = _recon_jax(_args(trained, str(tmp_path / "w"), extra))
  assert proc.returncode == 1, proc.stderr[-3000:]
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
  assert re.search(pattern, errors[0]), errors[0]
  assert not os.path.exists(tmp_path / "w" / "phone_cnn" / "cells")


def test_rows_leave_out_and_count_diverged_examples():
  cell = {"left_out": np.array([False, True, False]),
          "measure_mxcorr2": np.array([0.5, np.nan, 0.7]),
          "measure_waveform_mxcorr": np.array([0.1, np.nan, 0.3]),
          "measure_coherence": np.array([0.9, np.nan, np.nan]),  # silent
          "measure_R": np.array([1.0, np.nan, 3.0])}
  row = report.result_row("cnn12", "backprop", 2, cell)
  assert (row["num_examples"], row["num_left_out"]) == (3, 1)
  assert row["mxcorr2_mean"] == pytest.approx(0.6)
  assert row["mxcorr2_sem"] == pytest.approx(0.1)
  assert row["coherence_count"] == 1
  table = report.markdown_table([row, report.result_row(
      "phone_cnn", "sonify", 10, {"not_applicable": np.array(True)})])
  assert "| CNN12 | Backprop | L2 | 0.600 ± 0.100 |" in table
  assert "0.900 ± 0.000 (over 1; 1 silent)" in table
  assert "| 1/3 |" in table
  assert "| phone CNN | Sonification (1 map) | L10 | n/a | n/a | n/a | n/a |" \
      in table
