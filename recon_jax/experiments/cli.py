"""What every absl entry point shares: one clear error line, not a traceback.

  def main(argv): ...
  if __name__ == "__main__":
    cli.run(main)

Errors a user can fix (bad config values, missing or damaged files, results
from another run, a full disk, a diverged run) end the program with one line
on stderr naming the problem and exit status 1; anything else is a bug and
keeps its traceback.
"""
import errno
import os
import re
import sys

from absl import app
from absl import flags
from absl import logging

from recon_jax import provenance

# Raised for bad input by this package (and by the libraries it calls on
# user files: soundfile's LibsndfileError is a RuntimeError subclass).
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError,
               IsADirectoryError, PermissionError, FloatingPointError,
               provenance.ProvenanceError, provenance.CorruptFileError)


def _one_line(e: BaseException) -> str:
  if isinstance(e, OSError) and e.errno == errno.ENOSPC:
    return f"disk full: {e}"
  if isinstance(e, OSError) and e.errno in (errno.EROFS, errno.EACCES):
    return f"cannot write (read-only or no permission): {e}"
  text = str(e) or type(e).__name__
  return text.replace("\n", " ")


def _close_progress_bars():
  """Ends any progress bar still drawn (a stage that failed inside its
  loop), so the error line starts a line of its own."""
  import tqdm  # pylint: disable=g-import-not-at-top
  for bar in list(getattr(tqdm.tqdm, "_instances", ())):
    bar.close()


def guarded(main):
  """Wraps an absl main so user errors become one line and exit 1."""

  def wrapped(argv):
    try:
      return main(argv)
    except USER_ERRORS + (OSError,) as e:
      logging.flush()
      _close_progress_bars()
      print(f"error: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
      sys.exit(1)

  return wrapped


def initialize_distributed():
  """jax.distributed.initialize() when this is one of several processes.

  launch_tpu.sh sets RECON_JAX_DISTRIBUTED=1; on a Cloud TPU VM JAX then
  finds its peers by itself. Elsewhere (CPU or GPU hosts, tests) set
  RECON_JAX_COORDINATOR=host:port, RECON_JAX_NUM_PROCESSES and
  RECON_JAX_PROCESS_ID on every process; CPU collectives then run over
  Gloo. RECON_JAX_HEARTBEAT_SECONDS bounds how long the others wait for a
  process that died (JAX's default: 100 s). A single machine needs nothing.
  """
  env = os.environ
  if env.get("RECON_JAX_DISTRIBUTED") != "1" and not env.get(
      "RECON_JAX_COORDINATOR"):
    return
  import jax  # Lazy: only multi-process runs pay for it here.
  kwargs = {}
  if env.get("RECON_JAX_HEARTBEAT_SECONDS"):
    kwargs["heartbeat_timeout_seconds"] = int(
        env["RECON_JAX_HEARTBEAT_SECONDS"])
  if env.get("RECON_JAX_COORDINATOR"):
    try:
      kwargs.update(coordinator_address=env["RECON_JAX_COORDINATOR"],
                    num_processes=int(env["RECON_JAX_NUM_PROCESSES"]),
                    process_id=int(env["RECON_JAX_PROCESS_ID"]))
    except (KeyError, ValueError) as e:
      raise ValueError("RECON_JAX_COORDINATOR is set: set "
                       "RECON_JAX_NUM_PROCESSES and RECON_JAX_PROCESS_ID to "
                       f"integers too ({e})") from None
    if env.get("JAX_PLATFORMS", "") == "cpu":
      jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(**kwargs)


def parse_flags(argv):
  """absl's flag parsing, with a bad flag or config file (missing, failing
  in get_config, a misspelt --config.<field>) as one error line, exit 1."""
  try:
    return flags.FLAGS(argv)
  except (flags.Error, KeyError, AttributeError) + USER_ERRORS + (
      OSError,) as e:
    # A misspelt --config.<field> is a KeyError from config_flags.
    text = (f"no field {e.args[0]}" if isinstance(e, KeyError) and e.args
            else str(e))
    if "Traceback (most recent call last)" in text:
      # config_flags puts the config file's whole traceback in its message:
      # keep the flag and the file's own error (the last line).
      m = re.match(r"flag --\S+?(?=:\s)", text)
      head = m.group(0) if m else ""
      last = [l for l in text.splitlines() if l.strip()][-1].strip()
      text = f"{head}: {last}" if head else last
    print(f"error: bad command line: {' '.join(text.split())}",
          file=sys.stderr)
    sys.exit(1)


def run(main):
  """absl's app.run(main) with `guarded` error handling (multi-host aware)."""

  def started(argv):
    initialize_distributed()
    return main(argv)

  app.run(guarded(started), flags_parser=parse_flags)
