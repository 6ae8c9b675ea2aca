"""The sonification media writers and the offline page, in real Chromium.

The page test opens index.html from file:// in headless Chromium (Debian's
`chromium`, driven by Playwright; tests/install.sh installs both) and
fails, never skips, when Chromium is missing.

Run as a script, this file writes a screenshot of the page on the synthetic
demo built here (the README's screenshot is of a real run's page, made by
recon_jax.report.sonification_page.screenshot_page):
  python tests/test_report_sonification_page.py
"""
import copy
import json
import os
import shutil
import sys

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
from PIL import Image

from recon_jax.report import sonification_media as media
from recon_jax.report import sonification_page as page_lib

SR = 8000
DURATIONS = (1.0, 2.5, 0.75)  # seconds, cycled over clips


def _clip_waves(seed, duration, silent):
  """A synthetic input (chirp + harmonic + noise) and a band-passed part."""
  rng = np.random.default_rng(seed)
  t = np.arange(int(round(duration * SR))) / SR
  f0 = 150 + 50 * (seed % 5)
  x = (scipy.signal.chirp(t, f0, t[-1], 6 * f0, method="quadratic")
       + 0.5 * np.sin(2 * np.pi * (400 + 300 * (seed % 7)) * t)
       + 0.05 * rng.standard_normal(t.size))
  x *= np.hanning(t.size) ** 0.3
  if silent:
    s = np.zeros_like(x)
  else:
    lo = 250 + 400 * (seed % 4)
    sos = scipy.signal.butter(4, (lo, lo + 900), "bandpass", fs=SR,
                              output="sos")
    s = scipy.signal.sosfilt(sos, x)
  return x, s, x - s


def build_demo(out_dir, layout=None, silent=("supervised", 3, 2),
               evolution_steps=(0, 1000, 5000),
               title="Sonification demo (synthetic clips)",
               comparison=True):
  """Writes media and returns a manifest for a small synthetic page.

  Args:
    out_dir: a pathlib.Path.
    layout: {model: {layer: number of maps}}.
    silent: the (model, layer, map) whose sonifications are silent.
    comparison: add demo_comparison's section.
  """
  layout = layout or {"supervised": {1: 2, 3: 2}, "contrastive": {2: 2}}
  note = ("Synthetic clips (chirps and tones, band-passed), not model "
          "outputs. Spectrograms: dB relative to each clip's peak "
          "(0 to -80 dB), 0-4 kHz.")
  manifest = {"title": title, "note": note, "sample_rate": SR, "models": {},
              "figures": []}
  seed = 0
  pairs, labels = [], []
  for mi, (name, layers) in enumerate(layout.items()):
    model = {"description": f"synthetic {name} model", "layers": []}
    for li, (layer, n_maps) in enumerate(layers.items()):
      maps = []
      for fm in range(1, n_maps + 1):
        is_silent = (name, layer, fm) == tuple(silent)
        clips = []
        for _ in range(3):
          seed += 1
          x, s, r = _clip_waves(seed, DURATIONS[(seed - 1) % 3], is_silent)
          entry = media.write_clip_media(
              str(out_dir), f"{name}/L{layer:02d}/m{fm:03d}",
              f"c{seed:03d}", x, s, r, SR)
          clips.append(entry)
          if len(pairs) < 2 and not is_silent:
            pairs.append((x, s))
            labels.append(f"L{layer} map {fm}")
        activity = 0.0 if is_silent else np.exp(-0.4 * ((fm * 7) % n_maps))
        maps.append({"map": fm, "activity": round(float(activity), 3),
                     "silent": is_silent, "clips": clips})
      model["layers"].append({"layer": layer, "maps": maps})
    if mi == 0 and evolution_steps:
      last = max(layers)
      x, _, _ = _clip_waves(999, 1.0, False)
      evo = {"layer": last, "map": 1, "clip": "c999", "steps": [],
             "input_wav": media.write_clip_wav(
                 str(out_dir / "evolution" / "c999_input.wav"), x, SR),
             "input_png": media.write_spectrogram_thumbnail(
                 str(out_dir / "evolution" / "c999_input.png"), x, SR)}
      evo["input_wav"] = "evolution/c999_input.wav"
      evo["input_png"] = "evolution/c999_input.png"
      for k, step in enumerate(evolution_steps):
        lo = 300 + 900 * k
        sos = scipy.signal.butter(4, (lo, lo + 600), "bandpass", fs=SR,
                                  output="sos")
        s = scipy.signal.sosfilt(sos, x)
        stem = f"evolution/c999_step{step:06d}"
        media.write_clip_wav(str(out_dir / f"{stem}.wav"), s, SR)
        media.write_spectrogram_thumbnail(str(out_dir / f"{stem}.png"), s, SR)
        evo["steps"].append({"step": step, "sonification_wav": f"{stem}.wav",
                             "sonification_png": f"{stem}.png"})
      model["evolution"] = [evo]
    manifest["models"][name] = model
  media.spectrogram_pairs_figure(str(out_dir / "figures" / "pairs.png"),
                                 pairs, SR, row_labels=labels,
                                 title="Input and sonification")
  manifest["figures"].append({"title": "Fig. 1", "png": "figures/pairs.png",
                              "caption": "input | sonification pairs"})
  if comparison:
    manifest["comparison"] = demo_comparison(out_dir)
  return manifest


