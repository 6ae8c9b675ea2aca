"""Sonification speed: every feature map of CNN12 block 5 on a 5 s clip.

Ours (`recon_jax.inversion.sonify`: all 256 maps of the block in one call,
one jitted program, maps as the batch of the convolutions, processed in
chunks) against two PyTorch CPU deconvnets with the same weights:
  (a) the per-map loop of Fig. B.2 as the authors' code runs it
      (DeconvolutionalDecoder.visualize_layer_v2): the forward pass once,
      then for each map a full-width deconvnet on the block output with the
      other maps zeroed. Timed on --loop-maps maps spread over the block
      (every map costs the same), WITHOUT its forward pass (which favours
      PyTorch);
  (b) a batched PyTorch deconvnet: the forward pass once, then the maps as
      the batch (one-hot starts), --torch-chunk maps at a time, full width.
Both PyTorch sides flush denormals, as XLA does (benchmarks/common.py). The
outputs are checked equal first (every map for (b), the looped maps for (a)).

Times are per feature map; the ratios (PyTorch time / ours) are the median
and range over paired repeats (each repeat times every side back to back,
so load from other processes hits all alike).

GFLOP/s: the full-width transposed convolutions of the deconvnet, counted
per map as
    F = sum over blocks b = 1..L of 2 * L'_b * k_b * C_in,b * C_out,b
with L'_b the length of block b's conv output (= the pre-pool length),
k_b its kernel, C_in,b / C_out,b its conv's input / output channels (about
3.6 GFLOP for block 5 on 40,000 samples). Ours executes less: block L's
transposed conv with a one-hot start is one map's kernel slice
(2 * L'_L * k_L * C_in,L); the executed count is printed too. Against this
machine's float32 matmul peak (a 2048^3 XLA matmul), measured in the same
run: best of 5 at the start, and timed inside every paired repeat (the
fraction of peak per repeat is the ratio that is reported).

  python benchmarks/bench_sonify.py [--repeats 5] [--layer 5] [--seconds 5]
      [--loop-maps 8] [--torch-chunk 32] [--chunks 4,16] [--json PATH]
  smoke run: python benchmarks/bench_sonify.py --quick
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from recon_jax import inversion  # noqa: E402
from recon_jax import models  # noqa: E402
from recon_jax.inversion import deconvnet  # noqa: E402
from recon_jax.models import cnn12  # noqa: E402

RATE = 8000


def numpy_params(model, seed=0):
  """CNN12's init drawn in NumPy (N(0, 1/fan_in) kernels), small biases."""
  shapes = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, cnn12.MIN_INPUT_LENGTH))))["params"]
  rng = np.random.default_rng(seed)

  def draw(s):
    if len(s.shape) > 1:
      fan_in = np.prod(s.shape[:-1])
      return (rng.normal(size=s.shape) / np.sqrt(fan_in)).astype(np.float32)
    return rng.uniform(0, 0.01, size=s.shape).astype(np.float32)
  return jax.tree.map(draw, shapes)


def test_clip(length, seed=1):
  """A chirp, a tone burst and noise, unit peak."""
  t = np.arange(length) / RATE
  rng = np.random.default_rng(seed)
  x = np.sin(2 * np.pi * (200 + 300 * t) * t)
  x += 0.5 * np.sin(2 * np.pi * 1200 * t) * (np.abs(t - t[-1] / 2) < 0.5)
  x += 0.1 * rng.normal(size=length)
  return (x / np.abs(x).max()).astype(np.float32)


def counted_flops(model, layer, length):
  """(F full-width per map, executed per map by ours), see the docstring."""
  full = executed = 0
  for spec in model.blocks[:layer]:
    out = length - spec.kernel + 1
    flops = 2 * out * spec.kernel * spec.in_features * spec.features
    full += flops
    executed += flops if spec.number < layer else flops // spec.features
    length = out // spec.pool if spec.pool else out
  return full, executed


