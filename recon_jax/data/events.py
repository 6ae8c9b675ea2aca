"""An FSD50K-layout multi-label sound event data set, made procedurally
(docs/methods.md, B1b).

Each clip is `clip_seconds` (default 5 s) at 8 kHz mixing 1-4 sound
sources of distinct classes over a faint noise floor; each source sounds
2-4 times (`occurrences`: the same rendition at random onsets and levels,
as a dog barks or a siren comes back), so the two halves of a clip usually
share sources, as AudioSet's scenes do (SimCLR's positive pairs are two
non-overlapping views of one clip: with single events they would share
nothing, and contrastive training collapses). Its labels are the classes
of its sources. Written like FSD50K:

  DIR/FSD50K.dev_audio/<fname>.wav     16-bit PCM, mono, 8 kHz
  DIR/FSD50K.eval_audio/<fname>.wav
  DIR/FSD50K.ground_truth/dev.csv         fname,labels,mids,split (train/val)
  DIR/FSD50K.ground_truth/eval.csv        fname,labels,mids
  DIR/FSD50K.ground_truth/vocabulary.csv  index,label,mid (no header, as
                                          FSD50K's)
  DIR/generator_config.json               the settings

A clip with several labels lists them comma-separated inside quotes, as the
real files do ("Pure_tone,Siren"). Every class occurs in each of train, val
and eval (the first event of clip i cycles through the classes). fnames are
integers (100000 + i for dev, 200000 + i for eval), like Freesound ids.
Read it with `recon_jax.data.audio_folder.load_fsd50k(DIR)`. The bytes
depend only on the settings and seed, not on `num_workers`.
"""
import csv
import io
import numbers
import os

import ml_collections
import numpy as np

from recon_jax import provenance
from recon_jax.data import audio_io
from recon_jax.data import keywords
from recon_jax.data import workers

SAMPLE_RATE = audio_io.SAMPLE_RATE
# (label, mid). FSD50K spells labels with underscores and capitals.
CLASSES = (
    ("Pure_tone", "/recon_jax/pure_tone"),
    ("Up_chirp", "/recon_jax/up_chirp"),
    ("Down_chirp", "/recon_jax/down_chirp"),
    ("White_noise_burst", "/recon_jax/white_noise_burst"),
    ("Pink_noise_burst", "/recon_jax/pink_noise_burst"),
    ("Click_train", "/recon_jax/click_train"),
    ("AM_tone", "/recon_jax/am_tone"),
    ("FM_tone", "/recon_jax/fm_tone"),
    ("Harmonic_stack", "/recon_jax/harmonic_stack"),
    ("Spoken_word", "/recon_jax/spoken_word"),
    ("Knock", "/recon_jax/knock"),
    ("Siren", "/recon_jax/siren"),
    ("Dial_tone", "/recon_jax/dial_tone"),
    ("Bell", "/recon_jax/bell"),
)
LABELS = tuple(label for label, _ in CLASSES)
DEV_AUDIO = "FSD50K.dev_audio"
EVAL_AUDIO = "FSD50K.eval_audio"
GROUND_TRUTH = "FSD50K.ground_truth"
SPLITS = ("train", "val", "eval")
_FNAME_BASE = {"dev": 100000, "eval": 200000}
_MAX_CLIPS = 99999


def get_config(size="default"):
  """Event data set settings; `size` "default" or "tiny" (tests).

  default: 1000 train, 200 val and 400 eval clips of 5 s (about 128 MB).
  """
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.classes = LABELS  # Any subset of LABELS, in any order (vocabulary order).
  c.train_clips = 1000
  c.val_clips = 200
  c.eval_clips = 400
  c.clip_seconds = 5.0
  c.events_per_clip = (1, 4)  # Inclusive range, uniform.
  c.event_seconds = (0.3, 2.5)  # Log-uniform (a spoken word keeps its length).
  c.occurrences = (2, 4)  # Times each source sounds, inclusive, uniform.
  c.event_level_db = (-20.0, 0.0)  # Each event's peak re the loudest, uniform.
  c.noise_floor_db = (-60.0, -40.0)  # White noise std re full scale, uniform.
  c.clip_peak = (0.3, 0.9)  # The mixture's peak, uniform.
  c.num_workers = 2
  if size == "tiny":
    c.train_clips = 16
    c.val_clips = 14
    c.eval_clips = 14
    c.clip_seconds = 1.0
    c.event_seconds = (0.1, 0.5)
    c.num_workers = 1
  elif size != "default":
    raise ValueError(f"unknown event data set size {size!r}; want 'default' "
                     "or 'tiny'")
  return c


