"""The thesis pipeline in seconds (tests): tiny corpus, tiny nets, few steps."""
from configs import phone_cnn_tiny
from configs import thesis
from recon_jax.data import prepare


def get_config():
  c = thesis.get_config()
  c.corpus = prepare.corpus_settings("tiny")
  c.classifier = thesis.network(phone_cnn_tiny, "valid")
  c.encoder = thesis.network(phone_cnn_tiny, "padded")
  r = c.reconstruction
  r.layers = (1, 3, 12)
  r.num_chirps = 4
  r.backprop.max_steps = 20
  r.backprop.num_starts = 2
  r.annealing.num_steps = 40
  r.annealing.num_runs = 2
  r.decoder.num_draws = 2
  r.decoder_train.stage_steps = 4
  r.decoder_train.finetune_steps = 4
  r.decoder_train.checkpoint_every = 4
  r.decoder_train.log_every = 2
  r.decoder_batch_size = 32
  r.mangled_check_layer = 9
  r.griffin_lim_iters = 5
  r.num_wav_examples = 1
  return c
