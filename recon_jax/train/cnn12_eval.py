"""Evaluating CNN12 encoders, and running any CNN12 recipe over seeds.

From a saved encoder (a supervised or contrastive run's work directory):
  - linear probe, the paper's "fc-only" (`recipe='probe'`): only a new
    ClassifierHead trains; the encoder is frozen (no dropout, stop_gradient,
    zero updates);
  - full fine-tuning (`recipe='finetune'`): encoder and head train.
Both are cnn12_supervised.train_classifier started from the encoder's
checkpoint; the run's made_by.json records which checkpoint (its kind, step
and `provenance.fingerprint_arrays` of its parameters), so a rerun on
another encoder stops with a ProvenanceError.

`run_recipe(config, workdir, data)` trains config.recipe once per seed of
config.seeds (workdir/seed_<s>), and `summarize_runs` gives, per metric,
the mean and the half-width of the 95% Student-t interval over the seeds
(metrics.confidence_interval_95); both go to workdir/summary.json.
"""
import os
from typing import Any, Callable, NamedTuple

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from recon_jax import metrics as metrics_lib
from recon_jax import provenance
from recon_jax.models import cnn12
from recon_jax.models import heads
from recon_jax.train import cnn12_contrastive as con
from recon_jax.train import cnn12_supervised as sup
from recon_jax.train import loop

SUMMARY_JSON = "summary.json"
ENCODER_KINDS = ("cnn12_classifier", "cnn12_contrastive")


class Encoder(NamedTuple):
  """A saved CNN12 encoder: the module, its parameters (host arrays) and
  what identifies them (kind, step, fingerprint)."""
  model: cnn12.CNN12
  params: Any
  record: dict


def encoder_config() -> ml_collections.ConfigDict:
  """The `encoder` block of a probe / fine-tune config.

  workdir: a supervised or contrastive run of the cnn12 experiment (configs/cnn12_*.py)
    (its --workdir, holding seed_<s>/ folders, or one seed's folder).
  seed: which seed's encoder, when workdir holds several; -1 pairs each
    run with the encoder of its own seed (seed s evaluates pretraining run
    seed_<s>, so the spread over seeds includes the pretraining's).
  step: the checkpoint step (-1: the newest; any step of the kept series).
  """
  c = ml_collections.ConfigDict()
  c.workdir = ""
  c.seed = -1
  c.step = -1
  return c


def check_trained_on(run: str, data, where: str) -> None:
  """ProvenanceError unless the run in folder `run` was trained on `data`
  (its made_by.json's data fingerprint); `where` says where that data was
  read from."""
  made = provenance.read_json(os.path.join(run, sup.MADE_BY))
  if made.get("data") != data.fingerprint:
    raise provenance.ProvenanceError(
        f"{run} was trained on data {made.get('data')}, but config.data "
        f"gives {data.fingerprint} ({where}); point config.data at the set "
        "the run was trained on")


def seed_dir(workdir: str, seed: int) -> str:
  return os.path.join(workdir, f"seed_{seed}")


def encoder_dir(c, run_seed: int | None = None) -> str:
  """The folder of the encoder block `c`'s run (workdir/seed_<seed> when
  that exists, else workdir itself); c.seed -1 means seed `run_seed`."""
  if not c.workdir:
    raise ValueError("encoder.workdir is empty: pass --config.encoder.workdir="
                     "DIR, the --workdir of a cnn12_keywords/events/simclr "
                     "run of the cnn12 experiment (configs/cnn12_*.py)")
  root = os.path.abspath(c.workdir)
  if not os.path.isdir(root):
    raise FileNotFoundError(f"encoder.workdir={c.workdir!r}: no such "
                            "directory")
  seed = c.seed
  if seed == -1:
    if run_seed is None:
      raise ValueError("encoder.seed=-1 pairs each run with the encoder of "
                       "its own seed, and no run seed was given here; set "
                       "encoder.seed to the encoder's seed")
    seed = run_seed
  run = seed_dir(root, seed)
  if os.path.isdir(run):
    return run
  if os.path.exists(os.path.join(root, sup.MODEL_CONFIG)):
    return root
  paired = (" (encoder.seed=-1: each run uses the encoder of its own seed; "
            "set encoder.seed to one the encoder run has)"
            if c.seed == -1 else f" (encoder.seed={seed})")
  raise FileNotFoundError(
      f"encoder.workdir={c.workdir!r} holds neither {sup.MODEL_CONFIG} nor "
      f"seed_{seed}/{paired}: not a CNN12 training run")


