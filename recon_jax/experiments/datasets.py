"""The generated data sets as experiments (docs/methods.md, A0, B1b): corpus,
keywords, events. Each is written into <workdir>.partial and renamed to
<workdir> when complete, so a killed run never leaves a set that looks complete;
the same command again restarts it cleanly, and on a finished set made with the
same config does nothing (another config is an error naming the differing
fields).

  corpus(config, workdir)    TIMIT layout, spoken by espeak-ng
                             (read it with recon_jax.data.load_phone_data)
  keywords(config, workdir)  Speech Commands v2 layout, 35 words + noise
                             (recon_jax.data.audio_folder.load_speech_commands)
  events(config, workdir)    FSD50K layout, 14 procedural event classes
                             (recon_jax.data.audio_folder.load_fsd50k)
  audioset(config, workdir)  AudioSet layout (segment CSVs, 10 s clips)
                             (recon_jax.data.audioset.list_audioset)
"""
import time

from recon_jax import provenance
from recon_jax.data import audioset as audioset_lib
from recon_jax.data import corpus as corpus_lib
from recon_jax.data import events as events_lib
from recon_jax.data import keywords as keywords_lib
from recon_jax.data import prepare


def _rarest(counts: dict) -> str:
  name = min(counts, key=counts.get)
  return f"fewest: {counts[name]} of {name}"


def _finish(workdir, what, summary, lines, start):
  if summary is None:
    return {"workdir": workdir, "made": False,
            "lines": [f"{workdir} already holds the complete {what} of this "
                      "config; nothing to do"]}
  return {"workdir": workdir, "made": True, "summary": summary,
          "lines": lines + [f"wrote {workdir} in {time.time() - start:.1f} s"]}


def corpus(config, workdir: str) -> dict:
  """The offline TIMIT-layout corpus (configs/make_corpus.py)."""
  workdir = provenance.check_workdir(workdir)
  corpus_lib.check_config(config)  # Before any work.
  start = time.time()
  summary = prepare.generate_corpus(workdir, config)
  lines = [] if summary is None else [
      f"{split}: {s['speakers']} speakers, {s['utterances']} SX/SI "
      f"utterances, {s['phones']} phones (48 classes; "
      f"{_rarest(s['class_counts'])})" for split, s in summary.items()]
  return _finish(workdir, "corpus", summary, lines, start)


def keywords(config, workdir: str) -> dict:
  """The Speech Commands-layout keyword set (configs/make_keywords.py)."""
  workdir = provenance.check_workdir(workdir)
  keywords_lib.check_config(config)
  start = time.time()
  summary = keywords_lib.generate_keywords(workdir, config)
  lines = [] if summary is None else [
      f"{split}: {summary[split]['speakers']} speakers, "
      f"{summary[split]['clips']} clips ({summary['words']} words)"
      for split in keywords_lib.SPLITS] + [
          f"background: {', '.join(summary['background'])}"]
  return _finish(workdir, "keyword data set", summary, lines, start)


def events(config, workdir: str) -> dict:
  """The FSD50K-layout sound event set (configs/make_events.py)."""
  workdir = provenance.check_workdir(workdir)
  events_lib.check_config(config)
  start = time.time()
  summary = events_lib.generate_events(workdir, config)
  lines = [] if summary is None else [
      f"{split}: {summary[split]['clips']} clips, {summary[split]['events']} "
      f"events ({summary['classes']} classes; "
      f"{_rarest(summary[split]['class_counts'])})"
      for split in events_lib.SPLITS]
  return _finish(workdir, "event data set", summary, lines, start)


def audioset(config, workdir: str) -> dict:
  """The AudioSet-layout set (configs/make_audioset.py)."""
  return audioset_lib.generate_from_config(config, workdir)
