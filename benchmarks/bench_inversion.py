"""Speed of backpropagation to the input: ours (JAX) vs a plain PyTorch loop.

The workload of the thesis's experiment for one layer: 48 phone-sized inputs
(201 x 16, one per class) x K = 4 random starts, E(X) = 1/2||Y_n(X) - Y*_n||^2
+ lambda/2||X||^2, a fixed number of bold-driver steps (min_bold = 0, so no
run stops early and both sides do exactly the same number of forward and
backward passes). The PyTorch side is the same network (PhoneCNN, copied
weights, same frequency convolution and layout), the same bold driver, in the
same process, as a plain eager loop over steps on the CPU.

Also: our three loop modes ('python' = jitted step driven from Python,
'while' = lax.while_loop, 'scan' = lax.scan) against each other; the fastest
on this backend is what `loop='auto'` should pick (recon_jax/inversion/
loops.py: default_loop).

Prints reconstructions/s (48 examples of K runs each) and ratios (> 1 means
ours is faster), the median of paired repeats (each repeat times the two
sides back to back, so load from other processes hits both alike).

  python benchmarks/bench_inversion.py [--layer 9] [--steps 50] [--repeats 3]
      [--json PATH]
"""
import argparse
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from recon_jax import models
from recon_jax.inversion import annealing
from recon_jax.inversion import backprop
from recon_jax.inversion import objective

SHAPE = (201, 16)


def numpy_params(model, seed=0):
  """LeCun-normal kernels, small random biases, from NumPy (no init compile)."""
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(model.init, jax.random.key(0),
                          jnp.zeros((1,) + SHAPE))["params"]

  def fill(path, leaf):
    if "kernel" in jax.tree_util.keystr(path):
      fan_in = int(np.prod(leaf.shape[:-1]))
      return rng.normal(0, fan_in**-0.5, leaf.shape).astype(np.float32)
    return rng.normal(0, 0.05, leaf.shape).astype(np.float32)
  return jax.tree_util.tree_map_with_path(fill, shapes)


def torch_network(model, params, layer):
  """forward(x (N, F, T)) -> layer `layer` of the same PhoneCNN in PyTorch."""
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  pad = 0 if model.padding == "VALID" else "same"
  weights = {}
  for spec in model.layers:
    if spec.kind in ("conv", "dense"):
      p = params[spec.name]
      k = np.asarray(p["kernel"])
      # flax conv kernel (k, Cin, Cout) -> torch (Cout, Cin, k); dense
      # (in, out) -> (out, in).
      w = k.transpose(2, 1, 0) if spec.kind == "conv" else k.T
      weights[spec.name] = (torch.tensor(np.ascontiguousarray(w)),
                            torch.tensor(np.asarray(p["bias"])))

  def forward(x):
    h = x.transpose(1, 2)  # (N, T, F): frames are channels, conv over freq
    for spec in model.layers[:layer]:
      if spec.kind == "conv":
        h = F.conv1d(h, *weights[spec.name], padding=pad)
      elif spec.kind == "relu":
        h = F.relu(h)
      elif spec.kind == "pool":
        h = F.max_pool1d(h, model.pool_window, model.pool_stride)
      else:
        if h.ndim == 3:  # flatten as flax does: (N, L, C) row-major
          h = h.transpose(1, 2).reshape(h.shape[0], -1)
        h = F.linear(h, *weights[spec.name])
    return h.transpose(1, 2) if h.ndim == 3 else h  # back to (N, L, C)
  return forward


def torch_backprop(forward, targets, x0, config, steps):
  """The bold driver as a plain PyTorch loop: runs (R, F, T), targets (R, ...)."""
  import torch  # pylint: disable=g-import-not-at-top
  x = x0.clone().requires_grad_(True)
  bold = torch.full((x.shape[0],), config.initial_bold)
  prev = torch.full((x.shape[0],), float("inf"))
  for t in range(steps):
    diff = forward(x) - targets
    energy = (0.5 * diff.pow(2).flatten(1).sum(1)
              + 0.5 * config.weight_decay * x.pow(2).flatten(1).sum(1))
    grad, = torch.autograd.grad(energy.sum(), x)
    with torch.no_grad():
      if t:
        bold = bold * torch.where(energy < prev, config.bold_increase,
                                  config.bold_decrease)
      prev = energy.detach()
      x -= (config.learning_rate * bold)[:, None, None] * grad
  return x.detach(), prev


