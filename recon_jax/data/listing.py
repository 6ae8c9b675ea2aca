"""What a data source holds, without reading any audio: a `Listing`.

Every source the packer (recon_jax.data.pack) can read first lists its
clips: the file of each clip, the name the source gives it, its labels
(class indices), by split; plus the class names and, for sources whose CSV
names clips that may be absent (AudioSet downloads always lack some), the
names listed without a file. A listing's `fingerprint` hashes the settings,
the classes and every clip's name, labels, size and modification time, so a
packed set records exactly what it was made from.
"""
import dataclasses
import hashlib
import json
import os

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class ClipEntry:
  """One clip of a source.

  path: the audio file (WAV, FLAC, anything soundfile reads).
  name: the clip's id as the source names it (a relative path, an fname, a
    YouTube id and start).
  labels: class indices into Listing.class_names (exactly one for a
    multi-class source).
  """
  path: str
  name: str
  labels: tuple


@dataclasses.dataclass(frozen=True)
class Listing:
  """The clips of one source by split.

  kind: the source ('speech_commands', 'fsd50k', 'audioset', ...).
  class_names: the C classes, in label-index order.
  multilabel: clips may carry several labels (events) or exactly one.
  splits: {split: tuple of ClipEntry}, splits among SPLITS.
  missing: {split: tuple of clip names the source lists but has no file for}.
  settings: JSON-able settings the source was read with (its naming, ...).
  """
  kind: str
  class_names: tuple
  multilabel: bool
  splits: dict
  missing: dict = dataclasses.field(default_factory=dict)
  settings: dict = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    bad = [s for s in self.splits if s not in SPLITS]
    if bad:
      raise ValueError(f"{self.kind} listing: split(s) {bad}; want among "
                       f"{SPLITS}")
    c = len(self.class_names)
    for split, entries in self.splits.items():
      for e in entries:
        if not e.labels and not self.multilabel:
          raise ValueError(f"{self.kind} listing, {split}: {e.name!r} has "
                           "no label")
        if not self.multilabel and len(e.labels) != 1:
          raise ValueError(f"{self.kind} listing, {split}: {e.name!r} has "
                           f"{len(e.labels)} labels in a multi-class source")
        if any(not 0 <= int(i) < c for i in e.labels):
          raise ValueError(f"{self.kind} listing, {split}: {e.name!r} has a "
                           f"label index outside 0..{c - 1}")

  def num_clips(self) -> int:
    return sum(len(v) for v in self.splits.values())

  def fingerprint(self) -> str:
    """sha256 of the settings, classes and every clip's name, labels, file
    size and modification time (no audio is read)."""
    h = hashlib.sha256()
    h.update(json.dumps({"kind": self.kind, "classes": list(self.class_names),
                         "multilabel": self.multilabel,
                         "settings": self.settings}, sort_keys=True).encode())
    for split in sorted(self.splits):
      h.update(f"\n[{split}]".encode())
      for e in self.splits[split]:
        st = os.stat(e.path)
        h.update(f"\n{e.name}\t{list(e.labels)}\t{st.st_size}\t"
                 f"{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def check_disjoint(listing: Listing) -> None:
  """Refuses a listing that puts one file in two splits (a model would be
  scored on clips it trained on)."""
  seen = {}
  for split, entries in listing.splits.items():
    for e in entries:
      path = os.path.realpath(e.path)
      if path in seen and seen[path] != split:
        raise ValueError(f"{listing.kind}: {e.path} is in both the "
                         f"{seen[path]!r} and {split!r} splits; a clip "
                         "must be in one split only")
      seen[path] = split
