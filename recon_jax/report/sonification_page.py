"""The offline page to look at and listen to sonifications
(docs/methods.md, B4).

`write_page(out_dir, manifest)` writes out_dir/index.html: one file with its
CSS, script and data inline, no external URL, opened from file:// with no
server. It browses model -> layer -> feature map (sorted by activity, silent
maps marked) -> the map's top clips, each a row of input and sonification
spectrograms and input, sonification and residual players side by side; a
checkpoint slider steps through the feature-evolution sonifications; a
figures section shows the analyses' PNGs; an optional comparison section
shows every inversion method on each network (table, figure, and a method x
layer grid of players per example). Only the selected map's and
evolution step's media are in the document (built by the script on
selection), so pages with thousands of maps stay fast.

The manifest (plain JSON-able data; paths are "/"-separated, relative to
out_dir, and must name existing files there):

  {
    "title": str,                         # optional
    "note": str,                          # optional, shown under the title
    "sample_rate": int,                   # optional; if given, every WAV's
    "models": {                           # rate must equal it
      <model name>: {                     # e.g. "supervised", "contrastive"
        "description": str,               # optional
        "layers": [                       # layers numbered from 1, unique
          {"layer": int,
           "maps": [                      # maps numbered from 1, unique
             {"map": int,
              "activity": float,          # finite; the page sorts by it
              "silent": bool,
              "clips": [                  # the top clips (k = 3), best
                {"clip": str,             # first; ids unique in the map
                 "input_wav": path, "sonification_wav": path,
                 "residual_wav": path,
                 "input_png": path, "sonification_png": path,
                 "duration_s": float},    # optional: read from input_wav;
                ...]},                    # all three WAVs must last it
             ...]},
          ...],
        "evolution": [                    # optional
          {"layer": int, "map": int, "clip": str,
           "input_wav": path,             # optional
           "input_png": path,             # optional
           "steps": [                     # training steps, increasing
             {"step": int, "sonification_wav": path,
              "sonification_png": path, "duration_s": float},  # optional
             ...]},
          ...]},
      ...},
    "figures": [                          # optional
      {"title": str, "png": path, "caption": str},  # caption optional
      ...],
    "comparison": {                       # optional: every inversion method
      "title": str, "note": str,          # on each network (the comparison
      "caption": str,                     # experiment, report.comparison.
      "columns": [str, ...],              # page_section); note, caption and
      "rows": [{"cells": [str, ...],      # best optional. The table's cells
                "reference": bool}, ...], # are text, one per column
      "best": [str, ...],
      "networks": [
        {"name": str, "sample_rate": int, # its WAVs' rate (may differ from
         "methods": [str, ...],           # the top-level sample_rate)
         "layers": [int, ...],
         "figure_png": path, "figure_caption": str,     # optional
         "examples": [
           {"clip": str, "original_wav": path,
            "cells": [{"method": str, "layer": int,     # one of methods x
                       "wav": path} or                 # layers; as long
                      {"method": str, "layer": int,    # as the original,
                       "none": str}, ...]},            # or why it has none
           ...]},
        ...]},
  }

`set_comparison(out_dir, section)` adds (or replaces) the comparison section
of a written page. `validate_manifest` checks all of this (types,
numbering, that every file exists with the right kind, WAV durations and
rates) and raises ManifestError naming the entry at fault. `screenshot_page` photographs a
written page in headless Chromium (Playwright; the package's test extra).
"""
import html
import json
import math
import os
import pathlib
import shutil
from typing import Any

import soundfile as sf

from recon_jax import provenance

# Two clips' durations agree if they differ by at most this (1 ms).
DURATION_TOLERANCE_S = 1e-3
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ManifestError(ValueError):
  """The page's manifest is malformed or names a missing/bad file."""


def _fail(where: str, message: str):
  raise ManifestError(f"manifest{where}: {message}")


def _keys(where, d, required, optional=()):
  if not isinstance(d, dict):
    _fail(where, f"must be a dict, got {type(d).__name__}")
  missing = [k for k in required if k not in d]
  if missing:
    _fail(where, f"missing key(s) {missing}")
  unknown = sorted(set(d) - set(required) - set(optional))
  if unknown:
    _fail(where, f"unknown key(s) {unknown} (expected {list(required)} and "
          f"optionally {list(optional)})")


def _str(where, v, allow_empty=False) -> str:
  if not isinstance(v, str) or (not v and not allow_empty):
    _fail(where, f"must be a{'' if allow_empty else ' non-empty'} string, "
          f"got {v!r}")
  return v


def _int(where, v, minimum) -> int:
  if isinstance(v, bool) or not isinstance(v, int):
    _fail(where, f"must be an int, got {v!r}")
  if v < minimum:
    _fail(where, f"must be >= {minimum} (numbered from {minimum}), got {v}")
  return v


def _float(where, v) -> float:
  if isinstance(v, bool) or not isinstance(v, (int, float)):
    _fail(where, f"must be a number, got {v!r}")
  if not math.isfinite(v):
    _fail(where, f"must be finite, got {v}")
  return float(v)


