"""CNN12 training throughput (supervised and contrastive steps) and the
compiled memory and cost of one step.

  python benchmarks/bench_cnn12.py [--batch 32] [--steps 5] [--repeats 5]
      [--width-divisor 8] [--memory-batches 32,64,128,256] [--json PATH]
  smoke run: python benchmarks/bench_cnn12.py --steps 2 --repeats 1 \
      --width 8 --memory-batches 8 --memory-width-divisor 64

One process: JAX sees 8 (fake, on CPU) devices, so the 8-device and the
1-device meshes are timed side by side against PyTorch on the CPU. Each is
the recipe's step: CNN12 (Fig. A.1 at 1/width-divisor of its widths,
dropout 0.4) with
  supervised   a Dense classifier, softmax cross-entropy over 35 classes,
               on 1 s clips (recon_jax.train.cnn12_supervised);
  contrastive  two 2.5 s views of 5.6 s clips, the projection head
               (ReLU-Dense-ReLU-Dense, L2-normalised) and NT-Xent (tau 0.1)
               over the global batch (cnn12_contrastive: the loss in
               shard_map);
and Adam with decoupled weight decay 1e-3. Augmentation is off in the timed
rows (the authors' PyTorch code augments in its data loader, not in the
step); one more row times ours with every augmentation on (crops, gain,
noise, masks, mixup / background mixing), drawn inside the step. PyTorch
flushes denormals, as XLA does (benchmarks/common.py); ratios over paired
repeats are the result, not times: the machines are noisy.

Memory: XLA's analysis of the compiled 1-device step (arguments + outputs
+ temporaries - aliased) at --memory-width-divisor (default 1: the paper's
CNN12) for --memory-batches, with the step's FLOPs from XLA's cost
analysis. It is the CPU compilation's figure; a TPU's differs in layout and
fusion but is of the same order, which is what deciding the batch per
core (16 GB on a v3) needs.
"""
import argparse
import os
import sys

if "--xla_force_host_platform_device_count" not in os.environ.get(
    "XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_force_host_platform_device_count=8")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from recon_jax.data import augment  # noqa: E402
from recon_jax.models import cnn12  # noqa: E402
from recon_jax.models import heads  # noqa: E402
from recon_jax.train import cnn12_contrastive as con  # noqa: E402
from recon_jax.train import cnn12_supervised as sup  # noqa: E402
from recon_jax.train import loop  # noqa: E402
from recon_jax.train import optimizers  # noqa: E402

RATE = 8000
CLASSES = 35
LR, WD, TAU = 1e-3, 1e-3, 0.1
CLIP = RATE  # Supervised: 1 s keyword clips, no crop.
VIEW, GAP = augment.VIEW_LENGTH, augment.VIEW_GAP
CONTRASTIVE_CLIP = 2 * (VIEW + GAP)  # 5.6 s: the views never need tiling.


def _augment(on: bool) -> ml_collections.ConfigDict:
  c = augment.augment_config()
  if not on:
    for name in ("gain_p", "noise_p", "mask_p", "mixup_p", "background_p"):
      c[name] = 0.0
  return c