def _wall(fn):
  t0 = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - t0


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--layer", type=int, default=9)
  parser.add_argument("--steps", type=int, default=50)
  parser.add_argument("--examples", type=int, default=48)
  parser.add_argument("--starts", type=int, default=4)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--anneal_steps", type=int, default=200)
  parser.add_argument("--padding", default="VALID", choices=("VALID", "SAME"))
  parser.add_argument("--torch_threads", type=int, default=os.cpu_count())
  common.add_json_argument(parser)
  args = parser.parse_args()

  torch = common.torch_reference(args.torch_threads)
  model = models.PhoneCNN(padding=args.padding)
  params = numpy_params(model)
  rng = np.random.default_rng(1)
  x_true = rng.normal(0, 1, (args.examples,) + SHAPE).astype(np.float32)
  targets = np.asarray(objective.layer_targets(model, params, x_true,
                                               args.layer))
  n, k = args.examples, args.starts
  # A fixed eta (the thesis's rule) on both sides: our default per-run
  # curvature scaling is a one-off cost at the start, left out here.
  config = backprop.BackpropConfig(max_steps=args.steps, num_starts=k,
                                   min_bold=0.0, learning_rate=0.01,
                                   step_scale="fixed", weight_decay=1e-3)
  x0 = np.asarray(backprop.starting_points(jax.random.key(2), n, config,
                                           SHAPE))
  runs_per_call = n * k

  # Same network: the forward passes agree.
  forward = torch_network(model, params, args.layer)
  with torch.no_grad():
    y_torch = forward(torch.tensor(x_true[:4])).numpy()
  np.testing.assert_allclose(y_torch, targets[:4], rtol=1e-3, atol=1e-4)

  t_targets = torch.tensor(np.repeat(targets, k, axis=0))
  t_x0 = torch.tensor(x0.reshape((n * k,) + SHAPE))

  def run_torch():
    return torch_backprop(forward, t_targets, t_x0, config, args.steps)

  fns = {}
  for loop in ("python", "while", "scan"):
    run = backprop.make_backprop_fn(model, args.layer,
                                    backprop.BackpropConfig(
                                        **{**config.__dict__, "loop": loop}))
    fns[loop] = (lambda run=run: run(params, jnp.asarray(targets),
                                     jnp.asarray(x0)))

  # Same computation: a few steps of ours and of PyTorch end close together.
  short = backprop.BackpropConfig(**{**config.__dict__, "max_steps": 5,
                                     "loop": "python"})
  ours5, _ = backprop.make_backprop_fn(model, args.layer, short)(
      params, jnp.asarray(targets), jnp.asarray(x0))
  theirs5, _ = torch_backprop(forward, t_targets, t_x0, config, 5)
  # (Not elementwise: where two pooled values are within rounding, the two
  # libraries can pick different maxima and route that gradient elsewhere.)
  ours5, theirs5 = np.asarray(ours5).reshape(theirs5.shape), theirs5.numpy()
  gap = np.mean(np.abs(ours5 - theirs5)) / np.mean(np.abs(theirs5))
  assert gap < 1e-2, f"ours and PyTorch disagree after 5 steps: {gap:.3g}"

  compile_s = {name: _wall(fn) for name, fn in fns.items()}  # warm-up
  _wall(run_torch)
  times = {name: [] for name in list(fns) + ["torch"]}
  for _ in range(args.repeats):
    times["torch"].append(_wall(run_torch))
    for name, fn in fns.items():
      times[name].append(_wall(fn))

  med = {name: float(np.median(v)) for name, v in times.items()}
  print(f"jax {jax.__version__} on {jax.default_backend()}, torch "
        f"{torch.__version__} ({args.torch_threads} threads), "
        f"{platform.machine()}, {os.cpu_count()} CPUs; {args.repeats} paired "
        "repeats after warm-up")
  print(f"backprop to the input, PhoneCNN {args.padding} layer {args.layer}: "
        f"{n} examples x K={k} starts, {args.steps} bold-driver steps\n")
  print("| implementation | s per call (median) | reconstructions/s | "
        "runs x steps/s | PyTorch time / this |")
  print("|---|---|---|---|---|")
  for name in ("torch", "python", "while", "scan"):
    label = "PyTorch eager loop" if name == "torch" else f"ours, loop='{name}'"
    print(f"| {label} | {med[name]:.3f} | {n / med[name]:.1f} | "
          f"{runs_per_call * args.steps / med[name]:.0f} | "
          f"{med['torch'] / med[name]:.2f} |")
  best = min(("python", "while", "scan"), key=med.get)
  print(f"\nours, loop modes: while/python time {med['while'] / med['python']:.2f}"
        f", scan/python {med['scan'] / med['python']:.2f}; fastest here: "
        f"'{best}' (loop='auto' picks '{backprop.loops.default_loop()}')")
  print("first call (compile + run), s: " + ", ".join(
      f"{k}={v:.1f}" for k, v in compile_s.items()))

  # Annealing: one forward pass per proposal, so per-step overheads weigh
  # more; which loop mode wins here?
  anneal = {}
  for loop in ("python", "scan"):
    cfg = annealing.AnnealingConfig(num_steps=args.anneal_steps, num_runs=k,
                                    loop=loop)
    run = annealing.make_annealing_fn(model, args.layer, cfg)
    keys = jax.random.split(jax.random.key(3), n * k).reshape((n, k))
    radius = jnp.full((n,), 0.05 * float(np.std(x_true)))
    anneal[loop] = (lambda run=run, radius=radius: run(
        params, jnp.asarray(targets), jnp.asarray(x0), keys, radius))
    _wall(anneal[loop])  # compile
  a_times = {loop: [] for loop in anneal}
  for _ in range(args.repeats):
    for loop, fn in anneal.items():
      a_times[loop].append(_wall(fn))
  a_med = {loop: float(np.median(v)) for loop, v in a_times.items()}
  print(f"\nannealing, same layer and batch, {args.anneal_steps} proposals: "
        + ", ".join(f"loop='{l}' {v:.3f} s ({n * k * args.anneal_steps / v:.0f}"
                    " run-steps/s)" for l, v in a_med.items())
        + f"; scan/python time {a_med['scan'] / a_med['python']:.2f}")

  case = (f"backprop to the input, layer {args.layer}, {n} x K={k}, "
          f"{args.steps} steps")
  rows = [common.result_row(case, f"loop='{name}'", "PyTorch eager loop",
                            common.ratio_stats(times, "torch", name),
                            note=f"{n / med[name]:.1f} reconstructions/s")
          for name in ("python", "while", "scan")]
  rows.append(common.result_row(
      f"annealing, layer {args.layer}, {n} x K={k}, {args.anneal_steps} "
      "proposals", "loop='scan'", "ours, loop='python'",
      common.ratio_stats(a_times, "python", "scan")))
  common.write_json(args.json, "inversion", rows, [
      f"fastest backprop loop mode here: '{best}' (loop='auto' picks "
      f"'{backprop.loops.default_loop()}')"])


if __name__ == "__main__":
  main()
