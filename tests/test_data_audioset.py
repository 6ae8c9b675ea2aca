"""AudioSet's layout (recon_jax.data.audioset): the reader on a hand-written
copy of Google's format, and the offline generator."""
import glob
import hashlib
import os
import re
import time

import numpy as np
import pytest
import soundfile

from configs import make_audioset
from recon_jax.data import audio_io
from recon_jax.data import audioset
from recon_jax.data import listing

_HEAD = ["# Segments csv created Sun Mar  5 10:54:25 2017",
         "# num_ytids=3, num_segs=3, num_unique_labels=3, "
         "num_positive_labels=4",
         "# YTID, start_seconds, end_seconds, positive_labels"]
_CLASSES = """index,mid,display_name
0,/m/09x0r,"Speech"
1,/m/05zppz,"Male speech, man speaking"
2,/t/dd00088,"Gush"
3,/m/04rlf,"Music"
"""
# 24 balanced YTIDs (some start with '-', as real ones do).
_BALANCED = [f"{'-' if i % 5 == 0 else 'b'}{i:02d}xphWEs_{i % 3}"
             for i in range(24)]
_UNBALANCED = ["--ZhevVpy1s", "-0DdlOuIFUI", "u2yyyyyyyyy", "u3yyyyyyyyy"]
_EVAL = ["--4gqARaEJE", "e1zzzzzzzzz", "e2zzzzzzzzz"]
_LABELS = ('"/m/09x0r,/t/dd00088"', '"/m/04rlf"',
           '"/m/05zppz,/m/09x0r,/m/04rlf"')


def _write(path, lines):
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")


def _rows(ytids, start=30):
  return [f"{y}, {start + 10 * (i % 4)}.000, {start + 10 * (i % 4) + 10}"
          f".000, {_LABELS[i % 3]}" for i, y in enumerate(ytids)]


def _layout(root, absent=(), naming=audioset.DEFAULT_NAMING):
  """A real-format AudioSet folder; clips whose YTID is in `absent` have
  no file."""
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, audioset.CLASS_CSV), "w") as f:
    f.write(_CLASSES)
  x = np.sin(np.arange(400) / 5.0) * 0.5
  for part, ytids in (("balanced_train", _BALANCED),
                      ("unbalanced_train", _UNBALANCED), ("eval", _EVAL)):
    rows = _rows(ytids)
    _write(os.path.join(root, audioset.PART_CSV[part]), _HEAD + rows)
    folder = os.path.join(root, audioset.DEFAULT_DIRS[part])
    os.makedirs(folder, exist_ok=True)
    for row in rows:
      ytid, start, end, _ = row.split(", ", 3)
      if ytid not in absent:
        audio_io.write_wav(os.path.join(folder, audioset.clip_filename(
            naming, ytid, float(start), float(end))), x)
  return root


def _names(entries):
  return [e.name.rsplit("_", 1)[0] for e in entries]


def _held_out(fraction):
  return {y for y in _BALANCED if audioset.validation_hash(y) < fraction}


# --- The reader --------------------------------------------------------------


def test_reads_googles_format(tmp_path):
  root = _layout(str(tmp_path / "as"), absent=(_BALANCED[2], "u3yyyyyyyyy",
                                               "e1zzzzzzzzz"))
  got = audioset.list_audioset(root, validation_fraction=0.3)
  assert got.kind == "audioset" and got.multilabel
  assert got.class_names == ("Speech", "Male speech, man speaking", "Gush",
                             "Music")
  assert got.settings["mids"] == ["/m/09x0r", "/m/05zppz", "/t/dd00088",
                                  "/m/04rlf"]
  assert got.settings["naming"] == "Y{ytid}.wav"
  assert got.settings["validation_fraction"] == 0.3
  assert got.settings["train_parts"] == ["balanced_train", "unbalanced_train"]
  assert got.settings["eval_dir"] == "audio/eval"
  test = {e.name: e for e in got.splits["test"]}
  # Quoted labels after a space, several per clip, in index order.
  assert test["--4gqARaEJE_30.000"].labels == (0, 2)
  assert test["e2zzzzzzzzz_50.000"].labels == (0, 1, 3)
  assert test["--4gqARaEJE_30.000"].path == os.path.join(
      root, "audio", "eval", "Y--4gqARaEJE.wav")
  # Missing clips are counted by split, not errors.
  assert got.missing["test"] == ("e1zzzzzzzzz_40.000",)
  assert got.missing["train"] == (
      () if _BALANCED[2] in _held_out(0.3) else ("b02xphWEs_2_50.000",)) + (
          "u3yyyyyyyyy_60.000",)
  assert got.missing["validation"] == (
      ("b02xphWEs_2_50.000",) if _BALANCED[2] in _held_out(0.3) else ())
  train = _names(got.splits["train"])
  assert train == [y for y in _BALANCED if y not in _held_out(0.3) and
                   y != _BALANCED[2]] + ["--ZhevVpy1s", "-0DdlOuIFUI",
                                         "u2yyyyyyyyy"]
  assert got.num_clips() == len(_BALANCED) + len(_UNBALANCED) + len(
      _EVAL) - 3
  listing.check_disjoint(got)
  assert got.fingerprint() == audioset.list_audioset(
      root, validation_fraction=0.3).fingerprint()