def demo_comparison(out_dir):
  """A synthetic comparison section (report.comparison.page_section's form):
  two networks at different sample rates, an n/a cell and a left-out one."""
  nets = [("phone CNN", 16000, 0.4, ["Sonification (1 map)", "Backprop"],
           [1, 10]),
          ("CNN12", SR, 1.0, ["Sonification (1 map)", "Backprop", "Decoding"],
           [2, 5])]
  section = {"title": "Every method on both networks",
             "note": "synthetic: tones, not reconstructions",
             "caption": "mean ± s.e.m.; <i>not markup</i>",
             "columns": ["network", "method", "layer", "mxcorr2"],
             "rows": [], "best": ["best by mxcorr2, CNN12: L2 Backprop"],
             "networks": []}
  for n, (name, rate, seconds, methods, layers) in enumerate(nets):
    t = np.arange(int(seconds * rate)) / rate
    entry = {"name": name, "sample_rate": rate, "methods": methods,
             "layers": layers, "examples": []}
    if n == 1:
      media.spectrogram_pairs_figure(
          str(out_dir / "comparison" / "figure.png"),
          [(np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t))], rate,
          row_labels=["one"], title="method x layer")
      entry["figure_png"] = "comparison/figure.png"
      entry["figure_caption"] = "example e0"
    for j in range(2):
      stem = f"comparison/{n}/e{j}"
      original = media.write_clip_wav(
          str(out_dir / f"{stem}_original.wav"),
          np.sin(2 * np.pi * (300 + 100 * j) * t), rate)
      example = {"clip": f"e{j}", "original_wav": f"{stem}_original.wav",
                 "cells": []}
      assert os.path.exists(original)
      for mi, method in enumerate(methods):
        for layer in layers:
          cell = {"method": method, "layer": layer}
          if method.startswith("Sonification") and layer == 10:
            cell["none"] = "n/a: dense layer"
          elif j == 1 and mi == 1 and layer == layers[0]:
            cell["none"] = "left out: diverged"
          else:
            path = f"{stem}_m{mi}_L{layer}.wav"
            media.write_clip_wav(str(out_dir / path), np.sin(
                2 * np.pi * (500 + 50 * mi + layer) * t), rate)
            cell["wav"] = path
          example["cells"].append(cell)
          if j == 0:
            section["rows"].append({"cells": [name, method, f"L{layer}",
                                              f"{0.1 * layer:.3f}"],
                                    "reference": False})
      entry["examples"].append(example)
    section["rows"].append({"cells": [name, "kept nothing", "—", "0.000"],
                            "reference": True})
    section["networks"].append(entry)
  return section


# ---------------------------------------------------------------- media


def test_clip_wav_roundtrip_exact_length_rate_and_peak(tmp_path):
  x = np.sin(2 * np.pi * 440 * np.arange(20000) / SR) * 3.0
  path = media.write_clip_wav(str(tmp_path / "a" / "x.wav"), x, SR)
  y, sr = sf.read(path)
  info = sf.info(path)
  assert (sr, y.shape, info.subtype, info.channels) == (
      SR, (20000,), "PCM_16", 1)
  assert info.frames / info.samplerate == 2.5
  assert np.max(np.abs(y)) == pytest.approx(0.9, abs=1e-4)
  np.testing.assert_allclose(y, x * 0.3, atol=1e-4)
  assert os.listdir(tmp_path / "a") == ["x.wav"]  # no temporary left over


