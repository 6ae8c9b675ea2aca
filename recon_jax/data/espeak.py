"""espeak-ng through its C API (ctypes): audio plus exact phoneme sample positions.

The `espeakng-loader` wheel ships libespeak-ng.so and espeak-ng-data, so speech
can be made with no network. espeak-ng keeps global state and is not thread
safe: use it from one thread per process (the corpus generator runs worker
processes, not threads).
"""
import contextlib
import ctypes
import functools
import os

import _ctypes

import numpy as np

from recon_jax.data.errors import CorpusError

SAMPLE_RATE = 22050  # espeak-ng's fixed output rate.

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_PARAM_WORDGAP = 7


class _EventId(ctypes.Union):
  _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p),
              ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
  _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
              ("text_position", ctypes.c_int), ("length", ctypes.c_int),
              ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
              ("user_data", ctypes.c_void_p), ("id", _EventId)]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short),
                                  ctypes.c_int, ctypes.POINTER(_Event))

# Filled by the callback during one `synthesize` call.
_chunks = []
_events = []


def _on_synth(wav, num_samples, events):
  if num_samples > 0:
    _chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
  i = 0
  while events[i].type != _EVENT_LIST_TERMINATED:
    e = events[i]
    if e.type == _EVENT_PHONEME:
      _events.append(("phoneme", e.sample, e.id.string.decode("ascii", "replace"),
                      e.text_position, e.length))
    elif e.type == _EVENT_WORD:
      _events.append(("word", e.sample, "", e.text_position, e.length))
    i += 1
  return 0  # Keep synthesising.


_callback = _SynthCallback(_on_synth)  # Module-level: must outlive the library's use.


@functools.lru_cache(maxsize=None)
def _libc():
  return ctypes.CDLL(None)


@contextlib.contextmanager
def _fresh_library():
  """Loads and initialises libespeak-ng, and unloads it afterwards.

  espeak-ng keeps synthesis state in C statics that no API call resets (e.g.
  the pitch-flutter phase in wavegen.c's AdvanceParameters), so the same call
  gives slightly different audio depending on what was spoken before. Loading
  a fresh copy for every utterance makes each one a function of its arguments
  only (the reload costs a few ms).
  """
  import espeakng_loader  # pylint: disable=g-import-not-at-top
  path = espeakng_loader.get_library_path()
  lib = ctypes.CDLL(path)
  try:
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int,
                                      ctypes.c_char_p, ctypes.c_int]
    # The library looks for <path>/espeak-ng-data.
    rate = lib.espeak_Initialize(
        _AUDIO_OUTPUT_SYNCHRONOUS, 0,
        os.path.dirname(espeakng_loader.get_data_path()).encode(),
        _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT)
    if rate != SAMPLE_RATE:
      raise CorpusError(f"{path}: espeak_Initialize returned {rate}, expected "
                        f"sample rate {SAMPLE_RATE}")
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback(_callback)
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int,
                                        ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t,
                                 ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p,
                                 ctypes.c_void_p]
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    yield lib
    lib.espeak_Terminate()
  finally:
    _ctypes.dlclose(lib._handle)  # pylint: disable=protected-access


def synthesize(text, voice="en-us", rate=175, pitch=50, pitch_range=50,
               seed=0):
  """Speaks `text` and returns the audio and its phoneme/word events.

  Args:
    text: English text (UTF-8).
    voice: espeak voice name, optionally with a variant ("en-us+m3").
    rate: words per minute (espeak: 80..450).
    pitch: base pitch, 0..100.
    pitch_range: pitch range, 0..100.
    seed: seeds espeak-ng's noise generator (and the C library's rand(), which
      some voices use): the same arguments give the same samples whatever was
      synthesised before.

  Returns:
    samples: int16 (T,) at `SAMPLE_RATE`.
    events: list of (kind, sample, phoneme, text_position, text_length) with kind
      "phoneme" or "word"; `sample` is the exact offset into `samples` (the
      event's `sample` field, which espeak-ng computes from its output buffer
      position; `audio_position` is the same rounded to ms). A phoneme event
      marks where espeak starts that phoneme: for p/t/k that is the burst,
      their closure silence ends the previous phoneme. `phoneme` is espeak's
      mnemonic with stress marks ("'A@").
  """
  with _fresh_library() as lib:
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
      raise CorpusError(f"espeak-ng: no voice named {voice!r}")
    for param, value in ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch),
                         (_PARAM_RANGE, pitch_range), (_PARAM_VOLUME, 100),
                         (_PARAM_WORDGAP, 0)):
      lib.espeak_SetParameter(param, int(value), 0)
    lib.espeak_ng_SetRandSeed(int(seed))
    _libc().srand(ctypes.c_uint(int(seed) & 0xFFFFFFFF))
    _chunks.clear()
    _events.clear()
    data = text.encode("utf-8") + b"\0"
    err = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8,
                           None, None)
    if err != 0:
      raise CorpusError(f"espeak-ng: espeak_Synth failed ({err}) on {text!r}")
    lib.espeak_Synchronize()
  samples = (np.concatenate(_chunks) if _chunks
             else np.zeros((0,), np.int16)).astype(np.int16)
  events = list(_events)
  _chunks.clear()
  _events.clear()
  return samples, events
