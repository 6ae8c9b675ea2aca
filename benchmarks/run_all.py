"""Runs every benchmark and prints one table of their headline ratios.

  python benchmarks/run_all.py [--quick] [--only ops,train] [--out DIR]
      [--timeout SECONDS]

Each benchmarks/bench_*.py runs as its own process (this Python, from the
repository root) with the arguments recorded for it in RESULTS.md (--quick:
its smallest sensible settings, a smoke run of a few minutes in all), and
writes its rows to a --json file, which is what this script reads; the
scripts' own printed tables are kept under --out (default: a temporary
directory, removed) as <name>.out / <name>.err / <name>.json.

The table: ratio = time of the alternative / time of ours (> 1: ours is
faster), the median over the script's repeats with its range (min-max);
GFLOP/s and % of the matmul peak (measured in the same run) where the
script reports them. A script that fails (non-zero exit, timeout, no rows)
gets a FAILED row, and this script then exits non-zero at the end.
Run it with the machine as quiet as it can be: other processes on the same
cores move every ratio (the load average before and after is printed).
"""
import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (name, script, full arguments (as in RESULTS.md), --quick arguments)
BENCHMARKS = (
    ("ops", "benchmarks/bench_ops.py", ["--repeats", "9"],
     ["--repeats", "2", "--gl_iters", "20"]),
    ("data", "benchmarks/bench_data.py", [], ["--repeats", "1"]),
    ("train", "benchmarks/bench_train.py", [],
     ["--steps", "5", "--repeats", "2"]),
    ("inversion", "benchmarks/bench_inversion.py", ["--repeats", "5"],
     ["--steps", "10", "--repeats", "2", "--examples", "8",
      "--anneal_steps", "20"]),
    ("sonify", "benchmarks/bench_sonify.py", ["--repeats", "5"], ["--quick"]),
    ("cnn12", "benchmarks/bench_cnn12.py", [],
     ["--steps", "2", "--repeats", "2", "--memory-batches", "8",
      "--memory-width-divisor", "64"]),
)


def cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def version(package: str) -> str:
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return "not installed"


def load() -> str:
  return "/".join(f"{v:.2f}" for v in os.getloadavg())


def fmt(x, digits=2):
  return "" if x is None else f"{x:.{digits}f}"


def fmt_range(r, digits=2):
  return "" if not r else f"{r[0]:.{digits}f}-{r[1]:.{digits}f}"


def table_rows(name, result):
  """Markdown rows of one benchmark's JSON result."""
  out = []
  for row in result["rows"]:
    gflops = "" if row.get("gflops") is None else f"{row['gflops']:.0f}"
    pct = ""
    if row.get("peak_pct") is not None:
      pct = f"{row['peak_pct']:.0f}"
      if row.get("peak_pct_range"):
        pct += f" ({fmt_range(row['peak_pct_range'], 0)})"
    out.append(f"| {name} | {row['case']} | {row['ours']} | {row['against']}"
               f" | {fmt(row['ratio'])} | {fmt_range(row.get('range'))} | "
               f"{gflops} | {pct} | {row.get('note', '')} |")
  return out


def run_one(name, script, args, out_dir, timeout):
  """(status, seconds, loads, result or None, command)."""
  json_path = os.path.join(out_dir, f"{name}.json")
  cmd = [sys.executable, script, *args, "--json", json_path]
  shown = " ".join(["python", script, *map(shlex.quote, args)])
  print(f"[run_all] {shown} (load {load()})", file=sys.stderr, flush=True)
  load_before = os.getloadavg()[0]
  start = time.perf_counter()
  with open(os.path.join(out_dir, f"{name}.out"), "w") as out, \
      open(os.path.join(out_dir, f"{name}.err"), "w") as err:
    # Its own process group, so that a timeout also ends the script's
    # workers (bench_data's corpus generation runs a process pool).
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err,
                            start_new_session=True)
    try:
      rc = proc.wait(timeout=timeout)
      status = "ok" if rc == 0 else f"FAILED (exit {rc})"
    except subprocess.TimeoutExpired:
      os.killpg(proc.pid, signal.SIGKILL)
      proc.wait()
      status = f"FAILED (timeout after {timeout:g} s)"
    except KeyboardInterrupt:
      os.killpg(proc.pid, signal.SIGKILL)
      raise
  seconds = time.perf_counter() - start
  loads = (load_before, os.getloadavg()[0])
  result = None
  if status == "ok":
    try:
      with open(json_path) as f:
        result = json.load(f)
      if not result.get("rows"):
        status, result = "FAILED (no result rows)", None
    except (OSError, ValueError) as e:
      status = f"FAILED (no readable --json output: {e.__class__.__name__})"
  if status != "ok":
    with open(os.path.join(out_dir, f"{name}.err")) as f:
      tail = f.read()[-1500:]
    print(f"[run_all] {name}: {status}; stderr tail:\n{tail}",
          file=sys.stderr, flush=True)
  else:
    print(f"[run_all] {name}: ok in {seconds:.0f} s", file=sys.stderr,
          flush=True)
  return status, seconds, loads, result, shown


