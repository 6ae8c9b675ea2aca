"""NIST SPHERE / RIFF audio, .PHN files, the folding tables, reader errors."""
import os
import shutil

import numpy as np
import pytest
import soundfile

from recon_jax import data
from recon_jax.data import phones
from recon_jax.data import sphere
from recon_jax.data import timit
from recon_jax.data.errors import CorpusError

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "timit_mini")
FIXTURE_WAV = os.path.join(FIXTURE, "TRAIN", "DR1", "FAKS0", "SX13.WAV")

# The fixture's header, byte for byte as TIMIT writes it (big-endian data).
FIXTURE_HEADER = (
    b"NIST_1A\n   1024\n"
    b"database_id -s5 TIMIT\n"
    b"database_version -s3 1.0\n"
    b"utterance_id -s9 aks0_sx13\n"
    b"channel_count -i 1\n"
    b"sample_count -i 3200\n"
    b"sample_rate -i 16000\n"
    b"sample_min -i -3697\n"
    b"sample_max -i 3696\n"
    b"sample_n_bytes -i 2\n"
    b"sample_byte_format -s2 10\n"
    b"sample_sig_bits -i 16\n"
    b"end_head\n")


def _fixture_signal(f0):
  t = np.arange(3200) / 16000
  return np.round(3000 * np.sin(2 * np.pi * f0 * t) * np.hanning(3200)
                  + 700 * np.sin(2 * np.pi * 2900 * t)).astype(np.int16)


def _sphere_bytes(fields, samples=b"", size=1024):
  text = "NIST_1A\n   1024\n" + "".join(f"{l}\n" for l in fields) + "end_head\n"
  return text.encode().ljust(size, b" ") + samples


PCM_FIELDS = ["channel_count -i 1", "sample_count -i 4", "sample_rate -i 16000",
              "sample_n_bytes -i 2", "sample_byte_format -s2 01"]


# --- SPHERE and RIFF -------------------------------------------------------


def test_fixture_header_is_real_timit_format():
  with open(FIXTURE_WAV, "rb") as f:
    raw = f.read()
  assert len(raw) == 1024 + 2 * 3200
  assert raw[:1024] == FIXTURE_HEADER.ljust(1024, b" ")
  fields, size = sphere.read_sphere_header(FIXTURE_WAV, raw)
  assert size == 1024
  assert fields["utterance_id"] == "aks0_sx13"
  assert fields["sample_byte_format"] == "10"


def test_fixture_big_and_little_endian_decode():
  samples, rate = sphere.read_sphere(FIXTURE_WAV)
  assert rate == 16000
  np.testing.assert_array_equal(samples, _fixture_signal(220.0))
  little = os.path.join(FIXTURE, "TEST", "DR1", "MDAB0", "SI1039.WAV")
  np.testing.assert_array_equal(sphere.read_audio(little),
                                _fixture_signal(130.0))


def test_sphere_round_trip(tmp_path):
  x = np.random.default_rng(0).integers(-32768, 32768, 5000).astype(np.int16)
  path = str(tmp_path / "x.wav")
  sphere.write_sphere(path, x, 16000, utterance_id="abc0_sx1")
  y, rate = sphere.read_sphere(path)
  assert rate == 16000 and y.dtype == np.int16
  np.testing.assert_array_equal(x, y)
  assert os.path.getsize(path) == 1024 + 2 * len(x)


def test_riff_wav_reads_like_sphere(tmp_path):
  x = _fixture_signal(220.0)
  path = str(tmp_path / "x.wav")
  soundfile.write(path, x, 16000, subtype="PCM_16")
  np.testing.assert_array_equal(data.read_audio(path), x)
  soundfile.write(path, x, 8000, subtype="PCM_16")
  with pytest.raises(CorpusError, match=r"x\.wav: sample rate 8000 Hz"):
    data.read_audio(path)


@pytest.mark.parametrize("subtype,exact", [("FLOAT", True), ("DOUBLE", True),
                                           ("PCM_24", True), ("PCM_32", True),
                                           ("PCM_U8", False), ("ULAW", False)])
