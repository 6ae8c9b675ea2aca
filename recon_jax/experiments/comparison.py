"""Every inversion method on both papers' networks, side by side (issue #13).

  out = comparison.run(config, workdir)   # config: configs/comparison.py

Networks (config.networks):
  phone_cnn  the thesis's phone CNN (config.thesis: a thesis work dir;
             config.phone_network 'padded' -> phone_cnn_padded/, 'valid' ->
             phone_cnn/), on TEST phone spectrograms of the data that work
             dir recorded (its config.json's corpus block), one phone of
             each of num_examples random classes. Reconstructions are
             spectrograms (F, T); their audio is Griffin-Lim's (the training
             mean spectrogram added back, as the thesis does).
  cnn12      a trained CNN12 encoder (config.cnn12: a cnn12 run folder,
             seed_<cnn12_seed>/ or the seed folder itself) on clips of the
             data it was trained on (config.data; checked against the run's
             record): num_examples random clips of config.split, each cut to
             its loudest clip_seconds and scaled to unit peak. Reconstructions
             are waveforms.
config.mission fills the three paths from a mission work dir
(thesis/, cnn12_events/, data/events/) where they are empty, and config.page
with the mission's offline page (sonification/sonification_page/) when that
exists.

Methods (config.methods): 'sonify' (the deconvnet: ONE feature map, each
example's most active one, back to the input), and the thesis's four,
which invert the layer's WHOLE activation: 'backprop' (to the input),
'annealing', 'decoder' (stacked decoder, innermost stage first, then
outwards, then fine-tuned; trained here on decoder_examples training
inputs, or for the padded phone CNN taken from the thesis work dir when it
holds one for that layer and reuse_thesis_decoders is set),
'decoder_backprop'. Every method runs through the inversion protocol on
both networks; the method settings are shared (cnn12_overrides replaces
some for waveforms).

Measures per example (metrics): mxcorr2, the thesis's spectrogram mxcorr
(phone CNN: of the network inputs; CNN12: of log-magnitude STFTs, minus the
mean log spectrogram of the decoder training clips, as the thesis subtracts
its training mean); waveform mxcorr (of the original audio and the
reconstruction's audio); the sonification paper's mean top-k
magnitude-squared coherence of the same pair; and R, the thesis's Euclidean
error in the network's input domain (a sonification's level is its own:
its R says little). Reported as mean ± s.e.m. over the examples; an example
whose reconstruction diverged (every run NaN/Inf, see inversion) or whose
sonification is silent (its most active map is zero) is left out and
counted.

Each (network, method, layer) cell is saved under WORKDIR/<network>/cells
when done, so a killed run resumes without redoing it; WORKDIR/<network>/
made_by.json records what made those cells (the data's and the network's
fingerprints, every setting that changes a number): a rerun with other
inputs or settings is refused, naming them (ProvenanceError); a rerun with
more methods or layers adds their cells.

Writes results.json, results.md (the table), figure_<network>.png (one
example, method x layer), wavs/<network>/ (originals and reconstructions of
the first num_wav_examples examples per cell) and made_by.json (both
networks' records). With config.page (a folder holding the offline page of
recon_jax.report.sonification_page), the comparison becomes a section of
that page: the table, the figures and a player for each cell's WAV, copied
into <page>/comparison/.
"""
import dataclasses
import os
import time
from typing import Any

from absl import logging
import jax
import ml_collections
import numpy as np
import tqdm

from recon_jax import inversion
from recon_jax import metrics
from recon_jax import ops
from recon_jax import provenance
from recon_jax.data import features
from recon_jax.data import prepare
from recon_jax.metrics import coherence as coherence_lib
from recon_jax.models import cnn12 as cnn12_lib
from recon_jax.models import invertible
from recon_jax.report import comparison as report
from recon_jax.report import sonification_page as page_lib
from recon_jax.train import cnn12_data
from recon_jax.train import cnn12_eval
from recon_jax.train import phone_classifier

NETWORKS = report.NETWORKS
METHODS = ("sonify",) + tuple(m for m in ("backprop", "annealing", "decoder",
                                          "decoder_backprop")
                              if m in inversion.METHODS)
