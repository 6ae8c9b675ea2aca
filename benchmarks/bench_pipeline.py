"""Streaming input (recon_jax.data.pack + recon_jax.data.pipeline): is a
training run's memory bounded when the data grow, how many clips/s does the
streaming path deliver per host core, and how many host cores would the
paper's SimCLR input need on a TPU v3-8.

  python benchmarks/bench_pipeline.py [--clips 200] [--eval-clips 16]
      [--train-batch 40] [--batch 64] [--repeats 3] [--peak-tflops 420]
      [--utilisation 0.4] [--keep DIR] [--json PATH]
  smoke run: python benchmarks/bench_pipeline.py --quick

Data: N and 10N synthetic 10-s 8 kHz clips (noise bursts and tones, 1-3
of 6 classes each, multi-hot), written as 16-bit WAVs into a Listing and
packed with recon_jax.data.pack.pack (2 workers): the 1x set holds the
first N training clips of the 10x set; both share the same small
validation and test splits (--eval-clips each). The 10x set is also packed
as FLAC for the throughput part.

1. Memory bounded. A real training run (`python -m recon_jax
   --config=configs/cnn12_events.py:tiny`, 1/64 widths, 0.5 s crops, on 8
   fake CPU devices) as a subprocess, on the packed 1x set for 10 epochs and
   on the 10x set for 1 epoch, so both run N / train-batch x 10 identical-
   shape steps; data.in_memory_limit_gb=0 (stream) in both, and the 10x set
   once more with in_memory_limit_gb=100 (read into memory) for contrast.
   Peak RSS from os.wait4's rusage of each child (ru_maxrss). Bounded means
   the 10x streaming peak <= the 1x peak + max(10 %, 200 MB). Evaluation
   (validation and test, at the end only) reads its splits whole, clip by
   clip in batches, and holds their (N, C) labels and logits: the eval
   splits are kept small (as real ones are next to the training split).
2. Input throughput. In this process, batches (--batch clips, each a 10-s
   window: read + decode + window, float32) of the 10x set, --epochs
   consecutive epochs per case: the in-memory path (clips.EpochBatches over
   the set read into a ClipStore, built in the calling thread as `fit`
   does) and the streaming path (pipeline.StreamingEpoch over the same
   plan: Grain read threads, or worker processes) for int16 and FLAC
   shards. The shards were just written, so they are read from the page
   cache (a local-disk best case; a network file system adds latency, which
   read-ahead hides only if cores are left). Timed from batch --skip to the
   end, once the read-ahead filled during start-up is used up; the start-up
   (time to the first batch, incl. spawning worker processes; training pays
   it once per epoch) is given apart. Clips/s of wall time, CPU seconds
   used by this process and its worker processes (psutil), and clips per
   CPU second, "clips/s per core", which the load of other jobs on this
   shared machine disturbs less than wall time. Repeats are interleaved;
   the streaming / in-memory ratio is taken per repeat.
3. What the paper's SimCLR consumes: global batch 2048 clips, two 2.5 s
   views per clip cut inside the step from each clip's 10-s window. The
   compiled full-width CNN12 contrastive step's FLOPs per clip come from
   XLA's cost analysis (benchmarks/bench_cnn12.memory_row, one CPU device,
   batch 8); the v3-8's step time assumes --peak-tflops (420 TFLOP/s bf16
   per v3-8 host by default, Google's board figure) at --utilisation
   (default 40 %); the clips/s that step consumes divided by the measured
   clips per core-second gives the host cores the input needs (a v3-8 host
   has 96 vCPUs). A core here is one vCPU of this VM.
"""
import argparse
import datetime
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

if "--xla_force_host_platform_device_count" not in os.environ.get(
    "XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_force_host_platform_device_count=8")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from benchmarks import common  # noqa: E402
from recon_jax.data import audio_io  # noqa: E402
from recon_jax.data import clips  # noqa: E402
from recon_jax.data import listing as listing_lib  # noqa: E402
from recon_jax.data import pack as pack_lib  # noqa: E402
from recon_jax.data import pipeline  # noqa: E402

RATE = 8000
CLIP_SECONDS = 10.0
CLIP = int(RATE * CLIP_SECONDS)
CLASSES = ("tone_250", "tone_500", "tone_1k", "tone_2k", "burst_lo",
           "burst_hi")