def test_other_riff_sample_formats_read_in_int16_units(tmp_path, subtype,
                                                       exact):
  """A float WAV used to read as {-1, 0, 1} (int16 truncation) or silent."""
  x = _fixture_signal(220.0)
  path = str(tmp_path / "x.wav")
  soundfile.write(path, x / 32768.0, 16000, subtype=subtype)
  y = data.read_audio(path)
  assert y.dtype == np.float32 and y.shape == x.shape
  if exact:
    np.testing.assert_array_equal(y, x.astype(np.float32))
  else:  # 8-bit codings: within one 8-bit step (256 in int16 units)
    np.testing.assert_allclose(y, x, rtol=0, atol=256)
  soundfile.write(path, 2.0 * x / 32768.0, 16000, subtype="FLOAT")
  np.testing.assert_array_equal(data.read_audio(path), 2.0 * x)  # no clipping


@pytest.mark.parametrize("subtype", ["IMA_ADPCM", "GSM610"])
def test_lossy_riff_codecs_are_refused_by_name(tmp_path, subtype):
  path = str(tmp_path / "x.wav")
  soundfile.write(path, _fixture_signal(220.0) / 32768.0, 16000,
                  subtype=subtype)
  with pytest.raises(CorpusError, match=rf"x\.wav: RIFF WAV with {subtype}"):
    data.read_audio(path)


def test_stereo_riff_is_refused(tmp_path):
  path = str(tmp_path / "x.wav")
  x = _fixture_signal(220.0)
  soundfile.write(path, np.stack([x, x], 1), 16000, subtype="FLOAT")
  with pytest.raises(CorpusError, match="2 channels, want 1"):
    data.read_audio(path)


def _swapped_sphere(tmp_path, with_range):
  """A SPHERE file whose header says little-endian over big-endian data."""
  x = _fixture_signal(220.0)
  fields = ["channel_count -i 1", f"sample_count -i {len(x)}",
            "sample_rate -i 16000", "sample_n_bytes -i 2",
            "sample_byte_format -s2 01"]
  if with_range:
    fields += [f"sample_min -i {x.min()}", f"sample_max -i {x.max()}"]
  path = tmp_path / "swapped.wav"
  path.write_bytes(_sphere_bytes(fields, x.astype(">i2").tobytes()))
  return str(path), x


def test_sphere_byte_order_contradicting_the_data_is_refused(tmp_path):
  path, _ = _swapped_sphere(tmp_path, with_range=True)
  with pytest.raises(CorpusError, match=r"swapped.wav: samples read with "
                     r"sample_byte_format='01' span .* outside the header's "
                     r"sample_min=-3697, sample_max=3696: the data is in the "
                     r"other byte order \('10'\)"):
    data.read_audio(path)
  path, _ = _swapped_sphere(tmp_path, with_range=False)
  with pytest.raises(CorpusError, match="swapped.wav: .* look like white "
                     r"noise .* other byte order \('10'\) looks like audio"):
    data.read_audio(path)


def test_sphere_range_check_passes_real_data_and_noise(tmp_path):
  x = np.random.default_rng(1).integers(-30000, 30000, 4000).astype(np.int16)
  path = str(tmp_path / "noise.wav")
  sphere.write_sphere(path, x)  # with sample_min/max
  np.testing.assert_array_equal(data.read_audio(path), x)
  fields = ["channel_count -i 1", f"sample_count -i {len(x)}",
            "sample_rate -i 16000", "sample_byte_format -s2 01"]
  (tmp_path / "bare.wav").write_bytes(_sphere_bytes(fields, x.tobytes()))
  # White noise read in either byte order is white noise: nothing to refuse.
  np.testing.assert_array_equal(data.read_audio(str(tmp_path / "bare.wav")),
                                x)
  bad = ["sample_min -i 5", "sample_max -i -5"] + fields
  (tmp_path / "bad.wav").write_bytes(_sphere_bytes(bad, x.tobytes()))
  with pytest.raises(CorpusError, match="sample_min=5 > sample_max=-5"):
    data.read_audio(str(tmp_path / "bad.wav"))
  off = ["sample_min -i -10", "sample_max -i 10"] + fields
  (tmp_path / "off.wav").write_bytes(_sphere_bytes(off, x.tobytes()))
  with pytest.raises(CorpusError, match="does not describe this data"):
    data.read_audio(str(tmp_path / "off.wav"))


