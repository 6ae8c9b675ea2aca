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


# Our window names -> scipy.signal.get_window arguments. MATLAB's hamming(N)
# and hann(N) (and so its spectrogram's window) are the symmetric ones.
SCIPY_WINDOWS = {"hamming": ("hamming", False), "hann": ("hann", False),
                 "periodic_hann": ("hann", True),
                 "periodic_hamming": ("hamming", True)}


def scipy_window(name, window_length):
  win, fftbins = SCIPY_WINDOWS[name]
  return signal.get_window(win, window_length, fftbins=fftbins)


def scipy_stft(x, window_length, hop, n_fft, window="periodic_hann"):
  return signal.stft(x.astype(np.float64),
                     window=scipy_window(window, window_length),
                     nperseg=window_length, noverlap=window_length - hop,
                     nfft=n_fft, boundary=None, padded=False)[2]


def scipy_istft(spec, window_length, hop, n_fft, window="periodic_hann"):
  return signal.istft(spec.astype(np.complex128),
                      window=scipy_window(window, window_length),
                      nperseg=window_length, noverlap=window_length - hop,
                      nfft=n_fft, boundary=False)[1]


# (window_length, hop, n_fft, L): the thesis defaults, then a short frame with
# n_fft == window, an odd window, and hop == window (no overlap: NOLA holds).
SETTINGS = [(267, 145, 400, PHONE), (64, 16, 64, 517), (101, 37, 128, 600),
            (50, 50, 64, 333)]


def test_defaults_give_thesis_shape():
  spec = ops.stft(chirps((PHONE,)))
  assert spec.shape == (201, 16) and spec.dtype == jnp.complex64
  assert ops.stft_num_frames(PHONE) == 16


def test_default_window_is_matlabs_symmetric_hamming():
  for n in (267, 64, 101):
    want = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(n) / (n - 1))
    np.testing.assert_allclose(ops.spectral.stft_window(window_length=n), want,
                               rtol=0, atol=1e-7)
    np.testing.assert_allclose(ops.spectral.stft_window("hamming", n),
                               signal.get_window("hamming", n, fftbins=False),
                               rtol=0, atol=1e-7)
  assert ops.spectral.WINDOW == "hamming"


@pytest.mark.parametrize("window", ["hamming", "periodic_hann", "hann"])
@pytest.mark.parametrize("window_length,hop,n_fft,length", SETTINGS)
def test_stft_matches_scipy(window_length, hop, n_fft, length, window):
  x = chirps((length,), seed=length)
  ours = np.asarray(ops.stft(x, window_length, hop, n_fft, scaling="spectrum",
                             window=window))
  ref = scipy_stft(x, window_length, hop, n_fft, window)
  assert ours.shape == ref.shape
  # float32 FFT of O(1) data: errors ~1e-7 relative to the spectrum's scale.
  np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-6 * np.abs(ref).max())


def test_stft_batched():
  x = chirps((2, 3, PHONE), seed=1)
  spec = np.asarray(ops.stft(x, scaling="spectrum"))
  assert spec.shape == (2, 3, 201, 16)
  ref = scipy_stft(x, 267, 145, 400, "hamming")  # and the last axis too
  np.testing.assert_allclose(spec, ref, rtol=0, atol=2e-6 * np.abs(ref).max())
  spec = np.asarray(ops.stft(x))
  np.testing.assert_array_equal(np.asarray(ops.stft(x[1])), spec[1])
  np.testing.assert_array_equal(np.asarray(jax.vmap(ops.stft)(x[1])), spec[1])


def test_default_is_matlab_spectrogram():
  """MATLAB's spectrogram(x, 267, 122, 400) (the thesis): symmetric Hamming
  window, no division by the window's sum."""
  x = chirps((PHONE,), seed=3).astype(np.float64)
  n = np.arange(267)
  hamming = 0.54 - 0.46 * np.cos(2 * np.pi * n / 266)  # MATLAB hamming(267)
  periodic_hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / 267)  # the old default
  for win, kwargs in ((hamming, {}), (periodic_hann,
                                      {"window": "periodic_hann"}),
                      (hamming, {"window": hamming})):
    ref = np.stack([np.fft.rfft(x[t * 145:t * 145 + 267] * win, n=400)
                    for t in range(16)], axis=-1)
    ours = np.asarray(ops.stft(x.astype(np.float32), **kwargs))
    np.testing.assert_allclose(ours, ref, rtol=0,
                               atol=2e-6 * np.abs(ref).max())
    spectrum = np.asarray(ops.stft(x.astype(np.float32), scaling="spectrum",
                                   **kwargs))
    np.testing.assert_allclose(ours, spectrum * win.sum(), rtol=1e-5,
                               atol=1e-6 * np.abs(ours).max())
  with pytest.raises(ValueError, match="scaling"):
    ops.stft(x, scaling="psd")


