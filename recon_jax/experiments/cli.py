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
import logging as py_logging
import os
import re
import sys
import threading
import time

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
    except Exception as e:  # pylint: disable=broad-except
      if not _lost_a_peer(e):
        raise
      _close_progress_bars()
      print(f"error: another process of this "
            f"{provenance.process_count()}-process run stopped (a collective "
            f"failed: {_one_line(e).split(':', 1)[-1].strip()[:200]}); rerun "
            "the same "
            "command on every host to resume from the last checkpoint",
            file=sys.stderr, flush=True)
      # Now, before JAX's coordination service aborts the process for the
      # missing peer and buries this line under its stack dump.
      os._exit(1)  # pylint: disable=protected-access

  return wrapped


def _lost_a_peer(e: BaseException) -> bool:
  """A JAX runtime error of a multi-process run whose peer went away."""
  if provenance.process_count() < 2 or type(e).__name__ not in (
      "JaxRuntimeError", "XlaRuntimeError"):
    return False
  text = str(e)
  return any(k in text for k in ("Gloo", "Connection closed", "heartbeat",
                                 "UNAVAILABLE", "coordination", "peer",
                                 "DEADLINE_EXCEEDED", "ABORTED"))


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
  _watch_peers(kwargs.get("heartbeat_timeout_seconds", 100))


_ALIVE = "recon_jax/alive/"
_DONE = "recon_jax/done/"


