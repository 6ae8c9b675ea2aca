"""Sonify feature maps of your own clip with a CNN12 checkpoint.

  python -m recon_jax --config=configs/sonify_clip.py --workdir=runs/my_clip \
      --config.clip=my_clip.wav --config.checkpoint=runs/cnn12_events \
      --config.layer=5

Fields:
  clip          a WAV/FLAC file (mono or channels averaged), read at
                sample_rate; scaled to unit peak as CNN12's training clips
                are. At least CNN12's receptive field (2,370 samples).
  checkpoint    either a recon_jax CNN12 run folder (the --workdir of a
                cnn12 train run, holding seed_<s>/, or one seed's folder;
                seed and step pick the checkpoint), or a PyTorch state dict
                file (.pt / .pth) with the names of the paper's Encoder
                (features.conv<b>.*, fc1.fc10.*; a prefix such as
                'feature_extractor.' and a {'state_dict': ...} wrapper are
                found by themselves).
  seed, step    for a run folder: which seed_<s>/ and which checkpoint step
                (-1: the newest).
  model         the CNN12 you expect: width_multiplier (1: CNN12, 2:
                CNN12_x2) and width_divisor (every conv width divided by
                it). Both 0 (default): read the widths from the checkpoint.
                Either set (the other counting as 1): the checkpoint's
                widths must be these, else an error naming both.
  layer         the block whose maps are sonified, 1..11.
  maps          map numbers to sonify, e.g. '(3,17)'; empty: the `top`
                most active maps on this clip (mean |activation|).
  map_numbering 'from_1' (the package's, as the paper's figures) or
                'authors' (channel indices from 0, as the authors' code:
                their channel 17 is map 18 here). `maps` is read in it;
                the outputs give both numbers.
  top           how many of the most active maps when maps is empty.
  sample_rate   CNN12's input rate (8 kHz in the paper).
  resample      False: a clip at another rate is an error naming both rates;
                True: resample it (scipy.signal.resample_poly).

Writes input.wav, L<layer>_m<map>/{sonification,residual}.wav,
spectrograms.png (input vs each sonification), results.json and
made_by.json (clip and checkpoint fingerprints, this config) into the work
dir; a rerun with the same inputs reuses them, other inputs are refused.
"""
import ml_collections


def get_config(variant: str = ""):
  if variant not in ("", "default"):
    raise ValueError(f"bad variant {variant!r}: configs/sonify_clip.py has "
                     "no variants (set fields with --config.<field>=...)")
  c = ml_collections.ConfigDict()
  c.experiment = "sonify_clip"
  c.clip = ""
  c.checkpoint = ""
  c.seed = 0
  c.step = -1
  c.model = ml_collections.ConfigDict()
  c.model.width_multiplier = 0
  c.model.width_divisor = 0
  c.layer = 5
  c.maps = ()
  c.map_numbering = "from_1"
  c.top = 4
  c.sample_rate = 8000
  c.resample = False
  c.lock()
  return c
