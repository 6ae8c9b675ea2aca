"""Every inversion method on both papers' networks: methods x networks x
layers, by mxcorr and coherence (recon_jax/experiments/comparison.py).

  python -m recon_jax --config=configs/comparison.py --workdir=runs/comparison \
      --config.mission=runs/mission

reads a mission work dir (its thesis/, cnn12_events/ and data/events/, and
adds the comparison to its offline page, sonification/sonification_page/),
or set the inputs yourself:
  --config.thesis=runs/thesis           a thesis work dir (phone CNNs, the
                                        corpus it recorded)
  --config.cnn12=runs/cnn12_events      a cnn12 run folder (seed_<s>/)
  --config.data.dir=runs/.../events     the clips that CNN12 was trained on
  --config.page=runs/.../sonification_page  an offline page to add the
                                        comparison to (its table, figures
                                        and a player per cell); optional
Fields:
  networks      which of ('phone_cnn', 'cnn12')
  methods       some of ('sonify', 'backprop', 'annealing', 'decoder',
                'decoder_backprop'); sonify inverts ONE map (each example's
                most active), the others the whole layer
  layers        per network: phone CNN layers (1..9 conv/relu/pool, 10.. the
                dense layers, sonify stops before them), CNN12 blocks 1..11
  phone_network 'padded' (phone_cnn_padded/, the encoder the thesis's
                decoders invert) or 'valid' (phone_cnn/, the classifier)
  reuse_thesis_decoders  the padded phone CNN's decoders from the thesis
                work dir where it has one for the layer (else trained here)
  cnn12_seed, split, clip_seconds  which CNN12 run, which clips, how much of
                each (its loudest window)
  num_examples  examples per network (phones of distinct classes; clips)
  backprop, annealing, decoder  the methods' settings (inversion's
                dataclasses), shared; cnn12_overrides replaces some for CNN12
                (annealing on waveforms: a band of consecutive samples and a
                radius relative to the input's RMS)
  decoder_train, decoder_examples, decoder_batch_size  decoders trained here
  griffin_lim_iters  phone CNN audio; coherence_k  the top-k of coherence
  num_wav_examples, figure_example  what the report shows
Variants:
  default  a 2-core laptop at the mission's default network sizes: 3
           examples, layers 1, 6, 9 (phone CNN) and 2, 5, 8 (CNN12), 1 s
           clips, short searches and decoders (about 2-3 minutes; WAVs and a
           figure per network)
  tiny     seconds (tests)
"""
import dataclasses

import ml_collections

from recon_jax import inversion
from recon_jax.train import cnn12_data


def _from_dataclass(cls, **overrides):
  c = ml_collections.ConfigDict(dataclasses.asdict(cls()))
  c.update(overrides)
  return c


def get_config(variant: str = "default"):
  if variant not in ("default", "tiny"):
    raise ValueError(f"unknown variant {variant!r}: want 'default' or 'tiny'")
  c = ml_collections.ConfigDict()
  c.experiment = "comparison"
  c.seed = 0
  c.mission = ""
  c.thesis = ""
  c.phone_network = "padded"
  c.reuse_thesis_decoders = True
  c.cnn12 = ""
  c.cnn12_seed = 0
  c.page = ""
  c.data = cnn12_data.data_config("fsd50k")
  c.split = "test"
  c.clip_seconds = 1.0
  c.networks = ("phone_cnn", "cnn12")
  c.methods = ("sonify", "backprop", "annealing", "decoder",
               "decoder_backprop")
  c.layers = ml_collections.ConfigDict({"phone_cnn": (1, 6, 9),
                                        "cnn12": (2, 5, 8)})
  c.num_examples = 3
  c.backprop = _from_dataclass(inversion.BackpropConfig, max_steps=100,
                               num_starts=1)
  c.annealing = _from_dataclass(inversion.AnnealingConfig, num_steps=400,
                                num_runs=1)
  c.decoder = _from_dataclass(inversion.DecoderConfig, num_draws=1)
  c.cnn12_overrides = ml_collections.ConfigDict({
      "annealing": {"band_rows": 40, "radius": 0.3,
                    "radius_units": "input_rms"},
      "backprop": {"learning_rate": 0.05}})
  c.decoder_train = _from_dataclass(
      inversion.DecoderTrainConfig, stage_steps=20, finetune_steps=30,
      learning_rate=3e-3, checkpoint_every=1000, log_every=10)
  c.decoder_examples = 64
  c.decoder_batch_size = 16
  c.griffin_lim_iters = 32
  c.coherence_k = 5
  c.num_wav_examples = 1
  c.figure_example = 0
  if variant == "tiny":
    c.layers.phone_cnn = (1, 3)
    c.layers.cnn12 = (1, 2)
    c.num_examples = 2
    c.clip_seconds = 0.5
    c.backprop.max_steps = 10
    c.annealing.num_steps = 20
    c.decoder_train.stage_steps = 2
    c.decoder_train.finetune_steps = 2
    c.decoder_train.log_every = 1
    c.decoder_examples = 16
    c.decoder_batch_size = 8
    c.griffin_lim_iters = 4
  c.lock()
  return c