DECODER_METHODS = ("decoder", "decoder_backprop")
MEASURES = report.MEASURES
# The mission's folders (recon_jax/experiments/mission.py FOLDERS).
MISSION_FOLDERS = {"thesis": "thesis", "cnn12": "cnn12_events",
                   "data": "data/events",
                   "page": "sonification/sonification_page"}
CNN12_RATE = 8000
# The STFT of CNN12's mxcorr2 (32 ms Hann frames, 16 ms hop at 8 kHz).
CNN12_STFT = {"window_length": 256, "hop": 128, "n_fft": 256,
              "window": "periodic_hann"}
# Fields that only change what the report shows, or which cells run.
PRESENTATION_FIELDS = ("num_wav_examples", "figure_example")
SCOPE_FIELDS = ("networks", "methods", "layers")
PATH_FIELDS = ("mission", "thesis", "cnn12", "page")
# Fields that concern one network only (left out of the other's record).
OWN_FIELDS = {"phone_cnn": ("phone_network", "reuse_thesis_decoders"),
              "cnn12": ("cnn12_seed", "data", "split", "clip_seconds",
                        "cnn12_overrides")}
MADE_BY = "made_by.json"


# --- Config ------------------------------------------------------------------


def _is_int(v, low=0):
  return isinstance(v, (int, np.integer)) and not isinstance(
      v, (bool, np.bool_)) and v >= low


def _fail(field, value, want):
  raise ValueError(f"config.{field}={value!r}: want {want}")


def resolved_paths(config) -> dict:
  """{'thesis', 'cnn12', 'data_dir', 'page'}: the config's paths, those left
  empty taken from config.mission's folders (its page only if it exists;
  '' for none)."""
  out = {"thesis": config.thesis, "cnn12": config.cnn12,
         "data_dir": config.data.dir, "page": config.page}
  if config.page and not os.path.exists(os.path.join(config.page,
                                                     "manifest.json")):
    raise FileNotFoundError(
        f"config.page={config.page!r}: no offline page there (no "
        "manifest.json; the sonification experiment writes one in its "
        "sonification_page/ folder)")
  if config.mission:
    root = provenance.check_workdir(config.mission, "config.mission")
    if not os.path.isdir(root):
      raise FileNotFoundError(f"config.mission={config.mission!r}: no such "
                              "directory")
    for key, sub in (("thesis", "thesis"), ("cnn12", "cnn12"),
                     ("data_dir", "data")):
      if not out[key]:
        out[key] = os.path.join(root, MISSION_FOLDERS[sub])
    page = os.path.join(root, MISSION_FOLDERS["page"])
    if not out["page"] and os.path.exists(os.path.join(page,
                                                       "manifest.json")):
      out["page"] = page
  return out


def method_settings(config, network: str) -> inversion.ReconstructionConfig:
  """The ReconstructionConfig of `network` (CNN12: cnn12_overrides on top
  of the shared settings)."""
  sections = {k: dict(provenance.to_jsonable(config[k]))
              for k in ("backprop", "annealing", "decoder")}
  if network == "cnn12":
    for k, v in provenance.to_jsonable(config.cnn12_overrides).items():
      if k not in sections:
        raise ValueError(f"config.cnn12_overrides.{k}: want sections of "
                         f"{tuple(sections)}")
      sections[k].update(v)
  try:
    return inversion.ReconstructionConfig.from_dict(sections)
  except ValueError as e:
    raise ValueError(f"method settings ({network}): {e}") from None


