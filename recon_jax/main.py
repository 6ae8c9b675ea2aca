"""recon_jax's one command: an experiment per config file.

  python -m recon_jax --config=configs/<file>.py[:variant] --workdir=DIR
      [--config.<field>=<value> ...]
  recon-jax ...   (the same, installed as a console script)

The config file's `experiment` field names what runs (recon_jax/experiments/
registry.py lists them); any field can be overridden on the command line.
Work dirs are resumable: after a kill, the same command continues where it
stopped and never redoes finished work; a work dir made with another config
or other data is refused with one line naming the difference.

docs/methods.md describes both papers' methods and where every setting comes
from; the sections cited below (A0 ... B4) are its sections.
"""
import os
import sys

from absl import flags
from ml_collections import config_flags

from recon_jax.experiments import cli
from recon_jax import provenance
from recon_jax.experiments import registry

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file (configs/<file>.py[:variant]); its "
    "`experiment` field names the experiment.")
_WORKDIR = flags.DEFINE_string("workdir", None,
                               "Directory for the experiment's outputs.")
flags.mark_flags_as_required(["config", "workdir"])


def usage() -> str:
  """The --help text: how to run, then every experiment and its configs."""
  width = max(len(n) for n in registry.EXPERIMENTS)
  rows = []
  for e in registry.EXPERIMENTS.values():
    rows.append(f"  {e.name:<{width}}  {e.what}")
    rows.append(f"  {'':<{width}}    configs/{', configs/'.join(e.configs)}")
  return (__doc__ + "\nExperiments (config.experiment) and the config files "
          "that run them:\n" + "\n".join(rows) + "\n")


def _loaded_config():
  """--config's ConfigDict; one clear error when the file is missing or
  fails to load (config_flags defers that error to the first access)."""
  name = flags.FLAGS["config"].config_filename
  path = name.split(":")[0]
  if not os.path.isfile(path):
    raise FileNotFoundError(f"--config={name}: no such config file "
                            f"({os.path.abspath(path)})")
  config = _CONFIG.value
  try:
    registry.FIELD in config  # pylint: disable=pointless-statement
  except OSError as e:
    text = " ".join(str(e).split())
    raise ValueError(f"--config={name} failed to load: "
                     f"{text.split('Attempted')[-1]}") from None
  return config


def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {' '.join(argv[1:])}")
  config = _loaded_config()
  experiment = registry.experiment_of(config)
  registry.check_fields(experiment, config)
  registry.check_processes(experiment, provenance.process_count())
  result = experiment.driver()(registry.without_experiment(config),
                               _WORKDIR.value)
  for line in (result or {}).get("lines", ()):
    print(line)


def _importable_configs(argv) -> None:
  """Config files import their siblings (`from configs import thesis`):
  puts the folder holding the config file's `configs/` on sys.path, so
  the command works from any directory."""
  for arg in argv[1:]:
    if arg.startswith("--config="):
      path = os.path.abspath(arg[len("--config="):].split(":")[0])
      parent = os.path.dirname(path)
      if os.path.basename(parent) == "configs":
        sys.path.insert(0, os.path.dirname(parent))


def console_main():
  """`recon-jax` and `python -m recon_jax`."""
  sys.modules["__main__"].__doc__ = usage()
  _importable_configs(sys.argv)
  cli.run(main)