def _model(divisor: int):
  widths = tuple(max(w // divisor, 1) for w in cnn12.WIDTHS)
  return cnn12.CNN12(widths=widths)


def jax_step(kind: str, divisor: int, batch_size: int, devices,
             augmented: bool = False):
  """(jitted step, state, host batch) of the recipe's step on `devices`."""
  mesh = loop.make_mesh(devices)
  encoder = _model(divisor)
  schedule_steps = 1000
  optimizer = optimizers.adam_warmup_cosine(LR, WD, 0, schedule_steps)
  rng = np.random.default_rng(0)
  if kind == "supervised":
    head = heads.ClassifierHead(CLASSES)
    loss_fn = sup.classifier_loss_fn(
        encoder, head, multilabel=False, crop_length=CLIP,
        augment_config=_augment(augmented))
    length = CLIP
    labels = rng.integers(0, CLASSES, batch_size).astype(np.int32)
  else:
    head = heads.ProjectionHead()
    noise = rng.normal(size=(2, 4 * RATE)).astype(np.float32)
    loss_fn = con.contrastive_loss_fn(
        encoder, head, mesh=mesh, view_length=VIEW, min_gap=GAP,
        augment_config=_augment(augmented), tau=TAU,
        noise=noise if augmented else None,
        noise_lengths=np.array([4 * RATE, 3 * RATE], np.int32)
        if augmented else None)
    length = CONTRASTIVE_CLIP
    labels = np.zeros(batch_size, np.int32)
  name = "head" if kind == "supervised" else "projection"

  def init_fn(key):
    k1, k2 = jax.random.split(key)
    return {"encoder": encoder.init(k1, jnp.zeros((1, cnn12.MIN_INPUT_LENGTH))
                                    )["params"],
            name: head.init(k2, jnp.zeros((1, encoder.embedding_dim)))[
                "params"]}

  x = rng.uniform(-1, 1, (batch_size, length)).astype(np.float32)
  batch = {"waveforms": x, "lengths": np.full(batch_size, length, np.int32),
           "labels": labels}
  step = loop.make_train_step(loss_fn, optimizer, jax.random.key(1), mesh)
  return step, (init_fn, optimizer, mesh), batch


def jax_runner(kind, divisor, batch_size, devices, augmented=False):
  step, (init_fn, optimizer, mesh), batch = jax_step(
      kind, divisor, batch_size, devices, augmented)
  holder = [loop.init_train_state(init_fn, optimizer, jax.random.key(0),
                                  mesh)]
  sharded = loop.shard_batch(batch, mesh)

  def run(n):
    s = holder[0]
    for _ in range(n):
      s, metrics, _ = step(s, sharded)
    jax.block_until_ready(metrics["loss"])
    holder[0] = s
  return run


def torch_runner(kind, divisor, batch_size):
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  widths = [max(w // divisor, 1) for w in cnn12.WIDTHS]

  class Encoder(nn.Module):
    """CNN12 as Fig. A.1 prints it."""

    def __init__(self):
      super().__init__()
      ins = [1] + widths[:-1]
      self.convs = nn.ModuleList([nn.Conv1d(i, o, k) for i, o, k in zip(
          ins, widths, cnn12.KERNELS)])
      self.drop = nn.Dropout(cnn12.DROPOUT_RATE)
      self.fc10 = nn.Linear(widths[-1], cnn12.EMBEDDING_DIM)

    def forward(self, x):  # (N, 1, T)
      for i, conv in enumerate(self.convs):
        x = F.relu(conv(x))
        if i < cnn12.NUM_POOLED_BLOCKS:
          x = F.max_pool1d(x, 2, 2)
      return self.fc10(self.drop(x.mean(-1)))

  encoder = Encoder()
  if kind == "supervised":
    head = nn.Linear(cnn12.EMBEDDING_DIM, CLASSES)
  else:
    head = nn.Sequential(nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 512, bias=False))
  params = list(encoder.parameters()) + list(head.parameters())
  decay = [p for p in params if p.dim() > 1]
  other = [p for p in params if p.dim() <= 1]
  opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                           {"params": other, "weight_decay": 0.0}], lr=LR)
  rng = np.random.default_rng(0)
  if kind == "supervised":
    x = torch.from_numpy(rng.uniform(-1, 1, (batch_size, 1, CLIP)).astype(
        np.float32))
    y = torch.from_numpy(rng.integers(0, CLASSES, batch_size)).long()

    def loss_fn():
      return F.cross_entropy(head(encoder(x)), y)
  else:
    v1, v2 = (torch.from_numpy(rng.uniform(-1, 1, (batch_size, 1, VIEW))
                               .astype(np.float32)) for _ in range(2))
    targets = torch.cat([torch.arange(batch_size) + batch_size,
                         torch.arange(batch_size)])

    def loss_fn():  # NT-Xent, Eq. 1, mean over the 2N anchors.
      z = F.normalize(head(encoder(torch.cat([v1, v2]))), dim=1)
      logits = z @ z.T / TAU
      logits = logits.masked_fill(torch.eye(2 * batch_size, dtype=torch.bool),
                                  float("-inf"))
      return F.cross_entropy(logits, targets)

  def run(n):
    for _ in range(n):
      opt.zero_grad()
      loss_fn().backward()
      opt.step()
  return run


def memory_row(kind, divisor, batch_size):
  """(peak bytes, GFLOP) of the compiled 1-device step, nothing run."""
  step, (init_fn, optimizer, mesh), batch = jax_step(
      kind, divisor, batch_size, jax.devices()[:1])
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  state = jax.eval_shape(lambda k: loop.init_train_state(
      init_fn, optimizer, k, mesh), jax.random.key(0))
  state = jax.tree.map(lambda s: jax.ShapeDtypeStruct(
      s.shape, s.dtype, sharding=replicated), state)
  batch = jax.tree.map(lambda a: jax.ShapeDtypeStruct(
      a.shape, a.dtype, sharding=replicated), batch)
  compiled = step.lower(state, batch).compile()
  m = compiled.memory_analysis()
  peak = (m.argument_size_in_bytes + m.output_size_in_bytes +
          m.temp_size_in_bytes - m.alias_size_in_bytes)
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return peak, float(cost.get("flops", float("nan"))) / 1e9


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--width-divisor", type=int, default=8,
                      help="timed rows: CNN12 widths / this (1: the paper's)")
  parser.add_argument("--memory-batches", default="32,64,128,256",
                      help="comma-separated batch sizes for the memory rows "
                      "('' to skip)")
  parser.add_argument("--memory-width-divisor", type=int, default=1)
  parser.add_argument("--no-torch", action="store_true")
  common.add_json_argument(parser)
  args = parser.parse_args()
  if args.batch % jax.device_count():
    raise SystemExit(f"--batch {args.batch} must divide over "
                     f"{jax.device_count()} devices")
  if not args.no_torch:
    common.torch_reference()
  print(common.machine_line())
  d = args.width_divisor
  print(f"CNN12 at 1/{d} of its widths ({_model(d).conv_widths}), batch "
        f"{args.batch}; {args.repeats} paired repeats of {args.steps} steps; "
        "Adam + decoupled decay\n")
  rows, notes = [], []
  for kind, what in (("supervised", "1 s clips, 35-class softmax CE"),
                     ("contrastive", "2 x 2.5 s views, NT-Xent")):
    runners = {}
    if not args.no_torch:
      runners["PyTorch CPU"] = torch_runner(kind, d, args.batch)
    runners["jax, 1 device"] = jax_runner(kind, d, args.batch,
                                          jax.devices()[:1])
    runners[f"jax, {jax.device_count()} devices"] = jax_runner(
        kind, d, args.batch, jax.devices())
    runners[f"jax, {jax.device_count()} devices, augmentation on"] = (
        jax_runner(kind, d, args.batch, jax.devices(), augmented=True))
    fns = {name: (lambda run=run: run(args.steps))
           for name, run in runners.items()}
    times = common.paired_times(fns, args.repeats, min_seconds=0)
    reference = "PyTorch CPU" if not args.no_torch else "jax, 1 device"
    print(f"{kind} step ({what})\n")
    print(f"| step | examples/s (median) | {reference} time / this "
          "(median) | range |")
    print("|---|---|---|---|")
    for name in fns:
      rate = args.batch * args.steps / float(np.median(times[name]))
      med, lo, hi = common.ratio_stats(times, reference, name)
      print(f"| {name} | {rate:.1f} | {med:.2f} | {lo:.2f}-{hi:.2f} |")
      if name != reference:
        rows.append(common.result_row(
            f"CNN12 {kind} step, 1/{d} widths, batch {args.batch}", name,
            reference, (med, lo, hi), note=f"{rate:.1f} examples/s"))
    print()
  batches = [int(b) for b in args.memory_batches.split(",") if b.strip()]
  if batches:
    md = args.memory_width_divisor
    print(f"Compiled one-device step at 1/{md} of CNN12's widths "
          f"({cnn12.num_params(_model(md)) / 1e6:.2f}M encoder parameters), "
          "XLA memory and cost analysis\n")
    print("| step | batch | peak memory (GB) | GFLOP per step | "
          "GFLOP per example |")
    print("|---|---|---|---|---|")
    for kind in ("supervised", "contrastive"):
      for b in batches:
        peak, gflop = memory_row(kind, md, b)
        print(f"| {kind} | {b} | {peak / 1e9:.3f} | {gflop:.2f} | "
              f"{gflop / b:.3f} |")
        notes.append(f"compiled 1-device {kind} step at 1/{md} widths, "
                     f"batch {b}: {peak / 1e9:.3f} GB, {gflop / b:.3f} GFLOP "
                     "per example")
  common.write_json(args.json, "cnn12", rows, notes)


if __name__ == "__main__":
  main()