def test_clip_wav_reference_keeps_residual_level_and_refuses_bad(tmp_path):
  x = np.sin(np.linspace(0, 50, 800)) * 2.0
  r = 0.25 * x
  y, _ = sf.read(media.write_clip_wav(str(tmp_path / "r.wav"), r, SR,
                                      reference=x))
  np.testing.assert_allclose(y, r * 0.45, atol=1e-4)  # x's peak -> 0.9
  y, _ = sf.read(media.write_clip_wav(str(tmp_path / "raw.wav"), 0.5 * x / 2,
                                      SR, peak=None))
  np.testing.assert_allclose(y, 0.25 * x, atol=1e-4)
  silent, _ = sf.read(media.write_clip_wav(str(tmp_path / "s.wav"),
                                           np.zeros(80), SR))
  assert silent.shape == (80,) and not np.any(silent)
  for bad, match in ((np.array([0.0, np.nan]), "NaN"),
                     (np.zeros((2, 3)), "1-D"), (np.zeros(0), "empty")):
    with pytest.raises(ValueError, match=match):
      media.write_clip_wav(str(tmp_path / "b.wav"), bad, SR)
  with pytest.raises(ValueError, match="clip"):
    media.write_clip_wav(str(tmp_path / "b.wav"), x, SR, peak=None)
  assert not (tmp_path / "b.wav").exists()


def test_log_spectrogram_hz_axis_and_db_range():
  t = np.arange(SR) / SR
  freqs, times, db = media.log_spectrogram(np.sin(2 * np.pi * 1000 * t), SR)
  assert freqs[0] == 0 and freqs[-1] == SR / 2
  assert times[-1] <= 1.0 and db.shape == (freqs.size, times.size)
  assert db.max() == 0 and db.min() >= -80
  assert abs(freqs[np.argmax(db.mean(1))] - 1000) <= SR / 256
  _, _, silent = media.log_spectrogram(np.zeros(100), SR)  # short clip
  assert np.all(silent == -80)


def test_thumbnail_has_exact_size_and_pairs_figure_loads(tmp_path):
  x, s, _ = _clip_waves(3, 1.0, False)
  for size, axes in (((440, 160), True), ((200, 80), False)):
    path = media.write_spectrogram_thumbnail(
        str(tmp_path / f"t{size[0]}.png"), x, SR, *size, axes=axes)
    with Image.open(path) as im:
      assert im.size == size
      pixels = np.asarray(im.convert("L"), np.float64)
    assert pixels.std() > 10  # a picture, not a blank
  one = media.spectrogram_pairs_figure(str(tmp_path / "one.png"), [(x, s)],
                                       SR, title="t")
  two = media.spectrogram_pairs_figure(str(tmp_path / "two.png"),
                                       [(x, s), (x, np.zeros_like(x))], SR,
                                       row_labels=["a", "b"])
  with Image.open(one) as a, Image.open(two) as b:
    assert a.size[0] > 800 and a.size[0] > a.size[1]
    assert b.size[1] > 1.5 * a.size[1]
  with pytest.raises(ValueError, match="row labels"):
    media.spectrogram_pairs_figure(str(tmp_path / "x.png"), [(x, s)], SR,
                                   row_labels=["a", "b"])


def test_write_clip_media_entry(tmp_path):
  x, s, r = _clip_waves(1, 2.5, False)
  entry = media.write_clip_media(str(tmp_path), "m/L03", "clip 7/a", x, s, r,
                                 SR)
  assert entry["clip"] == "clip 7/a" and entry["duration_s"] == 2.5
  assert entry["input_wav"] == "m/L03/clip_7_a_input.wav"
  for key in ("input_wav", "sonification_wav", "residual_wav"):
    assert sf.info(str(tmp_path / entry[key])).frames == 20000
  for key in ("input_png", "sonification_png"):
    with Image.open(tmp_path / entry[key]) as im:
      assert im.size == (440, 160)
  with pytest.raises(ValueError, match="differ in length"):
    media.write_clip_media(str(tmp_path), "m", "c", x, s[:-1], r, SR)