MB = 2**20
IN_MEMORY = "in-memory ClipStore (EpochBatches)"

# --- Synthetic data -----------------------------------------------------------


def synth_clip(rng, labels) -> np.ndarray:
  """A 10-s clip: weak background noise plus, per label, a tone or a band
  of noise bursts in random segments."""
  t = np.arange(CLIP) / RATE
  x = 0.02 * rng.standard_normal(CLIP)
  for k in labels:
    start = int(rng.integers(0, CLIP // 2))
    stop = int(min(CLIP, start + rng.integers(RATE, CLIP // 2)))
    seg = np.zeros(CLIP)
    name = CLASSES[k]
    if name.startswith("tone"):
      f = {"tone_250": 250, "tone_500": 500, "tone_1k": 1000,
           "tone_2k": 2000}[name] * (1 + 0.02 * rng.standard_normal())
      seg[start:stop] = 0.5 * np.sin(2 * np.pi * f * t[start:stop])
    else:
      noise = rng.standard_normal(stop - start)
      if name == "burst_lo":  # crude low-pass: a running mean
        noise = np.convolve(noise, np.ones(8) / 8, mode="same") * 2
      else:  # crude high-pass: a first difference
        noise = np.diff(noise, prepend=0.0) / 2
      gate = (np.sin(2 * np.pi * 3 * t[start:stop]) > 0).astype(float)
      seg[start:stop] = 0.4 * noise * gate
    x += seg
  return (x / np.max(np.abs(x)) * 0.9).astype(np.float32)


def write_clips(folder, split, count, seed) -> list:
  """`count` WAVs under folder/split (reused when present) -> ClipEntry."""
  rng = np.random.default_rng(seed)
  os.makedirs(os.path.join(folder, split), exist_ok=True)
  entries = []
  for i in range(count):
    labels = tuple(sorted(int(k) for k in rng.choice(
        len(CLASSES), int(rng.integers(1, 4)), replace=False)))
    path = os.path.join(folder, split, f"{i:06d}.wav")
    clip_rng = np.random.default_rng([seed, i])
    if not os.path.exists(path):
      audio_io.write_wav(path + ".partial", synth_clip(clip_rng, labels),
                         RATE)
      os.replace(path + ".partial", path)
    entries.append(listing_lib.ClipEntry(path, f"{split}/{i:06d}", labels))
  return entries


def make_listings(root, n, eval_clips):
  """(1x Listing, 10x Listing): 10n training clips, the first n of them in
  the 1x set; the same eval_clips validation and test clips in both."""
  wavs = os.path.join(root, "wavs")
  train = write_clips(wavs, "train", 10 * n, seed=1)
  evals = {s: write_clips(wavs, s, eval_clips, seed=2 + k)
           for k, s in enumerate(("validation", "test"))}

  def listing(entries, tag):
    return listing_lib.Listing(
        kind="synthetic_10s", class_names=CLASSES, multilabel=True,
        splits={"train": tuple(entries), **{s: tuple(v)
                                            for s, v in evals.items()}},
        settings={"set": tag})
  return listing(train[:n], "1x"), listing(train, "10x")


# --- 1. Peak RSS of a real training run ---------------------------------------


def training_command(workdir, packed, epochs, limit_gb, batch, read_threads):
  return [sys.executable, "-m", "recon_jax",
          "--config=configs/cnn12_events.py:tiny", f"--workdir={workdir}",
          "--config.data.source=packed", f"--config.data.dir={packed}",
          f"--config.data.in_memory_limit_gb={limit_gb}",
          f"--config.data.read_threads={read_threads}",
          f"--config.train.num_epochs={epochs}",
          "--config.train.warmup_epochs=0",
          f"--config.train.batch_size={batch}",
          "--config.train.eval_every_epochs=0",
          "--config.train.checkpoint_every=100000",
          "--config.train.log_every=10"]


def run_training(cmd, log_path) -> dict:
  """Runs cmd (cwd: the repository) and returns its peak RSS (this child's
  rusage from wait4, incl. any children it waited for), wall seconds and
  the steps its log reports."""
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=8")
  t0 = time.perf_counter()
  with open(log_path, "w") as log:
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    # Sample the RSS too, to see whether it climbs during training.
    samples, stop = [], threading.Event()

    def sample():
      p = psutil.Process(proc.pid)
      while not stop.is_set():
        try:
          samples.append((time.perf_counter() - t0, p.memory_info().rss))
        except psutil.Error:
          return
        stop.wait(0.25)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    stop.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
  wall = time.perf_counter() - t0
  text = open(log_path).read()
  if proc.returncode:
    raise SystemExit(f"training run failed ({proc.returncode}): "
                     f"{' '.join(cmd)}\n--- {log_path} (tail) ---\n"
                     f"{text[-4000:]}")
  steps = None
  for line in text.splitlines():
    if "step " in line and "steps/s" in line:
      word = line.split("step ", 1)[1].split()[0]
      steps = int(word.split("/")[1])
  return {"peak_rss": usage.ru_maxrss * 1024, "wall": wall, "steps": steps,
          "samples": samples}


def rss_profile(samples) -> str:
  """RSS (MB) sampled at 25/50/75/100 % of the run's wall time."""
  samples = [(t, rss) for t, rss in samples if rss > 0]  # not the zombie
  if not samples:
    return ""
  t_end = samples[-1][0]
  out = []
  for q in (0.25, 0.5, 0.75, 1.0):
    r = [rss for t, rss in samples if t <= q * t_end][-1]
    out.append(f"{r / MB:.0f}")
  return "/".join(out)


# --- 2. Input throughput ------------------------------------------------------


def _cpu_seconds(proc) -> float:
  """CPU seconds of this process (all its threads; getrusage, microsecond
  resolution) and of its live descendants (worker processes; psutil)."""
  own = resource.getrusage(resource.RUSAGE_SELF)
  total = own.ru_utime + own.ru_stime
  for p in proc.children(recursive=True):
    try:
      c = p.cpu_times()
      total += c.user + c.system
    except psutil.Error:
      pass
  return total


class Epochs:
  """Consecutive epochs of clips.EpochBatches as one sequence: a plan long
  enough for a steady-state rate (StreamingEpoch takes any such plan;
  training starts one Grain iterator per epoch, whose start-up is timed
  apart)."""

  def __init__(self, store, batch, window, epochs):
    self.plans = [clips.EpochBatches(store, batch, 0, e, window)
                  for e in epochs]
    self.per_epoch = len(self.plans[0])

  def __len__(self):
    return self.per_epoch * len(self.plans)

  def __getitem__(self, i):
    if not 0 <= i < len(self):
      raise IndexError(i)
    return self.plans[i // self.per_epoch][i % self.per_epoch]


def time_batches(batches, skip) -> dict:
  """Iterates every batch of `batches`: the time to the first batch (start-
  up), and wall and CPU seconds from batch `skip` on (the read-ahead
  buffered during start-up is used up by then)."""
  me = psutil.Process()
  t0 = time.perf_counter()
  first = batches[0]
  startup = time.perf_counter() - t0
  t1 = c1 = None
  count = 0
  for i in range(1, len(batches)):
    if i == skip:
      t1, c1 = time.perf_counter(), _cpu_seconds(me)
    b = batches[i]
    if i >= skip:
      count += len(b["lengths"])
  t2, c2 = time.perf_counter(), _cpu_seconds(me)
  del first
  return {"startup": startup, "wall": t2 - t1, "cpu": c2 - c1,
          "clips": count}


def throughput(stores, batch, repeats, prefetch, epochs, skip) -> dict:
  """{case: [time_batches result per repeat]}: cases interleaved per
  repeat; every case of a repeat reads the same batches (epochs of the
  plan chosen by the repeat)."""
  window = CLIP
  memory = stores["int16"].to_memory()
  cases = {IN_MEMORY: lambda es: Epochs(memory, batch, window, es)}
  for enc in ("int16", "flac"):
    for threads, workers in ((1, 0), (2, 0), (1, 2)):
      how = (f"{workers} worker processes x {threads} read thread"
             if workers else f"{threads} read thread" + "s" * (threads > 1))
      cases[f"stream {enc}, {how}"] = (
          lambda es, s=stores[enc], t=threads, w=workers:
          pipeline.StreamingEpoch(Epochs(s, batch, window, es), t, prefetch,
                                  w))
  results = {name: [] for name in cases}
  for r in range(repeats):
    es = range(r * epochs, (r + 1) * epochs)
    for name, make in cases.items():
      batches = make(es)
      results[name].append(time_batches(batches, skip))
      del batches
  return results


# --- 3. The paper's SimCLR step ---------------------------------------------


def contrastive_gflop_per_clip(batch=8) -> float:
  """XLA's cost analysis of the compiled full-width CNN12 contrastive step
  (2 x 2.5 s views per clip), one CPU device, GFLOP per clip."""
  from benchmarks import bench_cnn12  # pylint: disable=g-import-not-at-top
  _, gflop = bench_cnn12.memory_row("contrastive", 1, batch)
  return gflop / batch


# --- main ---------------------------------------------------------------------


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--clips", type=int, default=200,
                      help="N: training clips of the 1x set (10x: 10N)")
  parser.add_argument("--eval-clips", type=int, default=16,
                      help="validation and test clips each (both sets)")
  parser.add_argument("--train-batch", type=int, default=40,
                      help="the training runs' global batch (N and 10N "
                      "divisible by it, so 10 epochs of 1x = 1 of 10x)")
  parser.add_argument("--batch", type=int, default=64,
                      help="throughput: clips per batch")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--epochs", type=int, default=4,
                      help="throughput: epochs of the 10x set per case")
  parser.add_argument("--skip", type=int, default=16,
                      help="throughput: batches before the timed part")
  parser.add_argument("--prefetch", type=int, default=4,
                      help="throughput: Grain prefetch_batches")
  parser.add_argument("--records-per-shard", type=int, default=256)
  parser.add_argument("--peak-tflops", type=float, default=420.0,
                      help="a TPU v3-8 host's bf16 peak, TFLOP/s")
  parser.add_argument("--utilisation", type=float, default=0.4)
  parser.add_argument("--global-batch", type=int, default=2048)
  parser.add_argument("--host-vcpus", type=int, default=96)
  parser.add_argument("--keep", default="", metavar="DIR",
                      help="build the sets in DIR and keep them (default: "
                      "a temporary folder, removed at the end)")
  parser.add_argument("--quick", action="store_true",
                      help="smoke run: N=24, 4 eval clips, batch 8, 1 "
                      "repeat (numbers not to be quoted)")
  common.add_json_argument(parser)
  args = parser.parse_args()
  if args.quick:
    args.clips, args.eval_clips, args.train_batch = 24, 4, 8
    args.batch, args.repeats, args.epochs = 16, 1, 2
  if args.clips % args.train_batch:
    raise SystemExit(f"--clips {args.clips} must be a multiple of "
                     f"--train-batch {args.train_batch}")
  root = args.keep or tempfile.mkdtemp(prefix="bench_pipeline_")
  os.makedirs(root, exist_ok=True)
  try:
    run(args, root)
  finally:
    if not args.keep:
      shutil.rmtree(root, ignore_errors=True)


def run(args, root):
  n = args.clips
  print(f"# benchmarks/bench_pipeline.py: "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
  print(common.machine_line().replace("jax", "jax (this process)", 1))
  print(f"load average before: {os.getloadavg()}")
  t0 = time.perf_counter()
  one, ten = make_listings(root, n, args.eval_clips)
  t_wav = time.perf_counter() - t0
  workers = max(1, min(2, os.cpu_count() or 1))
  packs = {}
  t0 = time.perf_counter()
  for tag, source, enc in (("1x", one, "int16"), ("10x", ten, "int16"),
                           ("10x", ten, "flac")):
    out = os.path.join(root, f"packed_{tag}_{enc}")
    pack_lib.pack(source, out, encoding=enc,
                  records_per_shard=args.records_per_shard,
                  num_workers=workers)
    packs[(tag, enc)] = out
  t_pack = time.perf_counter() - t0

  def disk_mb(folder):
    return sum(os.path.getsize(os.path.join(folder, f))
               for f in os.listdir(folder) if f.endswith(".array_record")
               ) / MB
  print(f"\nsynthetic sets: {n} (1x) and {10 * n} (10x) training clips of "
        f"{CLIP_SECONDS:g} s at {RATE} Hz, {args.eval_clips} validation + "
        f"{args.eval_clips} test clips in each; {len(CLASSES)} classes, 1-3 "
        f"per clip. WAVs written in {t_wav:.0f} s, 3 packs ({workers} "
        f"workers, {args.records_per_shard} records per shard) in "
        f"{t_pack:.0f} s.")
  print("| set | train clips | train samples as float32 (MB) | shards on "
        "disk (MB) |")
  print("|---|---|---|---|")
  for (tag, enc), folder in packs.items():
    data = pipeline.open_packed(folder)
    print(f"| {tag} {enc} | {len(data.split('train'))} | "
          f"{data.split('train').nbytes / MB:.0f} | {disk_mb(folder):.0f} |")

  # 1. Memory.
  epochs_1x = 10
  steps = epochs_1x * (n // args.train_batch)
  runs = [("1x, streamed", packs[("1x", "int16")], epochs_1x, 0),
          ("10x, streamed", packs[("10x", "int16")], 1, 0),
          ("10x, in memory", packs[("10x", "int16")], 1, 100)]
  print(f"\n## 1. Peak RSS of a training run\n\n`python -m recon_jax "
        f"--config=configs/cnn12_events.py:tiny` (1/64 widths, 0.5 s crops, "
        f"8 fake CPU devices), global batch {args.train_batch}, {steps} steps "
        "each (1x: 10 epochs, 10x: 1 epoch), evaluation of validation and "
        "test at the end only, read_threads=4 (the default); peak RSS from "
        "wait4 (ru_maxrss); RSS sampled at 25/50/75/100 % of the wall time.\n")
  mem = {}
  for name, folder, epochs, limit in runs:
    workdir = os.path.join(root, "run_" + name.replace(", ", "_").replace(
        " ", "_"))
    shutil.rmtree(workdir, ignore_errors=True)  # a fresh run every time
    cmd = training_command(workdir, folder, epochs, limit, args.train_batch,
                           4)
    r = run_training(cmd, workdir + ".log")
    if r["steps"] != steps:
      raise SystemExit(f"{name}: the run's log reports {r['steps']} steps, "
                       f"want {steps}; see {workdir}.log")
    mem[name] = r
  print("| run | data.in_memory_limit_gb | steps | peak RSS (MB) | RSS at "
        "25/50/75/100 % (MB) | wall (s) |")
  print("|---|---|---|---|---|---|")
  for name, folder, epochs, limit in runs:
    r = mem[name]
    print(f"| {name} | {limit} | {r['steps']} | {r['peak_rss'] / MB:.0f} | "
          f"{rss_profile(r['samples'])} | {r['wall']:.0f} |")
  base = mem["1x, streamed"]["peak_rss"]
  big = mem["10x, streamed"]["peak_rss"]
  allowed = max(0.10 * base, 200 * MB)
  bounded = big <= base + allowed
  print(f"\n10x streamed - 1x streamed: {(big - base) / MB:+.0f} MB "
        f"({100 * (big / base - 1):+.1f} %); allowed +{allowed / MB:.0f} MB "
        f"(max of 10 % and 200 MB): {'BOUNDED' if bounded else 'NOT BOUNDED'}."
        f" In memory - streamed (10x): "
        f"{(mem['10x, in memory']['peak_rss'] - big) / MB:+.0f} MB (the 10x "
        f"training split is {10 * n * CLIP * 4 / MB:.0f} MB as float32).")

  # 2. Throughput.
  stores = {enc: pipeline.open_packed(packs[("10x", enc)]).split("train")
            for enc in ("int16", "flac")}
  per_epoch = len(stores["int16"]) // args.batch
  total = per_epoch * args.epochs
  print(f"\n## 2. Input throughput\n\n{args.epochs} consecutive epochs of "
        f"the 10x set per case ({total} batches of {args.batch} 10-s windows, "
        f"float32, one Grain iterator), timed from batch {args.skip} to the "
        f"end ({(total - args.skip) * args.batch} clips); 'first batch': the "
        f"iterator's start-up, paid once per epoch in training; "
        f"prefetch_batches={args.prefetch}; {args.repeats} interleaved "
        "repeats, medians (ratio range over repeats); CPU: this process + "
        "its worker processes (psutil); shards in the page cache.\n")
  res = throughput(stores, args.batch, args.repeats, args.prefetch,
                   args.epochs, args.skip)
  ref = IN_MEMORY

  def rates(name):
    w = np.array([x["clips"] / x["wall"] for x in res[name]])
    c = np.array([x["clips"] / max(x["cpu"], 1e-9) for x in res[name]])
    busy = np.array([x["cpu"] / x["wall"] for x in res[name]])
    start = np.array([x["startup"] for x in res[name]])
    return w, c, busy, start
  ref_w, ref_c, _, _ = rates(ref)
  print("| input | clips/s (wall) | cores busy | clips/s per core (clips "
        "per CPU s) | streaming / in-memory clips/s (wall) | same, per core "
        "| first batch (s) |")
  print("|---|---|---|---|---|---|---|")
  per_core = {}
  rows = []
  for name in res:
    w, c, busy, start = rates(name)
    per_core[name] = float(np.median(c))
    rw, rc = w / ref_w, c / ref_c
    print(f"| {name} | {np.median(w):.0f} | {np.median(busy):.2f} | "
          f"{np.median(c):.0f} | {np.median(rw):.2f} ({rw.min():.2f}-"
          f"{rw.max():.2f}) | {np.median(rc):.2f} ({rc.min():.2f}-"
          f"{rc.max():.2f}) | {np.median(start):.2f} |")
    if name != ref:
      # result_row's ratio: time(against) / time(ours) = ours' rate / ref's.
      rows.append(common.result_row(
          f"{args.epochs} epochs of {args.batch} x 10-s batches, 10x set",
          name, ref,
          (float(np.median(rw)), float(rw.min()), float(rw.max())),
          note=f"{np.median(w):.0f} clips/s, {np.median(c):.0f} per core"))

  # 3. SimCLR need.
  gflop = contrastive_gflop_per_clip()
  g = args.global_batch
  step_flop = g * gflop * 1e9
  sustained = args.peak_tflops * 1e12 * args.utilisation
  step_s = step_flop / sustained
  need = g / step_s
  h2d = g * CLIP * 4 / step_s / 1e9
  print(f"\n## 3. What the paper's SimCLR input needs on a TPU v3-8\n\n"
        f"Full-width CNN12 contrastive step (2 x 2.5 s views per clip): "
        f"{gflop:.2f} GFLOP per clip (XLA cost analysis, CPU, batch 8). "
        f"Global batch {g}: {step_flop / 1e12:.1f} TFLOP per step. Assumed: "
        f"{args.peak_tflops:g} TFLOP/s bf16 peak per v3-8 host (8 cores), "
        f"{100 * args.utilisation:.0f} % sustained = {sustained / 1e12:.0f} "
        f"TFLOP/s -> {step_s:.3f} s per step, {need:.0f} clips/s consumed "
        f"({g} 10-s float32 windows = {g * CLIP * 4 / 1e9:.2f} GB per step, "
        f"{h2d:.1f} GB/s host -> TPU). Host: {args.host_vcpus} vCPUs.\n")
  print("| input | clips/s per core (measured here) | cores for "
        f"{need:.0f} clips/s | share of {args.host_vcpus} vCPUs |")
  print("|---|---|---|---|")
  cores = {}
  for name, c in per_core.items():
    cores[name] = need / c
    print(f"| {name} | {c:.0f} | {need / c:.1f} | "
          f"{100 * need / c / args.host_vcpus:.0f} % |")
  print(f"\nload average after: {os.getloadavg()}")
  notes = [f"peak RSS 1x streamed {base / MB:.0f} MB, 10x streamed "
           f"{big / MB:.0f} MB, 10x in memory "
           f"{mem['10x, in memory']['peak_rss'] / MB:.0f} MB: "
           f"{'bounded' if bounded else 'NOT bounded'}",
           f"SimCLR on a v3-8 at {100 * args.utilisation:.0f} % of "
           f"{args.peak_tflops:g} TFLOP/s: {need:.0f} clips/s"]
  common.write_json(
      args.json, "pipeline", rows, notes,
      peak_rss_mb={k: v["peak_rss"] / MB for k, v in mem.items()},
      bounded=bool(bounded), simclr_clips_per_s=need, cores_needed=cores)


if __name__ == "__main__":
  main()
