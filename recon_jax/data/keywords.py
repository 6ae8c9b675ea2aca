"""A Speech Commands v2-layout keyword data set spoken by espeak-ng
(docs/methods.md, B1b).

The 35 Speech Commands v2 words are spoken by espeak-ng "speakers" as in the
TIMIT-layout corpus (recon_jax.data.corpus: an English accent x voice
variant x speaking rate x pitch), each word placed at a random offset in a
1 s clip at 8 kHz (exactly `CLIP_SAMPLES` samples) over a faint noise floor.
Speakers are disjoint across train / validation / test, and no two speakers
share an (accent, variant) voice while there are voices left (8 x 13 = 104).
Written like the real data set:

  DIR/<word>/<speakerhash>_nohash_<i>.wav     16-bit PCM, mono, 8 kHz
  DIR/validation_list.txt, DIR/testing_list.txt  (paths relative to DIR)
  DIR/_background_noise_/{white_noise,pink_noise,brown_noise,hum,babble}.wav
  DIR/generator_config.json                      (the settings)

Every file not in the two lists is training data. Read it back with
`recon_jax.data.audio_folder.load_speech_commands(DIR)`. The bytes depend
only on the config's settings and seed, not on `num_workers`.
"""
import hashlib
import numbers
import os
import re

import ml_collections
import numpy as np

from recon_jax import provenance
from recon_jax.data import audio_io
from recon_jax.data import corpus
from recon_jax.data import espeak
from recon_jax.data import workers

WORDS = ("backward", "bed", "bird", "cat", "dog", "down", "eight", "five",
         "follow", "forward", "four", "go", "happy", "house", "learn", "left",
         "marvin", "nine", "no", "off", "on", "one", "right", "seven",
         "sheila", "six", "stop", "three", "tree", "two", "up", "visual",
         "wow", "yes", "zero")
SAMPLE_RATE = audio_io.SAMPLE_RATE
CLIP_SAMPLES = SAMPLE_RATE  # 1 s.
BACKGROUND_DIR = "_background_noise_"
BACKGROUND_NOISES = ("white_noise", "pink_noise", "brown_noise", "hum",
                     "babble")
VALIDATION_LIST = "validation_list.txt"
TESTING_LIST = "testing_list.txt"
SPLITS = ("train", "validation", "test")
VOICES = tuple((a, v) for a in corpus.DIALECT_ACCENTS
               for v in corpus.MALE_VARIANTS + corpus.FEMALE_VARIANTS)


def get_config(size="default"):
  """Keyword data set settings; `size` "default" or "tiny" (tests).

  default: 24 speakers (16 train, 4 validation, 4 test) x 2 utterances of
  each of the 35 words: 32 training clips per word (1120), 8 + 8 held out;
  60 s background clips.
  """
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.words = WORDS
  c.train_speakers = 16
  c.validation_speakers = 4
  c.test_speakers = 4
  c.utterances_per_word = 2  # Per speaker: <hash>_nohash_0 .. _{n-1}.
  c.rate_range = (130, 210)  # espeak words per minute, stratified.
  c.pitch_range = (25, 75)  # espeak base pitch 0..100, stratified.
  c.pitch_spread_range = (30, 80)  # espeak intonation range 0..100.
  # Each utterance of a word by a speaker varies around the speaker's voice.
  c.rate_jitter = 0.08  # Fraction of the speaker's rate, uniform +-.
  c.pitch_jitter = 4  # espeak pitch units, uniform integer +-.
  c.peak_range = (0.2, 0.9)  # The word's peak level, uniform.
  c.noise_range = (0.0003, 0.003)  # Noise floor std, log-uniform.
  c.background_seconds = 60.0  # Length of each _background_noise_ clip.
  c.babble_talkers = 6  # Overlapping talkers in babble.wav.
  c.num_workers = 2
  if size == "tiny":
    c.train_speakers = 2
    c.validation_speakers = 1
    c.test_speakers = 1
    c.utterances_per_word = 1
    c.background_seconds = 2.0
    c.babble_talkers = 2
    c.num_workers = 1
  elif size != "default":
    raise ValueError(f"unknown keyword data set size {size!r}; want "
                     "'default' or 'tiny'")
  return c


