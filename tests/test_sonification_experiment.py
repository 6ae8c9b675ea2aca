"""The sonification analyses end to end on tiny trained CNN12s: top-k,
residual test, coherence, feature evolution, layer importance, the page,
findings; resuming, provenance refusals, bad input, the entry points."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import cnn12_events
from configs import cnn12_finetune
from configs import cnn12_probe
from configs import cnn12_simclr
from configs import sonification as sonification_config
from recon_jax import inversion
from recon_jax import metrics
from recon_jax import provenance
from recon_jax.experiments import sonification
from recon_jax.experiments import sonification_common
from recon_jax.experiments import sonification_measures as measures
from recon_jax.metrics import statistics
from recon_jax.train import cnn12_data
from recon_jax.train import cnn12_eval
from recon_jax.train import loop

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NO_AUGMENT = ("gain_p", "noise_p", "mask_p", "mixup_p")


def _tiny(module, variant, data_dir, **fields):
  c = module.get_config(variant)
  c.unlock()
  c.data.dir = data_dir
  for p in _NO_AUGMENT:
    if p in c.augment:
      c.augment[p] = 0.0
  _set_fields(c, fields)
  c.lock()
  return c


def _set_fields(c, fields):
  """c["a"]["b"] = value for each "a.b": value of `fields`."""
  for key, value in fields.items():
    target = c
    *path, last = key.split(".")
    for part in path:
      target = target[part]
    target[last] = value


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Tiny supervised, contrastive, probe and fine-tune runs on the tiny
  generated event set, as experiments/train_cnn12.py writes them."""
  root = tmp_path_factory.mktemp("sonification_runs")
  data_dir = str(root / "events")
  out = {"data": data_dir}
  sup_c = _tiny(cnn12_events, "tiny", data_dir, **{
      "train.num_epochs": 1, "train.warmup_epochs": 0})
  data = cnn12_data.load_data(sup_c.data, str(root))
  out["supervised"] = str(root / "supervised")
  cnn12_eval.run_recipe(sup_c, out["supervised"], data)
  con_c = _tiny(cnn12_simclr, "tiny", data_dir, **{
      "background.source": "none"})
  out["contrastive"] = str(root / "contrastive")
  cnn12_eval.run_recipe(con_c, out["contrastive"], data)
  for name, module in (("probe", cnn12_probe), ("finetune", cnn12_finetune)):
    c = _tiny(module, "tiny,events", data_dir, **{
        "train.num_epochs": 1, "train.warmup_epochs": 0,
        "encoder.workdir": out["contrastive"]})
    out[name] = str(root / name)
    cnn12_eval.run_recipe(c, out[name], data)
  return out


def _config(runs, **fields):
  c = sonification_config.get_config("tiny")
  c.unlock()
  for field in ("supervised", "contrastive", "probe", "finetune"):
    c[field] = runs[field]
  c.data.dir = runs["data"]
  # One cut of the encoders (tests/test_analysis_layer_importance.py
  # trains several); the analysis' wiring is what is tested here.
  c.layer_importance.layers = (11,)
  _set_fields(c, fields)
  c.lock()
  return c


@pytest.fixture(scope="module")
def analysed(runs, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("sonification"))
  config = _config(runs)
  return config, workdir, sonification.run_all(config, workdir)


def test_topk_matches_the_activity_of_every_clip(runs, analysed):
  config, workdir, out = analysed
  inputs = sonification.load_inputs(config, workdir)
  enc = cnn12_eval.load_encoder(os.path.join(runs["contrastive"], "seed_0"))
  x = np.stack([inputs.store.clip(i) for i in range(len(inputs.store))])
  for layer in config.layers:
    activity = np.asarray(inversion.map_activity(enc.model, enc.params, x,
                                                 layer))
    top = out["topk"]["contrastive"][str(layer)]
    assert np.asarray(top["indices"]).shape == (activity.shape[1], 3)
    want = -np.sort(-activity, axis=0)[:3].T
    np.testing.assert_allclose(top["scores"], want, rtol=1e-5, atol=1e-7)