_NOT_IN_SETTINGS = ("num_workers",)


def _int(c, name, lo, hi=None):
  v = c[name]
  if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
    raise ValueError(f"events.{name}={v!r}: must be an integer")
  if v < lo or (hi is not None and v > hi):
    raise ValueError(f"events.{name}={v}: must be in [{lo}, "
                     f"{'inf' if hi is None else hi}]")


def _range(c, name, lo, hi, open_lo=False, integers=False):
  v = c[name]
  try:
    a, b = v
    ok = all((isinstance(x, numbers.Integral) if integers else
              isinstance(x, numbers.Real) and np.isfinite(x)) and
             not isinstance(x, bool) for x in (a, b))
  except (TypeError, ValueError):
    ok = False
  if not ok or not lo <= a <= b <= hi or (open_lo and a == lo):
    raise ValueError(f"events.{name}={v!r}: want (low, high) "
                     f"{'integers ' if integers else ''}with {lo} "
                     f"{'<' if open_lo else '<='} low <= high <= {hi}")


def check_config(config=None) -> ml_collections.ConfigDict:
  """`get_config()` updated with `config` (ConfigDict or dict), checked.

  Raises:
    ValueError naming an unknown field or a value outside its range.
  """
  # Not type safe: a wrong type is reported below as a ValueError.
  c = ml_collections.ConfigDict(get_config().to_dict(), type_safe=False)
  if config is not None:
    overrides = dict(config)
    unknown = sorted(set(overrides) - set(c.keys()))
    if unknown:
      raise ValueError(f"events: unknown field(s) {unknown}; known: "
                       f"{sorted(c.keys())}")
    c.update(overrides)
  classes = c.classes
  if isinstance(classes, str) or not isinstance(classes, (list, tuple)):
    raise ValueError(f"events.classes={classes!r}: want a sequence of class "
                     f"names from {LABELS}")
  unknown = [k for k in classes if k not in LABELS]
  if unknown or len(classes) < 2 or len(set(classes)) != len(classes):
    raise ValueError(f"events.classes={list(classes)}: want at least 2 "
                     f"distinct names from {LABELS}"
                     + (f" (unknown: {unknown})" if unknown else ""))
  _int(c, "seed", 0)
  for name in ("train_clips", "val_clips", "eval_clips"):
    _int(c, name, len(classes), _MAX_CLIPS)
  if not (isinstance(c.clip_seconds, numbers.Real) and
          not isinstance(c.clip_seconds, bool) and
          np.isfinite(c.clip_seconds) and 0.5 <= c.clip_seconds <= 600):
    raise ValueError(f"events.clip_seconds={c.clip_seconds!r}: must be in "
                     "[0.5, 600]")
  _range(c, "events_per_clip", 1, len(classes), integers=True)
  _range(c, "event_seconds", 0.0, c.clip_seconds, open_lo=True)
  _range(c, "occurrences", 1, 100, integers=True)
  _range(c, "event_level_db", -60.0, 0.0)
  _range(c, "noise_floor_db", -120.0, -20.0)
  _range(c, "clip_peak", 0.0, 1.0, open_lo=True)
  _int(c, "num_workers", 1)
  return c


def generator_settings(config=None, seed=None) -> dict:
  """What the data set's bytes depend on (checked config less num_workers,
  with `seed` if given), as JSON."""
  c = check_config(config)
  settings = provenance.to_jsonable(c)
  for name in _NOT_IN_SETTINGS:
    settings.pop(name)
  if seed is not None:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(
        seed, numbers.Integral) or seed < 0:
      raise ValueError(f"events seed={seed!r}: must be an integer >= 0")
    settings["seed"] = int(seed)
  return settings


# --- The event classes: each returns float64 (n,) with peak 1. ---------------


def _log_uniform(rng, lo, hi):
  return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _sweep(f_start, f_end, n, log=True):
  """Phase of a sweep from f_start to f_end Hz over n samples."""
  t = np.arange(n) / SAMPLE_RATE
  duration = n / SAMPLE_RATE
  if log and f_start != f_end:
    k = np.log(f_end / f_start) / duration
    return 2 * np.pi * f_start * (np.exp(k * t) - 1.0) / k
  return 2 * np.pi * (f_start * t + 0.5 * (f_end - f_start) / duration * t**2)


