"""Every experiment recon_jax runs, by the name a config gives it.

A config file names its experiment in `config.experiment`; `python -m
recon_jax --config=configs/<file>.py --workdir=DIR` (or `recon-jax ...`)
looks the name up here and calls its driver as driver(config, workdir)
with the `experiment` field taken out (so records and fingerprints
describe the work, not how it was launched). Drivers return a dict whose
"lines" are printed.
"""
import copy
import dataclasses
import functools
import importlib

import ml_collections

FIELD = "experiment"


@dataclasses.dataclass(frozen=True)
class Experiment:
  name: str
  module: str  # recon_jax.experiments.<module>
  function: str
  what: str  # One line for --help.
  configs: tuple[str, ...]  # Config files (under configs/) that run it.
  analyses: tuple[str, ...] = ()  # Sonification analyses: which to run.
  # Runs on several JAX processes (each reads its own rows, process 0
  # writes); any other experiment refuses to start on more than one.
  multihost: bool = False

  def driver(self):
    """driver(config, workdir) -> dict with "lines" to print."""
    module = importlib.import_module(f"recon_jax.experiments.{self.module}")
    fn = getattr(module, self.function)
    if self.analyses:
      return functools.partial(fn, analyses=self.analyses)
    return fn


def _analysis(name, what):
  return Experiment(name, "sonification", "run_analyses", what,
                    (f"sonification.py:{name}", f"sonification.py:tiny,{name}"),
                    analyses=(name,))


EXPERIMENTS = {e.name: e for e in (
    Experiment("mission", "mission", "run",
               "both papers end to end: every stage below, then summary.md",
               ("mission.py", "mission.py:paper", "mission.py:tiny")),
    Experiment("corpus", "datasets", "corpus",
               "a TIMIT-layout phone corpus spoken by espeak-ng "
               "(docs/methods.md, A0)",
               ("make_corpus.py",)),
    Experiment("keywords", "datasets", "keywords",
               "a Speech Commands-layout keyword set (docs/methods.md, B1b)",
               ("make_keywords.py",)),
    Experiment("events", "datasets", "events",
               "an FSD50K-layout sound event set (docs/methods.md, B1b)",
               ("make_events.py",)),
    Experiment("audioset", "datasets", "audioset",
               "an AudioSet-layout set: segment CSVs, 10 s clips, some "
               "listed but missing (packed and streamed for training)",
               ("make_audioset.py", "make_audioset.py:tiny",
                "make_audioset.py:stream")),
    Experiment("phone_cnn", "training", "phone_cnn",
               "train and evaluate the thesis's phone CNN "
               "(docs/methods.md, A2)",
               ("phone_cnn.py", "phone_cnn.py:padded", "phone_cnn_tiny.py")),
    Experiment("thesis", "thesis", "run",
               "the thesis: corpus, phone CNNs, reconstruction by four "
               "methods x layers, figures and tables (docs/methods.md, A)",
               ("thesis.py", "thesis_quick.py", "thesis_tiny.py")),
    Experiment("cnn12", "training", "cnn12",
               "train CNN12: supervised, SimCLR, linear probe or fine-tune "
               "(docs/methods.md, B1, B2)",
               ("cnn12_keywords.py", "cnn12_events.py", "cnn12_simclr.py",
                "cnn12_probe.py", "cnn12_finetune.py"), multihost=True),
    Experiment("pack", "pack", "run",
               "pack any CNN12 data source into sharded ArrayRecord files "
               "that training streams per host", ("pack.py",
                                                  "pack.py:tiny")),
    Experiment("sonification", "sonification", "run_analyses",
               "every sonification analysis below and the offline page "
               "(docs/methods.md, B3, B4)",
               ("sonification.py", "sonification.py:tiny")),
    _analysis("topk", "the top-k most activating clips per feature map"),
    _analysis("residual_test",
              "Fig. 6: classifiers on x minus its sonification"),
    _analysis("coherence",
              "Fig. 7: mean top-5 coherence of x and its sonification"),
    _analysis("active_maps",
              "Sec. 3.3: deep maps active for some clip, contrastive vs "
              "supervised"),
    _analysis("feature_evolution",
              "Fig. 5: random maps sonified at every kept checkpoint"),
    _analysis("layer_importance",
              "Fig. 4: probes and fine-tuning on encoders cut at a block"),
    _analysis("sonification_page",
              "the offline page: WAVs and spectrograms to look and listen"),
    Experiment("sonify_clip", "sonify_clip", "run",
               "sonify feature maps of your own clip with a CNN12 checkpoint "
               "(a run folder or a PyTorch .pt state dict)",
               ("sonify_clip.py",)),
    Experiment("comparison", "comparison", "run",
               "every inversion method (sonify, backprop, annealing, "
               "decoders) x both networks x layers, by mxcorr and coherence",
               ("comparison.py", "comparison.py:tiny")),
)}


def experiment_of(config) -> Experiment:
  """The Experiment a config names; ValueError naming the choices."""
  names = ", ".join(EXPERIMENTS)
  if FIELD not in config:
    raise ValueError(f"the config names no experiment: set config.{FIELD} "
                     f"to one of {names}")
  name = config[FIELD]
  if name not in EXPERIMENTS:
    raise ValueError(f"unknown experiment {name!r} (config.{FIELD}); have "
                     f"{names}")
  return EXPERIMENTS[name]


def check_fields(experiment: Experiment, config) -> None:
  """Refuses a config whose `experiment` was switched to one whose config
  files have top-level fields this config lacks (the driver would fail
  deep inside). Skipped when the repository's configs/ is not importable
  (a config file kept elsewhere)."""
  spec = experiment.configs[0]
  module, _, variant = spec.partition(":")
  try:
    reference = importlib.import_module(
        f"configs.{module[:-3]}").get_config(*([variant] if variant else []))
  except ImportError:
    return
  missing = sorted(set(reference) - set(config) - {FIELD})
  if missing:
    raise ValueError(
        f"config.{FIELD}={experiment.name!r}, but this config lacks the "
        f"fields {experiment.name}'s configs have: {', '.join(missing[:6])}"
        f"{' ...' if len(missing) > 6 else ''}; run configs/"
        f"{module} instead of switching config.{FIELD}")


def check_processes(experiment: Experiment, process_count: int) -> None:
  """Refuses, before any work, an experiment that runs on one process
  when this program is one of several JAX processes."""
  if process_count > 1 and not experiment.multihost:
    several = ", ".join(e.name for e in EXPERIMENTS.values() if e.multihost)
    raise ValueError(
        f"experiment {experiment.name!r} runs on one process, but this run "
        f"has {process_count} JAX processes (a multi-host launch); run it on "
        f"one host without RECON_JAX_DISTRIBUTED / RECON_JAX_COORDINATOR. "
        f"Multi-host experiments: {several}")


def without_experiment(config) -> ml_collections.ConfigDict:
  """A locked copy of `config` without its top-level `experiment` field."""
  c = copy.deepcopy(config)
  c.unlock()
  if FIELD in c:
    del c[FIELD]
  c.lock()
  return c


def named(config, name: str) -> ml_collections.ConfigDict:
  """`config` (a get_config() result) with config.experiment = name."""
  config.unlock()
  config[FIELD] = name
  config.lock()
  return config