def torch_deconvnet(torch, model, params, layer):
  """(forward(x (1, 1, T)), deconvolve(starts (B, C, L), record)) in
  PyTorch, the structure of the authors' DeconvolutionalDecoder."""
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  blocks = model.blocks[:layer]
  weights = [torch.tensor(np.ascontiguousarray(
      np.asarray(params[b.name]["kernel"]).transpose(2, 1, 0)))
             for b in blocks]  # (out, in, k), also ConvTranspose1d's layout
  biases = [torch.tensor(np.asarray(params[b.name]["bias"])) for b in blocks]

  def forward(x):
    h, record = x, []
    for b, w, bias in zip(blocks, weights, biases):
      h = F.relu(F.conv1d(h, w, bias))
      if b.pool:
        size = h.shape[-1]
        h, idx = F.max_pool1d(h, b.pool, b.pool, return_indices=True)
        record.append((idx, size))
      else:
        record.append(None)
    return h, record

  def deconvolve(h, record):
    for i in reversed(range(layer)):
      if record[i] is not None:
        idx, size = record[i]
        h = F.max_unpool1d(h, idx.expand(h.shape[0], -1, -1), blocks[i].pool,
                           blocks[i].pool, output_size=[size])
      h = F.relu(h)
      h = F.conv_transpose1d(h, weights[i])
    return h[:, 0]
  return forward, deconvolve


