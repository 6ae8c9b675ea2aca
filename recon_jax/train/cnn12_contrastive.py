"""Contrastive (SimCLR) CNN12 training (docs/methods.md, B2), through
`recon_jax.train.fit`.

Per clip, two non-overlapping 2.5 s views (augment.contrastive_views: the
first starts in the first half of the clip, the second >= 300 ms after the
first ends; short clips tiled), each augmented independently (background
mixing at a random SNR, random gain, Gaussian noise, peak normalisation,
time masks; augment.augment), then CNN12 -> projection head -> NT-Xent
(tau = 0.1) with cosine similarity.

The step is `fit`'s jitted step (data parallel: parameters replicated,
the batch split over the mesh's 'data' axis). Views, augmentation, the
encoder (with its dropout) and the projection head run on the global batch
under that jit, so what they draw does not depend on the device count; the
loss `nt_xent_loss(..., axis_name='data')` runs inside `jax.shard_map` over
'data' (projections P('data') in, the scalar loss P() out):
`contrastive.negatives='global'` (the paper's text, default) all-gathers
the projections so every anchor is scored against the 2N - 2 negatives of
the GLOBAL batch; 'per_device' scores each device's shard alone, as the
authors' PyTorch/XLA code did (2n - 2 negatives for n = N / devices). One
device and eight give the same step with 'global'.

(The encoder stays outside the shard_map: recon_jax.ops's max-pool switch
rule, a custom_jvp with a float0 tangent, is refused by shard_map's
varying-manual-axes check, and nothing is gained by running a data-parallel
CNN by hand.)

Background clips for mixing (`background.source`): the training data's own
(KeywordData.background), 'none', or the _background_noise_ clips of a
generated/real keyword set or any folder of WAV/FLAC files, each cut to
`background.max_seconds` (the bank is a constant of the compiled step).

A work directory holds what cnn12_supervised's do (checkpoints/ with the
kept series, made_by.json, model_config.json, metrics, eval.json with the
validation NT-Xent loss and the top-1 accuracy of finding each view's
partner among the other 2N - 1 views).
"""
import functools
import os

from absl import logging
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P
import ml_collections
import numpy as np

from recon_jax import provenance
from recon_jax.data import audio_folder
from recon_jax.data import audio_io
from recon_jax.data import augment
from recon_jax.models import cnn12
from recon_jax.models import heads
from recon_jax.train import cnn12_data
from recon_jax.train import cnn12_supervised as sup
from recon_jax.train import losses
from recon_jax.train import loop
from recon_jax.train import optimizers

SAMPLE_RATE = augment.SAMPLE_RATE
BACKGROUND_SOURCES = ("data", "none", "generated_keywords", "speech_commands",
                      "wav_folder")


def contrastive_config() -> ml_collections.ConfigDict:
  """The `contrastive` block.

  tau: NT-Xent temperature (0.1).
  negatives: 'global' (the paper's text) or 'per_device' (the authors' code).
  view_seconds / min_gap_seconds: the two views' length and the least gap
    between them (2.5 s, 0.3 s).
  projection_variant: 'code' (ReLU(h) -> Dense -> ReLU -> Dense no bias,
    L2-normalised; the authors' code; docs/methods.md, C) or 'paper' (the
    text's MLP).
  projection_hidden / projection_features: 512 / 512.
  eval_clips: validation clips whose pair accuracy and loss are reported
    (the first ones; bounds the (2N)^2 similarity matrix).
  """
  c = ml_collections.ConfigDict()
  c.tau = 0.1
  c.negatives = "global"
  c.view_seconds = augment.VIEW_LENGTH / SAMPLE_RATE
  c.min_gap_seconds = augment.VIEW_GAP / SAMPLE_RATE
  c.projection_variant = "code"
  c.projection_hidden = 512
  c.projection_features = 512
  c.eval_clips = 1024
  return c


def background_config(source: str = "data") -> ml_collections.ConfigDict:
  """The `background` block (clips mixed in at a random SNR).

  source: 'data' (the training set's own background clips), 'none',
    'generated_keywords' (the keyword generator's _background_noise_; made
    under `dir` if absent), 'speech_commands' (a Speech Commands folder's
    _background_noise_) or 'wav_folder' (every WAV/FLAC file in `dir`).
  dir: the folder ('' for generated_keywords: <workdir>/data/
    generated_keywords_<size>, shared with a keyword run's default).
  size / seed: the keyword generator's, for generated_keywords.
  max_seconds: each clip is cut to this length.
  """
  c = ml_collections.ConfigDict()
  c.source = source
  c.dir = ""
  c.size = "default"
  c.seed = 0
  c.max_seconds = 20.0
  return c