def _pink(rng, n, exponent=1.0):
  spectrum = np.fft.rfft(rng.normal(size=n))
  f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
  f[0] = f[1] if n > 1 else 1.0
  return np.fft.irfft(spectrum / f**(exponent / 2.0), n)


def _pure_tone(rng, n):
  f = _log_uniform(rng, 200.0, 3000.0)
  return np.sin(2 * np.pi * f * np.arange(n) / SAMPLE_RATE +
                rng.uniform(0, 2 * np.pi))


def _up_chirp(rng, n):
  return np.sin(_sweep(_log_uniform(rng, 200.0, 700.0),
                       _log_uniform(rng, 1200.0, 3500.0), n,
                       log=bool(rng.integers(2))))


def _down_chirp(rng, n):
  return np.sin(_sweep(_log_uniform(rng, 1200.0, 3500.0),
                       _log_uniform(rng, 200.0, 700.0), n,
                       log=bool(rng.integers(2))))


def _white_noise_burst(rng, n):
  return rng.normal(size=n)


def _pink_noise_burst(rng, n):
  return _pink(rng, n)


def _click_train(rng, n):
  rate = rng.uniform(5.0, 40.0)  # Clicks per second.
  click = np.exp(-np.arange(24) / rng.uniform(2.0, 6.0)) * np.cos(
      2 * np.pi * rng.uniform(1000.0, 3000.0) * np.arange(24) / SAMPLE_RATE)
  x = np.zeros(n + len(click))
  period = SAMPLE_RATE / rate
  for start in np.arange(rng.uniform(0, period), n, period).astype(int):
    x[start:start + len(click)] += click
  return x[:n]


def _am_tone(rng, n):
  t = np.arange(n) / SAMPLE_RATE
  carrier = np.sin(2 * np.pi * _log_uniform(rng, 300.0, 2500.0) * t)
  depth = rng.uniform(0.6, 1.0)
  return carrier * (1.0 - depth * 0.5 * (1.0 + np.cos(
      2 * np.pi * rng.uniform(3.0, 15.0) * t)))


def _fm_tone(rng, n):
  t = np.arange(n) / SAMPLE_RATE
  fc = _log_uniform(rng, 400.0, 2500.0)
  fm = rng.uniform(4.0, 12.0)
  deviation = fc * rng.uniform(0.03, 0.1)
  return np.sin(2 * np.pi * fc * t + deviation / fm * np.sin(
      2 * np.pi * fm * t))


def _harmonic_stack(rng, n):
  t = np.arange(n) / SAMPLE_RATE
  f0 = _log_uniform(rng, 100.0, 400.0)
  x = np.zeros(n)
  for k in range(1, int(rng.integers(5, 16)) + 1):
    if k * f0 >= 0.45 * SAMPLE_RATE:
      break
    x += np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k
  return x


def _spoken_word(rng, n):
  del n  # A word keeps its own length.
  accent, variant = keywords.VOICES[rng.integers(len(keywords.VOICES))]
  word = keywords.WORDS[rng.integers(len(keywords.WORDS))]
  return keywords.trim(keywords.speak(
      word, accent, variant, int(rng.integers(130, 211)),
      int(rng.integers(25, 76)), int(rng.integers(30, 81)),
      rng.integers(2**31)))


def _knock(rng, n):
  x = np.zeros(n)
  hits = int(rng.integers(1, 5))
  decay = rng.uniform(0.005, 0.03) * SAMPLE_RATE
  length = min(n, int(6 * decay))
  # Low-passed noise (a knock on wood is dull): a first-order smoother.
  for start in np.sort(rng.integers(0, max(n - length, 1), hits)):
    burst = rng.normal(size=length) * np.exp(-np.arange(length) / decay)
    burst = np.convolve(burst, np.ones(4) / 4, mode="same")
    x[start:start + length] += burst
  return x


def _siren(rng, n):
  t = np.arange(n) / SAMPLE_RATE
  lo, hi = rng.uniform(500.0, 800.0), rng.uniform(1100.0, 1600.0)
  rate = rng.uniform(0.3, 1.5)  # Sweeps per second.
  f = lo + (hi - lo) * 0.5 * (1.0 - np.cos(2 * np.pi * rate * t))
  phase = 2 * np.pi * np.cumsum(f) / SAMPLE_RATE
  return np.sin(phase) + 0.3 * np.sin(2 * phase)


