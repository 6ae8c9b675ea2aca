"""Runs a generator's jobs over worker processes, with a progress bar.

The generators drive espeak-ng, whose state is global and not thread safe:
one process per worker, started by spawn (not fork) so that a parent's JAX
threads stay out of the children.
"""
import concurrent.futures
import multiprocessing
from typing import Callable, Sequence

import tqdm


def map_jobs(fn: Callable, jobs: Sequence, num_workers: int,
             desc: str) -> list:
  """[fn(job) for job in jobs], in order, on `num_workers` processes (in
  this process when 1), showing a tqdm bar `desc` with its ETA."""
  bar = tqdm.tqdm(total=len(jobs), desc=desc, unit="job", leave=False)
  try:
    if num_workers <= 1:
      out = []
      for job in jobs:
        out.append(fn(job))
        bar.update()
      return out
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(num_workers,
                                                mp_context=ctx) as pool:
      futures = [pool.submit(fn, job) for job in jobs]
      for f in concurrent.futures.as_completed(futures):
        f.result()  # A worker's error surfaces here, not after the rest.
        bar.update()
      return [f.result() for f in futures]
  finally:
    bar.close()
