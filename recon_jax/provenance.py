"""What made a saved file: atomic writes, fingerprints and run records.

Every result, checkpoint folder and trained network this package writes
records what made it (a data fingerprint, the config, a fingerprint of the
parameters it came from). Before anything saved is reused, the record is
compared with the current run's; a mismatch is a `ProvenanceError` saying
which fields differ and what to do, never a silent reuse and never an
overwrite.

  record = {"data": data.fingerprint, "config": config.to_dict()}
  provenance.check_or_write_record(os.path.join(workdir, "made_by.json"),
                                   record, what="the phone CNN in " + workdir)

Writes go to a temporary file in the same folder and are renamed over the
target (`os.replace`), so a kill mid-write leaves the old file or none,
never half a file. Work directories are local (or mounted) paths: a URL
such as gs://bucket/run is refused by `check_workdir` (see the README's
TPU section for a shared bucket through a mount).
"""
import hashlib
import io
import json
import os
import sys
import tempfile
from typing import Any

import numpy as np


class ProvenanceError(ValueError):
  """A saved file was made by another run (data, config or parameters)."""


class CorruptFileError(ValueError):
  """A saved file cannot be read back (half-written, damaged)."""


def check_workdir(path: str, flag: str = "--workdir") -> str:
  """`path` as an absolute local path; a URL (gs://, s3://, ...) is refused.

  Checkpoints, corpora, caches and results are written with local file
  operations (atomic renames among them), so a remote URL would silently
  become a local folder named 'gs:' on every host.
  """
  if not path:
    raise ValueError(f"{flag} is empty")
  if "://" in str(path):
    raise ValueError(
        f"{flag}={path!r} is a URL; recon_jax writes to local (or mounted) "
        "directories only. Mount the bucket (e.g. gcsfuse) and pass the "
        "mount point, or write locally and copy the results afterwards.")
  return os.path.abspath(path)


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def write_bytes_atomic(path: str, data: bytes) -> str:
  """Writes `data` to `path` through a temporary file and a rename."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp.",
                             suffix=os.path.basename(path))
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    # mkstemp makes 0600 files; give the result an ordinary file's mode.
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return path


def write_text_atomic(path: str, text: str) -> str:
  return write_bytes_atomic(path, text.encode("utf-8"))


def write_npz_atomic(path: str, arrays: dict) -> str:
  """np.savez of `arrays` to `path`, whole or not at all."""
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  return write_bytes_atomic(path, buffer.getvalue())


def read_npz(path: str) -> dict:
  """{name: array} of an .npz file.

  Raises:
    CorruptFileError: the file is damaged (naming it, and that deleting it
      recomputes it).
  """
  try:
    with np.load(path) as f:
      return {k: f[k] for k in f.files}
  except Exception as e:  # zipfile/OSError/ValueError: a damaged file.
    raise CorruptFileError(
        f"{path} is damaged ({type(e).__name__}: {e}); delete it to "
        "recompute that cell") from None


def to_jsonable(obj: Any) -> Any:
  """Plain JSON types from NumPy scalars/arrays, tuples and ConfigDicts."""
  if hasattr(obj, "to_dict"):  # ml_collections.ConfigDict
    obj = obj.to_dict()
  if isinstance(obj, dict):
    return {str(k): to_jsonable(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [to_jsonable(v) for v in obj]
  if isinstance(obj, np.ndarray):
    return to_jsonable(obj.tolist())
  if isinstance(obj, np.generic):
    return obj.item()
  return obj


def write_json_atomic(path: str, obj: Any) -> str:
  """Writes `obj` as indented JSON, atomically."""
  return write_text_atomic(
      path, json.dumps(to_jsonable(obj), indent=1, sort_keys=True) + "\n")


def read_json(path: str) -> Any:
  """Reads a JSON file this package wrote.

  Raises:
    FileNotFoundError: no such file.
    CorruptFileError: the file exists but is not valid JSON (named, with
      what to do).
  """
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise CorruptFileError(
        f"{path} is damaged ({e}); delete it to recompute it") from None


def fingerprint_json(obj: Any) -> str:
  """A short stable hash of a JSON-able value (sorted keys)."""
  text = json.dumps(to_jsonable(obj), sort_keys=True)
  return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def fingerprint_arrays(tree: Any) -> str:
  """A short hash of a pytree of arrays: structure, shapes, dtypes, bytes."""
  import jax  # Lazy: keeps this module importable without JAX initialised.
  h = hashlib.sha256()
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  h.update(str(treedef).encode("utf-8"))
  for leaf in leaves:
    a = np.ascontiguousarray(np.asarray(leaf))
    h.update(f"{a.shape}{a.dtype}".encode("utf-8"))
    h.update(a.tobytes())
  return h.hexdigest()[:16]


def differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
  """Dotted paths at which two JSON-like values differ, with both values."""
  saved, current = to_jsonable(saved), to_jsonable(current)
  if isinstance(saved, dict) and isinstance(current, dict):
    out = []
    for k in sorted(set(saved) | set(current)):
      path = f"{prefix}.{k}" if prefix else k
      if k not in saved:
        out.append(f"{path}: not recorded, now {current[k]!r}")
      elif k not in current:
        out.append(f"{path}: was {saved[k]!r}, now absent")
      else:
        out.extend(differences(saved[k], current[k], path))
    return out
  if saved != current:
    return [f"{prefix or '(value)'}: was {_short(saved)}, now {_short(current)}"]
  return []


def _short(value, limit=80):
  text = repr(value)
  return text if len(text) <= limit else text[:limit - 3] + "..."


def check_record(path: str, record: dict, what: str,
                 remedy: str = "use a new --workdir or delete it") -> bool:
  """Compares the record saved at `path` with `record`.

  Returns:
    True when `path` holds the same record, False when there is none.

  Raises:
    ProvenanceError: `path` holds another record (the differing fields and
      `remedy` are named).
    CorruptFileError: `path` is damaged.
  """
  if not os.path.exists(path):
    return False
  saved = read_json(path)
  diffs = differences(saved, record)
  if diffs:
    shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more"
                                    if len(diffs) > 6 else "")
    raise ProvenanceError(f"{what} was made by another run ({shown}); "
                          f"{remedy}. Record: {path}")
  return True


def check_or_write_record(path: str, record: dict, what: str,
                          remedy: str = "use a new --workdir or delete it"
                          ) -> dict:
  """Checks `record` against the one saved at `path`, or saves it first.

  Compare first, write only when absent (atomically): a mismatch never
  overwrites what describes the saved results. On several JAX processes
  every one compares (so all raise alike), process 0 alone writes, and the
  others wait for it (the work dir is shared).
  """
  record = to_jsonable(record)
  if not check_record(path, record, what, remedy) and process_index() == 0:
    write_json_atomic(path, record)
  sync_processes(f"record {path}")
  return record


def _jax():
  """JAX if this program already imported it (a multi-process run has),
  else None: the data generators never pay for importing it."""
  return sys.modules.get("jax")


def process_index() -> int:
  """This JAX process's index (0 without JAX or on one process)."""
  jax = _jax()
  return 0 if jax is None else jax.process_index()


def process_count() -> int:
  """How many JAX processes run this program (1 without JAX)."""
  jax = _jax()
  return 1 if jax is None else jax.process_count()


def sync_processes(name: str) -> None:
  """Waits until every JAX process reaches this point (no-op on one)."""
  jax = _jax()
  if jax is not None and jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(name)