def _list(where, v, nonempty=False) -> list:
  if not isinstance(v, list):
    _fail(where, f"must be a list, got {type(v).__name__}")
  if nonempty and not v:
    _fail(where, "must not be empty")
  return v


def _unique(where, values, what):
  seen = set()
  for v in values:
    if v in seen:
      _fail(where, f"{what} {v!r} appears twice")
    seen.add(v)


class _Checker:
  """Checks file references against out_dir (WAV headers read once)."""

  def __init__(self, out_dir, sample_rate, check_files):
    self.out_dir = out_dir
    self.sample_rate = sample_rate
    self.check_files = check_files
    self.wav_seconds = {}
    self.checked = set()

  def path(self, where, v, ext, sample_rate=None) -> str:
    """Checks a path; a WAV's rate against sample_rate (default: the
    manifest's)."""
    p = _str(where, v)
    if "\\" in p or p.startswith("/") or ":" in p:
      _fail(where, f"{p!r} must be a relative '/'-separated path (no "
            "drive, scheme or backslash)")
    parts = p.split("/")
    if any(part in ("", ".", "..") for part in parts):
      _fail(where, f"{p!r} must stay inside the page's folder (no empty, "
            "'.' or '..' parts)")
    if not p.lower().endswith(ext):
      _fail(where, f"{p!r} must be a {ext} file")
    want = sample_rate or self.sample_rate
    if not self.check_files or (p, want) in self.checked:
      return p
    full = os.path.join(self.out_dir, *parts)
    if not os.path.isfile(full):
      _fail(where, f"file not found: {full}")
    if ext == ".png":
      with open(full, "rb") as f:
        if f.read(8) != _PNG_MAGIC:
          _fail(where, f"{full} is not a PNG file")
    else:
      try:
        info = sf.info(full)
      except (RuntimeError, sf.LibsndfileError) as e:
        _fail(where, f"{full} is not a readable WAV file ({e})")
      if info.channels != 1:
        _fail(where, f"{full} has {info.channels} channels; clips are mono")
      if info.frames == 0:
        _fail(where, f"{full} holds no samples")
      if want is not None and info.samplerate != want:
        _fail(where, f"{full} is at {info.samplerate} Hz, the manifest's "
              f"sample_rate {'for it ' if sample_rate else ''}is {want}")
      self.wav_seconds[p] = info.frames / info.samplerate
    self.checked.add((p, want))
    return p

  def durations(self, where, entry, wav_keys):
    """Fills entry["duration_s"] from its WAVs, which must all last it."""
    if "duration_s" in entry:
      d = _float(f"{where}.duration_s", entry["duration_s"])
      if d <= 0:
        _fail(f"{where}.duration_s", f"must be > 0, got {d}")
    else:
      d = None
    if not self.check_files:
      if d is None:
        _fail(where, "duration_s is required when files are not checked")
      return d
    for k in wav_keys:
      if k not in entry:
        continue
      seconds = self.wav_seconds[entry[k]]
      if d is None:
        d = seconds
      if abs(seconds - d) > DURATION_TOLERANCE_S:
        _fail(f"{where}.{k}", f"{entry[k]} lasts {seconds:.4f} s, the clip "
              f"{d:.4f} s")
    return d