def test_residual_test_and_coherence_cover_every_group_and_layer(analysed):
  config, workdir, out = analysed
  res = out["residual_test"]
  assert res["metric"] == "mAP"
  assert set(res["groups"]) == {"supervised", "fc_only", "full"}
  n_layers = len(config.layers)
  for v in res["groups"].values():
    for field in ("residual", "random_map", "same_energy_noise", "drop",
                  "versus_random", "versus_noise"):
      assert len(v[field]) == n_layers, field
    assert all(0 <= r["mean"] <= 1 for r in v["residual"])
    assert 0 <= v["clean"]["mean"] <= 1
    for field in ("learned", "drop_over_layers", "versus_random_over_layers",
                  "versus_noise_over_layers"):
      iv = v[field]
      assert iv["low"] <= iv["estimate"] <= iv["high"], (field, iv)
      assert iv["resamples"] == config.statistics.num_resamples
    # The estimate is the clean metric minus the residual's, per layer.
    np.testing.assert_allclose(
        [d["estimate"] for d in v["drop"]],
        [v["clean"]["mean"] - r["mean"] for r in v["residual"]], atol=1e-9)
  saved = provenance.read_npz(os.path.join(workdir, "residual_test",
                                           "logits.npz"))
  assert "supervised/seed_0/clean" in saved
  assert f"full/seed_0/L{config.layers[-1]}/same_energy_noise" in saved
  coh = out["coherence"]
  assert set(coh["groups"]) == {"supervised", "contrastive"}
  for v in coh["groups"].values():
    means = [c["mean"] for c in v["coherence"]]
    assert all(0 <= m <= 1 for m in means if np.isfinite(m))
    per_clip = np.array(v["per_clip"], float)  # (S, L, N), None -> NaN
    assert per_clip.shape == (1, n_layers, coh["clips"])
    np.testing.assert_allclose(np.nanmean(per_clip[0], -1), means)
  assert set(coh["tests"]) == {"supervised", "contrastive", "falls_faster"}
  act = out["active_maps"]
  assert act["layers"] == list(config.active_maps.layers)
  assert 0 <= act["groups"]["contrastive"]["fraction"][0]["mean"] <= 1
  for png in ("residual_test/fig6_residual_test.png",
              "coherence/fig7_coherence.png",
              "layer_importance/fig4_layer_importance.png"):
    assert os.path.getsize(os.path.join(workdir, png)) > 1000


def test_residual_controls_remove_a_random_map_and_energy_matched_noise(
    runs, analysed):
  config, workdir, _ = analysed
  inputs = sonification.load_inputs(config, workdir)
  clf = cnn12_eval.load_classifier(os.path.join(runs["supervised"], "seed_0"))
  layer = config.layers[-1]
  removed, counts = measures.removals(clf.encoder, clf.params["encoder"],
                                      inputs.store, layer, config)
  assert set(removed) == set(measures.CONDITIONS)
  assert set(counts) == {"silent_most_active", "silent_random_map"}
  x = np.stack([inputs.store.clip(i) for i in range(len(inputs.store))])
  activity = np.asarray(inversion.map_activity(
      clf.encoder, clf.params["encoder"], x, layer))
  for i in range(len(inputs.store)):
    s, n = removed["most_active"][i], removed["same_energy_noise"][i]
    np.testing.assert_allclose(np.linalg.norm(n), np.linalg.norm(s),
                               rtol=1e-5)
    if np.any(s):
      assert abs(np.corrcoef(s, n)[0, 1]) < 0.2  # Noise, not the signal.
  # The random map is another map active on the clip: sonifying it gives
  # the control's signal.
  rng = np.random.default_rng([config.seed, layer, 0])
  again, maps, _ = sonification_common.sonify_chosen(
      clf.encoder, clf.params["encoder"], inputs.store, layer,
      lambda a, _: sonification_common.random_active_map(a, rng), 8, 0)
  for i, m in maps.items():
    np.testing.assert_array_equal(again[i], removed["random_map"][i])
    if m and (activity[i] > 0).sum() > 1:
      assert m != activity[i].argmax() + 1 and activity[i, m - 1] > 0


def test_residual_is_the_input_minus_the_most_active_sonification(runs,
                                                                   analysed):
  config, workdir, _ = analysed
  inputs = sonification.load_inputs(config, workdir)
  clf = cnn12_eval.load_classifier(os.path.join(runs["supervised"], "seed_0"))
  layer = config.layers[1]
  sonified, maps, _ = sonification.sonify_most_active(
      clf.encoder, clf.params["encoder"], inputs.store, layer, 8, 0)
  x = inputs.store.clip(3)
  activity = np.asarray(inversion.map_activity(
      clf.encoder, clf.params["encoder"], x, layer))
  assert maps[3] == activity.argmax() + 1
  s = np.asarray(inversion.sonify(clf.encoder, clf.params["encoder"], x,
                                  layer, maps[3]))
  np.testing.assert_allclose(sonified[3], s, rtol=1e-5, atol=1e-6)


