"""Top-k maximally activating clips per feature map."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from recon_jax import analysis
from recon_jax.models import cnn12

WIDTHS = (2, 2, 4, 4, 4, 4, 4, 4, 8, 8, 8)
LENGTH = 2400  # Just over CNN12's receptive field (2370).


@pytest.fixture(scope="module")
def net():
  """A random CNN12 (NumPy draws, std 1/sqrt(fan_in), zero biases, as its
  init, with nothing to compile)."""
  model = cnn12.CNN12(widths=WIDTHS)
  shapes = jax.eval_shape(model.init, jax.random.key(0),
                          jnp.zeros((1, LENGTH)))["params"]
  rng = np.random.default_rng(0)

  def draw(path, s):
    if path[-1].key == "bias":
      return np.zeros(s.shape, np.float32)
    fan_in = int(np.prod(s.shape[:-1]))
    return (rng.normal(size=s.shape) / np.sqrt(fan_in)).astype(np.float32)

  return model, jax.tree_util.tree_map_with_path(draw, shapes)


def clips(n=11, length=LENGTH, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(n, length)) *
          rng.uniform(0.2, 1.0, (n, 1))).astype(np.float32)


def brute_force(model, params, x, layer, k, first_index=0, pre_pool=False):
  """(C, k) indices and scores from every activation at once, NumPy sort."""
  trace = model.apply({"params": params}, x, block=layer)
  out = np.asarray(trace.activations[-1] if pre_pool else trace.output)
  scores = np.abs(out).mean(axis=1)  # (N, C)
  ids = np.arange(len(x)) + first_index
  indices, best = [], []
  for c in range(scores.shape[1]):
    order = np.lexsort((ids, -scores[:, c]))[:k]  # Score down, index up.
    indices.append(ids[order])
    best.append(scores[order, c])
  return np.array(indices), np.array(best)


def test_matches_brute_force_for_several_layers_in_one_pass(net):
  model, params = net
  x = clips()
  got = analysis.top_k_clips(model, params, x, [11, 1, 4, 9], k=3,
                             batch_size=4)  # 4 + 4 + 3 (padded).
  assert sorted(got) == [1, 4, 9, 11]
  for layer, top in got.items():
    want_ids, want_scores = brute_force(model, params, x, layer, 3)
    assert top.indices.shape == top.scores.shape == (WIDTHS[layer - 1], 3)
    np.testing.assert_array_equal(top.indices, want_ids, err_msg=str(layer))
    np.testing.assert_allclose(top.scores, want_scores, rtol=1e-5, atol=1e-7)
  # One layer as an int.
  one = analysis.top_k_clips(model, params, x, 4, k=3, batch_size=4)
  np.testing.assert_array_equal(one[4].indices, got[4].indices)


def test_authors_ranking_uses_the_activation_before_pooling(net):
  model, params = net
  x = clips(n=13, seed=4)
  got = analysis.top_k_clips(model, params, x, [2, 8, 10], k=9,
                             batch_size=5, activation="pre_pool")
  for layer, top in got.items():
    want_ids, want_scores = brute_force(model, params, x, layer, 9,
                                        pre_pool=True)
    np.testing.assert_array_equal(top.indices, want_ids, err_msg=str(layer))
    np.testing.assert_allclose(top.scores, want_scores, rtol=1e-5, atol=1e-7)
  pooled = analysis.top_k_clips(model, params, x, [2], k=9, batch_size=5)
  # Pooling keeps each window's maximum: the pooled mean is at least the
  # pre-pool mean, and the rankings are two different things.
  assert np.all(pooled[2].scores[:, 0] >= got[2].scores[:, 0] - 1e-6)
  with pytest.raises(ValueError, match="activation='pooled'"):
    analysis.top_k_clips(model, params, x, [2], activation="pooled")


def test_batch_size_and_batching_do_not_change_the_result(net):
  model, params = net
  x = clips(n=9, seed=1)
  runs = [analysis.top_k_clips(model, params, x, [2, 10], k=3,
                               batch_size=b) for b in (2, 9, 32)]
  # The caller's own batches, of different sizes.
  runs.append(analysis.top_k_clips(model, params, [x[:5], x[5:]], [2, 10],
                                   k=3))
  for run in runs[1:]:
    for layer in (2, 10):
      np.testing.assert_array_equal(run[layer].indices,
                                    runs[0][layer].indices)
      np.testing.assert_allclose(run[layer].scores, runs[0][layer].scores,
                                 rtol=1e-5)


def test_clips_of_different_lengths_in_equal_length_batches(net):
  model, params = net
  short, long = clips(n=3, seed=2), clips(n=4, length=2600, seed=3)
  got = analysis.top_k_clips(model, params, [short, long], [3], k=2)
  scores = np.concatenate([
      np.abs(np.asarray(model.apply({"params": params}, b, block=3).output))
      .mean(1) for b in (short, long)])
  order = np.argsort(-scores, axis=0, kind="stable")[:2].T
  np.testing.assert_array_equal(got[3].indices, order)


def test_ties_go_to_the_lower_clip_index(net):
  model, params = net
  x = clips(n=10, seed=4)
  x[2] *= 20.0  # Loud: the top clip of most live maps.
  x[5] = x[7] = x[2]  # Exact copies: equal scores.
  for batch_size in (4, 10):  # The copies in other batches, or one batch.
    got = analysis.top_k_clips(model, params, x, [5, 11], k=3,
                               batch_size=batch_size)
    for layer, top in got.items():
      want_ids, want_scores = brute_force(model, params, x, layer, 3)
      np.testing.assert_array_equal(top.indices, want_ids)
      np.testing.assert_allclose(top.scores, want_scores, rtol=1e-5)
    # The ties this data set makes: maps led by the copies list them in
    # index order with one score; maps dead for every clip (layer 11 of a
    # random net has some) list clips 0, 1, 2 with score 0.
    copies = [(l, c) for l, top in got.items()
              for c in range(len(top.indices))
              if top.indices[c].tolist() == [2, 5, 7]]
    assert len(copies) >= 4, got
    for l, c in copies:
      assert len(set(got[l].scores[c].tolist())) == 1
    dead = got[11].scores[:, 0] == 0
    assert dead.any()
    np.testing.assert_array_equal(got[11].indices[dead],
                                  np.tile([0, 1, 2], (dead.sum(), 1)))


def test_bad_requests_are_refused(net):
  model, params = net
  x = clips(n=3)
  with pytest.raises(ValueError, match="k=4 is more than the 3 clips"):
    analysis.top_k_clips(model, params, x, [1], k=4)
  with pytest.raises(ValueError, match="k=4 is more than the 3 clips"):
    analysis.top_k_clips(model, params, [x[:2], x[2:]], [1], k=4)
  for layer in (0, 12, [3, 12], [], "3"):
    with pytest.raises(ValueError, match="block|layers"):
      analysis.top_k_clips(model, params, x, layer, k=1)
  with pytest.raises(ValueError, match="k must be"):
    analysis.top_k_clips(model, params, x, [1], k=0)
  bad = x.copy()
  bad[1, 5] = np.inf
  with pytest.raises(ValueError, match="NaN/Inf"):
    analysis.top_k_clips(model, params, bad, [1], k=1)
  with pytest.raises(ValueError, match="receptive field"):
    analysis.top_k_clips(model, params, x[:, :2000], [1], k=1)
  with pytest.raises(ValueError, match="no clips"):
    analysis.top_k_clips(model, params, [], [1], k=1)
