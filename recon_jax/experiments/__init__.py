"""Experiment drivers: a config in, results in a work dir, resumable.

`python -m recon_jax --config=configs/<file>.py --workdir=DIR` runs the
driver the config's `experiment` field names (`registry.EXPERIMENTS`):
  mission.run             both papers end to end, then summary.md
  datasets.corpus / keywords / events    the generated data sets
  training.phone_cnn / cnn12             the networks
  thesis.run              the thesis pipeline (reconstruction.* its cells)
  sonification.run_analyses              the paper's analyses and the page
  sonify_clip.run         a user's clip through a CNN12 checkpoint
Each driver validates its whole config before any work, records what made
every file it saves (`recon_jax.provenance`) and refuses to reuse results
made from other data, another config or other networks; `cli` turns user
errors into one line.
"""
