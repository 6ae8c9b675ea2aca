"""The whole mission: both papers end to end in one work dir.

  out = mission.run(config, workdir)   # config: configs/mission.py

Stages run in order (config.stages, a subset of STAGES in any order is run
in STAGES' order), each in its own folder with its own driver:

  thesis        <workdir>/thesis             thesis.run
  keywords      <workdir>/data/keywords      datasets.keywords
  events        <workdir>/data/events        datasets.events
  supervised    <workdir>/cnn12_events       training.cnn12
  contrastive   <workdir>/cnn12_simclr       training.cnn12
  probe         <workdir>/cnn12_probe_events training.cnn12
  finetune      <workdir>/cnn12_finetune_events
  sonification  <workdir>/sonification       sonification.run_analyses
  comparison    <workdir>/comparison         comparison.run (every inversion
                method on the phone CNN and the supervised CNN12; added to
                the sonification stage's offline page)

then <workdir>/summary.md (recon_jax.report.mission_summary). The mission
sets the paths that connect them: the CNN12 stages read the generated event
set through the FSD50K reader (source 'fsd50k') and SimCLR mixes in the
keyword set's _background_noise_ through the Speech Commands reader, as they
would read real copies; the probe reads the SimCLR run; the analyses read
all runs. A stage that finished is recorded in <workdir>/stages/<name>.json
(its wired config, its printed lines, its time) and skipped on a rerun; a
stage killed half way resumes inside its own driver (checkpoints, finished
cells and analyses are kept). A rerun with another config for a finished
stage is refused, naming the fields.
"""
import copy
import json
import os
import sys
import time

from absl import logging
import tqdm

from recon_jax import provenance
from recon_jax.data import events as events_lib
from recon_jax.data import keywords as keywords_lib
from recon_jax.experiments import comparison
from recon_jax.experiments import datasets
from recon_jax.experiments import sonification
from recon_jax.experiments import thesis
from recon_jax.experiments import training
from recon_jax.report import mission_summary
from recon_jax.train import cnn12_contrastive
from recon_jax.train import cnn12_data
from recon_jax.train import cnn12_supervised

STAGES = ("thesis", "keywords", "events", "supervised", "contrastive",
          "probe", "finetune", "sonification", "comparison")
FOLDERS = {"thesis": "thesis", "keywords": "data/keywords",
           "events": "data/events", "supervised": "cnn12_events",
           "contrastive": "cnn12_simclr", "probe": "cnn12_probe_events",
           "finetune": "cnn12_finetune_events",
           "sonification": "sonification", "comparison": "comparison"}
NEEDS = {"supervised": ("events",), "contrastive": ("events", "keywords"),
         "probe": ("events", "contrastive"),
         "finetune": ("events", "contrastive"),
         "sonification": ("events", "supervised", "contrastive", "probe"),
         "comparison": ("thesis", "events", "supervised")}
DRIVERS = {"thesis": thesis.run, "keywords": datasets.keywords,
           "events": datasets.events, "supervised": training.cnn12,
           "contrastive": training.cnn12, "probe": training.cnn12,
           "finetune": training.cnn12,
           "sonification": sonification.run_analyses,
           "comparison": comparison.run}
RECORDS = "stages"
SUMMARY_MD = "summary.md"


def folder(workdir: str, stage: str) -> str:
  return os.path.join(workdir, FOLDERS[stage])


def wired(config, workdir: str) -> dict:
  """{stage: its config with the paths between stages set}."""
  out = {}
  events_dir = folder(workdir, "events")
  for stage in STAGES:
    c = copy.deepcopy(config[stage])
    c.unlock()
    if stage in ("supervised", "contrastive", "probe", "finetune"):
      c.data.source = "fsd50k"
      c.data.dir = events_dir
    if stage == "contrastive":
      c.background.source = "speech_commands"
      c.background.dir = folder(workdir, "keywords")
    if stage in ("probe", "finetune"):
      c.encoder.workdir = folder(workdir, "contrastive")
    if stage == "comparison":
      # Every method on the mission's phone CNN and supervised CNN12.
      c.mission = ""
      c.thesis = folder(workdir, "thesis")
      c.cnn12 = folder(workdir, "supervised")
      c.data = cnn12_data.data_config("fsd50k")
      c.data.dir = events_dir
      # ... added to the sonification stage's offline page.
      if ("sonification" in config.stages or
          os.path.exists(_record_path(workdir, "sonification"))):
        c.page = os.path.join(folder(workdir, "sonification"),
                              "sonification_page")
    if stage == "sonification":
      c.data = cnn12_data.data_config("fsd50k")
      c.data.dir = events_dir
      for run in ("supervised", "contrastive", "probe", "finetune"):
        c[run] = (folder(workdir, run) if run in config.stages else "")
      # The layer-importance runs cut the mission's own encoders.
      c.layer_importance.probe.unlock()
      c.layer_importance.probe.model = copy.deepcopy(config.supervised.model)
      c.layer_importance.probe.lock()
    c.lock()
    out[stage] = c
  return out


