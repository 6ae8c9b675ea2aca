"""The sonification paper's analyses on trained CNN12s (docs/methods.md,
B3, B4): top-k clips per feature map, the residual test with its controls
(Fig. 6), mean top-5 coherence (Fig. 7), active deep maps (Sec. 3.3), feature
evolution (Fig. 5), layer importance (Fig. 4), and the offline page to look
and listen.

  python -m recon_jax --config=configs/sonification.py \
      --workdir=runs/sonification \
      --config.supervised=runs/cnn12_events \
      --config.contrastive=runs/cnn12_simclr \
      --config.probe=runs/cnn12_probe_events \
      --config.finetune=runs/cnn12_finetune_events \
      --config.data.dir=runs/data/events

The four run folders are what the cnn12 experiment wrote with
configs/cnn12_events.py, cnn12_simclr.py, cnn12_probe.py:events and
cnn12_finetune.py:events (every seed found in them is used); data is the
set they were trained on (checked against their records). Without an
analysis in the variant every analysis runs and then the page; name one to
run only it (configs/sonification.py:coherence, :tiny,topk; analyses:
topk, residual_test, coherence, active_maps, feature_evolution,
layer_importance, sonification_page). summary.md then gives each of the
paper's findings with its effect, interval, test and verdict.

Variants:
  default  the generated event set's test split, every layer, the page with
           the 8 most active maps of each layer; layer importance at blocks
           2, 5, 8, 11, 3 seeds, 5 epochs per run (encoders at an
           eighth of the paper's widths, as the CNN12 configs' default).
  tiny     3 layers, 2 maps per layer, 24 clips, 1/64 widths (tests).
  authors  the authors' notebooks where they differ from the paper's text:
           top-k ranked before pooling with k = 9, clips of classes named
           'sine wave', 'static' or '*noise*' never chosen, and coherence
           over the top-5 clips of every map with their Welch settings and
           peak picking, averaged over maps (the text: each clip with its
           most active map, scipy's defaults, the 5 largest values).
"""
import ml_collections

from configs import cnn12_probe
from recon_jax.train import cnn12_data


ANALYSES = ("topk", "residual_test", "coherence", "active_maps",
            "feature_evolution", "layer_importance", "sonification_page")


def get_config(variant: str = "default"):
  parts = [p for p in variant.split(",") if p]
  sizes = [p for p in parts if p in ("default", "tiny")]
  analyses = [p for p in parts if p in ANALYSES]
  authors = "authors" in parts
  unknown = [p for p in parts
             if p not in sizes and p not in analyses and p != "authors"]
  if unknown or len(sizes) > 1 or len(analyses) > 1:
    raise ValueError(f"bad variant {variant!r}: want 'default' or 'tiny', "
                     "optionally 'authors' and one analysis of "
                     f"{ANALYSES}")
  variant = sizes[0] if sizes else "default"
  c = ml_collections.ConfigDict()
  # All analyses and the page, or the one named in the variant.
  c.experiment = analyses[0] if analyses else "sonification"
  c.seed = 0  # Draws the random choices: evolution maps, control maps, noise.
  # Run folders of the cnn12 experiment (configs/cnn12_*.py) (seed_<s> inside).
  c.supervised = ""
  c.contrastive = ""
  c.probe = ""
  c.finetune = ""
  c.data = cnn12_data.data_config("generated_events")
  c.split = "test"
  c.max_clips = 0  # 0: every clip of the split.
  c.layers = tuple(range(1, 12))
  c.batch_size = 16
  c.chunk_size = 0  # sonify's chunk (0: its default memory bound).

  c.topk = ml_collections.ConfigDict()
  c.topk.k = 3
  # 'paper': maps ranked at the deconvnet's start point (blocks 1-8 pooled);
  # 'authors': before pooling, as their top-k notebook (which keeps k = 9).
  c.topk.ranking = "paper"
  # Class-name patterns (fnmatch, case-insensitive, '_' as ' ') whose clips
  # are never chosen; the authors skipped ('sine wave', 'static', '*noise*').
  c.topk.exclude = ()

  c.coherence = ml_collections.ConfigDict()
  c.coherence.k = 5
  # 'paper': scipy's defaults and the k largest values (the text);
  # 'authors': nperseg 160, noverlap 80, nfft 512, the k highest peaks.
  c.coherence.method = "paper"
  # 'authors' only: the top clips of every map it averages over.
  c.coherence.inputs_per_map = 5

  c.evolution = ml_collections.ConfigDict()
  c.evolution.layers = (3, 5, 8, 11)
  # 'random': maps drawn from `seed` (the paper's "randomly selected feature
  # maps"), each on the clip it activates most at the final checkpoint;
  # 'most_active': the maps with the highest activity there.
  c.evolution.maps = "random"
  c.evolution.maps_per_layer = 2

  # Sec. 3.3: deep layers whose maps active for some clip are counted.
  c.active_maps = ml_collections.ConfigDict()
  c.active_maps.layers = (8, 9, 10, 11)

  # The findings' intervals (recon_jax.metrics.statistics): a paired
  # bootstrap over the clips, each group's seeds redrawn.
  c.statistics = ml_collections.ConfigDict()
  c.statistics.num_resamples = 2000
  c.statistics.seed = 0
  c.statistics.level = 0.95

  c.layer_importance = ml_collections.ConfigDict()
  c.layer_importance.layers = (2, 5, 8, 11)
  c.layer_importance.modes = ("fc_only", "full")
  # The probe / fine-tune settings of every run (configs/cnn12_probe.py;
  # its model block must describe the encoders, its data block is replaced
  # by `data`).
  probe = cnn12_probe.get_config("tiny,events" if variant == "tiny"
                                 else "events")
  probe.unlock()
  del probe["experiment"]
  # Three seeds: the findings compare encoders with Welch's t over seeds.
  probe.seeds = (0,) if variant == "tiny" else (0, 1, 2)
  probe.encoder.seed = 0  # Unused: the analysis passes each encoder.
  probe.train.num_epochs = 1 if variant == "tiny" else 5
  probe.train.warmup_epochs = 0 if variant == "tiny" else 1
  probe.lock()
  c.layer_importance.probe = probe

  c.page = ml_collections.ConfigDict()
  c.page.maps_per_layer = 8
  c.page.figure_layers = (1, 3, 5, 7, 9, 11)

  if authors:
    c.topk.ranking = "authors"
    c.topk.k = 9
    c.topk.exclude = ("sine wave", "static", "*noise*")
    c.coherence.method = "authors"
  if variant == "tiny":
    c.data.size = "tiny"
    c.max_clips = 24
    c.layers = (1, 5, 11)
    c.batch_size = 8
    c.evolution.layers = (5,)
    c.active_maps.layers = (11,)
    c.statistics.num_resamples = 200
    c.layer_importance.layers = (2, 11)
    c.page.maps_per_layer = 2
    c.page.figure_layers = (1, 11)
  c.lock()
  return c

