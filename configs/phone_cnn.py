"""Phone CNN on the TIMIT-layout corpus (docs/methods.md, A2): the full run.

  python -m recon_jax --config=configs/phone_cnn.py \
      --workdir=runs/phone_cnn
  --config=configs/phone_cnn.py:padded trains the padded (decoder) encoder.
  --config.corpus.timit_dir=/path/to/TIMIT reads a real TIMIT copy.
"""
import ml_collections

from recon_jax.data import prepare


def get_config(variant: str = "valid"):
  if variant not in ("valid", "padded"):
    raise ValueError(f"variant must be 'valid' or 'padded', got {variant!r}")
  c = ml_collections.ConfigDict()
  c.experiment = "phone_cnn"
  c.seed = 0
  c.corpus = prepare.corpus_settings("default")

  c.model = ml_collections.ConfigDict()
  c.model.conv_features = (32, 64, 64)
  c.model.conv_kernels = (7, 5, 3)
  c.model.pool_window = 5
  c.model.pool_stride = 2
  c.model.dense_features = (512, 256, 128)
  c.model.num_classes = 48
  c.model.padding = "VALID" if variant == "valid" else "SAME"
  c.model.dropout_rate = 0.5

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 128
  c.train.per_class_train = 500
  c.train.per_class_test = 200
  c.train.learning_rate = 0.01
  c.train.l2 = 5e-4
  c.train.num_epochs = 40
  c.train.eval_every_epochs = 5
  c.train.checkpoint_every = 500
  c.train.keep_checkpoints = 3
  c.train.log_every = 50
  # Locked: a config file (or flag) that sets a field that does not exist,
  # e.g. corpus.timitdir, fails instead of being silently ignored.
  c.lock()
  return c
