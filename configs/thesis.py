"""The whole thesis experiment (docs/methods.md, A): corpus -> phone CNNs ->
decoders -> reconstructions by four methods from layers 1, 3, 6, 9, 12 ->
report.

  python -m recon_jax --config=configs/thesis.py --workdir=runs/thesis

Every stage resumes after a kill. Point it at a real TIMIT copy with
--config.corpus.timit_dir=/path/to/TIMIT (the folder holding TRAIN and TEST).
"""
import dataclasses

import ml_collections

from configs import phone_cnn
from recon_jax import inversion
from recon_jax.data import prepare


def _from_dataclass(cls, **overrides):
  c = ml_collections.ConfigDict(dataclasses.asdict(cls()))
  c.update(overrides)
  return c


def network(phone_cnn_config, variant: str) -> ml_collections.ConfigDict:
  """A phone CNN config's model and train blocks (the run owns corpus, seed)."""
  net = phone_cnn_config.get_config(variant)
  with net.unlocked():
    del net["corpus"]
    del net["seed"]
    del net["experiment"]
  return net


def get_config():
  c = ml_collections.ConfigDict()
  c.experiment = "thesis"
  # The run's seed: network init, dropout, epochs, decoders and every
  # reconstruction draw follow it (--config.seed=3). The corpus has its own
  # (corpus.generator.seed), so runs with several seeds share one corpus.
  c.seed = 0
  c.corpus = prepare.corpus_settings("default")

  # The classifier (docs/methods.md, A2) and the padded encoder the
  # decoders decode.
  c.classifier = network(phone_cnn, "valid")
  c.encoder = network(phone_cnn, "padded")

  r = c.reconstruction = ml_collections.ConfigDict()
  r.seed = c.get_ref("seed")
  r.layers = (1, 3, 6, 9, 12)
  r.methods = ("annealing", "backprop", "decoder", "decoder_backprop")
  r.search_network = "valid"  # annealing and backprop invert the classifier.
  r.num_chirps = ml_collections.config_dict.placeholder(int)  # None: 1/class
  r.griffin_lim_iters = 100
  r.backprop = _from_dataclass(inversion.BackpropConfig)
  r.annealing = _from_dataclass(inversion.AnnealingConfig)
  r.decoder = _from_dataclass(inversion.DecoderConfig)
  r.decoder_train = _from_dataclass(inversion.DecoderTrainConfig,
                                    seed=c.get_ref("seed"))
  r.decoder_batch_size = 128
  r.mangled_check_layer = 9  # 0 skips the switch-vs-blind leak check.
  r.figure_example = 0  # which phone (class index) the per-phone figures show
  r.figure_method = "decoder_backprop"
  r.num_wav_examples = 4
  # Locked: a derived config file that sets a misspelt field (e.g.
  # corpus.timitdir) fails instead of silently running something else.
  c.lock()
  return c