def contrastive_model_config(width_divisor: int = 1):
  """The `model` block: sup.model_config's encoder fields (its head field
  is unused here)."""
  return sup.model_config(width_divisor)


def _need(ok, field, value, want):
  if not ok:
    raise ValueError(f"{field}={value!r}: {want}")


def check_config(config, num_devices: int | None = None) -> None:
  """Refuses a contrastive config that cannot run, before any data is read."""
  num_devices = jax.device_count() if num_devices is None else num_devices
  sup.check_common(config, num_devices)
  _need(config.recipe == "contrastive", "recipe", config.recipe,
        "want 'contrastive' for this recipe")
  sup.check_model_config(config.model)
  sup.check_train_config(config.train, num_devices, crop=False)
  _need(config.train.checkpoint_choice == "final", "train.checkpoint_choice",
        config.train.checkpoint_choice, "the contrastive recipe keeps its "
        "final checkpoint (want 'final'; a probe or fine-tune run chooses)")
  c = config.contrastive
  _need(sup._is_real(c.tau) and c.tau > 0, "contrastive.tau", c.tau,
        "want a temperature > 0")
  _need(c.negatives in losses.NEGATIVES, "contrastive.negatives", c.negatives,
        f"want one of {losses.NEGATIVES}")
  _need(sup._is_real(c.view_seconds) and round(c.view_seconds * SAMPLE_RATE)
        >= cnn12.MIN_INPUT_LENGTH, "contrastive.view_seconds", c.view_seconds,
        f"want at least CNN12's receptive field, {cnn12.MIN_INPUT_LENGTH} "
        "samples")
  _need(sup._is_real(c.min_gap_seconds) and c.min_gap_seconds >= 0,
        "contrastive.min_gap_seconds", c.min_gap_seconds, "want >= 0")
  _need(c.projection_variant in heads.PROJECTION_VARIANTS,
        "contrastive.projection_variant", c.projection_variant,
        f"want one of {heads.PROJECTION_VARIANTS}")
  for name in ("projection_hidden", "projection_features", "eval_clips"):
    _need(sup._is_int(c[name]) and c[name] >= 1, f"contrastive.{name}",
          c[name], "want an integer >= 1")
  b = config.background
  _need(b.source in BACKGROUND_SOURCES, "background.source", b.source,
        f"want one of {BACKGROUND_SOURCES}")
  if b.source in ("speech_commands", "wav_folder"):
    if not b.dir:
      raise ValueError(f"background.dir is empty: background.source="
                       f"{b.source!r} reads a folder; pass "
                       "--config.background.dir=/path/to/it")
    if not os.path.isdir(b.dir):
      raise FileNotFoundError(f"background.dir={b.dir!r}: no such directory")
  if b.source == "generated_keywords":
    _need(b.size in cnn12_data.GENERATOR_SIZES, "background.size", b.size,
          f"want one of {cnn12_data.GENERATOR_SIZES}")
    _need(sup._is_int(b.seed) and b.seed >= 0, "background.seed", b.seed,
          "want an integer >= 0")
  _need(sup._is_real(b.max_seconds) and b.max_seconds > 0,
        "background.max_seconds", b.max_seconds, "want > 0")
  if b.source == "data" and config.data.source in (
      cnn12_data.MULTILABEL_SOURCES + ("tfds_speech_commands",)):
    raise ValueError(f"background.source='data' but data.source="
                     f"{config.data.source!r} has no background clips; "
                     "choose background.source='generated_keywords', "
                     "'wav_folder' or 'none'")


# --- Background bank ---------------------------------------------------------


def _folder_clips(folder, peak):
  paths = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                 if f.lower().endswith((".wav", ".flac")))
  if not paths:
    raise FileNotFoundError(f"{folder}: no .wav/.flac background clips")
  return [audio_io.load_clip(p, SAMPLE_RATE, peak, 1) for p in paths]