# ------------------------------------------------------------- manifest


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
  out = tmp_path_factory.mktemp("page")
  return out, build_demo(out)


def _first_clip(m):
  return m["models"]["supervised"]["layers"][0]["maps"][0]["clips"][0]


BAD_MANIFESTS = [
    (lambda m: m.pop("models"), r"missing key\(s\) \['models'\]"),
    (lambda m: m.update(extra=1), r"unknown key\(s\) \['extra'\]"),
    (lambda m: _first_clip(m).update(input_wav="nope/x.wav"),
     r"clips\[0\]\.input_wav: file not found"),
    (lambda m: _first_clip(m).update(input_png="/abs/x.png"), "relative"),
    (lambda m: _first_clip(m).update(input_png="a/../x.png"), "inside"),
    (lambda m: _first_clip(m).update(input_png=_first_clip(m)["input_wav"]),
     "must be a .png file"),
    (lambda m: _first_clip(m).update(duration_s=2.0),
     r"input_wav: .* lasts 1\.0000 s, the clip 2\.0000 s"),
    (lambda m: _first_clip(m).update(
        residual_wav=m["models"]["supervised"]["layers"][0]["maps"][0]
        ["clips"][1]["input_wav"]), r"residual_wav: .* lasts 2\.5"),
    (lambda m: m.update(sample_rate=16000), "is at 8000 Hz"),
    (lambda m: m["models"]["supervised"]["layers"][0].update(layer=0),
     r"layers\[0\]\.layer: must be >= 1"),
    (lambda m: m["models"]["supervised"]["layers"][1].update(layer=1),
     "layer 1 appears twice"),
    (lambda m: m["models"]["supervised"]["layers"][0]["maps"][1].update(
        map=1), "map 1 appears twice"),
    (lambda m: m["models"]["supervised"]["layers"][0]["maps"][0].update(
        map=True), r"maps\[0\]\.map: must be an int"),
    (lambda m: m["models"]["supervised"]["layers"][0]["maps"][0].update(
        activity="high"), "activity: must be a number"),
    (lambda m: m["models"]["supervised"]["layers"][0]["maps"][0].update(
        activity=float("nan")), "must be finite"),
    (lambda m: m["models"]["supervised"]["layers"][0]["maps"][0].update(
        silent=0), "silent: must be a bool"),
    (lambda m: m["models"]["supervised"]["layers"][0]["maps"][0]["clips"][1]
     .update(clip=_first_clip(m)["clip"]), "clip 'c001' appears twice"),
    (lambda m: m["models"]["supervised"].update(layers=[]), "not be empty"),
    (lambda m: m["models"]["supervised"]["evolution"][0]["steps"].reverse(),
     "steps must increase"),
    (lambda m: m["figures"][0].pop("png"), r"figures\[0\]: missing key"),
    # The comparison section.
    (lambda m: m["comparison"].pop("networks"),
     r"manifest\.comparison: missing key\(s\) \['networks'\]"),
    (lambda m: m["comparison"]["rows"][0]["cells"].pop(),
     r"comparison\.rows\[0\]\.cells: has 3 cells for 4 columns"),
    (lambda m: m["comparison"]["rows"][0].update(reference="no"),
     r"rows\[0\]\.reference: must be a bool"),
    (lambda m: m["comparison"]["networks"][0].update(sample_rate=8000),
     r"networks\[0\]\.examples\[0\]\.original_wav: .* is at 16000 Hz, "
     r"the manifest's sample_rate for it is 8000"),
    (lambda m: m["comparison"]["networks"][1]["examples"][0]["cells"][0]
     .update(method="Magic"), r"cells\[0\]\.method: 'Magic' is not one of"),
    (lambda m: m["comparison"]["networks"][1]["examples"][0]["cells"][0]
     .update(layer=7), r"cells\[0\]\.layer: 7 is not one of the network's "
     r"layers \[2, 5\]"),
    (lambda m: m["comparison"]["networks"][1]["examples"][0]["cells"][1]
     .update(layer=2), "Sonification \\(1 map\\) at layer 2 appears twice"),
    (lambda m: m["comparison"]["networks"][1]["examples"][0]["cells"][0]
     .update(wav=m["comparison"]["networks"][0]["examples"][0]
             ["original_wav"]), r"is at 16000 Hz"),
    (lambda m: m["comparison"]["networks"][1]["examples"][1].update(
        original_wav="comparison/0/../1/e0_original.wav"), "inside"),
    (lambda m: m["comparison"]["networks"][1]["examples"][1].update(
        clip="e0"), "clip 'e0' appears twice"),
    (lambda m: m["comparison"]["networks"][1]["examples"][0]["cells"][0]
     .pop("wav"), r"cells\[0\]: missing key\(s\) \['none'\]"),
    (lambda m: m["comparison"]["networks"][1].update(name="phone CNN"),
     "network 'phone CNN' appears twice"),
]


