"""One process of a multi-process CNN12 run, started by test_multihost.py.

Usage: python multihost_job.py WORKDIR PACKED_DIR RECIPE [RECIPE ...]
with RECON_JAX_COORDINATOR / RECON_JAX_NUM_PROCESSES / RECON_JAX_PROCESS_ID
set (recon_jax.experiments.cli.initialize_distributed) and XLA_FLAGS giving
this process its fake CPU devices. RECIPE: supervised or contrastive; each
runs the tiny config of configs/ through the streaming path into
WORKDIR/<recipe>, as `recon-jax` would.
"""
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from recon_jax.experiments import cli  # noqa: E402

CONFIGS = {"supervised": "cnn12_events", "contrastive": "cnn12_simclr"}


def recipe_config(recipe: str, packed: str, **train):
  """The tiny config of `recipe`, streaming the packed folder."""
  import importlib  # pylint: disable=g-import-not-at-top
  config = importlib.import_module(f"configs.{CONFIGS[recipe]}").get_config(
      "tiny")
  config.data.source = "packed"
  config.data.dir = packed
  config.data.in_memory_limit_gb = 0.0
  for k, v in train.items():
    config.train[k] = v
  if recipe == "contrastive":
    config.background.source = "none"
  return config


def main():
  workdir, packed, recipes = sys.argv[1], sys.argv[2], sys.argv[3:]
  cli.initialize_distributed()
  from recon_jax.experiments import registry  # pylint: disable=g-import-not-at-top
  from recon_jax.experiments import training  # pylint: disable=g-import-not-at-top
  epochs = int(os.environ.get("MULTIHOST_JOB_EPOCHS", "0"))
  for recipe in recipes:
    extra = {"num_epochs": epochs, "warmup_epochs": 1} if epochs else {}
    config = registry.without_experiment(recipe_config(recipe, packed,
                                                       **extra))
    training.cnn12(config, os.path.join(workdir, recipe))
  print("done", flush=True)


if __name__ == "__main__":
  main()