def _saved_run(run_dir: str, kinds, what: str) -> tuple[str, dict]:
  """(path, contents) of a training run's model_config.json, whose kind
  must be one of `kinds`; FileNotFoundError / ValueError naming the file."""
  path = os.path.join(run_dir, sup.MODEL_CONFIG)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{run_dir}: no {sup.MODEL_CONFIG}; not a CNN12 "
                            "training run")
  saved = provenance.read_json(path)
  if saved.get("kind") not in kinds:
    raise ValueError(f"{path}: kind {saved.get('kind')!r}, not a CNN12 "
                     f"{what} (want one of {tuple(kinds)})")
  return path, saved


def _checkpoint_step(run_dir: str, step: int | None) -> int:
  """`step`; else the step the run reported on (its eval.json's
  checkpoint, e.g. the best validation one), else the newest checkpoint's;
  FileNotFoundError if none."""
  steps = loop.list_checkpoint_steps(run_dir)
  if not steps:
    raise FileNotFoundError(f"{run_dir}/{loop.CHECKPOINTS}: no checkpoint; "
                            "train it first")
  if step is not None:
    return int(step)
  path = os.path.join(run_dir, sup.EVAL_JSON)
  chosen = (provenance.read_json(path).get("checkpoint", {}).get("step")
            if os.path.exists(path) else None)
  return int(chosen) if chosen is not None else steps[-1]


def _check_shapes(params, init: Callable, message: str) -> None:
  """ValueError(message) unless params has init()'s structure, shapes and
  dtypes (init is only traced: jax.eval_shape)."""
  want = jax.tree.map(lambda s: (tuple(s.shape), np.dtype(s.dtype)),
                      jax.eval_shape(init))
  have = jax.tree.map(lambda a: (tuple(np.shape(a)), np.asarray(a).dtype),
                      params)
  if want != have:
    raise ValueError(message)


def load_encoder(run_dir: str, step: int | None = None) -> Encoder:
  """The CNN12 encoder saved by a supervised or contrastive run.

  Args:
    run_dir: one run's folder (with model_config.json and checkpoints/).
    step: a checkpoint step (None: the newest).

  Raises:
    FileNotFoundError: no such run or checkpoint (the kept steps named).
    ValueError: the folder holds no CNN12 encoder, or its checkpoint does
      not match its model_config.json.
  """
  run_dir = provenance.check_workdir(run_dir, "encoder run directory")
  path, saved = _saved_run(run_dir, ENCODER_KINDS, "encoder run")
  model = sup.encoder_from_record(saved["encoder"])
  step = _checkpoint_step(run_dir, step)
  params = loop.restore_params_at(run_dir, step)
  if "encoder" not in params:
    raise ValueError(f"{run_dir}/{loop.CHECKPOINTS}/{step} holds no "
                     "'encoder' parameters")
  params = params["encoder"]
  _check_shapes(
      params, lambda: model.init(jax.random.key(0), jnp.zeros(
          (1, cnn12.MIN_INPUT_LENGTH)))["params"],
      f"{run_dir}/{loop.CHECKPOINTS}/{step}: the encoder parameters do not "
      f"match {path} ({saved['encoder']})")
  record = {"kind": saved["kind"], "step": step,
            "fingerprint": provenance.fingerprint_arrays(params)}
  logging.info("Encoder from %s step %d (%s, fingerprint %s)", run_dir, step,
               saved["kind"], record["fingerprint"])
  return Encoder(model, params, record)