@pytest.mark.parametrize("fields,samples,pattern", [
    (["sample_coding -s26 pcm,embedded-shorten-v2.00"] + PCM_FIELDS,
     b"\0" * 8, "compressed SPHERE.*shorten"),
    (PCM_FIELDS, b"\1\0\2\0", "truncated: header says 4 samples, file holds 2"),
    (["sample_count -i 4", "sample_n_bytes -i 2"], b"\1\0" * 4,
     "no sample_rate"),
    (["sample_count -x 4"] + PCM_FIELDS[2:], b"\1\0" * 4, "corrupt SPHERE"),
    (["sample_n_bytes -i 1"] + PCM_FIELDS[:3], b"\1\0" * 4, "want 2"),
    (["sample_byte_format -s2 21"] + PCM_FIELDS[:4], b"\1\0" * 4,
     "unknown sample_byte_format"),
    (PCM_FIELDS[:2] + ["sample_rate -i 8000"] + PCM_FIELDS[3:], b"\1\0" * 4,
     "sample rate 8000 Hz, want 16000"),
    (PCM_FIELDS, b"\0" * 8, "silent file"),
])
def test_bad_sphere_files_name_file_and_problem(tmp_path, fields, samples,
                                                pattern):
  path = tmp_path / "bad.wav"
  path.write_bytes(_sphere_bytes(fields, samples))
  with pytest.raises(CorpusError, match=pattern) as e:
    data.read_audio(str(path))
  assert str(path) in str(e.value)


def test_truncated_or_headerless_files(tmp_path):
  path = tmp_path / "short.wav"
  path.write_bytes(_sphere_bytes(PCM_FIELDS)[:600])
  with pytest.raises(CorpusError, match="short.wav: truncated or corrupt"):
    data.read_audio(str(path))
  path.write_bytes(_sphere_bytes(PCM_FIELDS).replace(b"end_head", b"end_xxxx")
                   + b"\1\0" * 4)
  with pytest.raises(CorpusError, match="no end_head"):
    data.read_audio(str(path))
  path.write_bytes(b"NIST_1A\n   zz24\n" + b" " * 1100)
  with pytest.raises(CorpusError, match="bad header size"):
    data.read_audio(str(path))
  path.write_bytes(b"\x00" * 2048)
  with pytest.raises(CorpusError, match="neither NIST SPHERE nor RIFF"):
    data.read_audio(str(path))
  with pytest.raises(FileNotFoundError, match="missing.wav"):
    data.read_audio(str(tmp_path / "missing.wav"))


# --- Phone tables ----------------------------------------------------------

# Lee & Hon (1989) as published in Kaldi egs/timit/s5/conf/phones.60-48-39.map:
# "61 48 39"; q has no class (removed).
PUBLISHED = """
aa aa aa
ae ae ae
ah ah ah
ao ao aa
aw aw aw
ax ax ah
ax-h ax ah
axr er er
ay ay ay
b b b
bcl vcl sil
ch ch ch
d d d
dcl vcl sil
dh dh dh
dx dx dx
eh eh eh
el el l
em m m
en en n
eng ng ng
epi epi sil
er er er
ey ey ey
f f f
g g g
gcl vcl sil
h# sil sil
hh hh hh
hv hh hh
ih ih ih
ix ix ih
iy iy iy
jh jh jh
k k k
kcl cl sil
l l l
m m m
n n n
ng ng ng
nx n n
ow ow ow
oy oy oy
p p p
pau sil sil
pcl cl sil
q
r r r
s s s
sh sh sh
t t t
tcl cl sil
th th th
uh uh uh
uw uw uw
ux uw uw
v v v
w w w
y y y
z z z
zh zh sh
"""