def validate_manifest(out_dir: str, manifest: dict,
                      check_files: bool = True) -> dict:
  """Checks a page manifest; returns a normalised copy.

  The copy has plain Python types (NumPy scalars converted), every
  "duration_s" filled in (from the input WAV where absent), layers sorted
  by number and maps by number.

  Args:
    out_dir: the folder the manifest's paths are relative to.
    manifest: see the module docstring.
    check_files: also check that each path names an existing PNG / mono
      WAV and that each clip's WAVs last its duration.

  Raises:
    ManifestError: the first problem found, naming its entry.
  """
  m = provenance.to_jsonable(manifest)
  _keys("", m, ("models",), ("title", "note", "sample_rate", "figures",
                            "comparison"))
  out = {"title": _str(".title", m.get("title", "Sonifications")),
         "note": _str(".note", m.get("note", ""), True)}
  sample_rate = m.get("sample_rate")
  if sample_rate is not None:
    sample_rate = _int(".sample_rate", sample_rate, 1)
    out["sample_rate"] = sample_rate
  chk = _Checker(out_dir, sample_rate, check_files)
  models = m["models"]
  if not isinstance(models, dict) or not models:
    _fail(".models", "must be a non-empty dict {model name: model}")
  out["models"] = {}
  for name, model in models.items():
    w = f".models[{name!r}]"
    _str(w, name)
    _keys(w, model, ("layers",), ("description", "evolution"))
    om = {"description": _str(f"{w}.description",
                              model.get("description", ""), True),
          "layers": [], "evolution": []}
    layers = _list(f"{w}.layers", model["layers"], nonempty=True)
    for i, layer in enumerate(layers):
      wl = f"{w}.layers[{i}]"
      _keys(wl, layer, ("layer", "maps"))
      ol = {"layer": _int(f"{wl}.layer", layer["layer"], 1), "maps": []}
      for j, fmap in enumerate(_list(f"{wl}.maps", layer["maps"])):
        wm = f"{wl}.maps[{j}]"
        _keys(wm, fmap, ("map", "activity", "silent", "clips"))
        if not isinstance(fmap["silent"], bool):
          _fail(f"{wm}.silent", f"must be a bool, got {fmap['silent']!r}")
        om_ = {"map": _int(f"{wm}.map", fmap["map"], 1),
               "activity": _float(f"{wm}.activity", fmap["activity"]),
               "silent": fmap["silent"], "clips": []}
        for k, clip in enumerate(_list(f"{wm}.clips", fmap["clips"])):
          wc = f"{wm}.clips[{k}]"
          wavs = ("input_wav", "sonification_wav", "residual_wav")
          pngs = ("input_png", "sonification_png")
          _keys(wc, clip, ("clip",) + wavs + pngs, ("duration_s",))
          oc = {"clip": _str(f"{wc}.clip", clip["clip"])}
          for key in wavs:
            oc[key] = chk.path(f"{wc}.{key}", clip[key], ".wav")
          for key in pngs:
            oc[key] = chk.path(f"{wc}.{key}", clip[key], ".png")
          if "duration_s" in clip:
            oc["duration_s"] = clip["duration_s"]
          oc["duration_s"] = chk.durations(wc, oc, wavs)
          om_["clips"].append(oc)
        _unique(f"{wm}.clips", [c["clip"] for c in om_["clips"]], "clip")
        ol["maps"].append(om_)
      _unique(f"{wl}.maps", [x["map"] for x in ol["maps"]], "map")
      ol["maps"].sort(key=lambda x: x["map"])
      om["layers"].append(ol)
    _unique(f"{w}.layers", [x["layer"] for x in om["layers"]], "layer")
    om["layers"].sort(key=lambda x: x["layer"])
    for i, evo in enumerate(_list(f"{w}.evolution",
                                  model.get("evolution", []))):
      we = f"{w}.evolution[{i}]"
      _keys(we, evo, ("layer", "map", "clip", "steps"),
            ("input_wav", "input_png"))
      oe = {"layer": _int(f"{we}.layer", evo["layer"], 1),
            "map": _int(f"{we}.map", evo["map"], 1),
            "clip": _str(f"{we}.clip", evo["clip"]), "steps": []}
      for key, ext in (("input_wav", ".wav"), ("input_png", ".png")):
        if key in evo:
          oe[key] = chk.path(f"{we}.{key}", evo[key], ext)
      for k, step in enumerate(_list(f"{we}.steps", evo["steps"], True)):
        ws = f"{we}.steps[{k}]"
        _keys(ws, step, ("step", "sonification_wav", "sonification_png"),
              ("duration_s",))
        os_ = {"step": _int(f"{ws}.step", step["step"], 0),
               "sonification_wav": chk.path(f"{ws}.sonification_wav",
                                            step["sonification_wav"], ".wav"),
               "sonification_png": chk.path(f"{ws}.sonification_png",
                                            step["sonification_png"], ".png")}
        if "duration_s" in step:
          os_["duration_s"] = step["duration_s"]
        elif "input_wav" in oe and check_files:
          os_["duration_s"] = chk.wav_seconds[oe["input_wav"]]
        os_["duration_s"] = chk.durations(ws, os_, ("sonification_wav",))
        if oe["steps"] and os_["step"] <= oe["steps"][-1]["step"]:
          _fail(f"{ws}.step", f"steps must increase: {os_['step']} after "
                f"{oe['steps'][-1]['step']}")
        oe["steps"].append(os_)
      om["evolution"].append(oe)
    out["models"][name] = om
  out["figures"] = []
  for i, fig in enumerate(_list(".figures", m.get("figures", []))):
    wf = f".figures[{i}]"
    _keys(wf, fig, ("title", "png"), ("caption",))
    out["figures"].append({
        "title": _str(f"{wf}.title", fig["title"]),
        "png": chk.path(f"{wf}.png", fig["png"], ".png"),
        "caption": _str(f"{wf}.caption", fig.get("caption", ""), True)})
  if "comparison" in m:
    out["comparison"] = _comparison(chk, m["comparison"])
  return out