def test_feature_evolution_sonifies_random_maps_from_step_0(runs, analysed):
  config, workdir, out = analysed
  ev = out["feature_evolution"]
  run = os.path.join(runs["contrastive"], "seed_0")
  steps = loop.list_checkpoint_steps(run)
  assert ev["steps"] == steps and steps[0] == 0 and len(steps) >= 2
  layer = config.evolution.layers[0]
  final = cnn12_eval.load_encoder(run)
  inputs = sonification.load_inputs(config, workdir)
  activity = sonification._activity(final, inputs.store, layer, 8)
  # The paper's randomly selected maps, drawn from config.seed.
  want = sonification.evolution_maps(config, activity, layer)
  assert [e["map"] for e in ev["entries"]] == want
  assert len(want) == config.evolution.maps_per_layer
  first = cnn12_eval.load_encoder(run, 0)
  start = sonification._activity(first, inputs.store, layer, 8)
  for entry in ev["entries"]:
    assert entry["layer"] == layer
    # Each map on the clip it activates most at the end (a map dead at the
    # end: at step 0).
    m = entry["map"] - 1
    assert entry["dead_at_end"] == (activity[:, m].max() <= 0)
    chosen = start if entry["dead_at_end"] else activity
    assert entry["clip_index"] == int(np.argmax(chosen[:, m]))
    assert [s["step"] for s in entry["steps"]] == steps
    for s in entry["steps"]:
      assert os.path.exists(os.path.join(workdir, "feature_evolution",
                                         s["sonification_wav"]))
  (dead,) = ev["dead"]
  assert dead["dead_at_end"] == [int(m) + 1 for m in
                                 np.flatnonzero(activity.max(0) <= 0)]
  assert dead["alive_at_first_step"] == [
      m for m in dead["dead_at_end"] if start[:, m - 1].max() > 0]
  assert ev["dead_alive_at_start"]["trials"] == len(dead["dead_at_end"])


def test_layer_importance_trains_each_layer_and_mode(analysed):
  config, _, out = analysed
  li = out["layer_importance"]
  assert li["layers"] == list(config.layer_importance.layers)
  for v in li["encoders"].values():
    assert set(v["mean"]) == {"fc_only", "full"}
    assert all(len(m) == len(li["layers"]) for m in v["mean"].values())


def test_page_lists_the_chosen_maps_with_their_media(analysed):
  config, workdir, out = analysed
  page_dir = os.path.join(workdir, "sonification_page")
  manifest = json.load(open(os.path.join(page_dir, "manifest.json")))
  assert set(manifest["models"]) == {"supervised", "contrastive"}
  for name, model in manifest["models"].items():
    assert [l["layer"] for l in model["layers"]] == list(config.layers)
    for layer in model["layers"]:
      top1 = np.asarray(out["topk"][name][str(layer["layer"])]["scores"])[
          :, 0]
      n = min(config.page.maps_per_layer, len(top1))
      assert len(layer["maps"]) == n  # The n most active maps.
      np.testing.assert_allclose(
          sorted((m["activity"] for m in layer["maps"]), reverse=True),
          np.sort(top1)[::-1][:n], rtol=1e-6)
      for m in layer["maps"]:
        assert len(m["clips"]) == config.topk.k
  assert manifest["models"]["contrastive"]["evolution"]
  titles = [f["title"] for f in manifest["figures"]]
  assert "Residual test (Fig. 6)" in titles
  assert open(os.path.join(page_dir, "index.html")).read().startswith(
      "<!DOCTYPE html>")
  summary = open(os.path.join(workdir, "summary.md")).read()
  assert "removing the most active map's sonification lowers mAP" in summary
  assert "coherence falls with depth" in summary
  clips = out["coherence"]["clips"]
  assert f"paired bootstrap over {clips} clips" in summary
  saved = provenance.read_json(os.path.join(workdir, "summary.json"))
  assert saved["findings"] == json.loads(json.dumps(out["findings"]))
  for f in saved["findings"]:
    assert f["verdict"] in statistics.VERDICTS