def test_folding_tables_match_published():
  rows = [l.split() for l in PUBLISHED.strip().splitlines()]
  assert len(rows) == 61
  assert sorted(phones.timit61()) == sorted(r[0] for r in rows)
  fold48 = phones.fold_61_to_48()
  fold39 = phones.fold_48_to_39()
  for row in rows:
    if len(row) == 1:
      assert fold48[row[0]] is None
    else:
      assert fold48[row[0]] == row[1]
      assert fold39[row[1]] == row[2]
  assert len(phones.phones48()) == 48 and len(phones.phones39()) == 39
  assert set(phones.phones48()) == {r[1] for r in rows if len(r) > 1}
  assert set(phones.phones39()) == {r[2] for r in rows if len(r) > 1}
  ids = phones.class_ids_48_to_39()
  for i, p in enumerate(phones.phones48()):
    assert phones.phones39()[ids[i]] == fold39[p]


def test_read_phn_fixture():
  phn = os.path.join(FIXTURE, "TRAIN", "DR1", "FAKS0", "SX13.PHN")
  assert data.read_phn(phn, 3200) == [(0, 600, "h#"), (600, 1350, "sh"),
                                      (1350, 2400, "iy"), (2400, 2480, "q"),
                                      (2480, 3200, "h#")]


@pytest.mark.parametrize("text,pattern", [
    ("0 100 h#\n100 200 zz\n", r":2: unknown TIMIT label 'zz'"),
    ("0 100 h#\n100 5000 iy\n", r":2: segment 100..5000 is outside"),
    ("0 100 h#\n50 200 iy\n", r":2: .*out of order"),
    ("0 100\n", r":1: want 'start end label'"),
    ("0 x1 h#\n", r":1: sample markers are not integers"),
    ("100 100 h#\n", r":1: bad segment"),
    ("\n", r"no phones"),
])
def test_bad_phn_lines(tmp_path, text, pattern):
  path = tmp_path / "X.PHN"
  path.write_text(text)
  with pytest.raises(CorpusError, match=pattern) as e:
    data.read_phn(str(path), num_samples=1000)
  assert str(path) in str(e.value)


# --- Reader on the fixture corpus --------------------------------------------


def test_reader_on_fixture_drops_q_and_slices():
  waves, labels, utt_ids, utts = data.read_phones(FIXTURE, "TRAIN")
  names = phones.phones48()
  assert [names[i] for i in labels] == ["sil", "sh", "iy", "sil"]
  x = _fixture_signal(220.0)
  np.testing.assert_array_equal(waves[1], x[600:1350])
  np.testing.assert_array_equal(waves[3], x[2480:3200])
  assert [u["speaker"] for u in utts] == ["FAKS0"]


def test_reader_missing_class_is_an_error(tmp_path):
  with pytest.raises(CorpusError, match=r"TRAIN: no examples of class\(es\)"):
    data.load_phone_data(FIXTURE, cache=False, window_length=267)
  with pytest.raises(CorpusError, match="class 0 has no examples"):
    data.balanced_indices(np.array([1, 1, 2]), 5, 0, num_classes=3)


def _copy_fixture(tmp_path):
  root = str(tmp_path / "corpus")
  shutil.copytree(FIXTURE, root)
  return root, os.path.join(root, "TRAIN", "DR1", "FAKS0")


def test_reader_errors_name_the_file(tmp_path):
  root, spk = _copy_fixture(tmp_path)
  os.remove(os.path.join(spk, "SX13.PHN"))
  with pytest.raises(FileNotFoundError, match="SX13.WAV: no .PHN file"):
    data.list_utterances(root, "TRAIN")
  shutil.copy(os.path.join(FIXTURE, "TRAIN", "DR1", "FAKS0", "SX13.PHN"),
              os.path.join(spk, "SX13.PHN"))
  os.remove(os.path.join(spk, "SX13.WAV"))
  with pytest.raises(FileNotFoundError, match="SX13.PHN: no .WAV file"):
    data.list_utterances(root, "TRAIN")
  with open(os.path.join(spk, "SX13.WAV"), "wb") as f:
    f.write(_sphere_bytes(PCM_FIELDS, b"\1\0" * 4))
  with pytest.raises(CorpusError, match=r"SX13.PHN:1: segment 0..600 is "
                     r"outside the waveform \(4 samples\)"):
    data.read_phones(root, "TRAIN")