def _comparison(chk: _Checker, c) -> dict:
  """Checks the comparison section (see the module docstring)."""
  w = ".comparison"
  _keys(w, c, ("title", "columns", "rows", "networks"),
        ("note", "caption", "best"))
  out = {"title": _str(f"{w}.title", c["title"]),
         "note": _str(f"{w}.note", c.get("note", ""), True),
         "caption": _str(f"{w}.caption", c.get("caption", ""), True),
         "columns": [_str(f"{w}.columns[{i}]", v) for i, v in enumerate(
             _list(f"{w}.columns", c["columns"], True))],
         "rows": [], "best": [], "networks": []}
  for i, row in enumerate(_list(f"{w}.rows", c["rows"])):
    wr = f"{w}.rows[{i}]"
    _keys(wr, row, ("cells", "reference"))
    cells = _list(f"{wr}.cells", row["cells"])
    if len(cells) != len(out["columns"]):
      _fail(f"{wr}.cells", f"has {len(cells)} cells for "
            f"{len(out['columns'])} columns")
    if not isinstance(row["reference"], bool):
      _fail(f"{wr}.reference", f"must be a bool, got {row['reference']!r}")
    out["rows"].append({"cells": [_str(f"{wr}.cells[{j}]", v, True)
                                  for j, v in enumerate(cells)],
                        "reference": row["reference"]})
  out["best"] = [_str(f"{w}.best[{i}]", v) for i, v in enumerate(
      _list(f"{w}.best", c.get("best", [])))]
  for i, net in enumerate(_list(f"{w}.networks", c["networks"], True)):
    wn = f"{w}.networks[{i}]"
    _keys(wn, net, ("name", "sample_rate", "methods", "layers", "examples"),
          ("figure_png", "figure_caption"))
    rate = _int(f"{wn}.sample_rate", net["sample_rate"], 1)
    on = {"name": _str(f"{wn}.name", net["name"]), "sample_rate": rate,
          "methods": [_str(f"{wn}.methods[{j}]", v) for j, v in enumerate(
              _list(f"{wn}.methods", net["methods"], True))],
          "layers": [_int(f"{wn}.layers[{j}]", v, 1) for j, v in enumerate(
              _list(f"{wn}.layers", net["layers"], True))],
          "figure_caption": _str(f"{wn}.figure_caption",
                                 net.get("figure_caption", ""), True),
          "examples": []}
    _unique(f"{wn}.methods", on["methods"], "method")
    _unique(f"{wn}.layers", on["layers"], "layer")
    if "figure_png" in net:
      on["figure_png"] = chk.path(f"{wn}.figure_png", net["figure_png"],
                                  ".png")
    for j, ex in enumerate(_list(f"{wn}.examples", net["examples"])):
      wx = f"{wn}.examples[{j}]"
      _keys(wx, ex, ("clip", "original_wav", "cells"))
      ox = {"clip": _str(f"{wx}.clip", ex["clip"]),
            "original_wav": chk.path(f"{wx}.original_wav",
                                     ex["original_wav"], ".wav", rate),
            "cells": []}
      seen = set()
      for k, cell in enumerate(_list(f"{wx}.cells", ex["cells"])):
        wc = f"{wx}.cells[{k}]"
        has_wav = isinstance(cell, dict) and "wav" in cell
        _keys(wc, cell, ("method", "layer", "wav" if has_wav else "none"))
        oc = {"method": _str(f"{wc}.method", cell["method"]),
              "layer": _int(f"{wc}.layer", cell["layer"], 1)}
        if oc["method"] not in on["methods"]:
          _fail(f"{wc}.method", f"{oc['method']!r} is not one of the "
                f"network's methods {on['methods']}")
        if oc["layer"] not in on["layers"]:
          _fail(f"{wc}.layer", f"{oc['layer']} is not one of the network's "
                f"layers {on['layers']}")
        if (oc["method"], oc["layer"]) in seen:
          _fail(wc, f"{oc['method']} at layer {oc['layer']} appears twice")
        seen.add((oc["method"], oc["layer"]))
        if has_wav:
          oc["wav"] = chk.path(f"{wc}.wav", cell["wav"], ".wav", rate)
          if chk.check_files:
            want = chk.wav_seconds[ox["original_wav"]]
            got = chk.wav_seconds[oc["wav"]]
            if abs(got - want) > DURATION_TOLERANCE_S:
              _fail(f"{wc}.wav", f"{oc['wav']} lasts {got:.4f} s, the "
                    f"original {want:.4f} s")
        else:
          oc["none"] = _str(f"{wc}.none", cell["none"])
        ox["cells"].append(oc)
      on["examples"].append(ox)
    _unique(f"{wn}.examples", [x["clip"] for x in on["examples"]], "clip")
    out["networks"].append(on)
  _unique(f"{w}.networks", [n["name"] for n in out["networks"]], "network")
  return out


def _inline_json(obj: Any) -> str:
  """JSON safe inside <script>: no '<', '>' or '&' left to end it early."""
  text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
  return (text.replace("<", "\\u003c").replace(">", "\\u003e")
          .replace("&", "\\u0026").replace("\u2028", "\\u2028")
          .replace("\u2029", "\\u2029"))


def page_html(manifest: dict) -> str:
  """The page's HTML for a validated manifest (validate_manifest's output).

  Models become a list in the inline data so that their order survives
  (JavaScript reorders integer-like object keys).
  """
  data = {"title": manifest["title"], "note": manifest["note"],
          "sample_rate": manifest.get("sample_rate"),
          "models": [dict(name=k, **v) for k, v in manifest["models"].items()],
          "figures": manifest["figures"],
          "comparison": manifest.get("comparison")}
  return (_TEMPLATE.replace("%TITLE%", html.escape(manifest["title"]))
          .replace("%CSS%", _CSS).replace("%JS%", _JS)
          .replace("%DATA%", _inline_json(data)))


