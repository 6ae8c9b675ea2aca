"""A tiny phone CNN run (seconds): tiny corpus, narrow net, few steps."""
from configs import phone_cnn
from recon_jax.data import prepare


def get_config(variant: str = "valid"):
  c = phone_cnn.get_config(variant)
  c.corpus = prepare.corpus_settings("tiny")
  c.model.conv_features = (8, 8, 8)
  c.model.dense_features = (32, 32, 32)
  c.train.per_class_train = 16
  c.train.per_class_test = 8
  c.train.batch_size = 64
  c.train.num_epochs = 2
  c.train.eval_every_epochs = 1
  c.train.checkpoint_every = 10
  c.train.log_every = 5
  return c