def test_reader_empty_and_missing_directories(tmp_path):
  with pytest.raises(FileNotFoundError, match="corpus directory not found"):
    data.list_utterances(str(tmp_path / "nope"), "TRAIN")
  with pytest.raises(CorpusError, match="empty corpus directory"):
    data.list_utterances(str(tmp_path), "TRAIN")
  os.makedirs(tmp_path / "TRAIN" / "DR1" / "MXXX0")
  with pytest.raises(CorpusError, match="no utterances"):
    data.list_utterances(str(tmp_path), "TRAIN")


def test_reader_case_insensitive_nested_and_sa_dropped(tmp_path):
  root = tmp_path / "timit_copy"
  spk = root / "timit" / "train" / "dr1" / "faks0"
  os.makedirs(spk)
  src = os.path.join(FIXTURE, "TRAIN", "DR1", "FAKS0")
  shutil.copy(os.path.join(src, "SX13.WAV"), spk / "sx13.wav")
  shutil.copy(os.path.join(src, "SX13.PHN"), spk / "sx13.phn")
  shutil.copy(os.path.join(src, "SX13.WAV"), spk / "sa1.wav")
  shutil.copy(os.path.join(src, "SX13.PHN"), spk / "sa1.phn")
  utts = data.list_utterances(str(root), "TRAIN")
  assert [u["utterance"] for u in utts] == ["SX13"]
  utts = data.list_utterances(str(root), "TRAIN", drop_sa=False)
  assert [u["utterance"] for u in utts] == ["SA1", "SX13"]
  assert timit.find_split_dir(str(root), "TRAIN").endswith("train")


def test_reader_converted_copies_beside_sphere(tmp_path):
  # Layout of a common converted copy: X.WAV (SPHERE) and X.WAV.wav (RIFF).
  spk = tmp_path / "data" / "TRAIN" / "DR1" / "FAKS0"
  os.makedirs(spk)
  src = os.path.join(FIXTURE, "TRAIN", "DR1", "FAKS0")
  x = _fixture_signal(220.0)
  soundfile.write(str(spk / "SX13.WAV.wav"), x, 16000, subtype="PCM_16")
  shutil.copy(os.path.join(src, "SX13.PHN"), spk / "SX13.PHN")
  utts = data.list_utterances(str(tmp_path), "TRAIN")
  assert utts[0]["wav"].endswith("SX13.WAV.wav")
  shutil.copy(os.path.join(src, "SX13.WAV"), spk / "SX13.WAV")
  utts = data.list_utterances(str(tmp_path), "TRAIN")
  assert len(utts) == 1 and utts[0]["wav"].endswith("SX13.WAV")
  waves, _, _, _ = data.read_phones(str(tmp_path), "TRAIN")
  np.testing.assert_array_equal(waves[1], x[600:1350])


def test_read_checked_clip_names_the_argument_that_resamples(tmp_path):
  """The library call's message names its own keyword (resample_clip)."""
  from recon_jax.data import audio_io  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / "clip16k.wav")
  soundfile.write(path, 0.5 * np.sin(np.arange(16000) / 5.0), 16000)
  with pytest.raises(audio_io.AudioError, match="set resample_clip=True"):
    audio_io.read_checked_clip(path, sample_rate=8000)
  clip = audio_io.read_checked_clip(path, sample_rate=8000,
                                    resample_clip=True)
  assert clip.samples.shape == (8000,) and clip.file_rate == 16000


def test_a_stereo_clip_whose_channels_cancel_is_refused(tmp_path):
  from recon_jax.data import audio_io  # pylint: disable=g-import-not-at-top
  x = 0.5 * np.sin(np.arange(8000) / 5.0)
  path = str(tmp_path / "inverted.wav")
  soundfile.write(path, np.stack([x, -x], 1), 8000, subtype="FLOAT")
  with pytest.raises(audio_io.AudioError, match="2 channels cancel when "
                     "averaged to mono"):
    audio_io.read_checked_clip(path)
  soundfile.write(path, np.stack([x, 0.5 * x], 1), 8000, subtype="FLOAT")
  clip = audio_io.read_checked_clip(path)  # In phase: accepted, averaged.
  assert clip.channels == 2 and np.max(np.abs(clip.samples)) == pytest.approx(
      1.0)