_NOT_IN_SETTINGS = ("num_workers",)


def _int(c, name, lo, hi=None):
  v = c[name]
  if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
    raise ValueError(f"keywords.{name}={v!r}: must be an integer")
  if v < lo or (hi is not None and v > hi):
    raise ValueError(f"keywords.{name}={v}: must be in [{lo}, "
                     f"{'inf' if hi is None else hi}]")


def _real(c, name, lo, hi, open_lo=False):
  v = c[name]
  if (isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or
      not np.isfinite(v) or v > hi or v < lo or (open_lo and v == lo)):
    raise ValueError(f"keywords.{name}={v!r}: must be a number in "
                     f"{'(' if open_lo else '['}{lo}, {hi}]")


def _range(c, name, lo, hi, open_lo=False):
  v = c[name]
  try:
    a, b = v
    ok = all(isinstance(x, numbers.Real) and not isinstance(x, bool) and
             np.isfinite(x) for x in (a, b))
  except (TypeError, ValueError):
    ok = False
  if not ok or not lo <= a <= b <= hi or (open_lo and a == lo):
    raise ValueError(f"keywords.{name}={v!r}: want (low, high) with "
                     f"{lo} {'<' if open_lo else '<='} low <= high <= {hi}")


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
      raise ValueError(f"keywords: unknown field(s) {unknown}; known: "
                       f"{sorted(c.keys())}")
    c.update(overrides)
  words = c.words
  if (isinstance(words, str) or not isinstance(words, (list, tuple)) or
      not words):
    raise ValueError(f"keywords.words={words!r}: want a non-empty sequence "
                     "of words")
  for w in words:
    if not isinstance(w, str) or not re.fullmatch(r"[a-z]+", w):
      raise ValueError(f"keywords.words: {w!r} is not a lower-case word "
                       "(letters a-z only; it names a directory)")
  if len(set(words)) != len(words):
    raise ValueError(f"keywords.words: repeated words in {list(words)}")
  _int(c, "seed", 0)
  _int(c, "train_speakers", 1)
  _int(c, "validation_speakers", 1)
  _int(c, "test_speakers", 1)
  _int(c, "utterances_per_word", 1, 1000)
  _range(c, "rate_range", 80, 450)
  _range(c, "pitch_range", 0, 100)
  _range(c, "pitch_spread_range", 0, 100)
  _real(c, "rate_jitter", 0.0, 0.5)
  _int(c, "pitch_jitter", 0, 50)
  _range(c, "peak_range", 0.0, 1.0, open_lo=True)
  _range(c, "noise_range", 0.0, 0.1, open_lo=True)
  _real(c, "background_seconds", 0.0, 3600.0, open_lo=True)
  _int(c, "babble_talkers", 1, 64)
  _int(c, "num_workers", 1)
  speakers = c.train_speakers + c.validation_speakers + c.test_speakers
  pitches = int(c.pitch_range[1]) - int(np.ceil(c.pitch_range[0])) + 1
  if speakers > len(VOICES) * pitches:
    raise ValueError(f"keywords: {speakers} speakers but only "
                     f"{len(VOICES) * pitches} distinct voices (accent x "
                     f"variant x pitch in pitch_range="
                     f"{tuple(c.pitch_range)})")
  return c


def generator_settings(config=None, seed=None) -> dict:
  """What the data set's bytes depend on (the checked config less
  num_workers, with `seed` if given), as JSON."""
  c = check_config(config)
  settings = provenance.to_jsonable(c)
  for name in _NOT_IN_SETTINGS:
    settings.pop(name)
  if seed is not None:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(
        seed, numbers.Integral) or seed < 0:
      raise ValueError(f"keywords seed={seed!r}: must be an integer >= 0")
    settings["seed"] = int(seed)
  return settings