def write_page(out_dir: str, manifest: dict) -> str:
  """Validates `manifest` and writes out_dir/index.html (and manifest.json).

  Returns:
    The path of index.html.

  Raises:
    ManifestError: the manifest is malformed or names a missing/bad file
      (nothing is written then).
  """
  checked = validate_manifest(out_dir, manifest)
  # Keys in the manifest's order (not sorted): the models' order is the
  # page's, and set_comparison rewrites the page from this file.
  provenance.write_text_atomic(os.path.join(out_dir, "manifest.json"),
                               json.dumps(checked, indent=1) + "\n")
  return provenance.write_text_atomic(os.path.join(out_dir, "index.html"),
                                      page_html(checked))


def set_comparison(out_dir: str, section: dict) -> str:
  """Adds (or replaces) the comparison section of the page written in
  out_dir (its manifest.json); returns the path of index.html.

  Raises:
    FileNotFoundError: out_dir holds no written page.
    ManifestError: the section is malformed (the page is left as it was).
  """
  path = os.path.join(out_dir, "manifest.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{out_dir} holds no offline page (no "
                            "manifest.json; the sonification page writes "
                            "one)")
  manifest = provenance.read_json(path)
  manifest["comparison"] = section
  return write_page(out_dir, manifest)


def find_chromium() -> str:
  """The Chromium to drive: $CHROMIUM, else `chromium` on PATH."""
  path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which(
      "chromium-browser")
  if not path:
    raise FileNotFoundError(
        "no Chromium found (set $CHROMIUM or install Debian's `chromium`: "
        "tests/install.sh does)")
  return path


def screenshot_page(html_path: str, png_path: str, width: int = 1280,
                    height: int = 900, full_page: bool = False,
                    fragment: str = "", chromium: str | None = None) -> str:
  """Opens a written page in headless Chromium and saves a PNG of it.

  Waits until every picture and player has loaded. Needs the `playwright`
  package (test extra) and a Chromium binary (find_chromium).

  Args:
    fragment: the URL's #fragment choosing what the page shows, e.g.
      "model=supervised&layer=3&map=17" (also evo=<index>&step=<index>).

  Returns:
    png_path.
  """
  from playwright.sync_api import sync_playwright  # pylint: disable=g-import-not-at-top
  exe = chromium or find_chromium()
  url = pathlib.Path(os.path.abspath(html_path)).as_uri()
  if fragment:
    url += "#" + fragment
  with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
    try:
      page = browser.new_page(viewport={"width": width, "height": height})
      page.goto(url)
      # Lazy pictures below the fold load once scrolled to.
      page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
      page.wait_for_function(
          "() => [...document.images].every(i => i.complete) && "
          "[...document.querySelectorAll('audio')].every("
          "a => a.readyState >= 1 || a.error)", timeout=20000)
      page.evaluate("window.scrollTo(0, 0)")
      data = page.screenshot(full_page=full_page)
    finally:
      browser.close()
  return provenance.write_bytes_atomic(png_path, data)


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%TITLE%</title>
<style>%CSS%</style>
</head>
<body>
<header>
  <div><h1 id="title"></h1><div id="note"></div></div>
  <nav id="controls">
    <label>model <select id="model"></select></label>
    <label>layer <select id="layer"></select></label>
    <label class="check"><input type="checkbox" id="hide-silent">
      hide silent maps</label>
  </nav>
</header>
<div id="main">
  <aside>
    <div class="aside-head">feature maps <span id="map-count"></span>
      <div class="hint">by activity, highest first</div></div>
    <select id="map" size="20"></select>
  </aside>
  <section id="content">
    <div id="clips"></div>
    <div id="evolution"></div>
    <div id="figures"></div>
    <div id="comparison"></div>
  </section>
</div>
<script type="application/json" id="manifest">%DATA%</script>
<script>%JS%</script>
</body>
</html>
"""

_CSS = """
:root { --ink: #1d2330; --soft: #5b6475; --line: #d9dde5; --bg: #f5f6f8;
  --accent: #3454d1; --silent: #a33; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI",
  Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 24px;
  padding: 10px 20px; background: #fff; border-bottom: 1px solid var(--line); }
h1 { font-size: 18px; margin: 0; }
#note { color: var(--soft); font-size: 12px; max-width: 60em; }
h2 { font-size: 16px; margin: 0 0 10px; }
nav { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; }
label { color: var(--soft); }
select { font: inherit; color: var(--ink); padding: 2px 4px; }
#main { display: flex; align-items: flex-start; gap: 16px; padding: 16px 20px; }
aside { flex: 0 0 240px; position: sticky; top: 8px; background: #fff;
  border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
.aside-head { font-weight: 600; margin-bottom: 6px; }
.aside-head .hint { font-weight: 400; color: var(--soft); font-size: 12px; }
#map { width: 100%; height: calc(100vh - 150px); min-height: 200px;
  border: 1px solid var(--line); font-variant-numeric: tabular-nums; }
#map option { padding: 2px 4px; }
#map option.silent { color: var(--silent); }
#content { flex: 1 1 auto; min-width: 0; display: flex; flex-direction: column;
  gap: 16px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px;
  padding: 12px 14px; }