def _watch_peers(heartbeat_seconds: int) -> None:
  """Starts a thread that ends this process with one error line when a
  peer stops beating for half of `heartbeat_seconds`.

  JAX's coordination service would abort this process too (after the whole
  heartbeat timeout), but from C++, with the error line under a stack dump;
  a collective waiting on the dead peer may also never return. Each process
  bumps its key in the coordination service's key-value store every second
  and reads the others'; a peer that finished (its done key) is not waited
  for.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from jax._src import distributed  # pylint: disable=g-import-not-at-top
  client = distributed.global_state.client
  me, n = jax.process_index(), jax.process_count()
  stale = max(5.0, heartbeat_seconds / 2)

  def lost(why):
    _close_progress_bars()
    print(f"error: another process of this {n}-process run stopped ({why}); "
          "rerun the same command on every host to resume from the last "
          "checkpoint", file=sys.stderr, flush=True)
    os._exit(1)  # pylint: disable=protected-access

  def watch():
    beat, last_change = 0, {}
    while True:
      beat += 1
      now = time.monotonic()
      try:
        client.key_value_set(f"{_ALIVE}{me}", str(beat), allow_overwrite=True)
      except Exception as e:  # pylint: disable=broad-except
        lost(f"the coordinator is unreachable: {str(e).splitlines()[0][:120]}")
      for peer in range(n):
        if peer == me:
          continue
        try:
          if client.key_value_try_get(f"{_DONE}{peer}"):
            continue
        except Exception:  # pylint: disable=broad-except
          pass  # Not done.
        try:
          value = client.key_value_try_get(f"{_ALIVE}{peer}")
        except Exception:  # pylint: disable=broad-except
          value = None  # Not started beating yet.
        seen, since = last_change.get(peer, (value, now))
        if value != seen:
          seen, since = value, now
        last_change[peer] = (seen, since)
        if now - since > stale:
          lost(f"process {peer} sent no heartbeat for {now - since:.0f} s")
      time.sleep(1.0)

  threading.Thread(target=watch, name="recon_jax-peer-watch",
                   daemon=True).start()


def _mark_done() -> None:
  """Tells the peers' watchers this process finished (so its exit is not
  taken for a crash)."""
  jax = sys.modules.get("jax")
  if jax is None or jax.process_count() < 2:
    return
  from jax._src import distributed  # pylint: disable=g-import-not-at-top
  try:
    distributed.global_state.client.key_value_set(
        f"{_DONE}{jax.process_index()}", "1", allow_overwrite=True)
  except Exception:  # pylint: disable=broad-except
    pass


def parse_flags(argv):
  """absl's flag parsing, with a bad flag or config file (missing, failing
  in get_config, a misspelt --config.<field>) as one error line, exit 1."""
  try:
    return flags.FLAGS(argv)
  except SystemExit as e:
    # absl's --help prints the usage and exits 1; asking for help is not
    # an error.
    if e.code == 1 and HELP_FLAGS & set(argv[1:]):
      sys.exit(0)
    raise
  except SyntaxError as e:
    # config_flags imports the file: a WAV or a text that is not Python.
    path = next((a.split("=", 1)[1] for a in argv[1:]
                 if a.startswith("--config=")), "?")
    print(f"error: bad command line: --config={path} is not a Python config "
          f"file ({e.msg}); pass configs/<file>.py", file=sys.stderr)
    sys.exit(1)
  except (flags.Error, KeyError, AttributeError) + USER_ERRORS + (
      OSError,) as e:
    # A misspelt --config.<field> is a KeyError from config_flags.
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    if "Traceback (most recent call last)" in text:
      # config_flags puts the config file's whole traceback in its message:
      # keep the flag and the file's own error (the last line).
      m = re.match(r"flag --\S+?(?=:\s)", text)
      head = m.group(0) if m else ""
      last = [l for l in text.splitlines() if l.strip()][-1].strip()
      text = f"{head}: {last}" if head else last
    print(f"error: bad command line: {_plain_flag_error(text)}",
          file=sys.stderr)
    sys.exit(1)


def _plain_flag_error(text: str) -> str:
  """One plain line for a flag error; ml_collections' "no such field"
  (a KeyError's repr, with its suggestion after an escaped newline) names
  the field and the suggestion."""
  plain = text.strip()
  for _ in range(2):  # A repr of a repr: unquote and unescape twice.
    if len(plain) >= 2 and plain[0] == plain[-1] and plain[0] in "'\"":
      plain = plain[1:-1].replace("\\n", "\n").replace("\\'", "'")
  m = re.fullmatch(r"'?([\w.]+)'?(?:\s*Did you mean \"([\w.]+)\" instead of "
                   r"\"[\w.]+\"\?)?", plain.strip(), re.S)
  if m and not m.group(0).startswith("no field"):
    out = f"the config has no field {m.group(1)!r}"
    return out + (f"; did you mean {m.group(2)!r}?" if m.group(2) else "")
  return " ".join(plain.split())


_SUPERVISED = "RECON_JAX_SUPERVISED"
HELP_FLAGS = frozenset({"-h", "-?", "--help", "--helpshort", "--helpfull",
                        "--helpxml"})
# How a process killed from C++ starts its dying words: glog's fatal line
# (JAX's coordination service), std::terminate (Gloo), Python's faulthandler.
_CRASH = re.compile(rb"(^|\n)(F\d{4} |terminate called |Fatal Python error|"
                    rb"\*\*\* Check failure)")


def _is_multiprocess_launch() -> bool:
  return (os.environ.get("RECON_JAX_DISTRIBUTED") == "1" or
          bool(os.environ.get("RECON_JAX_COORDINATOR")))


def _crash_summary(text: bytes) -> str:
  lines = [l.strip() for l in text.decode("utf-8", "replace").splitlines()
           if l.strip()]
  cause = next((l for l in lines if l.startswith("what():")), None)
  cause = cause or next((l for l in lines if "Terminating process" in l),
                        lines[0] if lines else "aborted")
  return re.sub(r"^\S+ \S+ +\d+ \S+\] ", "", cause)[:240]


def supervise(argv) -> int:
  """Runs this command again as a child and reports how it ended.

  A process of a multi-process run whose peer dies is killed from C++
  (Gloo's std::terminate, JAX's coordination service), under pages of
  stack dumps that no Python handler can catch. The parent forwards the
  child's output until such a dump starts, then prints one error line; a
  child also dies with its parent (a kill of the launcher ends both).
  """
  import signal  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top

  def die_with_parent():
    import ctypes  # pylint: disable=g-import-not-at-top
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG

  env = dict(os.environ, **{_SUPERVISED: "1"})
  child = subprocess.Popen([sys.executable, "-m", "recon_jax", *argv[1:]],
                           env=env, stderr=subprocess.PIPE,
                           preexec_fn=die_with_parent)
  for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda s, _: child.send_signal(s))
  crashed = bytearray()
  out = sys.stderr.buffer
  while chunk := child.stderr.read1(65536):
    if crashed:
      crashed += chunk[:4096]
      continue
    match = _CRASH.search(chunk)
    if match:
      out.write(chunk[:match.start()])
      crashed += chunk[match.start():] or b"aborted"
    else:
      out.write(chunk)
    out.flush()
  code = child.wait()
  if crashed or code < 0:
    print(f"\nerror: process {os.environ.get('RECON_JAX_PROCESS_ID', '?')} "
          "of this multi-process run was stopped by the JAX/Gloo runtime "
          f"({_crash_summary(bytes(crashed))}), most likely because another "
          "process of the run died (see its log); rerun the same command on "
          "every host to resume from the last checkpoint", file=sys.stderr,
          flush=True)
    return 1
  return code


class _NoAcceleratorProbeLines(py_logging.Filter):
  """Drops JAX's 'Unable to initialize backend ...' lines: on a machine
  without that accelerator they are the expected answer to JAX's probe,
  not news (a run that needs the accelerator fails on its own, naming it)."""

  def filter(self, record):
    return not record.getMessage().startswith("Unable to initialize backend")


def quiet_backend_probe() -> None:
  py_logging.getLogger("jax._src.xla_bridge").addFilter(
      _NoAcceleratorProbeLines())


def run(main):
  """absl's app.run(main) with `guarded` error handling (multi-host aware:
  a process of a multi-process launch runs under `supervise`)."""
  quiet_backend_probe()
  if _is_multiprocess_launch() and not os.environ.get(_SUPERVISED) and not (
      HELP_FLAGS & set(sys.argv[1:])):
    sys.exit(supervise(sys.argv))

  def started(argv):
    initialize_distributed()
    result = main(argv)
    _mark_done()
    return result

  app.run(guarded(started), flags_parser=parse_flags)