def test_comparison_wav_must_last_its_original(demo, tmp_path):
  out, manifest = demo
  bad = copy.deepcopy(manifest)
  net = bad["comparison"]["networks"][1]
  short = media.write_clip_wav(str(out / "short.wav"), np.ones(4000) * 0.1,
                               SR)
  assert short
  net["examples"][0]["cells"][0]["wav"] = "short.wav"
  with pytest.raises(page_lib.ManifestError,
                     match=r"short\.wav lasts 0\.5000 s, the original "
                     r"1\.0000 s"):
    page_lib.validate_manifest(str(out), bad)


def test_set_comparison_adds_replaces_and_refuses(demo, tmp_path):
  out, manifest = demo
  with pytest.raises(FileNotFoundError, match="holds no offline page"):
    page_lib.set_comparison(str(tmp_path), manifest["comparison"])
  without = copy.deepcopy(manifest)
  section = without.pop("comparison")
  page = tmp_path / "page"
  shutil.copytree(out, page)
  html_path = page_lib.write_page(str(page), without)
  assert '"comparison":null' in open(html_path, encoding="utf-8").read()
  page_lib.set_comparison(str(page), section)
  saved = json.loads((page / "manifest.json").read_text())
  # The models keep their order (the page opens on the first one).
  assert list(saved["models"]) == list(manifest["models"]) == [
      "supervised", "contrastive"]
  assert '"models":[{"name":"supervised"' in (page / "index.html").read_text()
  assert saved["comparison"]["networks"][1]["figure_png"] == (
      "comparison/figure.png")
  assert saved["models"] == page_lib.validate_manifest(
      str(page), without)["models"]  # the rest of the page as it was
  # A bad section: refused, the page left as it was.
  before = (page / "index.html").read_bytes()
  bad = copy.deepcopy(section)
  bad["networks"][0]["layers"] = [0]
  with pytest.raises(page_lib.ManifestError, match=r"layers\[0\]"):
    page_lib.set_comparison(str(page), bad)
  assert (page / "index.html").read_bytes() == before
  # Replacing: the new section stands alone.
  section["title"] = "Second comparison"
  page_lib.set_comparison(str(page), section)
  assert "Second comparison" in (page / "index.html").read_text()


@pytest.mark.parametrize("mutate,match", BAD_MANIFESTS)
def test_bad_manifests_are_refused_and_nothing_written(demo, tmp_path,
                                                       mutate, match):
  out, manifest = demo
  bad = copy.deepcopy(manifest)
  mutate(bad)
  with pytest.raises(page_lib.ManifestError, match=match):
    page_lib.validate_manifest(str(out), bad)
  # write_page validates first: a bad manifest writes nothing.
  with pytest.raises(page_lib.ManifestError):
    page_lib.write_page(str(tmp_path), bad)
  assert not os.listdir(tmp_path)


def test_not_a_png_and_not_a_wav_are_refused(demo):
  out, manifest = demo
  (out / "fake.png").write_text("not a png")
  (out / "fake.wav").write_text("not a wav")
  bad = copy.deepcopy(manifest)
  _first_clip(bad)["input_png"] = "fake.png"
  with pytest.raises(page_lib.ManifestError, match="is not a PNG"):
    page_lib.validate_manifest(str(out), bad)
  bad = copy.deepcopy(manifest)
  _first_clip(bad)["input_wav"] = "fake.wav"
  with pytest.raises(page_lib.ManifestError, match="not a readable WAV"):
    page_lib.validate_manifest(str(out), bad)


