"""Analyses of trained CNN12 encoders (docs/methods.md, B4).

- `top_k_clips(model, params, clips, layers, k=3)`: the k most activating
  clips of every feature map of each layer (mean |block output|), streamed
  over a data set; `TopK` holds one layer's (C, k) indices and scores.
- `layer_importance(config, workdir, data, layers)`: a classifier on the
  encoder cut after each layer, fc-only and full fine-tuning (paper Fig. 4);
  `TruncatedCNN12`, `truncate`, `truncate_params`: the cut encoder that the
  probe / fine-tune recipes train.

The coherence measure of Fig. 7 is in recon_jax.metrics
(mean_topk_coherence, mean_topk_coherence_batch, mean_top_peaks_coherence).
"""
from recon_jax.analysis.layer_importance import layer_importance
from recon_jax.analysis.layer_importance import MODES
from recon_jax.analysis.layer_importance import truncate
from recon_jax.analysis.layer_importance import truncate_params
from recon_jax.analysis.layer_importance import TruncatedCNN12
from recon_jax.analysis.topk import top_k_clips
from recon_jax.analysis.topk import TopK
