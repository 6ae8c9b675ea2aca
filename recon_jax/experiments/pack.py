"""The `pack` experiment (configs/pack.py): a data source -> a packed folder.

  run(config, workdir)  packs config.source into workdir (resumable) and
      prints each split's clips, hours, shards, skipped and missing clips.
"""
import multiprocessing
import time

from recon_jax import checks
from recon_jax import provenance
from recon_jax.data import pack as pack_lib
from recon_jax.train import cnn12_data


def check_config(config) -> None:
  """Every field, before any work."""
  cnn12_data.check_data_config(config.source, "source")
  if config.source.source == "packed":
    raise ValueError("source.source='packed': that folder is packed "
                     "already; train on it with --config.data.source=packed")
  pack_lib.pack_config_fields(config.sample_rate, config.source.peak,
                              config.encoding, config.records_per_shard, 0,
                              config.source.skip_bad)
  checks.integer(config.num_workers, "num_workers (0: every core)", lo=0)


def run(config, workdir: str) -> dict:
  workdir = provenance.check_workdir(workdir)
  check_config(config)
  c = config.source
  workers = config.num_workers or multiprocessing.cpu_count()
  start = time.time()
  kwargs = dict(sample_rate=config.sample_rate, peak=c.peak,
                encoding=config.encoding,
                records_per_shard=config.records_per_shard,
                skip_bad=c.skip_bad, num_workers=workers)
  if c.source == "tfds_speech_commands":
    data = cnn12_data.load_data(c, workdir)
    manifest = pack_lib.pack_arrays("tfds_speech_commands", data, workdir,
                                    **kwargs)
  else:
    root = cnn12_data.data_dir(c, workdir)
    cnn12_data.generate(c, root)
    manifest = pack_lib.pack(cnn12_data.listing(c, root), workdir, **kwargs)
  lines = []
  for split, info in manifest["splits"].items():
    hours = info["samples"] / manifest["settings"]["sample_rate"] / 3600
    lines.append(f"{split}: {info['clips']} clips ({hours:.2f} h) in "
                 f"{len(info['shards'])} shard(s); {info['skipped']} skipped "
                 f"as bad, {info['missing']} listed but missing")
  lines.append(f"packed {manifest['source']['kind']} into {workdir} "
               f"(fingerprint {manifest['fingerprint']}) in "
               f"{time.time() - start:.1f} s; train on it with "
               f"--config.data.source=packed --config.data.dir={workdir}")
  return {"manifest": manifest, "lines": lines}
