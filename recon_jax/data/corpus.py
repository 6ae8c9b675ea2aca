"""A TIMIT-layout corpus made offline by espeak-ng (docs/methods.md, A0).

Sentences (SA1/SA2 plus the package's own SX/SI prompts in text/sentences.txt)
are spoken by espeak-ng "speakers" (accent x voice variant x rate x pitch),
espeak phonemes are mapped to TIMIT's 61 labels at their exact sample
positions, the audio is resampled 22050 -> 16000 Hz and everything is written
like the real corpus:

  out_dir/{TRAIN,TEST}/DR1..DR8/<SPEAKER>/<UTT>.{WAV,PHN,WRD,TXT}

WAV files are NIST SPHERE, 16-bit, 16 kHz. The output depends only on the
config and the seed (not on the number of worker processes).

Markers: `generation_in_progress.json` is written first and removed last,
after `generator_config.json` (the settings, the completion marker); the
reader (recon_jax.data.timit) refuses a corpus that still has the first, so
a killed generation is never read as complete. `prepare.generate_corpus`
also writes into `<dir>.partial` and renames it when complete.
"""
import numbers
import os
import re
import string

import ml_collections
import numpy as np
import scipy.signal

from recon_jax import provenance
from recon_jax.data import espeak
from recon_jax.data import phones
from recon_jax.data import sphere
from recon_jax.data import workers
from recon_jax.data.errors import CorpusError
from recon_jax.data.timit import GENERATOR_CONFIG
from recon_jax.data.timit import IN_PROGRESS

SAMPLE_RATE = 16000
# TIMIT dialect region -> espeak-ng English accent (all ship with espeakng-loader).
DIALECT_ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029",
                   "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc")
_RHOTIC = frozenset({"en-us", "en-us-nyc", "en-gb-scotland"})
_AMERICAN = frozenset({"en-us", "en-us-nyc"})
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8")
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5")

SA_SENTENCES = (
    ("SA1", "She had your dark suit in greasy wash water all year."),
    ("SA2", "Don't ask me to carry an oily rag like that."),
)
_SENTENCES = os.path.join(os.path.dirname(__file__), "text", "sentences.txt")

# espeak-ng English phoneme mnemonics (stress marks stripped) -> TIMIT labels.
# Two labels: an r-coloured vowel or a diphthong into schwa, split at
# `_SPLIT_FRACTION` (espeak glides from one target to the other with no
# acoustic landmark to cut at). Tuples are (rhotic accents, other accents).
_VOWELS = {
    "a": "ae", "a#": "ax", "a2": "ae", "A:": "aa", "0": "aa", "E": "eh",
    "E2": "eh", "E:": "eh", "e": "ey", "e:": "ey", "eI": "ey", "I": "ih",
    "I2": "ix", "I#": "ix", "i": "iy", "i:": "iy", "O:": "ao", "O2": "ao",
    "O": "ao", "OI": "oy", "oU": "ow", "@U": "ow", "o:": "ow", "V": "ah",
    "U": "uh", "u:": "uw", "aa": "ae", "3:": "er", "@": "ax", "@2": "ax", "@5": "ax",
    "@L": "el", "aI": "ay", "aI2": "ay", "aI3": "ay", "aU": "aw", "n-": "en",
    "m-": "em",
}
_R_COLOURED = {
    "A@": (("aa", "r"), ("aa",)),
    "e@": (("eh", "r"), ("eh",)),
    "i@": (("iy", "r"), ("ih", "ax")),
    "i@3": (("iy", "r"), ("ih", "ax")),
    "IR": (("ih", "r"), ("er",)),
    "VR": (("ah", "r"), ("er",)),
    "O@": (("ao", "r"), ("ao",)),
    "o@": (("ow", "r"), ("ao",)),
    "U@": (("uh", "r"), ("uh", "ax")),
    "aI@": (("ay", "er"), ("ay", "ax")),
    "aU@": (("aw", "er"), ("aw", "ax")),
    "3": (("axr",), ("ax",)),
}
_CONSONANTS = {
    "f": "f", "v": "v", "T": "th", "D": "dh", "s": "s", "z": "z", "S": "sh",
    "Z": "zh", "h": "hh", "x": "hh", "C": "hh", "m": "m", "n": "n", "N": "ng",
    "l": "l", "l/": "l", "r": "r", "r-": "r", "R": "r", "w": "w", "w#": "w",
    "W": "w", "j": "y", ";": "y", "t#": "dx", "d#": "dx", "?": "q",
}
# Stops and affricates: (closure, release).
_STOPS = {
    "p": ("pcl", "p"), "b": ("bcl", "b"), "t": ("tcl", "t"), "t2": ("tcl", "t"),
    "t[": ("tcl", "t"), "d": ("dcl", "d"), "d[": ("dcl", "d"), "k": ("kcl", "k"),
    "g": ("gcl", "g"), "tS": ("tcl", "ch"), "dZ": ("dcl", "jh"),
}
_VOICELESS_STOPS = frozenset({"p", "t", "t2", "t[", "k", "tS"})
_SPLIT_FRACTION = 0.6
_VOWEL_LABELS = frozenset(
    "iy ih eh ey ae aa aw ay ah ao oy ow uh uw ux er ax ix axr ax-h".split())