def test_the_authors_top_k_and_coherence_over_maps(runs, tmp_path):
  config = _config(runs, **{"topk.k": 3, "coherence.inputs_per_map": 2})
  authors = sonification_config.get_config("tiny,authors")
  config.unlock()
  config.topk.ranking = authors.topk.ranking
  config.topk.exclude = authors.topk.exclude
  config.coherence.method = authors.coherence.method
  config.lock()
  workdir = str(tmp_path / "authors")
  out = sonification.run_all(config, workdir, ("topk", "coherence"))
  inputs = sonification.load_inputs(config, workdir)
  names = inputs.data.class_names
  noisy = [i for i, n in enumerate(names) if "noise" in n.lower()]
  assert noisy  # the generated set has noise-burst classes
  banned = {i for i in range(len(inputs.store))
            if inputs.store.labels[i][noisy].any()}
  enc = cnn12_eval.load_encoder(os.path.join(runs["contrastive"], "seed_0"))
  layer = config.layers[1]
  top = out["topk"]["contrastive"][str(layer)]
  assert not banned & set(np.ravel(top["indices"]).tolist())
  # Ranked before pooling, among the clips left.
  left = [i for i in range(len(inputs.store)) if i not in banned]
  x = np.stack([inputs.store.clip(i) for i in left])
  pre = np.asarray(enc.model.apply({"params": enc.params}, x,
                                   block=layer).activations[-1]).mean(1)
  np.testing.assert_allclose(np.asarray(top["scores"])[:, 0], pre.max(0),
                             rtol=1e-5, atol=1e-7)
  coh = out["coherence"]
  assert coh["method"] == "authors" and coh["unit"] == "map"
  per_map = coh["groups"]["contrastive"]["per_map"][0]
  assert [len(v) for v in per_map] == [enc.model.conv_widths[l - 1]
                                       for l in config.layers]
  # One map by hand: its 2 top clips, sonified, the notebook's measure.
  m = 1
  clips = [left[i] for i in np.argsort(-pre[:, m - 1], kind="stable")[:2]]
  want = []
  for clip in clips:
    s = np.asarray(inversion.sonify(enc.model, enc.params,
                                    inputs.store.clip(clip), layer, m))
    want.append(metrics.mean_top_peaks_coherence(
        inputs.store.clip(clip), s, 8000, k=5, on_undefined="nan"))
  got = per_map[1][m - 1]
  if np.isfinite(want).any():
    assert got == pytest.approx(np.nanmean(want), rel=1e-4)
  else:
    assert got is None
  assert set(coh["tests"]) == {"supervised", "contrastive", "falls_faster"}


def test_a_rerun_reuses_and_other_inputs_are_refused(runs, analysed,
                                                     tmp_path):
  config, workdir, out = analysed
  again = sonification.run_all(config, workdir, ("topk", "coherence"))
  assert again["coherence"] == json.loads(json.dumps(out["coherence"]))
  other = _config(runs, **{"coherence.k": 3})
  with pytest.raises(provenance.ProvenanceError, match="coherence.k"):
    sonification.run_all(other, workdir, ("coherence",))


def test_missing_run_folders_stop_before_any_data_is_made(tmp_path):
  c = sonification_config.get_config("tiny")
  workdir = tmp_path / "w"
  with pytest.raises(ValueError, match="config.supervised is empty"):
    sonification.run_all(c, str(workdir), ("coherence",))
  with pytest.raises(ValueError, match="needs classifier runs"):
    sonification.run_all(c, str(workdir), ("residual_test",))
  assert not workdir.exists()  # No event set was generated.


def test_bad_config_and_inputs_are_named(runs, tmp_path):
  with pytest.raises(ValueError, match="config.layers"):
    sonification.check_config(_config(runs, layers=(0, 3)))
  with pytest.raises(ValueError, match="coherence.method"):
    sonification.check_config(_config(runs, **{"coherence.method": "x"}))
  with pytest.raises(FileNotFoundError, match="config.probe=.*no seed_"):
    sonification.run_all(_config(runs, probe=str(tmp_path)),
                         str(tmp_path / "w"), ("residual_test",))
  other_data = _config(runs, **{"data.dir": str(tmp_path / "other"),
                                "data.seed": 1})
  with pytest.raises(provenance.ProvenanceError, match="trained on data"):
    sonification.run_all(other_data, str(tmp_path / "w2"), ("topk",))


def test_entry_point_prints_findings_and_one_line_errors(runs, analysed,
                                                         tmp_path):
  config, workdir, _ = analysed
  args = [f"--workdir={workdir}"] + [
              f"--config.{f}={runs[f]}" for f in (
                  "supervised", "contrastive", "probe", "finetune")] + [
                      f"--config.data.dir={runs['data']}"]
  out = subprocess.run([sys.executable, "-m", "recon_jax",
                        f"--config={_ROOT}/configs/sonification.py:tiny,"
                        "coherence"] + args, capture_output=True,
                       text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "coherence falls with depth" in out.stdout
  assert "supervised encoder: input/sonification coherence" in out.stdout
  bad = subprocess.run([sys.executable, "-m", "recon_jax",
                        f"--config={_ROOT}/configs/sonification.py:tiny,topk"]
                       + args[:1] + [
          "--config.layers=(1,12)"], capture_output=True, text=True,
                       timeout=600)
  assert bad.returncode == 1
  assert bad.stderr.strip().splitlines()[-1].startswith("error: ValueError")
  assert "Traceback" not in bad.stderr
