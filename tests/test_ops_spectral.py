"""STFT, inverse STFT and Griffin-Lim against scipy.signal."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal

from recon_jax import ops
from recon_jax.metrics import max_xcorr

PHONE = 2554  # samples of a phone at 16 kHz: 201 x 16 with the defaults


def chirps(shape, seed=0):
  """Noisy chirps (..., L) in float32."""
  rng = np.random.default_rng(seed)
  t = np.arange(shape[-1]) / 16000.
  f0 = rng.uniform(100, 2000, shape[:-1] + (1,))
  x = np.sin(2 * np.pi * (f0 + 3000 * t) * t)
  return (x + 0.1 * rng.standard_normal(shape)).astype(np.float32)


def scipy_stft(x, window_length, hop, n_fft):
  return signal.stft(x.astype(np.float64), nperseg=window_length,
                     noverlap=window_length - hop, nfft=n_fft, boundary=None,
                     padded=False)[2]


def scipy_istft(spec, window_length, hop, n_fft):
  return signal.istft(spec.astype(np.complex128), nperseg=window_length,
                      noverlap=window_length - hop, nfft=n_fft,
                      boundary=False)[1]


# (window_length, hop, n_fft, L): the thesis defaults, then a short frame with
# n_fft == window, an odd window, and hop == window (no overlap: NOLA holds).
SETTINGS = [(267, 145, 400, PHONE), (64, 16, 64, 517), (101, 37, 128, 600),
            (50, 50, 64, 333)]


def test_defaults_give_thesis_shape():
  spec = ops.stft(chirps((PHONE,)))
  assert spec.shape == (201, 16) and spec.dtype == jnp.complex64
  assert ops.stft_num_frames(PHONE) == 16


@pytest.mark.parametrize("window_length,hop,n_fft,length", SETTINGS)
def test_stft_matches_scipy(window_length, hop, n_fft, length):
  x = chirps((length,), seed=length)
  ours = np.asarray(ops.stft(x, window_length, hop, n_fft, scaling="spectrum"))
  ref = scipy_stft(x, window_length, hop, n_fft)
  assert ours.shape == ref.shape
  # float32 FFT of O(1) data: errors ~1e-7 relative to the spectrum's scale.
  np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-6 * np.abs(ref).max())


def test_stft_batched():
  x = chirps((2, 3, PHONE), seed=1)
  spec = np.asarray(ops.stft(x, scaling="spectrum"))
  assert spec.shape == (2, 3, 201, 16)
  ref = scipy_stft(x, 267, 145, 400)  # scipy transforms the last axis too
  np.testing.assert_allclose(spec, ref, rtol=0, atol=2e-6 * np.abs(ref).max())
  spec = np.asarray(ops.stft(x))
  np.testing.assert_array_equal(np.asarray(ops.stft(x[1])), spec[1])
  np.testing.assert_array_equal(np.asarray(jax.vmap(ops.stft)(x[1])), spec[1])


def test_default_scaling_is_the_plain_dft_of_windowed_frames():
  """MATLAB's spectrogram (the thesis): no division by the window's sum."""
  x = chirps((PHONE,), seed=3).astype(np.float64)
  n = np.arange(267)
  win = 0.5 - 0.5 * np.cos(2 * np.pi * n / 267)  # periodic Hann
  ref = np.stack([np.fft.rfft(x[t * 145:t * 145 + 267] * win, n=400)
                  for t in range(16)], axis=-1)
  ours = np.asarray(ops.stft(x.astype(np.float32)))
  np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-6 * np.abs(ref).max())
  spectrum = np.asarray(ops.stft(x.astype(np.float32), scaling="spectrum"))
  np.testing.assert_allclose(ours, spectrum * win.sum(), rtol=1e-5,
                             atol=1e-6 * np.abs(ours).max())
  with pytest.raises(ValueError, match="scaling"):
    ops.stft(x, scaling="psd")


# scipy warns (NOLA) because the Hann window's zero at sample 0 is never
# overlapped without boundary padding; that sample is left unnormalised.
@pytest.mark.filterwarnings("ignore:NOLA condition failed")
@pytest.mark.parametrize("window_length,hop,n_fft,length", SETTINGS)
def test_istft_matches_scipy(window_length, hop, n_fft, length):
  rng = np.random.default_rng(2)
  n_frames = ops.stft_num_frames(length, window_length, hop)
  spec = (rng.standard_normal((n_fft // 2 + 1, n_frames)) +
          1j * rng.standard_normal((n_fft // 2 + 1, n_frames)))
  spec = spec.astype(np.complex64) / n_fft
  ours = np.asarray(ops.istft(spec, window_length, hop, n_fft,
                              scaling="spectrum"))
  ref = scipy_istft(spec, window_length, hop, n_fft)
  assert ours.shape == ref.shape == ((n_frames - 1) * hop + window_length,)
  np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6 * np.abs(ref).max())
  win_sum = signal.get_window("hann", window_length).sum()
  plain = np.asarray(ops.istft(spec * np.float32(win_sum), window_length, hop,
                               n_fft))  # default scaling="none"
  np.testing.assert_allclose(plain, ref, rtol=0, atol=1e-6 * np.abs(ref).max())


@pytest.mark.parametrize("window_length,hop,n_fft,length", SETTINGS)
def test_round_trip_with_true_phase(window_length, hop, n_fft, length):
  x = chirps((2, length), seed=3)
  spec = ops.stft(x, window_length, hop, n_fft)
  back = np.asarray(ops.istft(spec, window_length, hop, n_fft))
  n_frames = spec.shape[-1]
  covered = (n_frames - 1) * hop + window_length
  assert back.shape == (2, covered)
  spec = ops.stft(x, window_length, hop, n_fft, scaling="spectrum")
  back_s = np.asarray(ops.istft(spec, window_length, hop, n_fft,
                                scaling="spectrum"))
  # Recoverable samples: the summed squared windows are not tiny there. The
  # periodic Hann window is 0 at its first sample, so sample 0 (and, with
  # hop == window, every frame start) carries no information.
  win = np.asarray(ops.spectral.hann_window(window_length), np.float64)
  energy = np.zeros(covered)
  for i in range(n_frames):
    energy[i * hop:i * hop + window_length] += win**2
  ok = energy > 1e-3
  assert not ok[0]
  for b in (back, back_s):
    np.testing.assert_allclose(b[:, ok], x[:, :covered][:, ok], rtol=0,
                               atol=1e-5)


def test_istft_length_pads_and_cuts():
  x = chirps((PHONE,), seed=4)
  spec = ops.stft(x)
  full = np.asarray(ops.istft(spec))
  assert full.shape == (15 * 145 + 267,)
  longer = np.asarray(ops.istft(spec, length=PHONE))
  assert longer.shape == (PHONE,)
  np.testing.assert_array_equal(longer[:full.size], full)
  np.testing.assert_array_equal(longer[full.size:], 0.)
  shorter = np.asarray(ops.istft(spec, length=1000))
  np.testing.assert_array_equal(shorter, full[:1000])


def test_spectral_convergence_of_true_signal_is_zero():
  x = chirps((2, PHONE), seed=5)
  mag = jnp.abs(ops.stft(x))
  sc = np.asarray(ops.spectral_convergence(mag, x))
  assert sc.shape == (2,)
  np.testing.assert_allclose(sc, 0., atol=1e-6)


def test_griffin_lim_converges_and_is_deterministic():
  x = chirps((2, PHONE), seed=6)
  mag = jnp.abs(ops.stft(x))
  key = jax.random.key(0)
  scs = []
  for n_iter in (0, 5, 50):
    y = ops.griffin_lim(mag, key, n_iter=n_iter, length=PHONE)
    assert y.shape == (2, PHONE) and y.dtype == jnp.float32
    scs.append(np.asarray(ops.spectral_convergence(mag, y)))
  scs = np.stack(scs)  # (3, 2)
  assert np.all(scs[1] < scs[0]) and np.all(scs[2] < scs[1]), scs
  assert np.all(scs[2] < 0.5 * scs[0]), scs
  again = ops.griffin_lim(mag, key, n_iter=50, length=PHONE)
  np.testing.assert_array_equal(np.asarray(again), np.asarray(y))
  other = ops.griffin_lim(mag, jax.random.key(1), n_iter=50, length=PHONE)
  assert not np.array_equal(np.asarray(other), np.asarray(y))
  short = ops.griffin_lim(mag[0], key, n_iter=0)
  assert short.shape == (15 * 145 + 267,)


def test_griffin_lim_waveform_has_no_edge_blowup():
  # Dividing by the vanishing window energy at the ends (as istft, like
  # scipy, does) made GL's first/last samples 100-1000x the signal and its
  # max_xcorr with the original ~0.07; the floored output keeps it ~0.8.
  x = chirps((2, PHONE), seed=7)  # shapes as above: no recompile
  for scaling in ("none", "spectrum"):
    mag = jnp.abs(ops.stft(x, scaling=scaling))
    y = np.asarray(ops.griffin_lim(mag, jax.random.key(2), n_iter=50,
                                   length=PHONE, scaling=scaling))
    assert np.abs(y).max() < 4 * np.abs(x).max(), np.abs(y).max(axis=1)
    xc = np.asarray(max_xcorr(y, x, batch_ndim=1))
    assert np.all(xc > 0.5), xc


def test_errors():
  with pytest.raises(ValueError, match="longer than"):
    ops.stft(np.zeros((200,), np.float32))
  with pytest.raises(ValueError, match="rank"):
    ops.stft(np.float32(1.))
  x = chirps((PHONE,))
  x[7] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    ops.stft(x)
  with pytest.raises(ValueError, match="hop"):
    ops.stft(chirps((PHONE,)), hop=300)
  with pytest.raises(ValueError, match="n_fft"):
    ops.stft(chirps((PHONE,)), n_fft=200)
  spec = np.zeros((201, 16), np.complex64)
  with pytest.raises(ValueError, match="frequency bins"):
    ops.istft(spec[:200])
  with pytest.raises(ValueError, match="rank"):
    ops.istft(spec[:, 0])
  with pytest.raises(ValueError, match="no frames"):
    ops.istft(spec[:, :0])
  with pytest.raises(ValueError, match="no frames"):
    ops.griffin_lim(np.abs(spec[:, :0]), jax.random.key(0), n_iter=1)
  spec[3, 4] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    ops.istft(spec)
  key = jax.random.key(0)
  mag = np.abs(spec)
  with pytest.raises(ValueError, match="NaN"):
    ops.griffin_lim(mag, key, n_iter=1)
  with pytest.raises(ValueError, match="frequency bins"):
    ops.griffin_lim(np.zeros((200, 16), np.float32), key, n_iter=1)
  with pytest.raises(ValueError, match="rank"):
    ops.griffin_lim(np.zeros((201,), np.float32), key, n_iter=1)
  with pytest.raises(ValueError, match="n_iter"):
    ops.griffin_lim(np.zeros((201, 16), np.float32), key, n_iter=-1)