.meta { color: var(--soft); font-weight: 400; font-size: 13px; }
.badge { display: inline-block; padding: 0 6px; border-radius: 8px;
  font-size: 12px; background: #f3dcdc; color: var(--silent);
  margin-left: 6px; }
.clip { border-top: 1px solid var(--line); padding: 10px 0 4px; }
.clip:first-of-type { border-top: 0; padding-top: 0; }
.clip-head { font-weight: 600; margin-bottom: 6px; }
.pics, .players { display: grid; grid-template-columns: repeat(2, 1fr);
  gap: 8px 16px; }
.players { grid-template-columns: repeat(3, 1fr); margin-top: 8px; }
figure { margin: 0; }
figcaption, .player span { display: block; color: var(--soft);
  font-size: 12px; margin-bottom: 2px; }
.pics img { width: 100%; max-width: 480px; height: auto; display: block;
  border: 1px solid var(--line); image-rendering: auto; }
audio { width: 100%; height: 36px; }
.slider { display: flex; align-items: center; gap: 12px; margin: 8px 0; }
.slider input { flex: 1 1 auto; max-width: 480px; }
.ticks { color: var(--soft); font-size: 12px; }
.fig img { max-width: 100%; height: auto; border: 1px solid var(--line); }
.fig { margin-bottom: 14px; }
.empty { color: var(--soft); font-style: italic; }
.table-wrap { overflow-x: auto; margin: 8px 0; }
table.results { border-collapse: collapse; font-size: 12px;
  font-variant-numeric: tabular-nums; }
table.results th, table.results td { border-bottom: 1px solid var(--line);
  padding: 3px 8px; text-align: left; white-space: nowrap; }
table.results tr.reference td { font-style: italic; color: var(--soft); }
.caption { color: var(--soft); font-size: 12px; max-width: 70em; }
ul.best { margin: 8px 0; padding-left: 20px; font-size: 13px; }
.cmp-controls { display: flex; flex-wrap: wrap; gap: 8px 16px;
  margin: 12px 0 8px; }
table.grid { border-collapse: collapse; width: 100%; table-layout: fixed; }
table.grid th, table.grid td { padding: 4px 6px; text-align: left;
  vertical-align: middle; border-bottom: 1px solid var(--line); }
table.grid th:first-child { width: 150px; }
table.grid td.none { color: var(--soft); font-size: 12px; }
"""

_JS = r"""
"use strict";
const M = JSON.parse(document.getElementById("manifest").textContent);
const $ = (id) => document.getElementById(id);
// Relative path -> URL, each segment percent-encoded (spaces, '#', '?').
const url = (p) => p.split("/").map(encodeURIComponent).join("/");
// Builds an element; strings become text nodes (never parsed as HTML).
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null)
    e.append(typeof k === "string" ? document.createTextNode(k) : k);
  return e;
}
const fmt = (x) => String(Number(Number(x).toPrecision(3)));
const secs = (d) => d.toFixed(2) + " s";
function picture(caption, path, alt) {
  return el("figure", {}, el("figcaption", {text: caption}),
            el("img", {src: url(path), alt: alt, loading: "lazy",
                       decoding: "async"}));
}
function player(label, path) {
  return el("label", {class: "player"}, el("span", {text: label}),
            el("audio", {controls: "", preload: "metadata", src: url(path)}));
}

const state = {model: 0, layer: 0, map: null, hideSilent: false, evo: 0,
               step: 0, cnet: 0, cex: 0};
const model = () => M.models[state.model];
const layer = () => model().layers[state.layer];

function fillSelect(sel, items, selected) {
  sel.replaceChildren(...items.map(([value, text, cls], i) => {
    const o = el("option", {value: String(value), text: text});
    if (cls) o.className = cls;
    return o;
  }));
  sel.value = String(selected);
}

