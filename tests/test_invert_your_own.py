"""The README's 'Invert your own network' example, run verbatim: a small
Flax conv net declared through the inversion protocol, trained a few steps
with optax on generated tones, then sonified and reconstructed (backprop,
the stacked decoder) from its layers."""
import os
import re

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTION = "## Invert your own network"

EXAMPLE = '''\
import jax, numpy as np, optax
from recon_jax import inversion, metrics
from recon_jax.models import invertible as inv

model = inv.DeclaredNet(inv.InvertibleNet(  # a 1-D conv net, op by op
    ops=(inv.conv(8, 9, stride=2, name="c1"), inv.relu(), inv.max_pool(4),
         inv.conv(16, 5, padding="SAME", name="c2"), inv.relu(),
         inv.max_pool(4), inv.temporal_mean(), inv.dense(2, name="out")),
    waveform=True, name="ToneNet"))  # layers 1..8, waveforms (N, T)
rng = np.random.default_rng(0)
hz = rng.uniform(200, 3000, 256)  # a toy task: is a tone above 1 kHz?
x = np.float32(np.sin(2 * np.pi * hz[:, None] * np.arange(2000) / 8000))
y = (hz > 1000).astype(np.int32)
params = model.init(jax.random.key(0), x[:1])["params"]
opt = optax.adam(1e-2)
opt_state = opt.init(params)
def loss(p, xb, yb):
  logits = model.apply({"params": p}, xb)
  return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()
@jax.jit
def train_step(params, opt_state, xb, yb):
  value, grads = jax.value_and_grad(loss)(params, xb, yb)
  updates, opt_state = opt.update(grads, opt_state)
  return optax.apply_updates(params, updates), opt_state, value
for batch in rng.choice(256, (60, 32)):
  params, opt_state, value = train_step(params, opt_state, x[batch], y[batch])

clips = x[:4]  # sonify map 3 of layer 4 (c2's ReLU): the clips' shape
sonified = inversion.sonify(model, params, clips, layer=4, feature_map=3)
# Reconstruct from layer 6: backprop to the input, and a stacked decoder.
targets = inversion.layer_targets(model, params, clips, 6)
by_backprop, _, _ = inversion.reconstruct(
    "backprop", model, params, 6, targets, jax.random.key(1),
    inversion.ReconstructionConfig.from_dict({"backprop": {"max_steps": 200}}),
    input_shape=clips.shape[1:])
decoder = inversion.train_decoder(
    model, params, 6, workdir="runs/tone_decoder",
    epoch_batches=inversion.array_batches(x, 32),
    config=inversion.DecoderTrainConfig(stage_steps=40, finetune_steps=40))
by_decoder, _, _ = inversion.reconstruct(
    "decoder", model, params, 6, targets, jax.random.key(2), decoder=decoder)
for name, rec in (("backprop", by_backprop), ("decoder", by_decoder)):
  print(name, metrics.max_xcorr(clips, rec, batch_ndim=1).mean(),
        metrics.mean_topk_coherence_batch(clips, rec, 8000).mean())
'''


def test_example_runs_and_gives_inputs_shape(tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  scope = {"__name__": "readme_example"}
  exec(compile(EXAMPLE, "README: Invert your own network", "exec"), scope)
  clips = scope["clips"]
  assert float(scope["value"]) < 0.69  # learned something (chance: log 2)
  for name in ("sonified", "by_backprop", "by_decoder"):
    out = np.asarray(scope[name])
    assert out.shape == clips.shape, name
    assert np.all(np.isfinite(out)), name
  assert np.any(np.asarray(scope["sonified"]) != 0)
  assert os.path.exists(tmp_path / "runs" / "tone_decoder" / "decoder.json")
  printed = capsys.readouterr().out.split("\n")
  for name in ("backprop", "decoder"):
    line = next(l for l in printed if l.startswith(name + " "))
    mxcorr, coherence = map(float, line.split()[1:])
    assert 0 < mxcorr <= 1 and 0 <= coherence <= 1


def test_readme_shows_the_example_verbatim():
  """The README's section shows exactly this example."""
  with open(os.path.join(_ROOT, "README.md"), encoding="utf-8") as f:
    readme = f.read()
  assert SECTION in readme
  section = readme.split(SECTION, 1)[1]
  blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
  assert blocks and blocks[0] == EXAMPLE, (
      "the README's 'Invert your own network' example differs from "
      "tests/test_invert_your_own.py's EXAMPLE")