def torch_scale(torch, s, x_peak):
  peak = s.abs().amax(dim=-1, keepdim=True)
  return torch.where(peak > 0, s / torch.where(peak > 0, peak, 1) * x_peak,
                     torch.zeros_like(s))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--layer", type=int, default=5)
  parser.add_argument("--seconds", type=float, default=5.0)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--loop-maps", type=int, default=8,
                      help="maps timed in the per-map PyTorch loop (a)")
  parser.add_argument("--torch-chunk", type=int, default=32,
                      help="maps per batch in the batched PyTorch side (b)")
  parser.add_argument("--chunks", default="4,16",
                      help="extra rows: ours with these chunk_size values")
  parser.add_argument("--quick", action="store_true",
                      help="smoke run: 1 s clip, 2 looped maps, 1 repeat")
  common.add_json_argument(parser)
  args = parser.parse_args()
  if args.quick:
    args.seconds, args.loop_maps, args.repeats, args.chunks = 1.0, 2, 1, ""

  torch = common.torch_reference()
  print(common.machine_line())
  print(f"load average before: {os.getloadavg()[0]:.1f}")
  peak_best = common.matmul_peak_gflops()

  model = models.CNN12()
  params = numpy_params(model)
  length = int(round(args.seconds * RATE))
  x = test_clip(length)
  spec = model.check_block(args.layer)
  n_maps = spec.features
  full, executed = counted_flops(model, args.layer, length)
  default_chunk = deconvnet._check_chunk(  # pylint: disable=protected-access
      None, deconvnet.CNN12Deconv(model), args.layer, length, n_maps)
  jparams = jax.tree.map(jnp.asarray, params)
  xj = jnp.asarray(x)

  def ours(chunk=None):
    return inversion.sonify(model, jparams, xj, args.layer, chunk_size=chunk)

  forward, deconvolve = torch_deconvnet(torch, model, params, args.layer)
  tx = torch.tensor(x)[None, None]
  x_peak = float(np.abs(x).max())
  loop_maps = np.unique(np.linspace(0, n_maps - 1, args.loop_maps).round()
                        .astype(int))

  def torch_batched():
    with torch.no_grad():
      start, record = forward(tx)
      out = []
      for lo in range(0, n_maps, args.torch_chunk):
        maps = torch.arange(lo, min(lo + args.torch_chunk, n_maps))
        h = torch.zeros((len(maps),) + start.shape[1:])
        h[torch.arange(len(maps)), maps] = start[0, maps]
        out.append(torch_scale(torch, deconvolve(h, record), x_peak))
      return torch.cat(out)

  with torch.no_grad():
    start, record = forward(tx)

  def torch_loop():
    with torch.no_grad():
      out = []
      for m in loop_maps:
        h = torch.zeros_like(start)
        h[:, m] = start[:, m]
        out.append(torch_scale(torch, deconvolve(h, record), x_peak)[0])
      return torch.stack(out)

  # Same results first.
  s_ours = np.asarray(ours())
  s_b = torch_batched().numpy()
  s_a = torch_loop().numpy()
  assert s_ours.shape == s_b.shape == (n_maps, length), (s_ours.shape,
                                                         s_b.shape)
  np.testing.assert_allclose(s_ours, s_b, rtol=1e-4, atol=1e-4 * x_peak)
  np.testing.assert_allclose(s_ours[loop_maps], s_a, rtol=1e-4,
                             atol=1e-4 * x_peak)
  silent = int(np.sum(np.all(s_ours == 0, axis=-1)))
  print(f"outputs equal: ours vs batched PyTorch on all {n_maps} maps, vs the "
        f"per-map loop on {len(loop_maps)}; max |diff| "
        f"{np.abs(s_ours - s_b).max():.2e} (peak {x_peak:.2f}); {silent} "
        "silent maps")

  a = jnp.ones((2048, 2048), jnp.float32)
  matmul = jax.jit(lambda a: a @ a)
  fns = {"ours": ours,
         "PyTorch batched (b)": torch_batched,
         "PyTorch per-map loop (a)": torch_loop,
         "matmul 2048^3": lambda: matmul(a)}
  chunks = [int(c) for c in args.chunks.split(",") if c.strip()]
  for c in chunks:
    fns[f"ours, chunk_size={c}"] = (lambda c=c: ours(c))
  times = common.paired_times(fns, args.repeats, min_seconds=0)
  per_map = {name: np.asarray(t) / n_maps for name, t in times.items()}
  per_map["PyTorch per-map loop (a)"] = (
      np.asarray(times["PyTorch per-map loop (a)"]) / len(loop_maps))
  peak = 2 * 2048**3 / np.asarray(times["matmul 2048^3"]) / 1e9
  print(f"load average after: {os.getloadavg()[0]:.1f}\n")

  print(f"CNN12 block {args.layer}: all {n_maps} maps of a {args.seconds:g} s "
        f"clip ({length} samples at 8 kHz); ours chunk_size default = "
        f"{default_chunk}; PyTorch batched chunk {args.torch_chunk}; "
        f"{args.repeats} paired repeats")
  print(f"counted (full-width transposed convs) {full / 1e9:.3f} GFLOP per map;"
        f" executed by ours {executed / 1e9:.3f}")
  print(f"matmul peak: {peak_best:.0f} GFLOP/s best of 5 at the start, "
        f"{np.median(peak):.0f} ({peak.min():.0f}-{peak.max():.0f}) in the "
        "paired repeats\n")
  print("| implementation | ms per map (median) | PyTorch (a) time / this | "
        "PyTorch (b) time / this | counted GFLOP/s | % of matmul peak "
        "(paired) |")
  print("|---|---|---|---|---|---|")
  case = (f"CNN12 block {args.layer}, {n_maps} maps, {args.seconds:g} s clip "
          "(per map)")
  rows = []
  for name in fns:
    if name.startswith("matmul"):
      continue
    ms = 1e3 * float(np.median(per_map[name]))
    ra = common.ratio_stats(per_map, "PyTorch per-map loop (a)", name)
    rb = common.ratio_stats(per_map, "PyTorch batched (b)", name)
    rate = full / per_map[name] / 1e9
    frac = 100 * rate / peak
    print(f"| {name} | {ms:.1f} | {ra[0]:.2f} ({ra[1]:.2f}-{ra[2]:.2f}) | "
          f"{rb[0]:.2f} ({rb[1]:.2f}-{rb[2]:.2f}) | {np.median(rate):.0f} | "
          f"{np.median(frac):.0f} ({frac.min():.0f}-{frac.max():.0f}) |")
    if name.startswith("ours"):
      pct = (float(np.median(frac)), float(frac.min()), float(frac.max()))
      for label, r in (("PyTorch per-map loop (a)", ra),
                       ("PyTorch batched (b)", rb)):
        rows.append(common.result_row(
            case, name, label, r, gflops=float(np.median(rate)),
            peak_pct=pct, note=f"{ms:.1f} ms per map"))
  print(f"\nours at the executed count: "
        f"{np.median(executed / per_map['ours'] / 1e9):.0f} GFLOP/s")
  common.write_json(args.json, "sonify", rows, [
      f"matmul peak {np.median(peak):.0f} GFLOP/s ({peak.min():.0f}-"
      f"{peak.max():.0f}) in the paired repeats, {peak_best:.0f} best of 5 "
      "at the start; GFLOP/s at the counted (full-width) FLOPs"])


if __name__ == "__main__":
  main()
