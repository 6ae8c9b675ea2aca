"""Sonify feature maps of a researcher's own clip with a CNN12 checkpoint.

  python -m recon_jax --config=configs/sonify_clip.py --workdir=DIR \
      --config.clip=my_clip.wav --config.checkpoint=CKPT --config.layer=5

`run(config, workdir)` (the `sonify_clip` experiment; configs/sonify_clip.py
lists the fields):
  1. checks the config (layer 1..11, map numbers, top, rates, model block);
  2. reads the clip (audio_io.read_checked_clip: mono, at sample_rate or
     resampled when config.resample, unit peak, at least CNN12's receptive
     field; corrupt, silent, NaN and other-rate clips refused);
  3. loads the checkpoint: a recon_jax CNN12 run folder
     (cnn12_eval.load_encoder) or a PyTorch state dict (.pt/.pth, read with
     torch.load(weights_only=True), converted by
     models.cnn12_params_from_torch; widths read from its shapes) and
     checks its widths against config.model when that is set;
  4. compares made_by.json (clip fingerprint, checkpoint fingerprint,
     config) with a saved one: the same inputs reuse the saved results,
     others are refused naming the fields that differ;
  5. ranks the layer's maps by mean |activation| on the clip
     (inversion.map_activity), sonifies the chosen maps (inversion.sonify),
     and measures the mean top-5 coherence of clip and sonification
     (metrics.mean_topk_coherence; undefined, null, for a silent map);
  6. writes input.wav, L<layer>_m<map>/{sonification,residual}.wav,
     spectrograms.png, results.json and made_by.json.

Nothing half-written: every file is first written (atomically) into
DIR/.sonify_clip.partial, and moved into DIR only when all are written
(made_by.json last); any error removes that folder, and DIR itself when
this run made it. A read-only DIR fails before the network runs; so does
a disk with less room than the WAVs need (a disk that fills up later fails
the same way, leaving DIR as it was).
"""
import errno
import fractions
import hashlib
import numbers
import os
import shutil
from typing import Any, Mapping, NamedTuple

from absl import logging
import numpy as np

from recon_jax import provenance
from recon_jax.data import audio_io
from recon_jax.models import cnn12

MADE_BY = "made_by.json"
RESULTS_JSON = "results.json"
INPUT_WAV = "input.wav"
FIGURE = "spectrograms.png"
PARTIAL = ".sonify_clip.partial"
TORCH_SUFFIXES = (".pt", ".pth")
COHERENCE_K = 5
# map_numbering -> the number of the first map.
NUMBERINGS = {"from_1": 1, "authors": 0}
# The first weight of the paper's Encoder (Fig. A.1): finds a CNN12 (and
# the prefix of its names) in a state dict.
_FIRST_WEIGHT = "features.conv1.weight"


class Network(NamedTuple):
  """A loaded CNN12: module, params (float32 host arrays), and what
  identifies them (made_by.json's "checkpoint")."""
  model: cnn12.CNN12
  params: Any
  record: dict


# --- Config ------------------------------------------------------------------


def _is_int(v) -> bool:
  return isinstance(v, numbers.Integral) and not isinstance(v, (bool,
                                                                np.bool_))


def _fail(field, value, want):
  raise ValueError(f"config.{field}={value!r}: want {want}")