class Classifier(NamedTuple):
  """A saved CNN12 classifier (supervised, probe or fine-tune run): the
  encoder module, the head, params {"encoder", "head"} (host arrays), and
  what identifies them (kind, step, fingerprint, class_names, multilabel)."""
  encoder: cnn12.CNN12
  head: heads.ClassifierHead
  params: Any
  record: dict


def load_classifier(run_dir: str, step: int | None = None) -> Classifier:
  """The CNN12 + classifier saved by a supervised, probe or fine-tune run.

  Args:
    run_dir: one run's folder (e.g. <workdir>/seed_0).
    step: a checkpoint step (None: the newest).

  Raises:
    FileNotFoundError: no such run or checkpoint.
    ValueError: the folder holds no CNN12 classifier, or its checkpoint
      does not match its model_config.json.
  """
  run_dir = provenance.check_workdir(run_dir, "classifier run directory")
  path, saved = _saved_run(
      run_dir, ("cnn12_classifier",),
      "classifier run (a supervised, probe or fine-tune run)")
  encoder = sup.encoder_from_record(saved["encoder"])
  head = heads.ClassifierHead(saved["head"]["num_classes"],
                              relu_input=saved["head"]["relu_input"])
  step = _checkpoint_step(run_dir, step)

  def init():
    x = jnp.zeros((1, cnn12.MIN_INPUT_LENGTH))
    h = jnp.zeros((1, encoder.embedding_dim))
    return {"encoder": encoder.init(jax.random.key(0), x)["params"],
            "head": head.init(jax.random.key(0), h)["params"]}

  params = loop.restore_params_at(run_dir, step)
  params = {k: params.get(k) for k in ("encoder", "head")}
  _check_shapes(params, init, f"{run_dir}/{loop.CHECKPOINTS}/{step}: the "
                f"parameters do not match {path}")
  record = {"kind": saved["kind"], "step": step,
            "fingerprint": provenance.fingerprint_arrays(params),
            "class_names": saved["class_names"],
            "multilabel": saved["multilabel"]}
  return Classifier(encoder, head, params, record)


def check_config(config, num_devices: int | None = None) -> None:
  """Refuses any CNN12 config (every recipe) that cannot run, before work."""
  recipe = config.get("recipe")
  if recipe == "contrastive":
    con.check_config(config, num_devices)
    return
  sup.check_config(config, num_devices)
  if recipe in ("probe", "finetune"):
    e = config.encoder
    if not (sup._is_int(e.step) and e.step >= -1):
      raise ValueError(f"encoder.step={e.step!r}: want -1 (the newest) or a "
                       "checkpoint step >= 0")
    if not (sup._is_int(e.seed) and e.seed >= -1):
      raise ValueError(f"encoder.seed={e.seed!r}: want an integer >= 0, or "
                       "-1 (each run the encoder of its own seed)")
    check_encoder_matches(config)


def check_encoder_matches(config) -> None:
  """Refuses a probe/fine-tune config whose model block does not describe
  the encoder saved in config.encoder's run (read from its
  model_config.json; nothing is restored). With encoder.seed -1, every
  seed of config.seeds must have its encoder."""
  seeds = list(config.seeds) if config.encoder.seed == -1 else [None]
  for seed in seeds:
    _check_encoder_run_matches(config, encoder_dir(config.encoder, seed))


def _check_encoder_run_matches(config, run) -> None:
  _, saved = _saved_run(run, ENCODER_KINDS, "encoder run")
  want = sup.encoder_record(sup.encoder_from_config(config.model))
  for field in ("widths", "embedding_dim"):
    if saved["encoder"][field] != want[field]:
      m = config.model
      raise ValueError(
          f"the encoder in {run} has {field} {saved['encoder'][field]}, but "
          f"the config's model block describes {want[field]} "
          f"(model.width_multiplier={m.width_multiplier}, width_divisor="
          f"{m.width_divisor}, embedding_dim={m.embedding_dim}); set them "
          "to the encoder's (the same config variant as its run)")