def _stratified(rng, n, value_range):
  """n integers, one uniform draw in each of n equal slices, shuffled."""
  lo, hi = value_range
  return rng.permutation(
      np.round(lo + (hi - lo) * (np.arange(n) + rng.uniform(size=n)) / n))


def plan_speakers(config, seed):
  """Every speaker's voice and split (no audio).

  Returns:
    List of dicts: index, split, hash (8 hex digits), accent, variant, rate,
    pitch, pitch_spread.
  """
  rng = np.random.default_rng([seed, 0])
  counts = (config.train_speakers, config.validation_speakers,
            config.test_speakers)
  n = sum(counts)
  rates = _stratified(rng, n, config.rate_range)
  pitches = _stratified(rng, n, config.pitch_range)
  order = rng.permutation(len(VOICES))
  splits = np.repeat(np.arange(3), counts)
  plan, used, hashes = [], set(), set()
  for k in range(n):
    accent, variant = VOICES[order[k % len(VOICES)]]
    rate, pitch = int(rates[k]), int(pitches[k])
    while (accent, variant, rate, pitch) in used:
      pitch = int(rng.integers(int(np.ceil(config.pitch_range[0])),
                               int(config.pitch_range[1]) + 1))
    used.add((accent, variant, rate, pitch))
    while True:
      h = f"{int(rng.integers(2**32)):08x}"
      if h not in hashes:
        break
    hashes.add(h)
    plan.append(dict(
        index=k, split=SPLITS[splits[k]], hash=h, accent=accent,
        variant=variant, rate=rate, pitch=pitch,
        pitch_spread=int(rng.integers(int(config.pitch_spread_range[0]),
                                      int(config.pitch_spread_range[1]) + 1))))
  return plan


def speak(text, accent, variant, rate, pitch, pitch_spread, seed):
  """espeak-ng speech at 8 kHz, float64 (T,) in espeak's int16 units."""
  raw, _ = espeak.synthesize(text, f"{accent}+{variant}", rate=int(rate),
                             pitch=int(pitch), pitch_range=int(pitch_spread),
                             seed=int(seed))
  return audio_io.resample(raw.astype(np.float64), espeak.SAMPLE_RATE,
                           SAMPLE_RATE).astype(np.float64)


def trim(x, threshold=0.01, margin=80):
  """x without the leading/trailing samples below threshold * peak (keeps
  `margin` samples of them)."""
  a = np.abs(x)
  if not a.size or a.max() == 0:
    return x[:0]
  loud = np.flatnonzero(a > threshold * a.max())
  return x[max(0, loud[0] - margin):loud[-1] + 1 + margin]


def _log_uniform(rng, value_range):
  lo, hi = value_range
  return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def keyword_clip(word, speaker, config, rng):
  """One 1 s clip of `word` by `speaker`: float64 (CLIP_SAMPLES,) in [-1, 1].

  The utterance's rate and pitch vary around the speaker's (rate_jitter,
  pitch_jitter); the trimmed word is placed at a uniform random offset
  (cropped at a random place in the rare case it is longer than 1 s),
  scaled to a peak in peak_range, over white noise of std in noise_range.
  """
  rate = speaker["rate"] * (1.0 + rng.uniform(-config.rate_jitter,
                                              config.rate_jitter))
  rate = int(np.clip(np.round(rate), 80, 450))
  pitch = int(np.clip(speaker["pitch"] + rng.integers(
      -config.pitch_jitter, config.pitch_jitter + 1), 0, 100))
  x = trim(speak(word, speaker["accent"], speaker["variant"], rate, pitch,
                 speaker["pitch_spread"], rng.integers(2**31)))
  if len(x) == 0:
    raise RuntimeError(f"espeak-ng produced silence for {word!r} "
                       f"({speaker})")
  if len(x) > CLIP_SAMPLES:
    start = int(rng.integers(len(x) - CLIP_SAMPLES + 1))
    x = x[start:start + CLIP_SAMPLES]
  x = x * (rng.uniform(*config.peak_range) / np.max(np.abs(x)))
  out = np.zeros(CLIP_SAMPLES)
  offset = int(rng.integers(CLIP_SAMPLES - len(x) + 1))
  out[offset:offset + len(x)] = x
  out += rng.normal(0.0, _log_uniform(rng, config.noise_range), CLIP_SAMPLES)
  return np.clip(out, -1.0, 1.0)


