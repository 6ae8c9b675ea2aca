"""Training throughput of the phone CNN step: 8 devices vs 1 vs PyTorch.

  python benchmarks/bench_train.py [--batch 128] [--steps 30] [--repeats 7]
      [--json PATH]

One process: JAX sees 8 (fake, on CPU) devices, so the 8-device and the
1-device meshes are timed side by side; the PyTorch reference is the same
network (conv 7/5/3 x 32/64/64 over frequency with the 16 frames as
channels, max-pool 5/2, dense 512/256/128/48, dropout 0.5 before each dense
layer), the same AdaGrad + L2 step and the same batch, on the CPU. Prints
examples/s and ratios: each repeat runs the three back to back (paired), and
the median and range of the ratios over repeats are reported. Ratios, not
times, are the result: the machines are noisy. PyTorch flushes denormals, as
XLA does (benchmarks/common.py).
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
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from recon_jax import models  # noqa: E402
from recon_jax import train  # noqa: E402
from recon_jax.train import classification  # noqa: E402

LR, L2 = 0.01, 5e-4


def jax_runner(batch, devices):
  mesh = train.make_mesh(devices)
  model = models.PhoneCNN()
  optimizer = classification.adagrad_with_l2(LR, L2)
  init_fn = lambda k: model.init(k, jnp.zeros((1, 201, 16)))["params"]
  state = train.init_train_state(init_fn, optimizer, jax.random.key(0), mesh)
  step = train.make_train_step(classification.softmax_classifier_loss(model),
                               optimizer, jax.random.key(1), mesh)
  sharded = train.shard_batch(batch, mesh)
  holder = [state]

  def run(n):
    s = holder[0]
    for _ in range(n):
      s, metrics, _ = step(s, sharded)
    jax.block_until_ready(metrics["loss"])
    holder[0] = s
  return run


def torch_runner(batch):
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)

  class Net(nn.Module):

    def __init__(self):
      super().__init__()
      self.convs = nn.ModuleList([nn.Conv1d(16, 32, 7), nn.Conv1d(32, 64, 5),
                                  nn.Conv1d(64, 64, 3)])
      self.pool = nn.MaxPool1d(5, 2)
      self.fcs = nn.ModuleList([nn.Linear(19 * 64, 512), nn.Linear(512, 256),
                                nn.Linear(256, 128), nn.Linear(128, 48)])
      self.drop = nn.Dropout(0.5)

    def forward(self, x):  # x (N, 201, 16): frames are the channels
      h = x.transpose(1, 2)
      for conv in self.convs:
        h = self.pool(torch.relu(conv(h)))
      h = h.transpose(1, 2).flatten(1)
      for i, fc in enumerate(self.fcs):
        h = fc(self.drop(h))
        if i < len(self.fcs) - 1:
          h = torch.relu(h)
      return h

  net = Net()
  decay = [p for n, p in net.named_parameters() if n.endswith("weight")]
  other = [p for n, p in net.named_parameters() if not n.endswith("weight")]
  opt = torch.optim.Adagrad([{"params": decay, "weight_decay": L2},
                             {"params": other, "weight_decay": 0.0}], lr=LR,
                            eps=1e-10)
  x = torch.from_numpy(batch["inputs"])
  y = torch.from_numpy(batch["labels"]).long()
  loss_fn = nn.CrossEntropyLoss()

  def run(n):
    for _ in range(n):
      opt.zero_grad()
      loss = loss_fn(net(x), y)
      loss.backward()
      opt.step()
  return run


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--steps", type=int, default=30)
  parser.add_argument("--repeats", type=int, default=7)
  common.add_json_argument(parser)
  args = parser.parse_args()
  common.torch_reference()
  rng = np.random.default_rng(0)
  batch = {"inputs": rng.normal(size=(args.batch, 201, 16)).astype(np.float32),
           "labels": rng.integers(0, 48, args.batch).astype(np.int32)}
  runners = {
      "PyTorch CPU": torch_runner(batch),
      "jax, 1 device": jax_runner(batch, jax.devices()[:1]),
      f"jax, {jax.device_count()} devices": jax_runner(batch, jax.devices()),
  }
  fns = {name: (lambda run=run: run(args.steps))
         for name, run in runners.items()}
  times = common.paired_times(fns, args.repeats, min_seconds=0)
  print(common.machine_line())
  print(f"phone CNN training step, batch {args.batch}; {args.repeats} paired "
        f"repeats of {args.steps} steps each\n")
  print("| step | examples/s (median) | PyTorch time / this (median) | "
        "range |")
  print("|---|---|---|---|")
  rows = []
  for name in fns:
    rate = args.batch * args.steps / float(np.median(times[name]))
    med, lo, hi = common.ratio_stats(times, "PyTorch CPU", name)
    print(f"| {name} | {rate:.0f} | {med:.2f} | {lo:.2f}-{hi:.2f} |")
    if name != "PyTorch CPU":
      rows.append(common.result_row(
          f"phone CNN training step, batch {args.batch}", name,
          "PyTorch CPU", (med, lo, hi),
          note=f"{rate:.0f} examples/s"))
  common.write_json(args.json, "train", rows)


if __name__ == "__main__":
  main()