def load_background(config, workdir: str, data):
  """(float32 (K, T) zero-padded clips, int32 (K,) lengths), or None.

  Raises:
    ValueError / FileNotFoundError naming the source without clips.
  """
  b = config.background
  if b.source == "none":
    return None
  if b.source == "data":
    clips = list(getattr(data, "background", ()))
    if not clips:
      raise ValueError("background.source='data' but the training data has "
                       "no background clips (no _background_noise_ folder); "
                       "choose another background.source or 'none'")
  elif b.source == "wav_folder":
    clips = _folder_clips(b.dir, config.data.peak)
  else:
    if b.source == "generated_keywords":
      c = cnn12_data.data_config("generated_keywords", b.size)
      c.dir, c.seed = b.dir, b.seed
      root = cnn12_data.data_dir(c, workdir)
      from recon_jax.data import keywords  # pylint: disable=g-import-not-at-top
      keywords.generate_keywords(root, cnn12_data.generator_config(c))
    else:
      root = b.dir
    clips = _folder_clips(os.path.join(root, audio_folder.BACKGROUND_DIR),
                          config.data.peak)
  max_samples = int(round(b.max_seconds * SAMPLE_RATE))
  return audio_folder.pad_clips([np.asarray(x)[:max_samples] for x in clips])


# --- The step ----------------------------------------------------------------


def contrastive_loss_fn(encoder: cnn12.CNN12, projection: heads.ProjectionHead,
                        *, mesh, view_length: int, min_gap: int,
                        augment_config, tau: float, negatives: str = "global",
                        noise=None, noise_lengths=None):
  """loss_fn(params, batch, key) for `fit` (module doc).

  params: {"encoder": CNN12 params, "projection": ProjectionHead params}.
  batch: {"waveforms": (B, W), "lengths": (B,), ...} (cnn12_data.EpochBatches;
    labels, if any, are ignored).
  mesh: the mesh `fit` trains on (its 'data' axis carries the negatives).
  """
  aug = augment.check_augment_config(augment_config)
  if negatives not in losses.NEGATIVES:
    raise ValueError(f"negatives={negatives!r}: want one of "
                     f"{losses.NEGATIVES}")
  spec = P(loop.DATA_AXIS)
  sharded_nt_xent = jax.shard_map(
      functools.partial(losses.nt_xent_loss, tau=tau,
                        axis_name=loop.DATA_AXIS, negatives=negatives),
      mesh=mesh, in_specs=(spec, spec), out_specs=P())

  def loss_fn(params, batch, key):
    k_views, k_aug1, k_aug2, k_drop = jax.random.split(key, 4)
    v1, v2 = augment.contrastive_views(k_views, batch["waveforms"],
                                       view_length, min_gap,
                                       lengths=batch["lengths"])
    v1 = sup.augment_chain(k_aug1, v1, aug, noise, noise_lengths)
    v2 = sup.augment_chain(k_aug2, v2, aug, noise, noise_lengths)
    n = v1.shape[0]
    # Rows (2i, 2i + 1) are clip i's views: a device's shard of the batch
    # holds both views of its clips, and nothing moves between devices
    # before the loss gathers the projections.
    views = jnp.stack([v1, v2], axis=1).reshape(2 * n, -1)
    h = encoder.apply({"params": params["encoder"]}, views, train=True,
                      rngs={"dropout": k_drop})
    z = projection.apply({"params": params["projection"]}, h)
    z = z.reshape(n, 2, -1)
    return sharded_nt_xent(z[:, 0], z[:, 1]), {}

  return loss_fn


# --- Evaluation: held-out pairs ----------------------------------------------