def test_validate_fills_durations_and_sorts(demo):
  out, manifest = demo
  m = copy.deepcopy(manifest)
  m["models"]["supervised"]["layers"].reverse()
  m["models"]["supervised"]["layers"][0]["maps"][0]["activity"] = np.float32(
      0.5)
  checked = page_lib.validate_manifest(str(out), m)
  layers = checked["models"]["supervised"]["layers"]
  assert [l["layer"] for l in layers] == [1, 3]
  durations = [c["duration_s"] for l in layers for fm in l["maps"]
               for c in fm["clips"]]
  assert set(durations) == set(DURATIONS)
  json.dumps(checked)  # plain JSON types
  evo = checked["models"]["supervised"]["evolution"][0]
  assert [s["duration_s"] for s in evo["steps"]] == [1.0] * 3


# ------------------------------------------------------------ the page


@pytest.fixture
def browser():  # per test: screenshot_page starts its own Playwright
  try:
    exe = page_lib.find_chromium()
  except FileNotFoundError as e:
    pytest.fail(f"{e}; the page test needs a real browser", pytrace=False)
  from playwright.sync_api import sync_playwright  # pylint: disable=g-import-not-at-top
  with sync_playwright() as p:
    b = p.chromium.launch(executable_path=exe, args=[
        "--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
    yield b
    b.close()


def _wav_seconds(out, manifest):
  """{file name: seconds} of every WAV the manifest names."""
  names = {}
  for model in manifest["models"].values():
    for layer in model["layers"]:
      for fm in layer["maps"]:
        for c in fm["clips"]:
          for k in ("input_wav", "sonification_wav", "residual_wav"):
            names[c[k]] = sf.info(str(out / c[k])).duration
    for evo in model.get("evolution", []):
      names[evo["input_wav"]] = sf.info(str(out / evo["input_wav"])).duration
      for s in evo["steps"]:
        names[s["sonification_wav"]] = sf.info(
            str(out / s["sonification_wav"])).duration
  for net in manifest.get("comparison", {}).get("networks", []):
    for ex in net["examples"]:
      for p in [ex["original_wav"]] + [c["wav"] for c in ex["cells"]
                                       if "wav" in c]:
        names[p] = sf.info(str(out / p)).duration
  return names


_MEDIA_STATE = """() => ({
  imgs: [...document.images].map(i => ({src: i.getAttribute('src'),
      complete: i.complete, w: i.naturalWidth})),
  audios: [...document.querySelectorAll('audio')].map(a => ({
      src: a.getAttribute('src'), ready: a.readyState, duration: a.duration,
      error: a.error && a.error.code}))})"""


def _loaded_media(page, seconds):
  """Waits for every picture and player; checks them; returns their srcs."""
  page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
  try:
    page.wait_for_function(
        "() => [...document.images].every(i => i.complete) && "
        "[...document.querySelectorAll('audio')].every("
        "a => a.readyState >= 1 || a.error)", timeout=15000)
  except Exception:  # pylint: disable=broad-except
    pass  # the checks below say what did not load
  state = page.evaluate(_MEDIA_STATE)
  assert state["imgs"] and state["audios"]
  for img in state["imgs"]:
    assert img["complete"] and img["w"] > 0, f"picture did not load: {img}"
  for a in state["audios"]:
    assert a["ready"] >= 1 and a["error"] is None, f"audio not loaded: {a}"
    want = seconds[a["src"]]
    assert abs(a["duration"] - want) < 1.5e-3, (a, want)
  return ([i["src"] for i in state["imgs"]],
          [a["src"] for a in state["audios"]])


def _open(browser, html_path, errors, viewport=(1280, 900)):
  page = browser.new_page(viewport={"width": viewport[0],
                                    "height": viewport[1]})
  page.on("console", lambda msg: msg.type == "error" and errors.append(
      f"console: {msg.text}"))
  page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
  page.on("requestfailed", lambda r: errors.append(
      f"request failed: {r.url} {r.failure}"))
  page.goto("file://" + os.path.abspath(html_path))
  return page


def _clip_ids(page):
  return page.eval_on_selector_all(
      "#clips .clip", "els => els.map(e => e.dataset.clip)")


def test_page_in_chromium(demo, browser):
  out, manifest = demo
  html_path = page_lib.write_page(str(out), manifest)
  assert html_path == str(out / "index.html")
  text = open(html_path, encoding="utf-8").read()
  assert "http://" not in text and "https://" not in text
  seconds = _wav_seconds(out, manifest)
  errors = []
  page = _open(browser, html_path, errors)

  # Opening state: first model, first layer, most active map, 3 clips.
  sup = manifest["models"]["supervised"]
  assert page.inner_text("h1") == manifest["title"]
  fm = max(sup["layers"][0]["maps"], key=lambda m: m["activity"])
  assert _clip_ids(page) == [c["clip"] for c in fm["clips"]]
  imgs, audios = _loaded_media(page, seconds)
  assert all(c["input_png"] in imgs and c["sonification_png"] in imgs
             for c in fm["clips"])
  assert set(audios) >= {c[k] for c in fm["clips"] for k in (
      "input_wav", "sonification_wav", "residual_wav")}
  assert len(page.query_selector_all("#clips audio")) == 9
  assert page.query_selector_all("figure.fig img")  # figures section

  # Every model, layer and map, chosen through the selects.
  for mi, (name, model) in enumerate(manifest["models"].items()):
    page.select_option("#model", str(mi))
    for li, layer in enumerate(model["layers"]):
      page.select_option("#layer", str(li))
      order = sorted(layer["maps"], key=lambda m: (-m["activity"], m["map"]))
      options = page.eval_on_selector_all(
          "#map option", "os => os.map(o => [o.value, o.className])")
      assert options == [[str(m["map"]), "silent" if m["silent"] else ""]
                         for m in order]
      for m in layer["maps"]:
        page.select_option("#map", str(m["map"]))
        assert _clip_ids(page) == [c["clip"] for c in m["clips"]]
        imgs, audios = _loaded_media(page, seconds)
        clip_imgs = page.eval_on_selector_all(
            "#clips img", "is => is.map(i => i.getAttribute('src'))")
        assert clip_imgs == [c[k] for c in m["clips"]
                             for k in ("input_png", "sonification_png")]
        heading = page.inner_text("#clips h2")
        assert f"layer {layer['layer']}" in heading
        assert f"map {m['map']}" in heading
        assert ("silent" in heading) == m["silent"]
        # Only the selected map's clips are in the document.
        assert len(page.query_selector_all("#clips .clip")) == len(m["clips"])

  # Hiding silent maps removes the silent one from the list.
  page.select_option("#model", "0")
  page.select_option("#layer", "1")
  silent = [m["map"] for m in sup["layers"][1]["maps"] if m["silent"]]
  assert silent and page.eval_on_selector_all(
      "#map option.silent", "os => os.map(o => +o.value)") == silent
  page.check("#hide-silent")
  assert not page.query_selector_all("#map option.silent")

  # The checkpoint slider steps through the evolution's sonifications.
  evo = sup["evolution"][0]
  for k, step in enumerate(evo["steps"]):
    if k:
      page.focus("#evo-step")
      page.keyboard.press("ArrowRight")
    srcs = page.eval_on_selector_all(
        "#evolution img, #evolution audio",
        "es => es.map(e => e.getAttribute('src'))")
    assert srcs == [evo["input_png"], step["sonification_png"],
                    evo["input_wav"], step["sonification_wav"]]
    assert f"step {step['step']}" in page.inner_text("#evo-step-label")
    _loaded_media(page, seconds)
  assert not errors, errors
  page.close()


def _grid(page):
  """The comparison's method x layer grid: {(method, layer): src or the
  cell's text}."""
  return {tuple(k.split("|")): v for k, v in page.evaluate("""() => {
    const layers = [...document.querySelectorAll('#cmp-grid thead th')]
        .slice(1).map(th => th.textContent.replace('layer ', ''));
    const out = {};
    for (const tr of document.querySelectorAll('#cmp-grid tbody tr'))
      [...tr.querySelectorAll('td')].forEach((td, i) => {
        const a = td.querySelector('audio');
        out[tr.dataset.method + '|' + layers[i]] =
            a ? a.getAttribute('src') : td.textContent;
      });
    return out;
  }""").items()}


def test_comparison_section_in_chromium(demo, browser):
  out, manifest = demo
  html_path = page_lib.write_page(str(out), manifest)
  seconds = _wav_seconds(out, manifest)
  section = manifest["comparison"]
  errors = []
  page = _open(browser, html_path, errors)
  assert page.inner_text("#comparison h2") == section["title"]
  rows = page.eval_on_selector_all(
      "#cmp-table tbody tr", "trs => trs.map(tr => [tr.className, "
      "[...tr.cells].map(td => td.textContent)])")
  assert rows == [["reference" if r["reference"] else "", r["cells"]]
                  for r in section["rows"]]
  assert page.eval_on_selector_all("#cmp-table thead th", "ths => ths.map("
                                   "t => t.textContent)") == section["columns"]
  # Text stays text (the caption holds markup-like characters).
  assert "<i>not markup</i>" in page.inner_text("#comparison .caption >> "
                                                "nth=1")
  assert not page.query_selector_all("#comparison i")
  assert page.inner_text("ul.best") == section["best"][0]
  # Every network and example, chosen through the selects: the grid holds
  # one player per cell with a WAV, the reason where it has none.
  for n, net in enumerate(section["networks"]):
    page.select_option("#cmp-network", str(n))
    assert bool(page.query_selector_all("#comparison figure.fig img")) == (
        "figure_png" in net)
    for j, ex in enumerate(net["examples"]):
      page.select_option("#cmp-example", str(j))
      want = {(c["method"], str(c["layer"])): c.get("wav", c.get("none"))
              for c in ex["cells"]}
      assert _grid(page) == want
      _, audios = _loaded_media(page, seconds)
      assert ex["original_wav"] in audios
      # Only this example's players are in the document.
      assert len(page.query_selector_all("#comparison audio")) == 1 + sum(
          "wav" in c for c in ex["cells"])
  # The choice survives a reload (kept in the URL's fragment).
  page.reload()
  assert page.eval_on_selector("#cmp-example", "s => s.value") == "1"
  assert page.eval_on_selector("#cmp-network", "s => s.value") == str(
      len(section["networks"]) - 1)
  assert not errors, errors
  page.close()


def test_page_escapes_text_and_survives_script_in_data(tmp_path, browser):
  x, s, r = _clip_waves(5, 1.0, False)
  clip = media.write_clip_media(str(tmp_path), "m", "<b>x</b>&amp;", x, s, r,
                                SR)
  title = "</script><script>window.pwned=1</script> & <i>t</i>"
  manifest = {"title": title, "models": {"<img src=x onerror=1>": {
      "layers": [{"layer": 2, "maps": [
          {"map": 5, "activity": 1.0, "silent": False, "clips": [clip]}]}]}}}
  html_path = page_lib.write_page(str(tmp_path), manifest)
  errors = []
  page = _open(browser, html_path, errors)
  assert page.inner_text("h1") == title
  assert page.evaluate("window.pwned") is None
  assert page.inner_text("#model") == "<img src=x onerror=1>"
  assert _clip_ids(page) == ["<b>x</b>&amp;"]
  assert "clip <b>x</b>&amp;" in page.inner_text("#clips .clip-head")
  assert not page.query_selector_all("#clips b, header i")
  _loaded_media(page, {clip[k]: 1.0 for k in (
      "input_wav", "sonification_wav", "residual_wav")})
  assert not errors, errors
  page.close()


def test_screenshot_page(demo, tmp_path):
  out, manifest = demo
  html_path = page_lib.write_page(str(out), manifest)
  png = page_lib.screenshot_page(html_path, str(tmp_path / "shot.png"),
                                 width=1000, height=700)
  with Image.open(png) as im:
    assert im.size == (1000, 700)
    assert np.asarray(im.convert("L")).std() > 10


if __name__ == "__main__":
  import pathlib  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  root = pathlib.Path(__file__).resolve().parent.parent
  with tempfile.TemporaryDirectory() as d:
    d = pathlib.Path(d)
    m = build_demo(d, layout={
        "supervised": {l: 12 if l == 3 else 1 for l in range(1, 12)},
        "contrastive": {l: 1 for l in range(1, 12)}},
                   silent=("supervised", 3, 12))
    path = page_lib.write_page(str(d), m)
    target = str(root / "sonification_page_demo.png")
    page_lib.screenshot_page(path, target, width=1280, height=1000,
                             fragment="model=supervised&layer=3&map=2")
    print(target, file=sys.stderr)
