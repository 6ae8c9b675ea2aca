"""Layer importance (paper Fig. 4 and Appendix B; docs/methods.md, B4).

Keep blocks 1..l of a trained CNN12, average the output of block l over
time (blocks 1-8: the pooled output, 9-11: the ReLU output, as the
authors' train_layerwise_linear_eval.py cuts at mp<l> / act<l>), and put a
Dense classifier on that C_l-d feature. Two modes:
  - 'fc_only': the truncated encoder is frozen, only the Dense trains
    (the probe recipe: stop_gradient, zero updates, no dropout);
  - 'full': the truncated encoder and the Dense train (the fine-tune
    recipe).

Nothing here trains by itself: `TruncatedCNN12` is a CNN12 whose __call__
returns that feature, and its `embedding_dim` is block l's width, so the
existing probe / fine-tune recipe (cnn12_supervised.train_classifier with a
`pretrained` encoder) trains it unchanged, with its checkpoints, metrics,
evaluation on whole clips and provenance records. `layer_importance` runs
that recipe once per (mode, layer, seed) and gives, per mode and layer, the
mean and 95% t-interval over seeds (metrics.confidence_interval_95 through
cnn12_eval.summarize_runs).

The figure's dashed lines (no layer removed) are the ordinary probe /
fine-tune runs of the whole encoder (cnn12_eval.run_recipe).
"""
import os
from typing import Sequence

import jax.numpy as jnp

from recon_jax import provenance
from recon_jax.analysis import topk
from recon_jax.models import cnn12
from recon_jax.train import cnn12_eval
from recon_jax.train import cnn12_supervised as sup
from recon_jax.train import loop

# Mode name (the paper's) -> the recipe that trains it.
MODES = {"fc_only": "probe", "full": "finetune"}
SPLITS = ("validation", "test")
METRICS = ("accuracy", "mAP", "mAUC", "d_prime")


class TruncatedCNN12(cnn12.CNN12):
  """CNN12 cut after block `block`: waveforms -> (N, C_block) features.

  The feature is the mean over time of block `block`'s output (the
  CNN12Trace output: pooled for blocks 1-8). Fields as CNN12, plus
  block: the last block kept, 1..11.
  embedding_dim is set to the width of block `block` (the feature's size,
  what a classifier head is built for), whatever is passed; there is no
  fc10 and no dropout (dropout_rate is unused).

  Parameters: CNN12's tree restricted to conv1..conv<block>
  (`truncate_params` of a CNN12's parameters). `apply(..., block=b)` with
  b <= block returns the CNN12Trace of blocks 1..b, as CNN12 does.
  """
  block: int = cnn12.NUM_BLOCKS

  def __post_init__(self):
    super().__post_init__()
    number = self.check_block(self.block).number
    object.__setattr__(self, "block", number)
    object.__setattr__(self, "embedding_dim", self.conv_widths[number - 1])

  def __call__(self, x, *, train: bool = False, block: int | None = None):
    """(N, T) or (N, T, 1) waveforms -> (N, C) features, or the trace of
    blocks 1..`block` (block <= self.block)."""
    if block is not None:
      number = self.check_block(block).number
      if number > self.block:
        raise ValueError(f"block {number} is cut off: this TruncatedCNN12 "
                         f"keeps blocks 1..{self.block}")
      return super().__call__(x, train=train, block=number)
    h = super().__call__(x, train=train, block=self.block).output
    return jnp.mean(h, axis=-2, dtype=jnp.float32).astype(h.dtype)


def truncate(encoder: cnn12.CNN12, block: int) -> TruncatedCNN12:
  """`encoder` (a CNN12) cut after `block`: same widths and dtype."""
  if isinstance(encoder, TruncatedCNN12):
    raise ValueError("truncate wants a whole CNN12, got a TruncatedCNN12")
  return TruncatedCNN12(widths=encoder.conv_widths,
                        dropout_rate=encoder.dropout_rate,
                        dtype=encoder.dtype, block=block)


def truncate_params(params, block: int) -> dict:
  """A CNN12's parameters restricted to conv1..conv<block> (no copy)."""
  if not 1 <= block <= cnn12.NUM_BLOCKS:
    raise ValueError(f"block {block!r} does not exist: CNN12 has blocks "
                     f"1..{cnn12.NUM_BLOCKS}")
  names = [f"conv{b}" for b in range(1, block + 1)]
  missing = [n for n in names if n not in params]
  if missing:
    raise ValueError(f"the encoder parameters lack {missing} (have "
                     f"{sorted(params)})")
  return {n: params[n] for n in names}


def _check_modes(modes) -> tuple[str, ...]:
  if isinstance(modes, str):
    modes = (modes,)
  if not modes or any(m not in MODES for m in modes) or len(set(modes)) != len(
      modes):
    raise ValueError(f"modes must be distinct names of {tuple(MODES)}, got "
                     f"{modes!r}")
  return tuple(modes)