def test_row_spellings(tmp_path):
  path = str(tmp_path / "segments.csv")
  _write(path, _HEAD + [
      '-a1, 30.000, 40.000, "/m/04rlf"', "-a2,30.000,40.000,/m/04rlf",
      '-a3,  30, 40,  "/m/04rlf,/m/09x0r"', '"-a4", 30.0, 40.0, "/m/04rlf"',
      "", "# a comment", "-a5, 1e1, 2e1, /m/04rlf"])
  rows = audioset.read_segments(path, {"/m/09x0r": 0, "/m/04rlf": 1})
  assert rows == [(4, "-a1", 30.0, 40.0, (1,)), (5, "-a2", 30.0, 40.0, (1,)),
                  (6, "-a3", 30.0, 40.0, (0, 1)),
                  (7, "-a4", 30.0, 40.0, (1,)), (10, "-a5", 10.0, 20.0, (1,))]


def test_validation_is_a_deterministic_hash_of_the_ytid(tmp_path):
  root = _layout(str(tmp_path / "as"))
  a = audioset.list_audioset(root, validation_fraction=0.25)
  val = _names(a.splits["validation"])
  assert 0 < len(val) < len(_BALANCED)
  assert set(val) == _held_out(0.25)
  digest = int(hashlib.sha256(val[0].encode()).hexdigest()[:16], 16)
  assert digest / 16**16 < 0.25  # The documented rule.
  assert not set(val) & set(_names(a.splits["train"]))
  assert a == audioset.list_audioset(root, validation_fraction=0.25)
  # Train leaves the held-out clips out also without a validation split;
  # the rows' order does not matter.
  b = audioset.list_audioset(root, validation_fraction=0.25,
                             splits=("train",))
  assert b.splits["train"] == a.splits["train"] and list(b.splits) == [
      "train"]
  path = os.path.join(root, audioset.BALANCED_CSV)
  with open(path) as f:
    lines = f.read().splitlines()
  _write(path, lines[:3] + lines[3:][::-1])
  c = audioset.list_audioset(root, validation_fraction=0.25)
  assert set(_names(c.splits["validation"])) == set(val)
  more = audioset.list_audioset(root, validation_fraction=0.6)
  assert set(val) < set(_names(more.splits["validation"]))
  with pytest.raises(ValueError, match="validation_fraction=0 leaves"):
    audioset.list_audioset(root, validation_fraction=0)
  none = audioset.list_audioset(root, validation_fraction=0,
                                splits=("train", "test"))
  assert len(none.splits["train"]) == len(_BALANCED) + len(_UNBALANCED)


def test_train_parts_choose_balanced_unbalanced_or_both(tmp_path):
  root = _layout(str(tmp_path / "as"))
  held = _held_out(0.2)
  both = audioset.list_audioset(root, validation_fraction=0.2)
  bal = audioset.list_audioset(root, validation_fraction=0.2,
                               train_parts=("balanced_train",))
  assert _names(bal.splits["train"]) == [y for y in _BALANCED
                                          if y not in held]
  assert bal.settings["train_parts"] == ["balanced_train"]
  os.remove(os.path.join(root, audioset.BALANCED_CSV))  # Not read below.
  with pytest.raises(FileNotFoundError, match="balanced_train_segments.csv"):
    audioset.list_audioset(root)
  unbal = audioset.list_audioset(root, train_parts=["unbalanced_train"],
                                 splits=("train", "test"))
  assert _names(unbal.splits["train"]) == _UNBALANCED
  assert len(both.splits["train"]) == len(bal.splits["train"]) + len(
      _UNBALANCED)
  assert both.splits["validation"] == bal.splits["validation"]
  with pytest.raises(ValueError, match="train_parts"):
    audioset.list_audioset(root, train_parts=("eval",))
  with pytest.raises(ValueError, match="splits"):
    audioset.list_audioset(root, splits=("val",))