def check_config(config) -> None:
  """Refuses what cannot run, before any file is read."""
  for field in ("clip", "checkpoint"):
    if not isinstance(config[field], str) or not config[field]:
      what = ("a WAV/FLAC file" if field == "clip" else
              "a CNN12 run folder or a PyTorch state dict (.pt/.pth)")
      _fail(field, config[field], f"{what} (pass --config.{field}=PATH)")
  if not (_is_int(config.seed) and config.seed >= 0):
    _fail("seed", config.seed, "an integer >= 0")
  if not (_is_int(config.step) and config.step >= -1):
    _fail("step", config.step, "a checkpoint step, or -1 for the newest")
  m = config.model
  for field in ("width_multiplier", "width_divisor"):
    if not (_is_int(m[field]) and m[field] >= 0):
      _fail(f"model.{field}", m[field],
            "an integer >= 1, or 0 to read the widths from the checkpoint")
  if m.width_multiplier or m.width_divisor:
    wm, wd = m.width_multiplier or 1, m.width_divisor or 1
    if any((w * wm) % wd for w in cnn12.WIDTHS):
      _fail("model.width_divisor", m.width_divisor,
            f"a divisor of every conv width x width_multiplier "
            f"({[w * wm for w in cnn12.WIDTHS]})")
  if not (_is_int(config.layer) and 1 <= config.layer <= cnn12.NUM_BLOCKS):
    _fail("layer", config.layer,
          f"a CNN12 block number in 1..{cnn12.NUM_BLOCKS}")
  if config.map_numbering not in NUMBERINGS:
    _fail("map_numbering", config.map_numbering,
          "'from_1' (the package's) or 'authors' (channels from 0)")
  first = NUMBERINGS[config.map_numbering]
  maps = config.maps
  if (not isinstance(maps, (tuple, list)) or
      any(not _is_int(v) or v < first for v in maps) or
      len(set(maps)) != len(maps)):
    _fail("maps", maps, f"distinct feature map numbers from {first} "
          f"(map_numbering={config.map_numbering!r}), e.g. '(3,17)', or () "
          "for the `top` most active maps")
  if not (_is_int(config.top) and config.top >= 1):
    _fail("top", config.top, "an integer >= 1")
  audio_io.check_rate(config.sample_rate, "config.sample_rate")
  if not isinstance(config.resample, bool):
    _fail("resample", config.resample, "True or False")


# --- The checkpoint ----------------------------------------------------------


def load_network(config) -> Network:
  """The CNN12 of config.checkpoint, checked against config.model."""
  path = config.checkpoint
  full = os.path.abspath(path)
  if not os.path.exists(full):
    raise FileNotFoundError(f"config.checkpoint={path!r}: no such file or "
                            "directory")
  if os.path.isdir(full):
    net = _from_run(full, config)
  elif full.lower().endswith(TORCH_SUFFIXES):
    net = _from_torch(full)
  else:
    raise ValueError(f"config.checkpoint={path!r}: want a CNN12 run folder "
                     "or a PyTorch state dict file (.pt or .pth)")
  _check_widths(net.model, config.model, path)
  _check_finite(net.params, path)
  return net


def _check_finite(params, path: str) -> None:
  """Refuses weights holding NaN/Inf: every map would read as silent (its
  activity NaN) instead of the checkpoint being named as damaged."""
  import jax  # pylint: disable=g-import-not-at-top
  for keys, value in jax.tree_util.tree_flatten_with_path(params)[0]:
    bad = int(np.size(value) - np.isfinite(value).sum())
    if bad:
      name = "/".join(str(getattr(k, "key", k)) for k in keys)
      raise ValueError(f"config.checkpoint={path!r}: parameter {name} holds "
                       f"{bad} NaN/Inf value(s) of {np.size(value)}; the "
                       "checkpoint is damaged (a diverged run?)")


def _from_run(root: str, config) -> Network:
  # Imported here: only run folders need the checkpoint reader (orbax).
  from recon_jax.train import cnn12_eval  # pylint: disable=g-import-not-at-top
  from recon_jax.train import cnn12_supervised as sup  # pylint: disable=g-import-not-at-top
  run = cnn12_eval.seed_dir(root, config.seed)
  if not os.path.isdir(run):
    if not os.path.exists(os.path.join(root, sup.MODEL_CONFIG)):
      raise ValueError(
          f"config.checkpoint={config.checkpoint!r} holds neither "
          f"{sup.MODEL_CONFIG} nor seed_{config.seed}/ (config.seed="
          f"{config.seed}): not a CNN12 training run (want a cnn12 run's "
          "--workdir, one of its seed folders, or a .pt/.pth state dict)")
    run = root
  enc = cnn12_eval.load_encoder(run, None if config.step < 0 else config.step)
  params = _float32(enc.params)
  record = {"source": "recon_jax run", "kind": enc.record["kind"],
            "step": enc.record["step"],
            "widths": list(enc.model.conv_widths),
            "embedding_dim": int(enc.model.embedding_dim),
            "fingerprint": provenance.fingerprint_arrays(params)}
  return Network(enc.model, params, record)