def pair_metrics(encoder, projection, params, store: cnn12_data.ClipStore,
                 view_length: int, min_gap: int, tau: float, *, max_clips=1024,
                 batch_size=64, seed=0, window=None, mesh=None) -> dict:
  """NT-Xent and pair top-1 accuracy on un-augmented views of held-out clips.

  The views of clip i come from a key fixed by (seed, i), so every
  evaluation of a run sees the same pairs. pair_top1: the fraction of the
  2N views whose most similar other view is their partner (chance 1 / (2N -
  1)). A clip longer than `window` samples (default: no limit) is seen
  from its start, `window` long.
  """
  mesh = loop.make_mesh() if mesh is None else mesh
  n_dev = mesh.devices.size
  batch_size = -(-batch_size // n_dev) * n_dev
  n = min(len(store), max_clips)
  if n < 2:
    raise ValueError(f"pair metrics need at least 2 held-out clips, have {n}")
  params = sup._replicated(params, mesh)
  window = store.max_length if window is None else min(window,
                                                       store.max_length)
  keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), 10**6), n)
  views = ([], [])
  for start in range(0, n, batch_size):
    idx = np.arange(start, min(start + batch_size, n))
    waves, lengths = store.windows(idx, window)
    pad = batch_size - len(idx)
    waves = np.pad(waves, ((0, pad), (0, 0)))
    lengths = np.pad(lengths, (0, pad), constant_values=1)
    # Padding rows reuse keys (their outputs are dropped); n may be < pad.
    ks = (jnp.concatenate([keys[idx], keys[np.arange(pad) % n]]) if pad
          else keys[idx])
    a, b = jax.vmap(lambda k, w, l: augment.contrastive_views(
        k, w[None], view_length, min_gap, lengths=l[None]))(ks, waves,
                                                           lengths)
    for out, v in zip(views, (a[:, 0], b[:, 0])):
      z = sup.head_forward(encoder, projection, mesh, "projection")(
          params, loop.shard_batch({"x": np.asarray(v)}, mesh)["x"])
      out.append(np.asarray(z)[:len(idx)])
  z1, z2 = np.concatenate(views[0]), np.concatenate(views[1])
  loss = float(losses.nt_xent_loss(z1, z2, tau))
  e = np.concatenate([z1, z2])
  e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
  sim = e @ e.T
  np.fill_diagonal(sim, -np.inf)
  partner = np.concatenate([np.arange(n, 2 * n), np.arange(n)])
  top1 = float(np.mean(np.argmax(sim, axis=1) == partner))
  return {"nt_xent": loss, "pair_top1": top1,
          "pair_top1_chance": 1.0 / (2 * n - 1)}


def collapsed(pair: dict, tolerance: float = 0.01) -> bool:
  """Whether pair metrics show a collapsed representation: NT-Xent within
  `tolerance` (relative) of log(2N - 1), the loss of identical embeddings,
  and pair top-1 no better than twice chance."""
  n2 = 1.0 / pair["pair_top1_chance"]  # 2N - 1
  return bool(pair["nt_xent"] >= (1 - tolerance) * np.log(n2)
              and pair["pair_top1"] <= 2 * pair["pair_top1_chance"])


# --- Training ----------------------------------------------------------------


def contrastive_setup(config, workdir: str, data, seed: int, *,
                      mesh=None) -> sup.Setup:
  """A contrastive run's pieces (see train_contrastive); `head` is the
  projection head. The background clips are made/read here (workdir is
  where generated ones go by default)."""
  mesh = loop.make_mesh() if mesh is None else mesh
  check_config(config, mesh.devices.size)
  t, c = config.train, config.contrastive
  encoder = sup.encoder_from_config(config.model)
  projection = heads.ProjectionHead(features=c.projection_features,
                                    hidden=c.projection_hidden,
                                    variant=c.projection_variant)
  stores = {s: cnn12_data.clip_store(data, s) for s in ("train",
                                                       "validation")}
  if len(stores["validation"]) < 2:
    raise ValueError(f"the data's validation split has "
                     f"{len(stores['validation'])} clip(s); the pair metrics "
                     "need at least 2")
  train_store = stores["train"]
  window = cnn12_data.train_window(
      train_store, 1, int(round(config.data.max_window_seconds * SAMPLE_RATE)))

  epoch_batches = cnn12_data.train_batches(train_store, t.batch_size, seed,
                                           window, mesh, config.data)

  steps_per_epoch = len(epoch_batches(0))
  num_steps = t.num_epochs * steps_per_epoch
  background = load_background(config, workdir, data)
  noise, noise_lengths = background if background is not None else (None,
                                                                     None)
  model_record = {
      "kind": "cnn12_contrastive", "encoder": sup.encoder_record(encoder),
      "projection": {"features": c.projection_features,
                     "hidden": c.projection_hidden,
                     "variant": c.projection_variant},
      "sample_rate": SAMPLE_RATE}
  made_by = {
      "recipe": "contrastive", "data": data.fingerprint, "seed": seed,
      "background": (None if background is None else
                     provenance.fingerprint_arrays(background)),
      "model": model_record, "train": provenance.to_jsonable(t),
      "augment": provenance.to_jsonable(config.augment),
      "contrastive": provenance.to_jsonable(c),
      "background_settings": provenance.to_jsonable(config.background),
      "data_settings": {"max_window_seconds": config.data.max_window_seconds}}

  def init_fn(key):
    k_enc, k_proj = jax.random.split(key)
    enc = encoder.init(k_enc, jnp.zeros((1, cnn12.MIN_INPUT_LENGTH)))["params"]
    h = jnp.zeros((1, encoder.embedding_dim), jnp.float32)
    return {"encoder": enc, "projection": projection.init(k_proj, h)["params"]}

  return sup.Setup(
      encoder=encoder, head=projection, init_fn=init_fn,
      loss_fn=contrastive_loss_fn(
          encoder, projection, mesh=mesh,
          view_length=int(round(c.view_seconds * SAMPLE_RATE)),
          min_gap=int(round(c.min_gap_seconds * SAMPLE_RATE)),
          augment_config=config.augment, tau=c.tau, negatives=c.negatives,
          noise=noise, noise_lengths=noise_lengths),
      optimizer=optimizers.adam_warmup_cosine(
          t.learning_rate, t.weight_decay, t.warmup_epochs * steps_per_epoch,
          num_steps, t.weight_decay_mode),
      epoch_batches=epoch_batches, num_steps=num_steps,
      steps_per_epoch=steps_per_epoch, stores=stores, made_by=made_by,
      model_record=model_record)