def train_from_encoder(config, workdir: str, data, seed: int, *,
                       mesh=None) -> dict:
  """A probe (fc-only) or fine-tune run from config.encoder's checkpoint."""
  e = config.encoder
  check_encoder_matches(config)
  encoder = load_encoder(encoder_dir(e, seed), None if e.step < 0 else e.step)
  # The encoder's weights in the config's module (its dropout rate).
  encoder = encoder._replace(model=sup.encoder_from_config(config.model))
  return sup.train_classifier(config, workdir, data, seed, mesh=mesh,
                              pretrained=encoder)


def train_once(config, workdir: str, data, seed: int, *, mesh=None) -> dict:
  """config.recipe with one seed in `workdir`; its result dict."""
  if config.recipe == "contrastive":
    return con.train_contrastive(config, workdir, data, seed, mesh=mesh)
  if config.recipe == "supervised":
    return sup.train_classifier(config, workdir, data, seed, mesh=mesh)
  return train_from_encoder(config, workdir, data, seed, mesh=mesh)


def _numeric_leaves(result: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in result.items():
    name = f"{prefix}/{k}" if prefix else str(k)
    if isinstance(v, dict):
      out.update(_numeric_leaves(v, name))
    elif isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
      out[name] = float(v)
  return out


def summarize_runs(results: dict) -> dict:
  """Mean and 95% t-interval half-width of every metric over seeds.

  Args:
    results: {seed: result dict} (nested dicts of numbers, e.g.
      {"test": {"accuracy": 0.9}}).

  Returns:
    {"seeds": [...], "metrics": {"test/accuracy": {"mean", "ci95"
     (half-width; NaN for one seed), "values": per seed}}, "per_seed":
     results}.
  """
  flat = {s: _numeric_leaves(r) for s, r in results.items()}
  names = sorted(set.intersection(*(set(f) for f in flat.values())))
  summary = {}
  for name in names:
    values = [flat[s][name] for s in results]
    if not all(np.isfinite(values)):
      continue
    mean, half = metrics_lib.confidence_interval_95(values)
    summary[name] = {"mean": mean, "ci95": half, "values": values}
  return {"seeds": list(results), "metrics": summary, "per_seed": results}


def over_seeds(run_one: Callable[[int], dict], seeds) -> dict:
  """Runs run_one(seed) for every seed; summarize_runs of the results."""
  seeds = sup.check_seeds(seeds)
  return summarize_runs({s: run_one(s) for s in seeds})


def run_recipe(config, workdir: str, data, *, mesh=None) -> dict:
  """config.recipe once per seed (workdir/seed_<s>); the summary over
  seeds, also written to workdir/summary.json."""
  workdir = provenance.check_workdir(workdir, "workdir")
  mesh = loop.make_mesh() if mesh is None else mesh
  check_config(config, mesh.devices.size)
  summary = over_seeds(
      lambda s: train_once(config, seed_dir(workdir, s), data, s, mesh=mesh),
      config.seeds)
  summary["recipe"] = config.recipe
  summary["per_seed"] = {str(k): v for k, v in summary["per_seed"].items()}
  if jax.process_index() == 0:
    provenance.write_json_atomic(os.path.join(workdir, SUMMARY_JSON), summary)
  return summary


def format_summary(summary: dict) -> list[str]:
  """One line per metric: 'test/accuracy: 0.912 +- 0.011 (3 seeds)'."""
  n = len(summary["seeds"])
  lines = []
  for name, m in summary["metrics"].items():
    if name == "steps":
      continue
    half = "" if not np.isfinite(m["ci95"]) else f" +- {m['ci95']:.4f}"
    lines.append(f"{name}: {m['mean']:.4f}{half} ({n} seed"
                 f"{'s' if n > 1 else ''})")
  return lines