_DTMF = ((697.0, 770.0, 852.0, 941.0), (1209.0, 1336.0, 1477.0))


def _dial_tone(rng, n):
  t = np.arange(n) / SAMPLE_RATE
  if rng.integers(2):  # North American dial tone.
    f1, f2 = 350.0, 440.0
  else:  # A DTMF key.
    f1, f2 = rng.choice(_DTMF[0]), rng.choice(_DTMF[1])
  return np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t)


_BELL_PARTIALS = (0.5, 1.0, 1.19, 1.56, 2.0, 2.51, 2.66, 3.01)


def _bell(rng, n):
  t = np.arange(n) / SAMPLE_RATE
  f0 = _log_uniform(rng, 300.0, 1200.0)
  decay = rng.uniform(0.15, 0.8)
  x = np.zeros(n)
  for i, r in enumerate(_BELL_PARTIALS):
    if r * f0 < 0.45 * SAMPLE_RATE:
      x += (np.exp(-t * (1.0 + i * 0.5) / decay) * rng.uniform(0.3, 1.0) *
            np.sin(2 * np.pi * r * f0 * t + rng.uniform(0, 2 * np.pi)))
  return x


_MAKERS = {
    "Pure_tone": _pure_tone, "Up_chirp": _up_chirp, "Down_chirp": _down_chirp,
    "White_noise_burst": _white_noise_burst,
    "Pink_noise_burst": _pink_noise_burst, "Click_train": _click_train,
    "AM_tone": _am_tone, "FM_tone": _fm_tone,
    "Harmonic_stack": _harmonic_stack, "Spoken_word": _spoken_word,
    "Knock": _knock, "Siren": _siren, "Dial_tone": _dial_tone, "Bell": _bell,
}
# Classes that start and end sharply need no fades (they decay by themselves).
_NO_FADE = frozenset({"Click_train", "Knock", "Bell", "Spoken_word"})


