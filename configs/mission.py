"""Both papers end to end, one stage after another (README command 1).

  python -m recon_jax --config=configs/mission.py --workdir=runs/mission

Stages (config.stages; each resumes after a kill and is skipped once done):
  thesis        the thesis experiment (configs/thesis_quick.py here): corpus,
                phone CNNs, reconstruction by four methods x layers
  keywords      the Speech Commands-layout keyword set (its background
                noise is SimCLR's background mix)
  events        the FSD50K-layout sound event set
  supervised    CNN12 trained supervised on the events (cnn12_events.py)
  contrastive   CNN12 trained by SimCLR on the events (cnn12_simclr.py)
  probe         a linear probe of the SimCLR encoder (cnn12_probe.py:events)
  finetune      fine-tuning of the SimCLR encoder (cnn12_finetune.py:events;
                only in the paper variant)
  sonification  every sonification analysis and the offline page
  comparison    every inversion method (sonify, backprop, annealing,
                decoder, decoder + backprop) on the phone CNN and CNN12,
                layer by layer, by mxcorr and coherence
  summary.md in the work dir then shows every figure and number.
The mission wires the stages together (data folders, run folders: the CNN12
stages read the generated sets with the same readers that read real Speech
Commands and FSD50K folders); every other field can be overridden, e.g.
--config.contrastive.train.num_epochs=40 or --config.stages='(thesis,)'.

Variants:
  default  a 2-core laptop in about 10 minutes (plus the install): the
           thesis as configs/thesis_quick.py; 480 event clips of 5 s and a
           small keyword set; CNN12 at an eighth of the paper's widths, one
           seed each, a few epochs; the analyses on the 120 test clips.
  paper    both papers at full size (docs/methods.md, A, B):
           configs/thesis.py, the default generated sets, the full-width
           CNN12 and CNN12 recipes' paper settings on them, every analysis on
           every test clip. Meant for a GPU or TPU: see the README for the
           expected run time.
  tiny     seconds per stage (tests): the stages' tiny configs, the thesis
           reconstructed from layers 1 and 3 (its leak check at layer 3),
           layer importance at block 11, the comparison at one layer per
           network.
"""
import ml_collections

from configs import cnn12_events
from configs import cnn12_finetune
from configs import cnn12_probe
from configs import cnn12_simclr
from configs import comparison
from configs import make_events
from configs import make_keywords
from configs import sonification
from configs import thesis
from configs import thesis_quick
from configs import thesis_tiny

STAGES = ("thesis", "keywords", "events", "supervised", "contrastive",
          "probe", "finetune", "sonification", "comparison")


def _part(config):
  """A stage's config without its own `experiment` field (the mission is
  the experiment)."""
  config.unlock()
  del config["experiment"]
  return config


def get_config(variant: str = "default"):
  if variant not in ("default", "paper", "tiny"):
    raise ValueError(f"unknown variant {variant!r}: want 'default', 'paper' "
                     "or 'tiny'")
  size = {"default": "default", "paper": "default", "tiny": "tiny"}[variant]
  c = ml_collections.ConfigDict()
  c.experiment = "mission"
  c.stages = tuple(s for s in STAGES if s != "finetune" or variant == "paper")
  c.thesis = _part({"default": thesis_quick, "paper": thesis,
                    "tiny": thesis_tiny}[variant].get_config())
  c.keywords = _part(make_keywords.get_config(size))
  c.events = _part(make_events.get_config(size))
  cnn12_variant = "paper" if variant == "paper" else size
  c.supervised = _part(cnn12_events.get_config(cnn12_variant))
  c.contrastive = _part(cnn12_simclr.get_config(cnn12_variant))
  c.probe = _part(cnn12_probe.get_config(cnn12_variant + ",events"))
  c.finetune = _part(cnn12_finetune.get_config(cnn12_variant + ",events"))
  c.sonification = _part(sonification.get_config(
      "tiny" if variant == "tiny" else "default"))
  c.comparison = _part(comparison.get_config(
      "tiny" if variant == "tiny" else "default"))

  if variant == "default":
    k = c.keywords
    k.train_speakers, k.validation_speakers, k.test_speakers = 4, 1, 1
    k.utterances_per_word = 1
    k.background_seconds = 20.0
    e = c.events
    e.train_clips, e.val_clips, e.eval_clips = 300, 60, 120
    for run in (c.supervised, c.probe, c.finetune):
      run.seeds = (0,)
      run.train.num_epochs = 8
      run.train.warmup_epochs = 2
      run.train.eval_every_epochs = 4
    # Only the probe's head trains (seconds per epoch): 8 epochs left it at
    # chance on the frozen SimCLR features, 40 reached mAP 0.22 (measured).
    c.probe.train.num_epochs = 30
    c.probe.train.warmup_epochs = 3
    c.probe.train.eval_every_epochs = 10
    c.contrastive.seeds = (0,)
    c.contrastive.train.num_epochs = 16
    c.contrastive.train.warmup_epochs = 4
    c.contrastive.train.eval_every_epochs = 8
    c.contrastive.train.keep_period = 25
    # Every other block: the per-layer curves keep their shape at half the
    # analysis time.
    c.sonification.layers = (1, 3, 5, 7, 9, 11)
    li = c.sonification.layer_importance
    li.layers = (3, 11)
    li.probe.train.num_epochs = 3
    li.probe.seeds = (0,)
    c.sonification.page.maps_per_layer = 4
  elif variant == "tiny":
    # The mission test needs each stage to run, not each layer: the stages'
    # tiny configs run in full in their own tests.
    c.thesis.reconstruction.layers = (1, 3)
    c.thesis.reconstruction.mangled_check_layer = 3
    c.sonification.layer_importance.layers = (11,)
    c.comparison.layers.phone_cnn = (3,)
    c.comparison.layers.cnn12 = (2,)
  elif variant == "paper":
    # The generated set is 1,000 training clips, not AudioSet's ~1.9M: the
    # paper's global batch of 2048 would be bigger than an epoch.
    c.contrastive.train.batch_size = 256
  c.lock()
  return c