def check_config(config, num_devices: int | None = None) -> None:
  """Refuses what cannot run, before anything is read or computed."""
  networks = tuple(config.networks)
  if not networks or any(n not in NETWORKS for n in networks) or len(
      set(networks)) != len(networks):
    _fail("networks", networks, f"distinct names from {NETWORKS}")
  methods = tuple(config.methods)
  for m in methods:
    if m not in METHODS:
      raise ValueError(f"config.methods: unknown method {m!r}; want some of "
                       f"{METHODS}")
  if not methods or len(set(methods)) != len(methods):
    _fail("methods", methods, f"distinct names from {METHODS}")
  for n in networks:
    layers = config.layers[n]
    if (not isinstance(layers, (tuple, list)) or not layers
        or any(not _is_int(l, 1) for l in layers)
        or len(set(layers)) != len(layers)):
      _fail(f"layers.{n}", layers, "distinct layer numbers >= 1")
  if config.phone_network not in ("padded", "valid"):
    _fail("phone_network", config.phone_network, "'padded' or 'valid'")
  for field, low in (("num_examples", 1), ("seed", 0),
                     ("griffin_lim_iters", 1), ("coherence_k", 1),
                     ("num_wav_examples", 0), ("decoder_examples", 1),
                     ("decoder_batch_size", 1), ("cnn12_seed", 0)):
    if not _is_int(config[field], low):
      _fail(field, config[field], f"an integer >= {low}")
  if not 0 <= config.figure_example < config.num_examples:
    _fail("figure_example", config.figure_example,
          f"an example index in 0..{config.num_examples - 1}")
  if config.split not in cnn12_data.SPLITS:
    _fail("split", config.split, f"one of {cnn12_data.SPLITS}")
  need = cnn12_lib.MIN_INPUT_LENGTH / CNN12_RATE
  if not (isinstance(config.clip_seconds, (int, float)) and
          config.clip_seconds >= need):
    _fail("clip_seconds", config.clip_seconds,
          f"seconds >= {need:.4f} (CNN12's receptive field)")
  if set(methods) & set(DECODER_METHODS):
    num_devices = jax.device_count() if num_devices is None else num_devices
    batch = config.decoder_batch_size
    if batch % num_devices:
      _fail("decoder_batch_size", batch, f"a multiple of the {num_devices} "
            "devices the decoders train on")
    if config.decoder_examples < batch:
      _fail("decoder_examples", config.decoder_examples,
            f">= decoder_batch_size ({batch})")
  for n in NETWORKS:
    method_settings(config, n)
  inversion.config_from_dict(inversion.DecoderTrainConfig,
                             config.decoder_train)
  if "cnn12" in networks:
    cnn12_data.check_data_config(_data_block(config, resolved_paths(config)))


def _data_block(config, paths) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict(config.data.to_dict())
  c.dir = paths["data_dir"]
  return c


# --- The networks and their examples -----------------------------------------


@dataclasses.dataclass
class Subject:
  """One network and the examples it inverts.

  inputs: (N, *example) network inputs X*. waveforms: (N, L) their audio.
  ids: N names. record: what identifies the inputs and the network.
  make_decoder_inputs: () -> training inputs of the decoders (see
    decoder_inputs, made once).
  thesis_decoders: folder holding the thesis's blind_L<l> decoders, or None.
  """
  name: str
  model: Any
  params: Any
  inputs: np.ndarray
  waveforms: np.ndarray
  ids: list
  sample_rate: int
  record: dict
  make_decoder_inputs: Any
  thesis_decoders: str | None = None
  mean_spectrogram: np.ndarray | None = None  # phone CNN: training mean
  stft: dict | None = None  # phone CNN: the data's STFT settings
  log_mean: np.ndarray | None = None  # CNN12: mean log spectrogram (lazy)
  _decoder_inputs: np.ndarray | None = None

  def decoder_inputs(self) -> np.ndarray:
    """The decoders' training inputs (made once)."""
    if self._decoder_inputs is None:
      self._decoder_inputs = np.asarray(self.make_decoder_inputs(),
                                        np.float32)
    return self._decoder_inputs

  @property
  def net(self) -> invertible.InvertibleNet:
    return invertible.describe(self.model)

  def audio(self, reconstructions, key, n_iter: int) -> np.ndarray:
    """(N, L) audio of reconstructions in the network's input domain."""
    if self.name == "phone_cnn":
      return np.asarray(metrics.spectrogram_to_waveform(
          reconstructions, self.mean_spectrogram, key, n_iter,
          self.waveforms.shape[1], **self.stft), np.float32)
    return np.asarray(reconstructions, np.float32)

  def spectrograms(self, x) -> np.ndarray:
    """(N, F, T) what mxcorr2 compares."""
    if self.name == "phone_cnn":
      return np.asarray(x, np.float32)
    if self.log_mean is None:
      self.log_mean = np.mean(log_spectrograms(self.decoder_inputs()), 0)
    return log_spectrograms(x) - self.log_mean