# scipy warns (NOLA) because a Hann window's zero at sample 0 is never
# overlapped without boundary padding; that sample is left unnormalised.
@pytest.mark.filterwarnings("ignore:NOLA condition failed")
@pytest.mark.parametrize("window", ["hamming", "periodic_hann"])
@pytest.mark.parametrize("window_length,hop,n_fft,length", SETTINGS)
def test_istft_matches_scipy(window_length, hop, n_fft, length, window):
  rng = np.random.default_rng(2)
  n_frames = ops.stft_num_frames(length, window_length, hop)
  spec = (rng.standard_normal((n_fft // 2 + 1, n_frames)) +
          1j * rng.standard_normal((n_fft // 2 + 1, n_frames)))
  spec = spec.astype(np.complex64) / n_fft
  ours = np.asarray(ops.istft(spec, window_length, hop, n_fft,
                              scaling="spectrum", window=window))
  ref = scipy_istft(spec, window_length, hop, n_fft, window)
  assert ours.shape == ref.shape == ((n_frames - 1) * hop + window_length,)
  np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6 * np.abs(ref).max())
  win_sum = scipy_window(window, window_length).sum()
  plain = np.asarray(ops.istft(spec * np.float32(win_sum), window_length, hop,
                               n_fft, window=window))  # scaling="none"
  np.testing.assert_allclose(plain, ref, rtol=0, atol=1e-6 * np.abs(ref).max())


@pytest.mark.parametrize("window", ["hamming", "periodic_hann", "hann"])
@pytest.mark.parametrize("window_length,hop,n_fft,length", SETTINGS)
def test_round_trip_with_true_phase(window_length, hop, n_fft, length, window):
  x = chirps((2, length), seed=3)
  spec = ops.stft(x, window_length, hop, n_fft, window=window)
  back = np.asarray(ops.istft(spec, window_length, hop, n_fft, window=window))
  n_frames = spec.shape[-1]
  covered = (n_frames - 1) * hop + window_length
  assert back.shape == (2, covered)
  spec = ops.stft(x, window_length, hop, n_fft, scaling="spectrum",
                  window=window)
  back_s = np.asarray(ops.istft(spec, window_length, hop, n_fft,
                                scaling="spectrum", window=window))
  # Recoverable samples: the summed squared windows are not tiny there. A
  # Hann window is 0 at its first sample, so sample 0 (and, with hop ==
  # window, every frame start) carries no information; MATLAB's Hamming
  # window is >= 0.08 everywhere, so every sample comes back.
  win = scipy_window(window, window_length)
  energy = np.zeros(covered)
  for i in range(n_frames):
    energy[i * hop:i * hop + window_length] += win**2
  ok = energy > 1e-3
  assert ok.all() if window == "hamming" else not ok[0]
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


def test_window_errors():
  x = chirps((PHONE,))
  with pytest.raises(ValueError, match="unknown STFT window 'blackman'"):
    ops.stft(x, window="blackman")
  with pytest.raises(ValueError, match=r"shape \(266,\), want \(267,\)"):
    ops.stft(x, window=np.ones(266))
  with pytest.raises(ValueError, match="finite and not all zero"):
    ops.istft(np.zeros((201, 16), np.complex64), window=np.full(267, np.nan))
  with pytest.raises(ValueError, match="finite and not all zero"):
    ops.griffin_lim(np.zeros((201, 16), np.float32), jax.random.key(0),
                    window=np.zeros(267))
  with pytest.raises(ValueError, match="real numbers"):
    ops.stft(x, window=np.ones(267, np.complex64))
  with pytest.raises(ValueError, match="window_length must be an integer"):
    ops.stft(x, window_length=267.0)


def test_complex_negative_and_nan_inputs_are_refused():
  x = chirps((PHONE,))
  spec = ops.stft(x)
  with pytest.raises(ValueError, match="stft input is complex"):
    ops.stft(spec)
  with pytest.raises(ValueError, match="stft input is complex"):
    ops.stft(x.astype(np.complex64))
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="complex"):
    ops.griffin_lim(spec, key, n_iter=1)
  mag = np.abs(np.asarray(spec))
  mag[5, 3] = -0.5
  with pytest.raises(ValueError, match=r"negative magnitudes \(min -0.5"):
    ops.griffin_lim(mag, key, n_iter=1)
  with pytest.raises(ValueError, match="length must be a positive integer"):
    ops.griffin_lim(np.abs(mag), key, n_iter=1, length=0)
  with pytest.raises(ValueError, match="length must be a positive integer"):
    ops.istft(spec, length=-3)
  bad = x.copy()
  bad[9] = np.inf
  with pytest.raises(ValueError, match="signal holds 1 NaN/Inf"):
    ops.spectral_convergence(np.abs(mag), bad)
  mag[5, 3] = np.nan
  with pytest.raises(ValueError, match="magnitude holds 1 NaN/Inf"):
    ops.spectral_convergence(mag, x)
  with pytest.raises(ValueError, match="does not match"):
    ops.spectral_convergence(np.abs(np.asarray(spec))[:, :15], x)