def train_contrastive(config, workdir: str, data, seed: int, *,
                      mesh=None) -> dict:
  """SimCLR-trains CNN12 + projection head with `seed` in `workdir`.

  Args:
    config: a contrastive config (check_config).
    workdir: this run's folder (one seed).
    data: KeywordData or EventData (labels unused; 'train' trains,
      'validation' gives the held-out pair metrics).
    seed: the run's seed.
    mesh: the data mesh (default every device).

  Returns:
    {"validation": pair metrics, "steps": int} (also workdir/eval.json).

  Raises:
    ValueError for settings the data cannot meet; ProvenanceError when
    workdir was made by another run.
  """
  workdir = provenance.check_workdir(workdir, "workdir")
  mesh = loop.make_mesh() if mesh is None else mesh
  setup = contrastive_setup(config, workdir, data, seed, mesh=mesh)
  t, c = config.train, config.contrastive
  paths = sup.run_paths(workdir)
  what = f"the CNN12 run in {workdir}"
  remedy = "use a new --workdir, or delete that folder to retrain"
  provenance.check_record(paths[sup.MADE_BY], setup.made_by, what, remedy)
  provenance.check_or_write_record(paths[sup.MODEL_CONFIG],
                                   setup.model_record, what, remedy)

  def run_eval(params):
    return pair_metrics(
        setup.encoder, setup.head, params, setup.stores["validation"],
        int(round(c.view_seconds * SAMPLE_RATE)),
        int(round(c.min_gap_seconds * SAMPLE_RATE)), c.tau,
        max_clips=c.eval_clips, batch_size=t.eval_batch_size, seed=seed,
        window=int(round(config.data.max_window_seconds * SAMPLE_RATE)),
        mesh=mesh)

  last = {}

  def eval_fn(params, step):
    last.update(step=step, result=run_eval(params))
    return last["result"]

  state = sup.fit_setup(workdir, setup, t, seed, eval_fn, mesh)
  validation = (last["result"] if last.get("step") == setup.num_steps
                else run_eval(state.params))
  validation = {**validation, "collapsed": float(collapsed(validation))}
  if validation["collapsed"]:
    logging.warning(
        "%s: the representation collapsed: held-out NT-Xent %.4f is "
        "log(2N - 1), what identical embeddings give, and pair top-1 %.4f "
        "is at chance; its features carry nothing (positives that share no "
        "content, or a learning rate too high)", workdir,
        validation["nt_xent"], validation["pair_top1"])
  result = {"validation": validation, "steps": setup.num_steps}
  if jax.process_index() == 0:
    provenance.write_json_atomic(paths[sup.EVAL_JSON], result)
  logging.info("%s: validation %s", workdir, validation)
  return result