function renderModels() {
  fillSelect($("model"), M.models.map((m, i) => [i, m.name]), state.model);
}
function renderLayers() {
  fillSelect($("layer"), model().layers.map((l, i) => {
    const silent = l.maps.filter((m) => m.silent).length;
    return [i, `layer ${l.layer} \u2014 ${l.maps.length} maps` +
               (silent ? `, ${silent} silent` : "")];
  }), state.layer);
}
function visibleMaps() {
  const maps = layer().maps.filter((m) => !(state.hideSilent && m.silent));
  return maps.slice().sort((a, b) => b.activity - a.activity || a.map - b.map);
}
function renderMaps() {
  const maps = visibleMaps();
  if (!maps.some((m) => m.map === state.map))
    state.map = maps.length ? maps[0].map : null;
  fillSelect($("map"), maps.map((m) => [
      m.map, `map ${m.map} \u00b7 ${fmt(m.activity)}` +
             (m.silent ? " \u00b7 silent" : ""), m.silent ? "silent" : ""]),
    state.map);
  $("map-count").textContent = `(${maps.length})`;
}
function renderClips() {
  const box = $("clips");
  const m = layer().maps.find((x) => x.map === state.map);
  if (!m) {
    box.replaceChildren(el("div", {class: "card empty", text:
        state.hideSilent && layer().maps.length ?
        "Every map of this layer is silent (hidden)." :
        "No feature map in this layer."}));
    return;
  }
  const head = el("h2", {}, `${model().name} \u00b7 layer ${layer().layer}` +
                  ` \u00b7 map ${m.map} `,
                  el("span", {class: "meta",
                              text: `activity ${fmt(m.activity)} \u00b7 ` +
                                    `channel ${m.map - 1} in the authors' ` +
                                    "code (numbered from 0)"}),
                  m.silent ? el("span", {class: "badge", text: "silent"})
                           : null);
  const rows = m.clips.map((c, i) => el("div", {class: "clip",
                                                 "data-clip": c.clip},
      el("div", {class: "clip-head"}, `#${i + 1} clip ${c.clip} `,
         el("span", {class: "meta", text: secs(c.duration_s)})),
      el("div", {class: "pics"},
         picture("input", c.input_png, `input spectrogram of ${c.clip}`),
         picture("sonification", c.sonification_png,
                 `sonification spectrogram of ${c.clip}`)),
      el("div", {class: "players"}, player("input", c.input_wav),
         player("sonification", c.sonification_wav),
         player("residual (input \u2212 sonification)", c.residual_wav))));
  box.replaceChildren(el("div", {class: "card"}, head, ...(rows.length ? rows
      : [el("div", {class: "empty", text: "No clips for this map."})])));
}

function renderEvolution() {
  const box = $("evolution");
  const evos = model().evolution;
  if (!evos.length) { box.replaceChildren(); return; }
  state.evo = Math.min(state.evo, evos.length - 1);
  const e = evos[state.evo];
  state.step = Math.min(state.step, e.steps.length - 1);
  const choose = el("select", {id: "evo-select"});
  fillSelect(choose, evos.map((x, i) => [i,
      `layer ${x.layer} \u00b7 map ${x.map} \u00b7 clip ${x.clip}`]),
    state.evo);
  choose.addEventListener("change", () => {
    state.evo = +choose.value; state.step = 0; renderEvolution(); saveHash();
  });
  const slider = el("input", {type: "range", id: "evo-step", min: "0",
                              max: String(e.steps.length - 1), step: "1",
                              value: String(state.step)});
  const stepLabel = el("span", {id: "evo-step-label"});
  const pics = el("div", {class: "pics"});
  const players = el("div", {class: "players"});
  const inputPic = e.input_png ? picture("input", e.input_png,
                                         `input spectrogram of ${e.clip}`)
                               : null;
  const inputPlayer = e.input_wav ? player("input", e.input_wav) : null;
  const sonPic = picture("sonification", e.steps[0].sonification_png, "");
  const sonPlayer = player("sonification", e.steps[0].sonification_wav);
  pics.append(...[inputPic, sonPic].filter(Boolean));
  players.append(...[inputPlayer, sonPlayer].filter(Boolean));
  function show() {
    const s = e.steps[state.step];
    stepLabel.textContent = `step ${s.step} ` +
        `(checkpoint ${state.step + 1} of ${e.steps.length})`;
    const img = sonPic.querySelector("img");
    img.src = url(s.sonification_png);
    img.alt = `sonification spectrogram at step ${s.step}`;
    sonPic.querySelector("figcaption").textContent =
        `sonification at step ${s.step}`;
    const audio = sonPlayer.querySelector("audio");
    audio.src = url(s.sonification_wav);
    sonPlayer.querySelector("span").textContent =
        `sonification at step ${s.step}`;
  }
  slider.addEventListener("input", () => {
    state.step = +slider.value; show(); saveHash();
  });
  show();
  box.replaceChildren(el("div", {class: "card"},
      el("h2", {}, "Feature evolution during training ",
         el("span", {class: "meta", text: model().name})),
      el("label", {}, "map and clip ", choose),
      el("div", {class: "slider"}, el("span", {class: "ticks",
          text: `step ${e.steps[0].step}`}), slider,
         el("span", {class: "ticks",
                     text: `step ${e.steps[e.steps.length - 1].step}`}),
         stepLabel),
      pics, players));
}

function renderFigures() {
  const box = $("figures");
  if (!M.figures.length) { box.replaceChildren(); return; }
  box.replaceChildren(el("div", {class: "card"}, el("h2", {text: "Figures"}),
      ...M.figures.map((f) => el("figure", {class: "fig"},
          el("figcaption", {text: f.title + (f.caption ? " \u2014 " +
                                             f.caption : "")}),
          el("img", {src: url(f.png), alt: f.title, loading: "lazy"})))));
}

