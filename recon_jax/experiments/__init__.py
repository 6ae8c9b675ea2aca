"""Experiment drivers: a config in, results in a work dir, resumable.

Each driver validates its whole config before any work, records what made
every file it saves (`recon_jax.provenance`) and refuses to reuse results
made from other data, another config or other networks.
  thesis.run(config, workdir)               the thesis pipeline (SPEC A)
  reconstruction.run_reconstruction_experiment(...)   its method x layer cells
"""
