"""The thesis experiment scaled to minutes on a 2-core laptop (README).

Same pipeline and methods as configs/thesis.py; fewer training epochs,
shorter searches and decoder training, K = 2 averaged runs.
"""
from configs import thesis


def get_config():
  c = thesis.get_config()
  c.classifier.train.num_epochs = 8
  c.encoder.train.num_epochs = 8
  r = c.reconstruction
  r.backprop.max_steps = 300
  r.backprop.num_starts = 2
  r.annealing.num_steps = 1500
  r.annealing.num_runs = 2
  r.decoder.num_draws = 2
  r.decoder_train.stage_steps = 150
  r.decoder_train.finetune_steps = 150
  r.griffin_lim_iters = 60
  r.num_wav_examples = 2
  return c
