"""Report outputs: WAVs a person can play, figures that get written."""
import numpy as np
import pytest
import soundfile as sf

from recon_jax import report


def test_write_wav_scales_to_peak_and_keeps_silence(tmp_path):
  x = np.sin(np.linspace(0, 60, 1600)) * 3.0
  path = report.write_wav(str(tmp_path / "a" / "x.wav"), x, 16000, peak=0.5)
  y, sr = sf.read(path)
  assert sr == 16000 and y.shape == x.shape
  assert np.max(np.abs(y)) == pytest.approx(0.5, abs=1e-4)
  np.testing.assert_allclose(y, x / 6.0, atol=1e-4)
  silent, _ = sf.read(report.write_wav(str(tmp_path / "s.wav"),
                                       np.zeros(100), 8000))
  assert not np.any(silent)


@pytest.mark.parametrize("bad,match", [
    (np.array([0.0, np.nan]), "NaN"),
    (np.zeros((2, 3)), "1-D"),
])
def test_write_wav_refuses_bad_waveforms(tmp_path, bad, match):
  with pytest.raises(ValueError, match=match):
    report.write_wav(str(tmp_path / "x.wav"), bad, 16000)


def test_figures_are_written(tmp_path):
  rng = np.random.default_rng(0)
  rows = [[rng.random((20, 4)), None, rng.random((20, 4))],
          [rng.random((20, 4))]]
  paths = [
      report.spectrogram_grid(str(tmp_path / "g.png"), rows, ["a", "b"],
                              ["x", "y", "z"], "t", log_scale=True,
                              shared_scale=True),
      report.histogram_grid(str(tmp_path / "h.png"), rows, ["a", "b"],
                            ["x", "y", "z"]),
      report.confusion_matrix_figure(str(tmp_path / "c.png"),
                                     rng.integers(0, 9, (5, 5)), list("abcde")),
      report.measure_curves(str(tmp_path / "m.png"), [1, 3],
                            [("R", {"m (phones)": [1, 2], "m (chirps)": [2, 3]})],
                            thresholds={"R": 1.5}),
  ]
  for p in paths:
    with open(p, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"