def test_other_namings_and_folders(tmp_path):
  naming = "Y{ytid}_{start:.3f}_{end:.3f}.wav"  # DCASE / DESED.
  root = _layout(str(tmp_path / "as"), naming=naming)
  got = audioset.list_audioset(root, naming=naming)
  assert os.path.basename(got.splits["test"][0].path) == (
      "Y--4gqARaEJE_30.000_40.000.wav")
  assert not any(got.missing.values())
  # The default naming finds none of them: one error saying where it
  # looked and what the folder holds.
  with pytest.raises(ValueError) as e:
    audioset.list_audioset(root)
  msg = str(e.value)
  assert "none of the" in msg and "naming='Y{ytid}.wav'" in msg
  assert os.path.join("balanced_train", "Y-00xphWEs_0.wav") in msg
  assert "Y-00xphWEs_0_30.000_40.000.wav" in msg  # What the folder holds.
  os.rename(os.path.join(root, "audio", "eval"), str(tmp_path / "ev"))
  got = audioset.list_audioset(root, naming=naming,
                               eval_dir=str(tmp_path / "ev"))
  assert got.splits["test"][0].path.startswith(str(tmp_path / "ev"))
  for bad, match in (("{ytid}", None), ("clip.wav", "must use"),
                     ("{yt}.wav", "only the fields"),
                     ("{start:d}/{ytid}.wav", "cannot format"),
                     ("../{ytid}.wav", "inside the audio folder"),
                     ("{ytid", "not a format string")):
    if match is None:
      audioset.check_naming(bad)
      continue
    with pytest.raises(ValueError, match=re.escape(match)):
      audioset.list_audioset(root, naming=bad)


def _replace_line(path, n, text):
  with open(path) as f:
    lines = f.read().splitlines()
  lines[n - 1] = text
  _write(path, lines)


@pytest.mark.parametrize("row, message", [
    ('xx1, 30.000, 40.000, "/m/09x0r,/m/nope"',
     r"line 5: unknown label mid\(s\) \['/m/nope'\]"),
    ("xx1, 30.000, 40.000", r"line 5: malformed row, 3 field\(s\)"),
    ('xx1, thirty, 40.000, "/m/09x0r"', "line 5: malformed row, start/end"),
    ('xx1, 40.000, 30.000, "/m/09x0r"', "line 5: malformed row, want 0 <="),
    ('xx1, 30.000, 40.000, ""', "line 5: malformed row, no positive label"),
    ('xx 1, 30.000, 40.000, "/m/09x0r"', "line 5: malformed row, bad YTID"),
    (f'{_EVAL[0]}, 30.000, 40.000, "/m/09x0r"',
     r"line 5: clip .*Y--4gqARaEJE\.wav is also named at .*, line 4"),
])
def test_a_bad_row_is_one_error_naming_file_and_line(tmp_path, row, message):
  root = _layout(str(tmp_path / "as"))
  path = os.path.join(root, audioset.EVAL_CSV)
  _replace_line(path, 5, row)
  with pytest.raises(ValueError, match=re.escape(path) + ", " + message):
    audioset.list_audioset(root)


def test_bad_class_list_and_empty_splits(tmp_path):
  root = _layout(str(tmp_path / "as"))
  classes = os.path.join(root, audioset.CLASS_CSV)
  _replace_line(classes, 3, '2,/m/05zppz,"Male speech, man speaking"')
  with pytest.raises(ValueError, match=re.escape(classes) + ", line 3: index"
                     " 2, expected 1"):
    audioset.list_audioset(root)
  _replace_line(classes, 3, '1,/m/09x0r,"Again"')
  with pytest.raises(ValueError, match=", line 3: mid '/m/09x0r' repeated"):
    audioset.list_audioset(root)
  _replace_line(classes, 3, "1,/m/05zppz")
  with pytest.raises(ValueError, match=", line 3: want 'index,mid,"):
    audioset.list_audioset(root)
  _replace_line(classes, 3, '1,/m/05zppz,"Male speech, man speaking"')
  _replace_line(classes, 1, "idx,mid,name")
  with pytest.raises(ValueError, match=", line 1: header"):
    audioset.list_audioset(root)
  _replace_line(classes, 1, "index,mid,display_name")
  # Every eval clip missing: an error, not an empty split.
  for f in glob.glob(os.path.join(root, "audio", "eval", "*.wav")):
    os.remove(f)
  with pytest.raises(ValueError, match="none of the 3 test clips listed in "
                     "eval_segments.csv is on disk"):
    audioset.list_audioset(root)
  assert audioset.list_audioset(root, splits=("train", "validation"))
  _write(os.path.join(root, audioset.EVAL_CSV), _HEAD)
  with pytest.raises(ValueError, match="the test split is empty"):
    audioset.list_audioset(root)
  with pytest.raises(FileNotFoundError, match="AudioSet directory"):
    audioset.list_audioset(str(tmp_path / "nowhere"))