def main():
  parser = argparse.ArgumentParser(
      description=__doc__.splitlines()[0],
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog="\n".join(__doc__.splitlines()[1:]))
  parser.add_argument("--quick", action="store_true",
                      help="each script's smallest sensible settings")
  parser.add_argument("--only", default="",
                      help="comma-separated names to run (default: all of "
                      + ", ".join(b[0] for b in BENCHMARKS) + ")")
  parser.add_argument("--out", default="",
                      help="keep each script's output and JSON here")
  parser.add_argument("--timeout", type=float, default=None,
                      help="seconds per script (default: none)")
  args = parser.parse_args()
  names = [b[0] for b in BENCHMARKS]
  only = [n.strip() for n in args.only.split(",") if n.strip()]
  unknown = sorted(set(only) - set(names))
  if unknown:
    parser.error(f"unknown benchmark(s) {unknown}; known: {names}")
  chosen = [b for b in BENCHMARKS if not only or b[0] in only]

  started = datetime.datetime.now(datetime.timezone.utc)
  load_start = load()
  tmp = None
  if args.out:
    os.makedirs(args.out, exist_ok=True)
    out_dir = args.out
  else:
    tmp = tempfile.TemporaryDirectory(prefix="run_all_")
    out_dir = tmp.name

  results = []
  for name, script, full, quick in chosen:
    results.append((name, *run_one(name, script, quick if args.quick else full,
                                   out_dir, args.timeout)))
  finished = datetime.datetime.now(datetime.timezone.utc)

  print(f"# benchmarks/run_all.py{' --quick' if args.quick else ''}: "
        f"{started:%Y-%m-%d %H:%M} - {finished:%H:%M} UTC")
  print(f"machine: {cpu_model()}, {os.cpu_count()} cores, "
        f"{platform.machine()}, Linux {platform.release()}; load average "
        f"(1/5/15 min) before {load_start}, after {load()}")
  print(f"python {platform.python_version()}, jax {version('jax')}, "
        f"jaxlib {version('jaxlib')}, flax {version('flax')}, numpy "
        f"{version('numpy')}, torch {version('torch')}, librosa "
        f"{version('librosa')}")
  print("ratio = alternative's time / ours (> 1: ours is faster), median "
        "and range over the script's repeats\n")
  print("| benchmark | case | ours | against | ratio | range | GFLOP/s | "
        "% of matmul peak | detail |")
  print("|---|---|---|---|---|---|---|---|---|")
  for name, status, _, _, result, _ in results:
    if result is None:
      print(f"| {name} | {status} | | | | | | | |")
    else:
      print("\n".join(table_rows(name, result)))

  print("\n| benchmark | command | s | load average (1 min) before-after | "
        "status |")
  print("|---|---|---|---|---|")
  for name, status, seconds, loads, _, shown in results:
    print(f"| {name} | `{shown}` | {seconds:.0f} | {loads[0]:.1f}-"
          f"{loads[1]:.1f} | {status} |")

  notes = [(name, n) for name, _, _, _, result, _ in results if result
           for n in result.get("notes", [])]
  if notes:
    print()
    for name, note in notes:
      print(f"- {name}: {note}")
  if tmp is not None:
    tmp.cleanup()
  failed = [name for name, status, *_ in results if status != "ok"]
  if failed:
    print(f"\nFAILED: {', '.join(failed)}")
    sys.exit(1)


if __name__ == "__main__":
  main()