def log_spectrograms(waveforms) -> np.ndarray:
  """log(1 + |STFT|) of waveforms (N, T) at CNN12's rate: (N, 129, frames)."""
  return np.log1p(np.abs(np.asarray(ops.stft(np.asarray(waveforms,
                                                        np.float32),
                                             **CNN12_STFT))))


def _phone_net_dir(config, paths) -> str:
  if not paths["thesis"]:
    raise ValueError("config.thesis is empty: give a thesis work dir "
                     "(python -m recon_jax --config=configs/thesis*.py), or "
                     "config.mission a mission work dir")
  root = provenance.check_workdir(paths["thesis"], "config.thesis")
  sub = {"padded": "phone_cnn_padded", "valid": "phone_cnn"}[
      config.phone_network]
  net_dir = os.path.join(root, sub)
  if not os.path.exists(os.path.join(net_dir, "made_by.json")):
    raise FileNotFoundError(f"config.thesis={paths['thesis']!r}: no trained "
                            f"{sub}/ in it (config.phone_network="
                            f"{config.phone_network!r}); run the thesis "
                            "experiment there first")
  return net_dir


def load_phone_network(config, paths):
  """(model, params, made_by record of its folder)."""
  net_dir = _phone_net_dir(config, paths)
  made = provenance.read_json(os.path.join(net_dir, "made_by.json"))
  net_config = ml_collections.ConfigDict(
      {"seed": made.get("seed", 0), "model": made["model"],
       "train": made["train"]})
  model, params = phone_classifier.load_phone_classifier(net_config, net_dir)
  return model, params, made


def load_phone_subject(config, paths, model, params, made) -> Subject:
  """The phone CNN and num_examples TEST phones of distinct classes."""
  root = os.path.dirname(_phone_net_dir(config, paths))
  saved = os.path.join(root, "config.json")
  if not os.path.exists(saved):
    raise FileNotFoundError(f"{root}: no config.json; not a thesis work dir")
  corpus = ml_collections.ConfigDict(
      provenance.read_json(saved)["corpus"])
  data = prepare.phone_data_from_config(corpus, root)
  if data.fingerprint != made.get("data"):
    raise provenance.ProvenanceError(
        f"{_phone_net_dir(config, paths)} was trained on data "
        f"{made.get('data')}, but {saved}'s corpus gives {data.fingerprint}")
  labels = data.test.labels48
  classes = np.unique(labels)
  if config.num_examples > len(classes):
    _fail("num_examples", config.num_examples,
          f"at most the {len(classes)} phone classes of the TEST split")
  rng = np.random.default_rng([config.seed, 13])
  chosen = rng.choice(classes, config.num_examples, replace=False)
  picks = np.array([rng.choice(np.flatnonzero(labels == c)) for c in chosen])
  inputs = features.network_inputs(data, "test")[picks]

  def decoder_inputs():
    train = features.network_inputs(data, "train")
    take = np.random.default_rng([config.seed, 17]).permutation(len(train))
    return train[take[:config.decoder_examples]]

  thesis_decoders = None
  if config.phone_network == "padded" and config.reuse_thesis_decoders:
    thesis_decoders = os.path.join(root, "reconstruction", "decoders")
  return Subject(
      "phone_cnn", model, params, inputs.astype(np.float32),
      data.test.waveforms[picks].astype(np.float32),
      [f"{data.phones48[labels[p]]}{p}" for p in picks], data.sample_rate,
      {"data": data.fingerprint,
       "params": provenance.fingerprint_arrays(params),
       "network": os.path.basename(_phone_net_dir(config, paths)),
       "test_phones": picks.tolist()},
      decoder_inputs, thesis_decoders, data.mean_spectrogram,
      features.stft_settings(data))


def _cnn12_run(config, paths) -> str:
  if not paths["cnn12"]:
    raise ValueError("config.cnn12 is empty: give a cnn12 run folder "
                     "(python -m recon_jax --config=configs/cnn12_*.py), or "
                     "config.mission a mission work dir")
  return cnn12_eval.encoder_dir(ml_collections.ConfigDict(
      {"workdir": paths["cnn12"], "seed": config.cnn12_seed}))