def make_event(label, rng, n):
  """One event of class `label`: float64 (m,), peak 1 (m = n but for a
  spoken word, which keeps its length), 10 ms fades where needed."""
  x = np.asarray(_MAKERS[label](rng, n), np.float64)
  if label not in _NO_FADE:
    fade = min(len(x) // 2, SAMPLE_RATE // 100)
    ramp = 0.5 * (1.0 - np.cos(np.pi * np.arange(fade) / fade))
    x[:fade] *= ramp
    x[len(x) - fade:] *= ramp[::-1]
  peak = np.max(np.abs(x)) if len(x) else 0.0
  if peak == 0.0:
    raise RuntimeError(f"event {label}: made silence")
  return x / peak


def make_clip(config, rng, first_class):
  """One clip: (float64 (clip_seconds * 8000,) in [-1, 1], sorted list of
  class indices into config.classes).

  The first source is of class `first_class` (coverage of every class);
  the rest of distinct random classes. Each source is one rendition of its
  class, sounding `occurrences` times at random onsets (levels within
  +-3 dB of the source's).
  """
  classes = list(config.classes)
  n = int(round(config.clip_seconds * SAMPLE_RATE))
  k = int(rng.integers(config.events_per_clip[0],
                       config.events_per_clip[1] + 1))
  others = [c for c in range(len(classes)) if c != first_class]
  chosen = [first_class] + list(rng.choice(others, k - 1, replace=False))
  x = np.zeros(n)
  for c in chosen:
    length = int(round(_log_uniform(rng, *config.event_seconds) * SAMPLE_RATE))
    event = make_event(classes[c], rng, max(length, 16))[:n]
    level = 10.0**(rng.uniform(*config.event_level_db) / 20.0)
    times = int(rng.integers(config.occurrences[0],
                             config.occurrences[1] + 1))
    for _ in range(times):
      onset = int(rng.integers(n - len(event) + 1))
      jitter = 10.0**(rng.uniform(-3.0, 3.0) / 20.0)
      x[onset:onset + len(event)] += level * jitter * event
  x *= rng.uniform(*config.clip_peak) / np.max(np.abs(x))
  x += rng.normal(0.0, 10.0**(rng.uniform(*config.noise_floor_db) / 20.0), n)
  return np.clip(x, -1.0, 1.0), sorted(int(c) for c in chosen)


def _split_plan(config):
  """[(split, audio_dir, fname, clip_index_in_split)] for every clip."""
  plan = []
  for split, count, part in (("train", config.train_clips, "dev"),
                             ("val", config.val_clips, "dev"),
                             ("eval", config.eval_clips, "eval")):
    start = sum(1 for p in plan if p[1] == part)
    for i in range(count):
      plan.append((split, part, str(_FNAME_BASE[part] + start + i), i))
  return plan


def _write_clips(out_dir, items, config, seed):
  """Writes a chunk of clips; returns their class index lists."""
  out = []
  for split, part, fname, i in items:
    s = SPLITS.index(split)
    # Class coverage: clip i of a split leads with class (perm[i] mod C).
    perm = np.random.default_rng([seed, 3, s]).permutation(len(config.classes))
    rng = np.random.default_rng([seed, 4, s, i])
    x, labels = make_clip(config, rng, int(perm[i % len(perm)]))
    audio_dir = DEV_AUDIO if part == "dev" else EVAL_AUDIO
    audio_io.write_wav(os.path.join(out_dir, audio_dir, fname + ".wav"), x)
    out.append(labels)
  return out


def _job(args):
  return _write_clips(*args)


def _csv_text(rows):
  buf = io.StringIO()
  csv.writer(buf, lineterminator="\n").writerows(rows)
  return buf.getvalue()


def make_event_dataset(out_dir, config=None, seed=None):
  """Writes the event data set (layout in the module doc) into `out_dir`.

  Writes in place; `generate_events` wraps it to appear only when complete.

  Returns:
    {"train"/"val"/"eval": {"clips": int, "events": int, "class_counts":
     {label: int}}, "classes": int}.

  Raises:
    ValueError for a bad config field, or an out_dir already holding one.
  """
  settings = generator_settings(config, seed)
  config = check_config(config)
  seed = settings["seed"]
  for name in (DEV_AUDIO, EVAL_AUDIO, GROUND_TRUTH):
    if os.path.exists(os.path.join(out_dir, name)):
      raise ValueError(f"{os.path.join(out_dir, name)}: already exists; "
                       "refusing to mix two data sets")
  for name in (DEV_AUDIO, EVAL_AUDIO, GROUND_TRUTH):
    os.makedirs(os.path.join(out_dir, name))
  plan = _split_plan(config)
  chunk = 25
  jobs = [(out_dir, plan[i:i + chunk], config, seed)
          for i in range(0, len(plan), chunk)]
  labels = [l for r in workers.map_jobs(_job, jobs, config.num_workers,
                                        "event clips (x25)") for l in r]
  classes = list(config.classes)
  mids = dict(CLASSES)
  dev = [("fname", "labels", "mids", "split")]
  ev = [("fname", "labels", "mids")]
  summary = {"classes": len(classes)}
  for (split, part, fname, _), ls in zip(plan, labels):
    row = (fname, ",".join(classes[c] for c in ls),
           ",".join(mids[classes[c]] for c in ls))
    if part == "dev":
      dev.append(row + (split,))
    else:
      ev.append(row)
    s = summary.setdefault(split, dict(clips=0, events=0, class_counts={
        k: 0 for k in classes}))
    s["clips"] += 1
    s["events"] += len(ls)
    for c in ls:
      s["class_counts"][classes[c]] += 1
  gt = os.path.join(out_dir, GROUND_TRUTH)
  provenance.write_text_atomic(os.path.join(gt, "dev.csv"), _csv_text(dev))
  provenance.write_text_atomic(os.path.join(gt, "eval.csv"), _csv_text(ev))
  provenance.write_text_atomic(
      os.path.join(gt, "vocabulary.csv"),
      _csv_text((i, k, mids[k]) for i, k in enumerate(classes)))
  return summary


def generate_events(root, config=None, seed=None):
  """`make_event_dataset` into `<root>.partial`, renamed to `root` when
  complete (see audio_io.generate_atomically).

  Returns:
    The summary, or None when `root` already holds the data set of these
    settings (nothing done).
  """
  settings = generator_settings(config, seed)
  return audio_io.generate_atomically(
      root, settings,
      lambda partial: make_event_dataset(partial, config, settings["seed"]),
      "sound event data set")