def _load_encoder(config, encoder, num_devices) -> cnn12_eval.Encoder:
  """The encoder to cut: `encoder`, or the checkpoint config.encoder names;
  checked against config.model."""
  c = config.copy_and_resolve_references()
  c.recipe = "probe"
  if encoder is None:
    cnn12_eval.check_config(c, num_devices)  # Reads only model_config.json.
    e = c.encoder
    # One encoder is cut for every seed (encoder.seed -1: config.seeds[0]'s).
    encoder = cnn12_eval.load_encoder(
        cnn12_eval.encoder_dir(e, config.seeds[0]),
        None if e.step < 0 else e.step)
  else:
    sup.check_config(c, num_devices)
  if isinstance(encoder.model, TruncatedCNN12):
    raise ValueError("layer_importance wants a whole CNN12 encoder, got a "
                     "TruncatedCNN12")
  model = sup.encoder_from_config(config.model)
  if encoder.model.conv_widths != model.conv_widths:
    raise ValueError(f"the encoder has widths {encoder.model.conv_widths}, "
                     f"but the config's model block describes "
                     f"{model.conv_widths}")
  # The encoder's weights in the config's module (as train_from_encoder).
  return encoder._replace(model=model)


def run_dir(workdir: str, mode: str, layer: int) -> str:
  """Where the seeds of one (mode, layer) run: workdir/<mode>/block_<ll>."""
  return os.path.join(workdir, mode, f"block_{layer:02d}")


def layer_importance(config, workdir: str, data, layers: Sequence[int], *,
                     encoder: cnn12_eval.Encoder | None = None,
                     modes: Sequence[str] = tuple(MODES),
                     metric: str | None = None, mesh=None) -> dict:
  """Trains a classifier on every truncation, per mode; metric per layer.

  Args:
    config: a probe or fine-tune config (configs/cnn12_probe.py,
      cnn12_finetune.py); its recipe is set per mode, its seeds, data,
      train, augment and model blocks are used as they are.
    workdir: the folder under which each run keeps its checkpoints and
      records: workdir/<mode>/block_<ll>/seed_<s> (train_classifier's
      files; a rerun resumes or returns the finished result, and a run made
      by another encoder, data or config is refused). Nothing else is
      written: the returned summary is the caller's to save.
    data: KeywordData or EventData, as for train_classifier.
    layers: block numbers 1..11 to cut after.
    encoder: a cnn12_eval.Encoder (module, params, record) to cut; None:
      the checkpoint named by config.encoder (workdir, seed, step).
    modes: any of 'fc_only' (probe) and 'full' (fine-tune).
    metric: the metric the curves follow, a summary name such as
      'validation/accuracy'; None: validation accuracy (multi-class) or
      validation mAP (multi-label), what Fig. 4 plots.
    mesh: the data mesh (default every device).

  Returns:
    {"metric": name, "layers": [...], "modes": [...],
     "mean": {mode: [per layer]}, "ci95": {mode: [per layer]} (half-width
     of the 95% t-interval; NaN for one seed), "values": {mode: [per layer
     [per seed]]},
     "summaries": {mode: {layer: cnn12_eval.summarize_runs output, every
     metric of every seed}}, "run_dirs": {mode: {layer: folder}},
     "encoder": the encoder's record (kind, step, fingerprint)}.
  """
  workdir = provenance.check_workdir(workdir, "workdir")
  mesh = loop.make_mesh() if mesh is None else mesh
  modes = _check_modes(modes)
  if metric is not None and (
      not isinstance(metric, str) or metric.partition("/")[0] not in SPLITS
      or metric.partition("/")[2] not in METRICS):
    raise ValueError(f"metric must be '<split>/<name>' with split in {SPLITS}"
                     f" and name in {METRICS}, got {metric!r}")
  layers = topk.check_layers(cnn12.CNN12(), layers)
  encoder = _load_encoder(config, encoder, mesh.devices.size)
  summaries, dirs = {}, {}
  for mode in modes:
    c = config.copy_and_resolve_references()
    c.recipe = MODES[mode]
    summaries[mode], dirs[mode] = {}, {}
    for layer in layers:
      pretrained = cnn12_eval.Encoder(
          truncate(encoder.model, layer),
          truncate_params(encoder.params, layer), encoder.record)
      folder = dirs[mode][layer] = run_dir(workdir, mode, layer)

      def run_one(seed, c=c, pretrained=pretrained, folder=folder):
        return sup.train_classifier(c, cnn12_eval.seed_dir(folder, seed),
                                    data, seed, mesh=mesh,
                                    pretrained=pretrained)

      summaries[mode][layer] = cnn12_eval.over_seeds(run_one, config.seeds)
  first = summaries[modes[0]][layers[0]]["metrics"]
  if metric is None:
    metric = ("validation/accuracy" if "validation/accuracy" in first
              else "validation/mAP")
  if metric not in first:
    raise ValueError(f"metric {metric!r} is not among the runs' metrics "
                     f"{sorted(first)}")

  def curve(mode, field):
    # NaN where a run's metric was undefined (summarize_runs leaves it out).
    return [summaries[mode][l]["metrics"].get(metric, {}).get(
        field, float("nan")) for l in layers]

  return {
      "metric": metric, "layers": list(layers), "modes": list(modes),
      "mean": {m: curve(m, "mean") for m in modes},
      "ci95": {m: curve(m, "ci95") for m in modes},
      "values": {m: [summaries[m][l]["metrics"].get(metric, {}).get(
          "values", []) for l in layers] for m in modes},
      "summaries": summaries, "run_dirs": dirs, "encoder": encoder.record,
  }