# --- The generator -----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("gen") / "audioset")
  start = time.time()
  out = audioset.generate_from_config(make_audioset.get_config("tiny"), root)
  return root, out, time.time() - start


def _files(root):
  out = {}
  for dirpath, _, names in os.walk(root):
    for name in names:
      path = os.path.join(dirpath, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, root)] = f.read()
  return out


def test_tiny_is_fast_and_in_googles_layout(tiny):
  root, out, seconds = tiny
  assert seconds < 15, seconds  # About 1 s on 2 cores.
  assert out["made"] and out["lines"][-1].startswith(f"wrote {root} in")
  summary = out["summary"]
  assert sorted(os.listdir(root)) == [
      "audio", "balanced_train_segments.csv", "class_labels_indices.csv",
      "eval_segments.csv", "generator_config.json",
      "unbalanced_train_segments.csv"]
  assert sorted(os.listdir(os.path.join(root, "audio"))) == [
      "balanced_train", "eval", "unbalanced_train"]
  with open(os.path.join(root, audioset.CLASS_CSV)) as f:
    lines = f.read().splitlines()
  assert lines[0] == "index,mid,display_name"
  assert lines[1] == '0,/m/recon_pure_tone,"Pure tone"'
  assert '1,/m/recon_up_chirp,"Chirp, rising"' in lines
  mids, names = audioset.read_class_labels(os.path.join(root,
                                                        audioset.CLASS_CSV))
  assert len(mids) == 14 and names[1] == "Chirp, rising"
  row = re.compile(r'([A-Za-z0-9_-]{11}), (\d+)\.000, (\d+)\.000, '
                   r'"(/m/recon_[a-z_]+(?:,/m/recon_[a-z_]+)*)"')
  for part, n in (("balanced_train", 24), ("unbalanced_train", 24),
                  ("eval", 16)):
    with open(os.path.join(root, audioset.PART_CSV[part])) as f:
      lines = f.read().splitlines()
    assert lines[0].startswith("# Segments csv created")
    assert lines[1].startswith(f"# num_ytids={n}, num_segs={n}, ")
    assert lines[2] == "# YTID, start_seconds, end_seconds, positive_labels"
    matches = [row.fullmatch(l) for l in lines[3:]]
    assert len(matches) == n and all(matches), lines[3:]
    ytids = [m.group(1) for m in matches]
    assert ytids == sorted(ytids) and any(y[0] == "-" for y in ytids)
    assert all(int(m.group(3)) - int(m.group(2)) == 10 for m in matches)
    assert any("," in m.group(4) for m in matches)  # Several labels.
    files = sorted(os.listdir(os.path.join(root, "audio", part)))
    written = [f"Y{y}.wav" for y in ytids if f"Y{y}.wav" in files]
    assert files == written and len(files) == summary[part]["written"]
    assert n - len(files) == summary[part]["missing"] == 1  # ceil(2%).
    x, rate = soundfile.read(os.path.join(root, "audio", part, files[0]))
    assert rate == 8000 and x.shape == (80000,)
    assert soundfile.info(os.path.join(root, "audio", part, files[0])
                          ).subtype == "PCM_16"


def test_tiny_reads_back(tiny):
  root, out, _ = tiny
  summary = out["summary"]
  got = audioset.list_audioset(root)
  assert len(got.class_names) == 14 and "Chirp, rising" in got.class_names
  assert [len(got.splits[s]) + len(got.missing[s]) for s in listing.SPLITS
          ] == [24 - 4 + 24, 4, 16]  # 4 balanced clips held out at 5%.
  assert sum(len(m) for m in got.missing.values()) == sum(
      summary[p]["missing"] for p in audioset.PARTS)
  assert len(got.splits["validation"]) == 4  # Never missing when tiny.
  listing.check_disjoint(got)
  for split, entries in got.splits.items():
    assert entries and all(os.path.isfile(e.path) for e in entries), split
    assert all(e.labels for e in entries)
  counts = np.zeros(14, int)
  for e in got.splits["test"]:
    counts[list(e.labels)] += 1
  assert counts.min() >= 1  # Eval leads with every class in turn.