_VOICELESS_LABELS = frozenset(
    "p t k pcl tcl kcl f th s sh ch hh".split())


def get_config(size="default"):
  """Corpus settings; `size` is "default" (the pipeline's) or "tiny" (tests)."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  # Speakers per dialect region (8 regions); TIMIT has ~58 train, 21 test.
  c.train_speakers_per_dialect = 6
  c.test_speakers_per_dialect = 2
  c.sx_per_speaker = 5  # TIMIT: 5 SX, 3 SI and the 2 SA per speaker.
  c.si_per_speaker = 3
  c.rate_range = (140, 200)  # espeak words per minute.
  c.pitch_range = (35, 65)  # espeak base pitch, 0..100.
  c.pitch_spread_range = (40, 70)  # espeak pitch range (intonation), 0..100.
  c.gain = 0.4  # espeak peaks near full scale; TIMIT peaks are ~1/3 of it.
  c.dither_std = 2.0  # Background noise, int16 units: no exact-zero closures.
  # h# padding at each end. With the rates above this puts the 95th percentile
  # of TRAIN phone lengths at ~2500 samples for any seed (2496..2519 over
  # seeds 0-4), near TIMIT's 2554: 16 STFT frames, as on TIMIT.
  c.edge_silence_ms = (70, 170)
  c.epi_max_ms = 30.0  # Shorter sentence-internal pauses are labelled epi.
  c.num_workers = 2
  if size == "tiny":
    c.train_speakers_per_dialect = 1
    c.test_speakers_per_dialect = 1
    c.sx_per_speaker = 2
    c.si_per_speaker = 1
    c.num_workers = 1
  elif size != "default":
    raise ValueError(f"unknown corpus size {size!r}; want 'default' or 'tiny'")
  return c


# Fields that do not change a corpus's bytes (left out of its settings).
_NOT_IN_SETTINGS = ("num_workers",)
_VARIANTS_PER_ACCENT = len(MALE_VARIANTS) + len(FEMALE_VARIANTS)


def _int(config, name, lo, hi=None):
  value = config[name]
  if isinstance(value, (bool, np.bool_)) or not isinstance(value,
                                                           numbers.Integral):
    raise ValueError(f"generator.{name}={value!r}: must be an integer")
  if value < lo or (hi is not None and value > hi):
    raise ValueError(f"generator.{name}={value}: must be in [{lo}, "
                     f"{'inf' if hi is None else hi}]")
  return int(value)


def _range(config, name, lo, hi):
  value = config[name]
  try:
    a, b = value
    ok = all(isinstance(v, numbers.Real) and not isinstance(v, bool)
             for v in (a, b))
  except (TypeError, ValueError):
    ok = False
  if not ok or not lo <= a <= b <= hi:
    raise ValueError(f"generator.{name}={value!r}: want (low, high) with "
                     f"{lo} <= low <= high <= {hi}")
  return a, b


def _positive(config, name, allow_zero=False):
  value = config[name]
  if (isinstance(value, bool) or not isinstance(value, numbers.Real) or
      not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero)):
    raise ValueError(f"generator.{name}={value!r}: must be a finite number "
                     f"{'>= 0' if allow_zero else '> 0'}")


def check_config(config=None) -> ml_collections.ConfigDict:
  """A complete generator config: `get_config()` updated with `config`.

  Checks every field before any audio is made. `config` (a ConfigDict or a
  dict of overrides) is not modified, locked or not.

  Raises:
    ValueError naming an unknown (e.g. misspelt) field or a value outside
    its range.
  """
  base = get_config()
  if config is not None:
    overrides = dict(config)
    unknown = sorted(set(overrides) - set(base.keys()))
    if unknown:
      raise ValueError(f"generator: unknown field(s) {unknown}; known: "
                       f"{sorted(base.keys())}")
    base.update(overrides)
  c = base
  _int(c, "seed", 0)
  _int(c, "train_speakers_per_dialect", 1)
  _int(c, "test_speakers_per_dialect", 1)
  pool, _, num_sx = load_sentences()
  _int(c, "sx_per_speaker", 0, num_sx)
  _int(c, "si_per_speaker", 0, len(pool) - num_sx)
  _range(c, "rate_range", 80, 450)  # espeak's words per minute
  pitch = _range(c, "pitch_range", 0, 100)
  _range(c, "pitch_spread_range", 0, 100)
  _positive(c, "gain")
  _positive(c, "dither_std", allow_zero=True)
  _range(c, "edge_silence_ms", 0, 10_000)
  _positive(c, "epi_max_ms", allow_zero=True)
  _int(c, "num_workers", 1)
  # Every speaker of an accent needs its own (variant, pitch) at a given rate.
  voices = _VARIANTS_PER_ACCENT * (int(pitch[1]) - int(np.ceil(pitch[0])) + 1)
  speakers = c.train_speakers_per_dialect + c.test_speakers_per_dialect
  if speakers > voices:
    raise ValueError(f"generator: {speakers} speakers per dialect region but "
                     f"only {voices} distinct voices (variants x pitches in "
                     f"pitch_range={tuple(c.pitch_range)}); widen pitch_range "
                     "or use fewer speakers")
  return c


def generator_settings(config=None, seed=None) -> dict:
  """What a corpus's bytes depend on, as JSON: the checked config (less
  num_workers) with the seed actually used."""
  c = check_config(config)
  settings = provenance.to_jsonable(c)
  for name in _NOT_IN_SETTINGS:
    settings.pop(name, None)
  if seed is not None:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(
        seed, numbers.Integral) or seed < 0:
      raise ValueError(f"corpus seed={seed!r}: must be an integer >= 0")
    settings["seed"] = int(seed)
  return settings


def same_settings(saved: dict, settings: dict) -> list:
  """Differences between a saved generator_config.json and `settings`."""
  saved = {k: v for k, v in saved.items() if k not in _NOT_IN_SETTINGS}
  return provenance.differences(saved, settings)


def load_sentences():
  """The SX/SI prompt pool: list of (name, text), coverage set first.

  The first `num_coverage` sentences (see the file's header) together hold all
  48 training classes when read by an American speaker; the first speaker of
  each split reads them, which puts every class in both splits.
  """
  with open(_SENTENCES, encoding="utf-8") as f:
    lines = [l.strip() for l in f]
  texts = [l for l in lines if l and not l.startswith("#")]
  num_coverage = None
  for l in lines:
    m = re.match(r"#\s*coverage:\s*(\d+)", l)
    if m:
      num_coverage = int(m.group(1))
  if num_coverage is None:
    raise CorpusError(f"{_SENTENCES}: no '# coverage: N' header line")
  # TIMIT numbering: SX3..SX452 are shared prompts, SI453.. are single-use ones.
  num_sx = (len(texts) * 2) // 3
  names = [f"SX{3 + i}" if i < num_sx else f"SI{453 + i}"
           for i in range(len(texts))]
  return list(zip(names, texts)), num_coverage, num_sx


def plan_speakers(config, seed):
  """Decides every speaker and the sentences they read (no audio yet).

  Returns:
    A list of dicts with keys split, dialect, speaker, accent, variant, rate,
    pitch, pitch_spread, sentences (list of (utterance_name, text)), index.
  """
  rng = np.random.default_rng([seed, 0])
  pool, num_coverage, num_sx = load_sentences()
  if not 0 < num_coverage <= num_sx:
    raise CorpusError(f"{_SENTENCES}: coverage set of {num_coverage} sentences "
                      f"does not fit the {num_sx} SX prompts")
  plan, used_ids, used_voices = [], set(), set()
  for split, per_dialect in (("TRAIN", config.train_speakers_per_dialect),
                             ("TEST", config.test_speakers_per_dialect)):
    if per_dialect < 1:
      raise ValueError(f"{split}: need at least one speaker per dialect region")
    # Rates and pitches are stratified over each split's speakers (one draw
    # per equal slice of the range, shuffled): every seed then gets the same
    # spread of speaking rates, so statistics like the 95th-percentile phone
    # length (hence the spectrogram's frame count) barely move with the seed.
    n = per_dialect * len(DIALECT_ACCENTS)
    rates = rng.permutation(_stratified(rng, n, config.rate_range))
    pitches = rng.permutation(_stratified(rng, n, config.pitch_range))
    for k in range(per_dialect):
      for d, accent in enumerate(DIALECT_ACCENTS):
        j = k * len(DIALECT_ACCENTS) + d
        rate, pitch = int(rates[j]), int(pitches[j])
        while True:
          female = bool(rng.integers(2))
          variant = str(rng.choice(FEMALE_VARIANTS if female else MALE_VARIANTS))
          voice = (accent, variant, rate, pitch)
          if voice not in used_voices:
            break
          pitch = int(rng.integers(config.pitch_range[0],
                                   config.pitch_range[1] + 1))
        used_voices.add(voice)
        while True:
          letters = "".join(rng.choice(list(string.ascii_uppercase), 3))
          speaker = ("F" if female else "M") + letters + "0"
          if speaker not in used_ids:
            break
        used_ids.add(speaker)
        if k == 0 and d == 0:  # DR1 is American: see load_sentences.
          sx = np.arange(num_coverage)
        else:
          sx = rng.choice(num_sx, config.sx_per_speaker, replace=False)
        si = num_sx + rng.choice(len(pool) - num_sx, config.si_per_speaker,
                                 replace=False)
        chosen = [pool[i] for i in sorted(np.concatenate([sx, si]))]
        plan.append(dict(
            split=split, dialect=f"DR{d + 1}", speaker=speaker, accent=accent,
            variant=variant, rate=rate, pitch=pitch,
            pitch_spread=int(rng.integers(config.pitch_spread_range[0],
                                          config.pitch_spread_range[1] + 1)),
            sentences=list(SA_SENTENCES) + list(chosen), index=len(plan)))
  return plan


def _stratified(rng, n, value_range):
  """n integers, one uniform draw from each of n equal slices of the range."""
  lo, hi = value_range
  return np.round(lo + (hi - lo) * (np.arange(n) + rng.uniform(size=n)) / n)


def _quiet_tail(x, lo, hi, frame=22, threshold=35.0):
  """Start of the run of quiet 1 ms frames that ends at `hi` (not before lo)."""
  power = 10.0 ** (threshold / 10.0)
  q = hi
  while q - frame >= lo and np.mean(np.square(x[q - frame:q])) < power:
    q -= frame
  return q


def _burst_onset(x, start, end, window=220, step=22):
  """Sample in [start, end) where the energy rises most (a stop's release).

  espeak voices a voiced stop's closure (a low "voice bar") and releases it
  late in the phoneme: the burst is where the energy in (up to) 10 ms after a
  point most exceeds the 10 ms before it, searched over the segment's last
  70% but at least 5 ms before its end, so that the rise into the next phone
  does not count. Falls back to 70% of the segment when it is too short or
  shows no clear rise (< 3 dB).
  """
  fallback = start + int(round(0.7 * (end - start)))
  lo = max(start + int(0.3 * (end - start)), window)
  hi = end - window // 2
  best, best_jump = fallback, 3.0
  for p in range(lo, hi, step):
    before = np.mean(np.square(x[p - window:p])) + 1.0
    after = np.mean(np.square(x[p:min(p + window, end)])) + 1.0
    jump = 10.0 * np.log10(after / before)
    if jump > best_jump:
      best, best_jump = p, jump
  return best


def _is_syllabic_n(phonemes, i, last_sound):
  """Whether phonemes i, i+1 are a word-final schwa + n after t or d."""
  if i < 1 or i + 1 > last_sound:
    return False
  prev, (_, name, w), (_, nxt, w_next) = (phonemes[i - 1][1], phonemes[i],
                                          phonemes[i + 1])
  word_final = (i + 2 > last_sound or phonemes[i + 2][2] != w
                or phonemes[i + 2][1].startswith("_"))
  return (name in ("@", "@2") and nxt == "n" and w_next == w and word_final
          and prev in ("t", "d", "t2"))


def espeak_to_timit(events, audio, accent, epi_max=661, max_closure=1102):
  """Maps espeak phoneme events to contiguous TIMIT-labelled segments.

  Args:
    events: espeak.synthesize events (phoneme and word events, in order).
    audio: the float (T,) audio the events index (espeak's 22050 Hz).
    accent: the espeak accent (decides rhotic splits, flaps, 'aa').
    epi_max: sentence-internal pauses shorter than this (samples) become epi.
    max_closure: longest closure taken from a preceding pause (samples).

  Returns:
    List of [start, end, label, word] (samples of `audio`; word is the index of
    the word event the phone belongs to, or -1 for silences) covering
    [0, len(audio)) without gaps; begins and ends with h#.
  """
  phonemes, word = [], -1
  for kind, sample, name, _, _ in events:
    if kind == "word":
      word += 1
    else:
      phonemes.append((sample, name.lstrip("',=%"), word))
  rhotic = accent in _RHOTIC
  segs = []  # [start, end, label, word]
  n = len(phonemes)
  last_sound = max((i for i, p in enumerate(phonemes) if not p[1].startswith("_")),
                   default=-1)
  if last_sound < 0:
    raise CorpusError(f"espeak ({accent}) produced no phonemes")
  first_sound = min(i for i, p in enumerate(phonemes) if not p[1].startswith("_"))
  segs.append([0, phonemes[first_sound][0], "h#", -1])
  merged_into_en = set()
  for i in range(first_sound, last_sound + 1):
    if i in merged_into_en:
      continue
    start, name, w = phonemes[i]
    end = phonemes[i + 1][0] if i + 1 < n else len(audio)
    if end <= start:
      continue
    if _is_syllabic_n(phonemes, i, last_sound):
      # Word-final schwa + n after t/d ("button", "garden") is TIMIT's en.
      merged_into_en.add(i + 1)
      end = phonemes[i + 2][0] if i + 2 < n else len(audio)
      segs.append([start, end, "en", w])
    elif name.startswith("_"):
      segs.append([start, end, "epi" if end - start < epi_max else "pau", -1])
    elif name in _STOPS:
      closure, release = _STOPS[name]
      prev = segs[-1]
      lo = prev[0] + (prev[1] - prev[0]) // 2
      if prev[2] in ("h#", "pau", "epi"):
        lo = max(prev[0], start - max_closure)
      q = _quiet_tail(audio, lo, start)
      if start - q >= 110:  # >= 5 ms of silence: the closure precedes the event.
        prev[1] = q
        segs.append([q, start, closure, w])
        segs.append([start, end, release, w])
      elif name in _VOICELESS_STOPS:
        q = start - min(441, (prev[1] - prev[0]) // 2)
        prev[1] = q
        segs.append([q, start, closure, w])
        segs.append([start, end, release, w])
      else:  # Voiced closure inside the event: split at the burst.
        burst = _burst_onset(audio, start, end)
        segs.append([start, burst, closure, w])
        segs.append([burst, end, release, w])
    else:
      if name in _VOWELS:
        labels = (_VOWELS[name],)
      elif name in _R_COLOURED:
        labels = _R_COLOURED[name][0 if rhotic else 1]
      elif name in _CONSONANTS:
        labels = (_CONSONANTS[name],)
      else:
        raise CorpusError(f"espeak phoneme {name!r} (accent {accent}) has no "
                          "TIMIT mapping; add it to recon_jax/data/corpus.py")
      if name == "aa" and accent not in _AMERICAN:  # British "bath" is [A:].
        labels = ("aa",)
      if len(labels) == 1:
        segs.append([start, end, labels[0], w])
      else:
        cut = start + int(round(_SPLIT_FRACTION * (end - start)))
        segs.append([start, cut, labels[0], w])
        segs.append([cut, end, labels[1], w])
  segs.append([segs[-1][1], len(audio), "h#", -1])
  segs = [s for s in segs if s[1] > s[0]]
  # Context-dependent allophones TIMIT labels separately.
  for i, s in enumerate(segs):
    prev = segs[i - 1][2] if i > 0 else "h#"
    nxt = segs[i + 1][2] if i + 1 < len(segs) else "h#"
    if s[2] == "hh" and prev in _VOWEL_LABELS and nxt in _VOWEL_LABELS:
      s[2] = "hv"
    elif s[2] == "uw" and prev in ("y", "t", "d", "s", "z", "n"):
      s[2] = "ux"
    elif s[2] == "ax" and prev in _VOICELESS_LABELS and nxt in _VOICELESS_LABELS:
      s[2] = "ax-h"
  return segs


def _words(segs, events, text):
  """TIMIT .WRD lines: (start, end, word) from the word events and phones.

  espeak sometimes speaks two words as one unit ("in the") with a single word
  event; such a unit's phones are shared out among its words in proportion to
  their letters, never between a closure and its release (approximate, unlike
  the phone boundaries).
  """
  tokens = [(m.start() + 1, m.group()) for m in re.finditer(r"\S+", text)]
  starts = [e[3] for e in events if e[0] == "word"] + [len(text) + 2]
  out = []
  for w in range(len(starts) - 1):
    words = [t.lower().strip(string.punctuation) for pos, t in tokens
             if starts[w] <= pos < starts[w + 1]]
    words = [t for t in words if t]
    phones_w = [(a, b, label) for a, b, label, i in segs if i == w]
    if not words or not phones_w:
      continue
    letters = np.cumsum([len(t) for t in words])
    cuts = [0]
    for share in letters[:-1] / letters[-1]:
      cut = max(int(round(share * len(phones_w))), cuts[-1] + 1)
      while 0 < cut < len(phones_w) and phones_w[cut - 1][2].endswith("cl"):
        cut -= 1
      cuts.append(min(max(cut, cuts[-1] + 1), len(phones_w) - 1))
    cuts.append(len(phones_w))
    for word, lo, hi in zip(words, cuts[:-1], cuts[1:]):
      if hi > lo:
        out.append((phones_w[lo][0], phones_w[hi - 1][1], word))
  return out


def synthesize_utterance(text, speaker, config, rng):
  """Speaks one sentence as `speaker`; returns 16 kHz int16 audio and labels.

  Returns:
    samples: int16 (T,) at 16 kHz.
    phone_segments: list of (start, end, timit_label), contiguous over [0, T).
    word_segments: list of (start, end, word).
  """
  voice = f"{speaker['accent']}+{speaker['variant']}"
  raw, events = espeak.synthesize(text, voice, rate=speaker["rate"],
                                  pitch=speaker["pitch"],
                                  pitch_range=speaker["pitch_spread"])
  audio = raw.astype(np.float64)
  segs = espeak_to_timit(events, audio, speaker["accent"],
                         epi_max=int(config.epi_max_ms * espeak.SAMPLE_RATE / 1000))
  words = _words(segs, events, text)
  lo_ms, hi_ms = config.edge_silence_ms
  pad = rng.integers(lo_ms, hi_ms + 1, size=2) * espeak.SAMPLE_RATE // 1000
  audio = np.concatenate([np.zeros(pad[0]), audio, np.zeros(pad[1])])
  audio = scipy.signal.resample_poly(audio * config.gain, SAMPLE_RATE // 50,
                                     espeak.SAMPLE_RATE // 50)
  audio += rng.normal(0.0, config.dither_std, size=audio.shape)
  samples = np.clip(np.round(audio), -32768, 32767).astype(np.int16)

  def to16k(p):
    return min(len(samples),
               int(round((p + pad[0]) * SAMPLE_RATE / espeak.SAMPLE_RATE)))

  labels = [s[2] for s in segs]
  bounds = [to16k(s[0]) for s in segs] + [to16k(segs[-1][1])]
  # The padding belongs to h#, even where a closure took espeak's own silence.
  if labels[0] != "h#":
    labels.insert(0, "h#")
    bounds.insert(0, 0)
  if labels[-1] != "h#":
    labels.append("h#")
    bounds.append(len(samples))
  bounds[0], bounds[-1] = 0, len(samples)
  phone_segments = [(bounds[i], bounds[i + 1], label)
                    for i, label in enumerate(labels) if bounds[i + 1] > bounds[i]]
  word_segments = [(to16k(a), to16k(b), w) for a, b, w in words]
  return samples, phone_segments, word_segments


def _write_speaker(out_dir, speaker, config, seed):
  """Writes one speaker's utterances; returns (split, Counter of labels)."""
  rng = np.random.default_rng([seed, 1, speaker["index"]])
  spk_dir = os.path.join(out_dir, speaker["split"], speaker["dialect"],
                         speaker["speaker"])
  os.makedirs(spk_dir, exist_ok=True)
  counts = {}
  for name, text in speaker["sentences"]:
    samples, phone_segs, word_segs = synthesize_utterance(text, speaker, config,
                                                          rng)
    base = os.path.join(spk_dir, name)
    sphere.write_sphere(base + ".WAV", samples, SAMPLE_RATE,
                        utterance_id=f"{speaker['speaker'][1:].lower()}_"
                        f"{name.lower()}")
    phones.write_phn(base + ".PHN", phone_segs)
    with open(base + ".WRD", "w", encoding="ascii", newline="\n") as f:
      f.writelines(f"{a} {b} {w}\n" for a, b, w in word_segs)
    with open(base + ".TXT", "w", encoding="ascii", newline="\n") as f:
      f.write(f"0 {len(samples)} {text}\n")
    if not name.startswith("SA"):
      for _, _, label in phone_segs:
        counts[label] = counts.get(label, 0) + 1
  return speaker["split"], counts


def _worker(args):
  return _write_speaker(*args)


def make_timit_corpus(out_dir, config=None, seed=None):
  """Writes a TIMIT-layout corpus spoken by espeak-ng into `out_dir`.

  Writes `generation_in_progress.json` first and, when everything is
  written, `generator_config.json` (the settings) and removes the former:
  a killed run leaves a corpus the reader refuses. For a directory that
  appears only when complete, use `prepare.generate_corpus`.

  Args:
    out_dir: directory to create (must not hold a TRAIN or TEST directory or
      the markers).
    config: a ConfigDict like `get_config()` (or a dict of overrides of it);
      checked first (`check_config`), never modified.
    seed: overrides `config.seed` (>= 0). Same config and seed, same bytes.

  Returns:
    Summary dict: {split: {"speakers": int, "utterances": int (non-SA),
    "phones": int (non-SA, after 61 -> 48 folding), "class_counts": {label48:
    int}}}.

  Raises:
    ValueError for a bad config field (before any work); CorpusError if
    out_dir already holds a corpus, or a split would miss one of the 48
    training classes.
  """
  settings = generator_settings(config, seed)
  config = check_config(config)
  seed = settings["seed"]
  for name in ("TRAIN", "TEST", GENERATOR_CONFIG, IN_PROGRESS):
    if os.path.exists(os.path.join(out_dir, name)):
      raise CorpusError(f"{os.path.join(out_dir, name)}: already exists; "
                        "refusing to mix two corpora")
  plan = plan_speakers(config, seed)
  os.makedirs(out_dir, exist_ok=True)
  provenance.write_json_atomic(os.path.join(out_dir, IN_PROGRESS), settings)
  jobs = [(out_dir, s, config, seed) for s in plan]
  results = workers.map_jobs(_worker, jobs, config.num_workers,
                             "corpus speakers")
  fold = phones.fold_61_to_48()
  summary = {}
  for split in ("TRAIN", "TEST"):
    counts = {p: 0 for p in phones.phones48()}
    for s, c in results:
      if s == split:
        for label, k in c.items():
          if fold[label]:
            counts[fold[label]] += k
    missing = [p for p, k in counts.items() if k == 0]
    if missing:
      raise CorpusError(f"{os.path.join(out_dir, split)}: no examples of "
                        f"training classes {missing}")
    speakers = [s for s in plan if s["split"] == split]
    summary[split] = dict(
        speakers=len(speakers),
        utterances=sum(len(s["sentences"]) - len(SA_SENTENCES)
                       for s in speakers),
        phones=sum(counts.values()), class_counts=counts)
  provenance.write_json_atomic(os.path.join(out_dir, GENERATOR_CONFIG),
                               settings)
  os.remove(os.path.join(out_dir, IN_PROGRESS))
  return summary