def loudest_window(wave: np.ndarray, length: int, hop: int = 400) -> int:
  """Start of the `length`-sample window of `wave` with the most energy."""
  if len(wave) <= length:
    return 0
  power = np.concatenate([[0.0], np.cumsum(np.square(wave, dtype=np.float64))])
  starts = np.arange(0, len(wave) - length + 1, hop)
  return int(starts[np.argmax(power[starts + length] - power[starts])])


def _crop(wave: np.ndarray, length: int, start: int) -> np.ndarray:
  """`length` samples from `start` (tiled if the clip is shorter), unit
  peak."""
  if len(wave) < length:
    wave = np.tile(wave, -(-length // len(wave)))
  out = np.asarray(wave[start:start + length], np.float32)
  peak = np.max(np.abs(out))
  return out / peak if peak > 0 else out


def load_cnn12_subject(config, paths, encoder) -> Subject:
  """CNN12 and num_examples clips of config.split (loudest window each)."""
  run = _cnn12_run(config, paths)
  data_block = _data_block(config, paths)
  data = cnn12_data.load_data(data_block, run)
  cnn12_eval.check_trained_on(run, data,
                              cnn12_data.data_dir(data_block, run))
  length = int(round(config.clip_seconds * CNN12_RATE))
  store = cnn12_data.clip_store(data, config.split)
  if config.num_examples > len(store):
    _fail("num_examples", config.num_examples,
          f"at most the {len(store)} clips of the {config.split} split")
  part = data.split(config.split)
  names = getattr(part, "fnames", None) or getattr(part, "files")
  rng = np.random.default_rng([config.seed, 19])
  picks = np.sort(rng.choice(len(store), config.num_examples, replace=False))
  waves = []
  for i in picks:
    clip = store.clip(i)
    waves.append(_crop(clip, length, loudest_window(clip, length)))
  waves = np.stack(waves)
  if np.any(np.max(np.abs(waves), axis=1) == 0):
    raise ValueError(f"a chosen {config.split} clip is silent")

  def decoder_inputs():
    train = cnn12_data.clip_store(data, "train")
    r = np.random.default_rng([config.seed, 23])
    out = []
    for j in range(config.decoder_examples):
      clip = train.clip(int(r.integers(len(train))))
      start = int(r.integers(max(len(clip) - length, 0) + 1))
      out.append(_crop(clip, length, start))
    return np.stack(out)

  return Subject(
      "cnn12", encoder.model, encoder.params, waves, waves,
      [os.path.splitext(os.path.basename(str(names[i])))[0] for i in picks],
      CNN12_RATE,
      {"data": data.fingerprint, "params": encoder.record["fingerprint"],
       "checkpoint": {"kind": encoder.record["kind"],
                      "step": encoder.record["step"]},
       "clips": [int(i) for i in picks]},
      decoder_inputs)


# --- Measures ----------------------------------------------------------------


def coherence_values(originals, audio, sample_rate, k, left_out=None):
  """Mean top-k coherence per pair (N,); NaN where left out or undefined.
  nperseg is scipy's 256, or the clip length if shorter."""
  originals = np.asarray(originals, np.float32)
  audio = np.asarray(audio, np.float32)
  nperseg = min(coherence_lib.NPERSEG, originals.shape[1])
  k = min(k, nperseg // 2 + 1)
  out = metrics.mean_topk_coherence_batch(originals, audio, sample_rate, k=k,
                                          nperseg=nperseg, on_undefined="nan")
  if left_out is not None:
    out = np.where(left_out, np.nan, out)
  return out


def measures(subject: Subject, reconstructions, audio, left_out, k: int):
  """{measure: (N,)} of reconstructions in the network's input domain and
  their audio (N, L); NaN for the examples left out."""
  rec = np.asarray(reconstructions, np.float32)
  audio = np.asarray(audio, np.float32)
  n = len(rec)
  out = {m: np.full(n, np.nan, np.float32) for m in MEASURES}
  ok = ~np.asarray(left_out, bool)
  if not ok.any():
    return out
  x = subject.inputs[ok]
  out["R"][ok] = np.asarray(metrics.euclidean_error(x, rec[ok]))
  out["mxcorr2"][ok] = np.asarray(metrics.spectrogram_mxcorr(
      subject.spectrograms(x), subject.spectrograms(rec[ok])))
  out["waveform_mxcorr"][ok] = np.asarray(metrics.max_xcorr(
      subject.waveforms[ok], audio[ok], batch_ndim=1))
  out["coherence"][ok] = coherence_values(subject.waveforms[ok], audio[ok],
                                          subject.sample_rate, k)
  return out


# --- Cells -------------------------------------------------------------------


def sonifiable(net: invertible.InvertibleNet, layer: int) -> bool:
  """Whether the deconvnet runs back from `layer` (no dense / mean below)."""
  return not any(op.kind in ("dense", "mean") for op in net.ops_of(layer))


class _Decoders:
  """The blind decoder of each layer: the thesis's when it has one (phone
  CNN, reuse_thesis_decoders), else trained (or resumed) in folder."""

  def __init__(self, subject: Subject, config, folder: str):
    self.subject, self.config, self.folder = subject, config, folder
    self.train_config = inversion.config_from_dict(
        inversion.DecoderTrainConfig, config.decoder_train).replace(
            unpooling="blind", seed=config.seed)
    self._cache = {}

  def get(self, layer: int):
    """(TrainedDecoder, where it came from)."""
    if layer not in self._cache:
      s = self.subject
      theirs = (os.path.join(s.thesis_decoders, f"blind_L{layer}")
                if s.thesis_decoders else None)
      ours = os.path.join(self.folder, "decoders", f"blind_L{layer}")
      if theirs and inversion.decoder_exists(theirs):
        decoder, source = inversion.load_decoder(theirs, s.model, s.params,
                                                 layer), theirs
      elif inversion.decoder_exists(ours):
        decoder, source = inversion.load_decoder(ours, s.model, s.params,
                                                 layer), ours
      else:
        logging.info("Training the %s decoder of layer %d in %s", s.name,
                     layer, ours)
        x = s.decoder_inputs()
        decoder = inversion.train_decoder(
            s.model, s.params, layer, workdir=ours,
            epoch_batches=inversion.array_batches(
                x, self.config.decoder_batch_size, self.config.seed),
            config=self.train_config, input_shape=x.shape[1:])
        source = ours
      self._cache[layer] = (decoder, source)
    return self._cache[layer]


def cell_key(seed: int, network: str, method: str, layer: int) -> jax.Array:
  key = jax.random.key(seed)
  for i in (NETWORKS.index(network), METHODS.index(method), layer):
    key = jax.random.fold_in(key, i)
  return key


def compute_cell(subject: Subject, method: str, layer: int, config,
                 settings: inversion.ReconstructionConfig,
                 decoders: _Decoders | None) -> dict:
  """One cell's arrays: reconstructions, audio, left_out, the measures
  (and sonify's maps, the decoders' source); {'not_applicable': True} for
  sonify past a dense layer."""
  if method == "sonify" and not sonifiable(subject.net, layer):
    return {"not_applicable": np.array(True)}
  start = time.perf_counter()
  k_rec, k_gl = jax.random.split(cell_key(config.seed, subject.name, method,
                                          layer))
  model, params, x = subject.model, subject.params, subject.inputs
  extra = {}
  if method == "sonify":
    activity = np.asarray(inversion.map_activity(model, params, x, layer))
    maps = activity.argmax(-1) + 1
    rec = np.asarray(inversion.sonify_pairs(model, params, x, layer, maps))
    flat = rec.reshape((len(rec), -1))
    left_out = (activity.max(-1) <= 0) | ~np.any(flat != 0, axis=-1)
    extra["maps"] = maps.astype(np.int32)
  else:
    targets = inversion.layer_targets(model, params, x, layer)
    decoder = None
    if method in DECODER_METHODS:
      decoder, source = decoders.get(layer)
      extra["decoder_source"] = np.array(source)
      extra["decoder_fingerprint"] = np.array(
          provenance.fingerprint_arrays(decoder.params))
      steps = decoder.train_config or {}
      extra["decoder_steps"] = np.array(
          [steps.get("stage_steps", -1), steps.get("finetune_steps", -1)])
    rec, _, summary = inversion.reconstruct(
        method, model, params, layer, targets, k_rec, settings,
        decoder=decoder, input_shape=x.shape[1:])
    rec = np.asarray(rec, np.float32)
    left_out = np.asarray(summary["diverged"], bool)
  left_out = left_out | ~np.all(np.isfinite(rec.reshape((len(rec), -1))), -1)
  shape = (-1,) + (1,) * (rec.ndim - 1)
  rec = np.where(left_out.reshape(shape), 0.0, np.nan_to_num(rec)).astype(
      np.float32)
  audio = subject.audio(rec, k_gl, config.griffin_lim_iters)
  scores = measures(subject, rec, audio, left_out, config.coherence_k)
  return {"reconstructions": rec, "audio": audio, "left_out": left_out,
          **{f"measure_{m}": v for m, v in scores.items()}, **extra,
          "seconds": np.array(time.perf_counter() - start)}


def network_record(config, subject: Subject) -> dict:
  """What the cells of `subject` are made from (see the module doc)."""
  settings = provenance.to_jsonable(config)
  for field in PRESENTATION_FIELDS + SCOPE_FIELDS + PATH_FIELDS:
    settings.pop(field, None)
  for other, fields in OWN_FIELDS.items():
    if other != subject.name:
      for field in fields:
        settings.pop(field, None)
  if subject.name == "cnn12":
    settings["data"].pop("dir", None)
    settings["data"].pop("csv", None)
  return {"network": subject.name, "inputs": subject.record,
          "config": settings}


# --- References --------------------------------------------------------------


def _mean_or_none(values):
  values = np.asarray(values, np.float64)
  values = values[np.isfinite(values)]
  return float(np.mean(values)) if len(values) else None


def baselines(config, subject) -> list[dict]:
  """Reference rows: what a reconstruction that kept nothing scores (the
  phone CNN: the average spectrogram, the thesis's waveform threshold;
  CNN12: silence) and, for the phone CNN, the STFT round trip (true
  magnitude, Griffin-Lim): the ceiling Griffin-Lim puts on the audio
  measures."""
  key = jax.random.fold_in(jax.random.key(config.seed), 10**6)
  n = len(subject.inputs)
  nothing = np.zeros_like(subject.inputs)
  audio = subject.audio(nothing, key, config.griffin_lim_iters)
  scores = measures(subject, nothing, audio, np.zeros(n, bool),
                    config.coherence_k)
  what = ("average spectrogram (kept nothing)" if subject.name == "phone_cnn"
          else "silence (kept nothing)")
  out = [{"network": subject.name, "what": what,
          **{m: _mean_or_none(v) for m, v in scores.items()}}]
  if subject.name == "phone_cnn":
    magnitude = subject.inputs + subject.mean_spectrogram
    audio = np.asarray(metrics.spectrogram_to_waveform(
        magnitude, np.zeros_like(subject.mean_spectrogram), key,
        config.griffin_lim_iters, subject.waveforms.shape[1], **subject.stft))
    out.append({
        "network": subject.name,
        "what": "STFT round trip (true magnitude, Griffin-Lim)",
        "mxcorr2": None, "R": None,
        "waveform_mxcorr": _mean_or_none(metrics.max_xcorr(
            subject.waveforms, audio, batch_ndim=1)),
        "coherence": _mean_or_none(coherence_values(
            subject.waveforms, audio, subject.sample_rate,
            config.coherence_k))})
  return out


# --- The experiment ----------------------------------------------------------


def _load_networks(config, paths) -> dict:
  """{network: (model, params, extra)} with the layers checked."""
  out = {}
  for name in config.networks:
    if name == "phone_cnn":
      model, params, made = load_phone_network(config, paths)
      out[name] = (model, params, made)
    else:
      enc = cnn12_eval.load_encoder(_cnn12_run(config, paths))
      out[name] = (enc.model, enc.params, enc)
    net = invertible.describe(out[name][0])
    for layer in config.layers[name]:
      try:
        invertible.check_layer(net, layer)
      except ValueError as e:
        raise ValueError(f"config.layers.{name}: {e}") from None
  return out


def run(config, workdir: str) -> dict:
  """Runs (or resumes) every network x method x layer cell, then the report.

  Returns:
    {"lines": the table and the best methods (printed), "rows", "table",
     "best", "baselines", "files"}.
  """
  workdir = provenance.check_workdir(workdir)
  check_config(config)
  paths = resolved_paths(config)
  loaded = _load_networks(config, paths)
  subjects = {}
  for name, (model, params, extra) in loaded.items():
    if name == "phone_cnn":
      subjects[name] = load_phone_subject(config, paths, model, params, extra)
    else:
      subjects[name] = load_cnn12_subject(config, paths, extra)
  records = {}
  for name, s in subjects.items():
    records[name] = provenance.check_or_write_record(
        os.path.join(workdir, name, MADE_BY), network_record(config, s),
        what=f"the {name} cells in {os.path.join(workdir, name)}",
        remedy="use a new --workdir (or delete that folder) to compare with"
        " these inputs or settings")
    os.makedirs(os.path.join(workdir, name, "cells"), exist_ok=True)

  todo = [(n, m, l) for n in config.networks for l in config.layers[n]
          for m in config.methods]
  cells = {n: {} for n in config.networks}
  decoders = {n: _Decoders(s, config, os.path.join(workdir, n))
              for n, s in subjects.items()}
  settings = {n: method_settings(config, n) for n in config.networks}
  bar = tqdm.tqdm(todo, desc="comparison cells", unit="cell",
                  disable=jax.process_index() != 0)
  for network, method, layer in bar:
    bar.set_postfix_str(f"{network} {method} L{layer}")
    path = os.path.join(workdir, network, "cells", f"{method}_L{layer}.npz")
    if os.path.exists(path):
      cells[network][method, layer] = provenance.read_npz(path)
      continue
    arrays = compute_cell(subjects[network], method, layer, config,
                          settings[network], decoders[network])
    provenance.write_npz_atomic(path, arrays)
    cells[network][method, layer] = arrays
    if "not_applicable" not in arrays:
      logging.info("cell %s %s L%d: mxcorr2 %.3f, coherence %.3f", network,
                   method, layer, np.nanmean(arrays["measure_mxcorr2"]),
                   np.nanmean(arrays["measure_coherence"]))
  bar.close()

  rows = [report.result_row(n, m, l, cells[n][m, l]) for n, m, l in todo]
  references = [b for s in subjects.values() for b in baselines(config, s)]
  files = []
  j = config.figure_example
  for name, s in subjects.items():
    layers, methods = tuple(config.layers[name]), tuple(config.methods)
    one = {key: ({k: v[j] for k, v in c.items()
                  if k in ("reconstructions", "left_out")}
                 if "not_applicable" not in c else c)
           for key, c in cells[name].items()}
    files.append(report.write_figure(
        os.path.join(workdir, f"figure_{name}.png"), name, s.ids[j],
        s.inputs[j], one, layers, methods, s.sample_rate,
        s.mean_spectrogram))
    files += report.write_wavs(
        os.path.join(workdir, "wavs", name), s.ids, s.waveforms, cells[name],
        layers, methods, s.sample_rate, config.num_wav_examples)
  examples = {n: {"ids": s.ids, "sample_rate": s.sample_rate,
                  "input_shape": list(s.inputs.shape[1:]),
                  "figure_example": s.ids[j]}
              for n, s in subjects.items()}
  intro = "Examples: " + "; ".join(
      f"{report.NETWORK_NAMES[n]}: {len(s.ids)} "
      f"{'TEST phones' if n == 'phone_cnn' else config.split + ' clips'}"
      f" ({', '.join(s.ids)})" for n, s in subjects.items())
  written, table, best = report.write_results(workdir, rows, references,
                                              examples, intro)
  files += written
  files.append(provenance.write_json_atomic(
      os.path.join(workdir, MADE_BY), {"networks": records}))
  lines = table.rstrip("\n").split("\n") + best + [
      f"results: {os.path.join(workdir, 'results.md')}"]
  if paths["page"]:
    files.append(page_lib.set_comparison(
        paths["page"], report.page_section(workdir, paths["page"])))
    lines.append(f"page: {files[-1]}")
  return {"lines": lines, "rows": rows, "table": table, "best": best,
          "baselines": references, "files": files}