def check_config(config, workdir: str) -> dict:
  """Every stage's config checked before any work; returns wired()."""
  stages = tuple(config.stages)
  unknown = [s for s in stages if s not in STAGES]
  if unknown or not stages:
    raise ValueError(f"config.stages={stages!r}: unknown stage "
                     f"{unknown[0]!r}; want names from {STAGES}" if unknown
                     else f"config.stages is empty; want names from {STAGES}")
  for stage in stages:
    missing = [n for n in NEEDS.get(stage, ()) if n not in stages
               and not os.path.exists(_record_path(workdir, n))]
    if missing:
      raise ValueError(f"stage {stage!r} needs stage {missing[0]!r}: add it "
                       "to config.stages (or run it first in this work dir)")
  if config.supervised.model.to_dict() != config.contrastive.model.to_dict():
    raise ValueError("config.supervised.model and config.contrastive.model "
                     "differ; the analyses compare encoders of one shape")
  configs = wired(config, workdir)
  checks = {
      "thesis": thesis.validate_config,
      "keywords": keywords_lib.check_config,
      "events": events_lib.check_config,
      "supervised": cnn12_supervised.check_config,
      "contrastive": cnn12_contrastive.check_config,
      # The encoder match is checked when the stage starts (the encoder run
      # does not exist yet).
      "probe": cnn12_supervised.check_config,
      "finetune": cnn12_supervised.check_config,
      "sonification": sonification.check_config,
      "comparison": _check_comparison,
  }
  for stage in stages:
    try:
      checks[stage](_checkable(configs[stage]))
    except ValueError as e:
      raise ValueError(f"config.{stage}: {e}") from None
  return configs


def _check_comparison(config):
  """comparison.check_config without the folders (made by earlier stages)."""
  c = copy.deepcopy(config)
  c.unlock()
  c.thesis = c.cnn12 = c.data.dir = c.mission = c.page = ""
  c.data.source = "generated_events"  # The mission's events, made later.
  c.lock()
  comparison.check_config(c)


def _checkable(config):
  """`config` as it can be checked before the stages before it ran: the
  folders the mission wires in (made by earlier stages) named as the
  generated sets they will be, every other field as it is."""
  c = copy.deepcopy(config)
  c.unlock()
  if "data" in c and c.data.source in ("fsd50k", "audioset"):
    c.data.source = "generated_events"
  if "background" in c and c.background.source == "speech_commands":
    c.background.source = "generated_keywords"
  c.lock()
  return c


def _record_path(workdir, stage):
  return os.path.join(workdir, RECORDS, f"{stage}.json")


def _portable(config, workdir):
  """`config` (or any JSON-able value) as JSON, the work dir's path written
  as <workdir>, so the record does not depend on where the dir lives."""
  text = json.dumps(provenance.to_jsonable(config), sort_keys=True)
  return json.loads(text.replace(json.dumps(workdir)[1:-1], "<workdir>"))


def finished(workdir: str, stage: str, stage_config) -> dict | None:
  """The record of a finished stage made with `stage_config`, or None;
  ProvenanceError when it was finished with another config."""
  path = _record_path(workdir, stage)
  if not os.path.exists(path):
    return None
  saved = provenance.read_json(path)
  provenance.check_record(path, {**saved, "config": _portable(
      stage_config, workdir)}, what=f"stage {stage!r} in {workdir}",
                          remedy="use a new --workdir for another config")
  return saved


def run(config, workdir: str) -> dict:
  """Runs (or resumes) every stage of config.stages, then summary.md.

  Returns {"stages": {stage: record}, "summary": path, "lines": [...]}.
  """
  workdir = provenance.check_workdir(workdir)
  configs = check_config(config, workdir)
  stages = [s for s in STAGES if s in config.stages]
  records = {}
  bar = tqdm.tqdm(total=len(stages), desc="mission", unit="stage",
                  bar_format="{desc}: {n}/{total} stages |{bar}| "
                  "[{elapsed}<{remaining}] {postfix}")
  try:
    for stage in stages:
      bar.set_postfix_str(stage)
      record = finished(workdir, stage, configs[stage])
      if record is not None:
        logging.info("stage %s: finished earlier (%s); skipped", stage,
                     _record_path(workdir, stage))
        tqdm.tqdm.write(f"stage {stage}: finished earlier, skipped",
                        file=sys.stderr)
      else:
        tqdm.tqdm.write(f"stage {stage}: running in {folder(workdir, stage)}",
                        file=sys.stderr)
        start = time.time()
        out = DRIVERS[stage](configs[stage], folder(workdir, stage))
        record = {"stage": stage, "folder": FOLDERS[stage],
                  "config": _portable(configs[stage], workdir),
                  "lines": _portable(list(out.get("lines", ())), workdir),
                  "seconds": round(time.time() - start, 1)}
        provenance.write_json_atomic(_record_path(workdir, stage), record)
      records[stage] = record
      bar.update()
  finally:
    bar.close()  # Before any error line: it ends the bar's line.
  path = mission_summary.write_summary(workdir, records)
  lines = [f"{s}: {records[s]['seconds']:.0f} s, {folder(workdir, s)}"
           for s in stages]
  return {"stages": records, "summary": path,
          "lines": lines + [f"summary: {path}"]}