def _float32(tree):
  import jax  # pylint: disable=g-import-not-at-top
  return jax.tree.map(lambda a: np.asarray(a, np.float32), tree)


def _shape(value):
  shape = getattr(value, "shape", None)
  return None if shape is None else tuple(int(d) for d in shape)


def read_torch_state_dict(path: str):
  """torch.load(path) of a state dict file (weights only, on the CPU)."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ValueError(f"{path}: reading a PyTorch checkpoint needs torch "
                     "(pip install torch; the CPU build is enough)") from None
  try:
    return torch.load(path, map_location="cpu", weights_only=True)
  except OSError as e:
    if e.filename is not None:  # Missing, unreadable: it names the file.
      raise
    raise ValueError(f"{path}: torch.load could not read it ({e.strerror or e}"
                     "): a truncated or damaged PyTorch file") from None
  except Exception as e:  # pylint: disable=broad-except
    # torch.load fails in many ways on a file that is not a checkpoint
    # (pickle, zip and RuntimeErrors): all mean the same to the user.
    text = " ".join(str(e).split())[:200]
    raise ValueError(f"{path}: not a PyTorch checkpoint torch.load can read "
                     f"(weights only): {type(e).__name__}: {text}") from None


def _find_cnn12(obj, path: str) -> tuple[Mapping, str, str]:
  """(state dict, the key of its wrapper or '', the names' prefix)."""
  if not isinstance(obj, Mapping):
    raise ValueError(f"{path} holds a {type(obj).__name__}, not a state dict "
                     "(a mapping of names to tensors); save "
                     "encoder.state_dict()")

  def firsts(d):
    return [k for k in d if isinstance(k, str) and k.endswith(_FIRST_WEIGHT)]

  state, wrapper, found = obj, "", firsts(obj)
  if not found:
    inner = [(k, v) for k, v in obj.items()
             if isinstance(v, Mapping) and firsts(v)]
    if len(inner) > 1:
      raise ValueError(f"{path}: several entries hold a CNN12 "
                       f"({[k for k, _ in inner]}); save the one to sonify")
    if inner:
      wrapper, state = inner[0]
      found = firsts(state)
  if not found:
    names = [str(k) for k in list(obj)[:6]]
    raise ValueError(
        f"{path}: not a CNN12 state dict: no entry named "
        f"'{_FIRST_WEIGHT}' (the paper's Encoder, Fig. A.1); it holds "
        f"{names}{' ...' if len(obj) > 6 else ''}")
  if len(found) > 1:
    raise ValueError(f"{path}: several CNN12 encoders in one state dict "
                     f"({found}); save the one to sonify")
  return state, str(wrapper), found[0][:-len(_FIRST_WEIGHT)]


def _from_torch(path: str) -> Network:
  from recon_jax.models import torch_interop  # pylint: disable=g-import-not-at-top
  state, wrapper, prefix = _find_cnn12(read_torch_state_dict(path), path)
  widths = []
  for b in range(1, cnn12.NUM_BLOCKS + 1):
    name = f"{prefix}features.conv{b}.weight"
    shape = _shape(state.get(name))
    if shape is None or len(shape) != 3:
      raise ValueError(
          f"{path}: not a CNN12 state dict: "
          + (f"no {name!r}" if shape is None else
             f"{name!r} has shape {shape}, not (out, in, kernel)")
          + f" (CNN12 has {cnn12.NUM_BLOCKS} Conv1d blocks)")
    widths.append(shape[0])
  fc = _shape(state.get(f"{prefix}fc1.fc10.weight"))
  embedding = fc[0] if fc is not None and len(fc) == 2 else cnn12.EMBEDDING_DIM
  try:
    params = torch_interop.cnn12_params_from_torch(
        state, widths=widths, embedding_dim=embedding, prefix=prefix)
  except ValueError as e:
    raise ValueError(f"{path}: not a CNN12 state dict: {e}") from None
  params = _float32(params)
  model = cnn12.CNN12(widths=widths, embedding_dim=embedding)
  record = {"source": "torch state dict", "entry": wrapper, "prefix": prefix,
            "widths": widths, "embedding_dim": int(embedding),
            "fingerprint": provenance.fingerprint_arrays(params)}
  return Network(model, params, record)


def _widths_text(widths) -> str:
  """'width_multiplier=1, width_divisor=8: conv widths (8, ...)', or the
  widths alone when they are not the paper's scaled by one ratio."""
  ratios = {fractions.Fraction(int(w), base)
            for w, base in zip(widths, cnn12.WIDTHS)}
  text = f"conv widths {tuple(int(w) for w in widths)}"
  if len(ratios) == 1:
    (r,) = ratios
    return (f"width_multiplier={r.numerator}, width_divisor={r.denominator}: "
            + text)
  return text


def _check_widths(model: cnn12.CNN12, m, path: str) -> None:
  if not (m.width_multiplier or m.width_divisor):
    return
  wm, wd = m.width_multiplier or 1, m.width_divisor or 1
  want = tuple(w * wm // wd for w in cnn12.WIDTHS)
  have = model.conv_widths
  if want != have:
    raise ValueError(
        f"config.model (width_multiplier={wm}, width_divisor={wd}: conv "
        f"widths {want}) does not match the checkpoint {path} "
        f"({_widths_text(have)}); set config.model to the checkpoint's, or "
        "both fields to 0 to read the widths from the checkpoint")


# --- Records and outputs -----------------------------------------------------


def file_fingerprint(path: str) -> str:
  """sha256 of a file's bytes, 16 hex digits (as provenance's)."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()[:16]


def _map_dir(layer: int, m: int) -> str:
  return f"L{layer}_m{m}"


def _saved_results(workdir: str):
  """results.json when it and every file it names exist, else None."""
  path = os.path.join(workdir, RESULTS_JSON)
  if not os.path.exists(path):
    return None
  saved = provenance.read_json(path)
  files = [saved.get("input_wav"), saved.get("figure")]
  for entry in saved.get("maps", ()):
    files += [entry.get("sonification_wav"), entry.get("residual_wav")]
  if all(f and os.path.isfile(os.path.join(workdir, f)) for f in files):
    return saved
  return None


def _lines(results: dict, workdir: str, reused: bool) -> list[str]:
  out = [f"{results['clip']}: {results['samples']} samples at "
         f"{results['sample_rate']} Hz ({results['duration_s']:.3f} s); "
         f"block {results['layer']} of CNN12 ({results['layer_maps']} maps, "
         f"{results['network']['source']}, fingerprint "
         f"{results['network']['fingerprint']})"]
  for e in results["maps"]:
    coh = ("n/a (silent map)" if e["coherence"] is None else
           f"{e['coherence']:.3f}")
    out.append(f"L{results['layer']} map {e['map']} (the authors' channel "
               f"{e['map'] - 1}): activity "
               f"{e['activity']:.4g} (rank {e['rank']}"
               f"{', silent' if e['silent'] else ''}), top-{COHERENCE_K} "
               f"coherence {coh} -> {e['sonification_wav']}")
  out.append(("reused " if reused else "wrote ") + workdir + (
      " (made_by.json matches: same clip, checkpoint and config)"
      if reused else f" ({RESULTS_JSON}, {FIGURE}, {INPUT_WAV})"))
  return out


def _wav_bytes(samples: int) -> int:
  return 44 + 2 * samples  # A 16-bit mono WAV.


def _check_space(folder: str, needed: int) -> None:
  free = shutil.disk_usage(folder).free
  if free < needed:
    raise OSError(errno.ENOSPC,
                  f"No space left on device: the outputs need at least "
                  f"{needed} bytes, {free} free", folder)


def _new_ancestor(path: str) -> str | None:
  """The highest folder of `path` that does not exist yet (what makedirs
  will create), or None if `path` exists."""
  top = None
  while not os.path.exists(path):
    top = path
    parent = os.path.dirname(path)
    if parent == path:
      break
    path = parent
  return top


def _remove_made(workdir: str, top: str | None) -> None:
  """Removes the (empty) folders this run made, workdir up to `top`."""
  if top is None:
    return
  path = workdir
  while True:
    try:
      os.rmdir(path)
    except OSError:
      return
    if path == top:
      return
    path = os.path.dirname(path)


def _commit(staging: str, workdir: str, names: list[str]) -> None:
  """Moves the staged outputs into workdir (renames, no new data);
  results.json and made_by.json last."""
  for name in names + [RESULTS_JSON, MADE_BY]:
    dst = os.path.join(workdir, name)
    if os.path.isdir(dst) and not os.path.islink(dst):
      shutil.rmtree(dst)  # Left by a run killed while committing.
    os.replace(os.path.join(staging, name), dst)
  os.rmdir(staging)


# --- The experiment ----------------------------------------------------------


def run(config, workdir: str) -> dict:
  """The sonify_clip experiment (see the module doc).

  Returns:
    {"lines": what to print, "results": results.json's contents}.
  """
  check_config(config)
  workdir = provenance.check_workdir(workdir)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise NotADirectoryError(f"--workdir={workdir} is a file, not a folder")
  layer = int(config.layer)
  clip = audio_io.read_checked_clip(
      config.clip, config.sample_rate, resample_clip=config.resample,
      min_samples=cnn12.MIN_INPUT_LENGTH,
      resample_flag="--config.resample=True")
  net = load_network(config)
  width = net.model.blocks[layer - 1].features
  first = NUMBERINGS[config.map_numbering]
  bad = [int(v) for v in config.maps if v - first + 1 > width]
  if bad:
    raise ValueError(f"config.maps: feature map {bad[0]} does not exist: "
                     f"block {layer} of this CNN12 ({config.checkpoint}) has "
                     f"{width} feature maps, numbered {first}.."
                     f"{width - 1 + first} (map_numbering="
                     f"{config.map_numbering!r})")
  record = provenance.to_jsonable({
      "clip": {"fingerprint": file_fingerprint(config.clip),
               "file_rate": clip.file_rate,
               "file_samples": clip.file_samples,
               "channels": clip.channels},
      "checkpoint": net.record,
      "config": config})
  what = f"the sonifications in {workdir}"
  if provenance.check_record(os.path.join(workdir, MADE_BY), record, what):
    saved = _saved_results(workdir)
    if saved is not None:
      return {"lines": _lines(saved, workdir, reused=True), "results": saved}
    logging.info("%s: made_by.json matches but results are missing; "
                 "sonifying again", workdir)
  num_maps = len(config.maps) or min(int(config.top), width)
  top = _new_ancestor(workdir)
  staging = os.path.join(workdir, PARTIAL)
  try:
    if os.path.exists(staging):
      logging.warning("Removing %s, left by a run that stopped", staging)
      shutil.rmtree(staging)
    os.makedirs(staging)
    # A read-only or full disk fails here, before the network runs.
    _check_space(staging, _wav_bytes(clip.samples.shape[0]) *
                 (1 + 2 * num_maps) + 16384)
    results, names = _sonify_into(staging, config, clip, net, layer, width,
                                  record)
    _commit(staging, workdir, names)
  except BaseException as e:
    shutil.rmtree(staging, ignore_errors=True)
    _remove_made(workdir, top)
    if isinstance(e, OSError) and e.errno == errno.ENOSPC and not e.filename:
      # A write that filled the disk names no file: say where, and that
      # nothing of this run was kept.
      raise OSError(errno.ENOSPC, "No space left on device while writing "
                    f"the outputs into {workdir}; nothing of this run was "
                    "kept") from None
    raise
  return {"lines": _lines(results, workdir, reused=False),
          "results": results}


def _sonify_into(folder, config, clip, net, layer, width, record):
  """Sonifies and writes every output into `folder`; (results, the names
  of the outputs other than results.json and made_by.json)."""
  # pylint: disable=g-import-not-at-top
  from recon_jax import inversion
  from recon_jax import metrics
  from recon_jax.report import sonification_media as media
  # pylint: enable=g-import-not-at-top
  rate = int(config.sample_rate)
  x = clip.samples
  activity = np.asarray(inversion.map_activity(net.model, net.params, x,
                                               layer), np.float64)
  silent = np.asarray(inversion.silent_maps(net.model, net.params, x, layer))
  order = np.argsort(-activity, kind="stable")  # Most active first.
  rank = np.empty(width, np.int64)
  rank[order] = np.arange(1, width + 1)
  if config.maps:
    maps = [int(v) - NUMBERINGS[config.map_numbering] + 1
            for v in config.maps]
    chosen = f"config.maps (map_numbering={config.map_numbering!r})"
  else:
    maps = [int(i) + 1 for i in order[:min(int(config.top), width)]]
    chosen = f"the {len(maps)} most active maps (config.top={config.top})"
  sonified = np.asarray(inversion.sonify(net.model, net.params, x, layer,
                                         maps), np.float64)  # (M, T)
  media.write_clip_wav(os.path.join(folder, INPUT_WAV), x, rate)
  names, entries = [INPUT_WAV], []
  for m, s in zip(maps, sonified):
    sub = _map_dir(layer, m)
    son_wav, res_wav = f"{sub}/sonification.wav", f"{sub}/residual.wav"
    media.write_clip_wav(os.path.join(folder, sub, "sonification.wav"), s,
                         rate)
    media.write_clip_wav(os.path.join(folder, sub, "residual.wav"), x - s,
                         rate, reference=x)
    names.append(sub)
    coherence = metrics.mean_topk_coherence(x, s, rate, k=COHERENCE_K,
                                            on_undefined="nan")
    entries.append({
        "map": m, "authors_channel": m - 1, "rank": int(rank[m - 1]),
        "activity": float(activity[m - 1]), "silent": bool(silent[m - 1]),
        "coherence": None if np.isnan(coherence) else float(coherence),
        "sonification_wav": son_wav, "residual_wav": res_wav})
  media.spectrogram_pairs_figure(
      os.path.join(folder, FIGURE), [(x, s) for s in sonified], rate,
      row_labels=[f"L{layer} map {m} (ch {m - 1})" for m in maps],
      title=f"{os.path.basename(config.clip)}: block {layer} of CNN12")
  names.append(FIGURE)
  results = {
      "clip": config.clip, "samples": int(x.shape[0]), "sample_rate": rate,
      "duration_s": x.shape[0] / rate, "file_rate": clip.file_rate,
      "resampled": clip.file_rate != rate,
      "checkpoint": config.checkpoint, "network": record["checkpoint"],
      "layer": layer, "layer_maps": width, "chosen": chosen,
      "input_wav": INPUT_WAV, "figure": FIGURE,
      "map_numbering": ("'map' counts from 1 (the package, the paper's "
                        "figures), 'authors_channel' from 0 (the authors' "
                        "code); folders are named by 'map'"),
      "coherence": (f"mean of the {COHERENCE_K} largest values of "
                    "scipy.signal.coherence (its defaults) of the input and "
                    "the sonification; null for a silent map (undefined)"),
      "maps": entries}
  provenance.write_json_atomic(os.path.join(folder, RESULTS_JSON), results)
  provenance.write_json_atomic(os.path.join(folder, MADE_BY), record)
  return results, names