function renderComparison() {
  const box = $("comparison");
  const C = M.comparison;
  if (!C) { box.replaceChildren(); return; }
  state.cnet = Math.min(state.cnet, C.networks.length - 1);
  const net = C.networks[state.cnet];
  state.cex = Math.min(state.cex, Math.max(net.examples.length - 1, 0));
  const table = el("table", {class: "results", id: "cmp-table"},
      el("thead", {}, el("tr", {}, ...C.columns.map(
          (c) => el("th", {text: c})))),
      el("tbody", {}, ...C.rows.map((r) => el("tr",
          r.reference ? {class: "reference"} : {},
          ...r.cells.map((c) => el("td", {text: c}))))));
  const chooseNet = el("select", {id: "cmp-network"});
  fillSelect(chooseNet, C.networks.map((n, i) => [i, n.name]), state.cnet);
  chooseNet.addEventListener("change", () => {
    state.cnet = +chooseNet.value; state.cex = 0; renderComparison();
    saveHash();
  });
  const chooseEx = el("select", {id: "cmp-example"});
  fillSelect(chooseEx, net.examples.map((x, i) => [i, x.clip]), state.cex);
  chooseEx.addEventListener("change", () => {
    state.cex = +chooseEx.value; renderComparison(); saveHash();
  });
  const ex = net.examples[state.cex];
  let listen;
  if (!ex) {
    listen = el("div", {class: "empty", text:
        "No WAVs were written for this network."});
  } else {
    const byKey = new Map(ex.cells.map((c) => [c.method + "\u0000" +
                                               c.layer, c]));
    listen = el("div", {},
        el("div", {class: "players", style: "grid-template-columns: 1fr"},
           player(`original \u00b7 ${ex.clip}`, ex.original_wav)),
        el("table", {class: "grid", id: "cmp-grid"},
           el("thead", {}, el("tr", {}, el("th", {text: "method"}),
              ...net.layers.map((l) => el("th", {text: `layer ${l}`})))),
           el("tbody", {}, ...net.methods.map((m) => el("tr",
              {"data-method": m}, el("th", {text: m}),
              ...net.layers.map((l) => {
                const c = byKey.get(m + "\u0000" + l);
                if (c && c.wav) return el("td", {},
                    el("audio", {controls: "", preload: "metadata",
                                 src: url(c.wav), title: `${m}, layer ${l}`}));
                return el("td", {class: "none",
                                 text: c ? c.none : "not run"});
              }))))));
  }
  box.replaceChildren(el("div", {class: "card"},
      el("h2", {text: C.title}),
      C.note ? el("div", {class: "caption", text: C.note}) : null,
      el("div", {class: "table-wrap"}, table),
      C.caption ? el("p", {class: "caption", text: C.caption}) : null,
      C.best.length ? el("ul", {class: "best"},
          ...C.best.map((b) => el("li", {text: b}))) : null,
      el("div", {class: "cmp-controls"},
         el("label", {}, "network ", chooseNet),
         el("label", {}, "example ", chooseEx)),
      net.figure_png ? el("figure", {class: "fig"},
          el("figcaption", {text: `${net.name}: ${net.figure_caption}`}),
          el("img", {src: url(net.figure_png), alt: `${net.name} figure`,
                     loading: "lazy"})) : null,
      listen));
}

function saveHash() {
  const h = new URLSearchParams({model: model().name,
      layer: String(layer().layer), map: String(state.map),
      evo: String(state.evo), step: String(state.step),
      cnet: String(state.cnet), cex: String(state.cex)});
  try { history.replaceState(null, "", "#" + h.toString()); } catch (e) {}
}
function loadHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  const mi = M.models.findIndex((m) => m.name === h.get("model"));
  if (mi >= 0) state.model = mi;
  const li = model().layers.findIndex(
      (l) => String(l.layer) === h.get("layer"));
  if (li >= 0) state.layer = li;
  if (h.has("map")) state.map = +h.get("map");
  if (h.has("evo")) state.evo = Math.max(0, +h.get("evo") || 0);
  if (h.has("step")) state.step = Math.max(0, +h.get("step") || 0);
  if (h.has("cnet")) state.cnet = Math.max(0, +h.get("cnet") || 0);
  if (h.has("cex")) state.cex = Math.max(0, +h.get("cex") || 0);
}

$("title").textContent = M.title;
$("note").textContent = M.note;
$("model").addEventListener("change", () => {
  state.model = +$("model").value; state.layer = 0; state.map = null;
  state.evo = 0; state.step = 0;
  renderLayers(); renderMaps(); renderClips(); renderEvolution(); saveHash();
});
$("layer").addEventListener("change", () => {
  state.layer = +$("layer").value; state.map = null;
  renderMaps(); renderClips(); saveHash();
});
$("map").addEventListener("change", () => {
  state.map = +$("map").value; renderClips(); saveHash();
});
$("hide-silent").addEventListener("change", () => {
  state.hideSilent = $("hide-silent").checked; renderMaps(); renderClips();
  saveHash();
});
loadHash();
renderModels(); renderLayers(); renderMaps(); renderClips(); renderEvolution();
renderFigures(); renderComparison();
"""