def clip_path(word, speaker_hash, i):
  """The clip's path relative to the data set root (Speech Commands names)."""
  return f"{word}/{speaker_hash}_nohash_{i}.wav"


def _write_speaker(out_dir, speaker, config, seed):
  """Writes every clip of one speaker; returns the relative paths."""
  paths = []
  for w, word in enumerate(config.words):
    for i in range(config.utterances_per_word):
      rng = np.random.default_rng([seed, 1, speaker["index"], w, i])
      rel = clip_path(word, speaker["hash"], i)
      audio_io.write_wav(os.path.join(out_dir, rel),
                         keyword_clip(word, speaker, config, rng))
      paths.append(rel)
  return paths


def _colored_noise(rng, n, exponent):
  """Gaussian noise with power spectrum ~ 1/f**exponent, unit peak."""
  spectrum = np.fft.rfft(rng.normal(size=n))
  f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
  f[0] = f[1]
  x = np.fft.irfft(spectrum / f**(exponent / 2.0), n)
  x -= x.mean()
  return x / np.max(np.abs(x))


def background_noise(name, config, seed):
  """One _background_noise_ clip: float64 (background_seconds * 8000,),
  peak 0.5."""
  n = int(round(config.background_seconds * SAMPLE_RATE))
  rng = np.random.default_rng([seed, 2, BACKGROUND_NOISES.index(name)])
  t = np.arange(n) / SAMPLE_RATE
  if name == "white_noise":
    x = rng.normal(size=n)
  elif name == "pink_noise":
    x = _colored_noise(rng, n, 1.0)
  elif name == "brown_noise":
    x = _colored_noise(rng, n, 2.0)
  elif name == "hum":
    # Mains hum: 50 or 60 Hz and its harmonics, slowly wavering, plus hiss.
    f0 = float(rng.choice([50.0, 60.0]))
    x = np.zeros(n)
    for k in range(1, 16):
      wobble = 1.0 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t +
                                  rng.uniform(0, 2 * np.pi))
      x += (wobble * rng.uniform(0.3, 1.0) / k *
            np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)))
    x += 0.02 * rng.normal(size=n)
  elif name == "babble":
    x = _babble(rng, n, config)
  else:
    raise ValueError(f"unknown background noise {name!r}; known: "
                     f"{BACKGROUND_NOISES}")
  return 0.5 * x / np.max(np.abs(x))