def test_generation_is_deterministic_reused_and_refused(tiny, tmp_path):
  root, _, _ = tiny
  again = str(tmp_path / "again")
  assert audioset.generate_audioset(again, audioset.get_config("tiny"))
  assert _files(again) == _files(root)  # Same seed, same bytes.
  assert audioset.generate_audioset(again, audioset.get_config("tiny")) is (
      None)
  out = audioset.generate_from_config(make_audioset.get_config("tiny"), again)
  assert not out["made"] and "nothing to do" in out["lines"][0]
  other = audioset.get_config("tiny")
  other.seed = 1
  with pytest.raises(ValueError, match="seed"):
    audioset.generate_audioset(again, other)
  os.makedirs(str(tmp_path / "partial.partial"))
  seed1 = str(tmp_path / "seed1")
  audioset.generate_audioset(seed1, dict(
      seed=1, balanced_clips=4, unbalanced_clips=0, eval_clips=2,
      clip_seconds=1.0, event_seconds=(0.1, 0.5), num_workers=1))
  assert _files(seed1)[audioset.EVAL_CSV] != _files(root)[audioset.EVAL_CSV]
  with pytest.raises(ValueError, match="half-written"):
    audioset.list_audioset(str(tmp_path / "partial.partial"))


def _small(**overrides):
  c = dict(classes=("Pure_tone", "Knock", "Siren"), balanced_clips=12,
           unbalanced_clips=10, eval_clips=8, clip_seconds=1.0,
           event_seconds=(0.1, 0.5), events_per_clip=(1, 2), num_workers=1)
  c.update(overrides)
  return c


def test_missing_fraction_rate_and_workers(tmp_path):
  root = str(tmp_path / "quarter")
  summary = audioset.generate_audioset(root, _small(missing_fraction=0.25))
  assert [summary[p]["missing"] for p in audioset.PARTS] == [3, 3, 2]
  got = audioset.list_audioset(root)
  assert sum(len(m) for m in got.missing.values()) == 8
  assert len(got.missing["validation"]) == 1  # floor(0.25 * 4).
  assert len(got.splits["validation"]) == 3
  none = str(tmp_path / "none")
  summary = audioset.generate_audioset(none, _small(missing_fraction=0.0))
  assert [summary[p]["missing"] for p in audioset.PARTS] == [0, 0, 0]
  assert not any(audioset.list_audioset(none).missing.values())
  # Written at another rate (resampled), and the same bytes on 2 workers
  # (over 25 clips: two jobs).
  fast = str(tmp_path / "fast")
  audioset.generate_audioset(fast, _small(sample_rate=16000, num_workers=2))
  slow = str(tmp_path / "slow")
  audioset.generate_audioset(slow, _small(sample_rate=16000))
  assert _files(fast) == _files(slow)
  x, rate = soundfile.read(audioset.list_audioset(fast).splits["test"][0].path)
  assert rate == 16000 and x.shape == (16000,)


def test_config_checks_and_sizes():
  c = make_audioset.get_config("tiny")
  assert c.experiment == "audioset" and c.balanced_clips == 24
  assert c.naming == audioset.DEFAULT_NAMING and c.missing_fraction == 0.02
  with pytest.raises(AttributeError):
    c.balance_clips = 3  # Locked: a misspelt override is an error.
  for size in ("default", "stream"):
    assert make_audioset.get_config(size).experiment == "audioset"
  with pytest.raises(ValueError, match="unknown AudioSet-layout data set"):
    audioset.get_config("huge")
  s = audioset.get_config("stream")
  train = s.balanced_clips * 0.95 + s.unbalanced_clips
  assert train * 0.98 * s.clip_seconds * 8000 * 4 > 640e6  # float32 bytes.
  for bad, match in ((dict(seeds=1), "unknown field"),
                     (dict(missing_fraction=0.9), "missing_fraction"),
                     (dict(classes=("Pure_tone", "Dog")), "classes"),
                     (dict(event_seconds=(0.1, 20.0)), "audioset.event_"),
                     (dict(naming="{ytid"), "audioset.naming"),
                     (dict(eval_clips=1), "eval_clips"),
                     (dict(sample_rate=4000), "sample_rate")):
    with pytest.raises(ValueError, match=match):
      audioset.check_config(bad)