def _babble(rng, n, config):
  """Overlapping talkers reading the corpus's sentences (other voices)."""
  sentences = [text for _, text in corpus.load_sentences()[0]]
  x = np.zeros(n)
  for _ in range(config.babble_talkers):
    accent, variant = VOICES[rng.integers(len(VOICES))]
    rate = int(rng.integers(int(config.rate_range[0]),
                            int(config.rate_range[1]) + 1))
    pitch = int(rng.integers(int(np.ceil(config.pitch_range[0])),
                             int(config.pitch_range[1]) + 1))
    pos = -int(rng.integers(SAMPLE_RATE * 2))  # Talkers start out of step.
    talker = np.zeros(n)
    while pos < n:
      s = trim(speak(sentences[rng.integers(len(sentences))], accent, variant,
                     rate, pitch, 50, rng.integers(2**31)))
      s = s / max(np.sqrt(np.mean(s**2)), 1e-9)
      lo, hi = max(pos, 0), min(pos + len(s), n)
      if hi > lo:
        talker[lo:hi] += s[lo - pos:hi - pos]
      pos += len(s) + int(rng.integers(SAMPLE_RATE // 10, SAMPLE_RATE // 2))
    x += talker * rng.uniform(0.5, 1.0)
  return x


def _write_background(out_dir, name, config, seed):
  rel = f"{BACKGROUND_DIR}/{name}.wav"
  audio_io.write_wav(os.path.join(out_dir, rel),
                     background_noise(name, config, seed))
  return [rel]


def _job(args):
  kind, out_dir, item, config, seed = args
  if kind == "speaker":
    return _write_speaker(out_dir, item, config, seed)
  return _write_background(out_dir, item, config, seed)


def make_keyword_dataset(out_dir, config=None, seed=None):
  """Writes the keyword data set (layout in the module doc) into `out_dir`.

  Writes in place; `generate_keywords` wraps it to appear only when
  complete.

  Args:
    out_dir: directory (created; must not already hold clips or lists).
    config: `get_config()`-like ConfigDict or dict of overrides (checked
      before any work, never modified).
    seed: overrides config.seed.

  Returns:
    {"train"/"validation"/"test": {"speakers": int, "clips": int},
     "words": int, "background": [file names]}.

  Raises:
    ValueError for a bad config field or an out_dir that already holds a
    data set.
  """
  settings = generator_settings(config, seed)
  config = check_config(config)
  seed = settings["seed"]
  for name in (VALIDATION_LIST, TESTING_LIST, BACKGROUND_DIR) + tuple(
      config.words):
    if os.path.exists(os.path.join(out_dir, name)):
      raise ValueError(f"{os.path.join(out_dir, name)}: already exists; "
                       "refusing to mix two data sets")
  plan = plan_speakers(config, seed)
  for d in tuple(config.words) + (BACKGROUND_DIR,):
    os.makedirs(os.path.join(out_dir, d), exist_ok=True)
  jobs = [("speaker", out_dir, s, config, seed) for s in plan]
  jobs += [("background", out_dir, b, config, seed) for b in BACKGROUND_NOISES]
  results = workers.map_jobs(_job, jobs, config.num_workers,
                             "keyword speakers")
  summary = {"words": len(config.words)}
  lists = {"validation": VALIDATION_LIST, "test": TESTING_LIST}
  for split in SPLITS:
    paths = sorted(p for s, r in zip(plan, results) if s["split"] == split
                   for p in r)
    summary[split] = dict(speakers=sum(s["split"] == split for s in plan),
                          clips=len(paths))
    if split in lists:
      provenance.write_text_atomic(os.path.join(out_dir, lists[split]),
                                   "".join(p + "\n" for p in paths))
  summary["background"] = [f"{b}.wav" for b in BACKGROUND_NOISES]
  return summary


def generate_keywords(root, config=None, seed=None):
  """`make_keyword_dataset` into `<root>.partial`, renamed to `root` when
  complete (see audio_io.generate_atomically).

  Returns:
    The summary, or None when `root` already holds the data set of these
    settings (nothing done).

  Raises:
    ValueError for a bad config, or a `root` holding another data set (the
    differing settings named) or other files.
  """
  settings = generator_settings(config, seed)
  return audio_io.generate_atomically(
      root, settings,
      lambda partial: make_keyword_dataset(partial, config, settings["seed"]),
      "keyword data set")


def digest(root):
  """sha256 over every file's relative path and bytes (for tests/records)."""
  h = hashlib.sha256()
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    for name in sorted(filenames):
      path = os.path.join(dirpath, name)
      h.update(os.path.relpath(path, root).encode())
      with open(path, "rb") as f:
        h.update(f.read())
  return h.hexdigest()
