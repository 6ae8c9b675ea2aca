"""The sonify_clip experiment through the one command: a researcher's own
clip sonified with a CNN12 checkpoint (a PyTorch state dict as the paper's
code saves it, or a recon_jax run folder); every bad input is one error
line, exit status 1 and nothing written; the README's library example.

Every command-line case runs in one module fixture, several processes at a
time (they are independent: each has its own work dir), so the file takes
about as long as its slowest chain (the happy path's three runs).
"""
import concurrent.futures
import errno
import json
import os
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from recon_jax.experiments import sonify_clip
from recon_jax.models import cnn12

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 8000
TINY = tuple(w // 64 for w in cnn12.WIDTHS)  # width_divisor=64
LAYER = 5  # 4 maps at TINY widths.
TIMEOUT_S = 300

# The README's library example, run verbatim by
# test_readme_example_sonifies_a_pytorch_checkpoint (in a folder holding
# cnn12.pt, saved by the paper's PyTorch Encoder, and my_clip.wav).
README_EXAMPLE = """\
import numpy as np
import torch

from recon_jax import inversion
from recon_jax import models
from recon_jax.data import audio_io
from recon_jax.report import sonification_media

# cnn12.pt: torch.save(encoder.state_dict(), "cnn12.pt") in the paper's code.
state = torch.load("cnn12.pt", map_location="cpu", weights_only=True)
widths = [state[f"features.conv{b}.weight"].shape[0] for b in range(1, 12)]
model = models.CNN12(widths=widths)
params = models.cnn12_params_from_torch(state, widths=widths)

# An 8 kHz clip (another rate is refused; resample_clip=True resamples it).
clip = audio_io.read_checked_clip("my_clip.wav", sample_rate=8000)
s = inversion.sonify(model, params, clip.samples, layer=5, feature_map=1)
sonification_media.write_clip_wav("my_clip_L5_m1.wav", np.asarray(s), 8000)
"""


def _chirp(n, rate=RATE, seed=0):
  t = np.arange(n) / rate
  noise = np.random.default_rng(seed).standard_normal(n)
  return 0.5 * np.sin(2 * np.pi * (200 + 800 * t) * t) + 0.05 * noise


def _save_torch_cnn12(path):
  """A CNN12 state dict as the paper's PyTorch code saves it: the test-only
  PyTorch Encoder of Fig. A.1 (tests/test_models_cnn12.py), TINY widths."""
  import torch  # pylint: disable=g-import-not-at-top
  from test_models_cnn12 import _torch_encoder  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)  # _torch_encoder seeds only after its convs.
  torch.save(_torch_encoder(TINY).state_dict(), path)
  return str(path)


def _save_torch_other(path):
  """The state dict of a PyTorch model that is not CNN12."""
  import torch  # pylint: disable=g-import-not-at-top
  net = torch.nn.Sequential(torch.nn.Conv1d(1, 8, 9), torch.nn.ReLU(),
                            torch.nn.Flatten(), torch.nn.Linear(8, 3))
  torch.save(net.state_dict(), path)
  return str(path)


def _command(workdir, **fields):
  args = [sys.executable, "-m", "recon_jax", "--config=configs/sonify_clip.py",
          f"--workdir={workdir}"]
  return args + [f"--config.{k}={v}" for k, v in fields.items()]


def _run(args):
  return subprocess.run(args, cwd=ROOT, capture_output=True, text=True,
                        timeout=TIMEOUT_S, check=False)


def _unshare_problem(mnt):
  """Why a tmpfs cannot be mounted in a user namespace here (the read-only
  and full-disk cases need one), or None."""
  if shutil.which("unshare") is None:
    return ("these tests need `unshare` (util-linux) to mount a small tmpfs "
            "in a user namespace: apt-get install util-linux")
  proc = subprocess.run(
      ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
       f"mount -t tmpfs -o size=200k none {shlex.quote(mnt)}"],
      capture_output=True, text=True, check=False)
  if proc.returncode:
    return ("cannot mount a tmpfs with `unshare --user --map-root-user "
            f"--mount` here (needs user namespaces): {proc.stderr.strip()}")
  return None


LEFT = "--- left in the mount:"


def _in_tmpfs(mnt, setup, args):
  """Runs `args` with a 200 kB tmpfs at `mnt` (made ready by the shell
  commands `setup`); after it, lists what is left in the mount (the mount
  goes away with the namespace), the `fill` file excepted."""
  m = shlex.quote(mnt)
  script = (f"set -e\nmount -t tmpfs -o size=200k none {m}\n{setup}\nset +e\n"
            f"{shlex.join(args)}\nrc=$?\necho '{LEFT}'\n"
            f"find {m} -mindepth 1 ! -name fill\nexit $rc\n")
  return _run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
               script])


def _left_in_mount(proc):
  assert LEFT in proc.stdout, proc.stdout + proc.stderr
  return proc.stdout.split(LEFT, 1)[1].split()


def _happy_chain(workdir, clip, ckpt):
  """Three runs in one work dir: new, the same again, another layer."""
  first = _run(_command(workdir, clip=clip, checkpoint=ckpt,
                        layer=LAYER))
  stamps = {}
  if first.returncode == 0:
    for dirpath, _, files in os.walk(workdir):
      for f in files:
        p = os.path.join(dirpath, f)
        stamps[p] = os.stat(p).st_mtime_ns
  again = _run(_command(workdir, clip=clip, checkpoint=ckpt, layer=LAYER))
  other = _run(_command(workdir, clip=clip, checkpoint=ckpt, layer=4))
  return {"first": first, "stamps": stamps, "again": again, "other": other}


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
  """A tiny CNN12 as the paper's code saves it, and a 1 s clip at 8 kHz."""
  root = tmp_path_factory.mktemp("sonify_clip_assets")
  clip = str(root / "clip.wav")
  sf.write(clip, _chirp(RATE), RATE, subtype="PCM_16")
  return {"ckpt": _save_torch_cnn12(root / "cnn12.pt"), "clip": clip}


@pytest.fixture(scope="module")
def cli(assets, tmp_path_factory):
  """Every command-line case, run in parallel: name -> (workdir, result)."""
  root = tmp_path_factory.mktemp("sonify_clip")
  ckpt, clip = assets["ckpt"], assets["clip"]
  files = {}

  def audio(name, x, rate=RATE, subtype="PCM_16"):
    files[name] = str(root / name)
    sf.write(files[name], x, rate, subtype=subtype)

  audio("silent.wav", np.zeros(RATE))
  nan = _chirp(RATE).astype(np.float32)
  nan[[100, 4000]] = np.nan
  audio("nan.wav", nan, subtype="FLOAT")
  audio("clip16k.wav", _chirp(2 * RATE, 2 * RATE), 2 * RATE)
  audio("short.wav", _chirp(cnn12.MIN_INPUT_LENGTH - 1))
  files["corrupt.wav"] = str(root / "corrupt.wav")
  with open(files["corrupt.wav"], "wb") as f:
    f.write(b"\x00garbage, not audio" + bytes(range(256)) * 16)
  files["other.pt"] = _save_torch_other(root / "other.pt")
  not_run = root / "not_a_run"
  not_run.mkdir()
  (not_run / "notes.txt").write_text("a folder, not a CNN12 run\n")

  def work(name):
    return str(root / "work" / name)

  ok = {"clip": clip, "checkpoint": ckpt, "layer": LAYER}
  cases = {
      "missing_clip": {**ok, "clip": str(root / "no_such_clip.wav")},
      "corrupt_clip": {**ok, "clip": files["corrupt.wav"]},
      "silent_clip": {**ok, "clip": files["silent.wav"]},
      "nan_clip": {**ok, "clip": files["nan.wav"]},
      "wrong_rate": {**ok, "clip": files["clip16k.wav"]},
      "short_clip": {**ok, "clip": files["short.wav"]},
      "layer_12": {**ok, "layer": 12},
      "map_1e6": {**ok, "maps": "(1000000,)"},
      "missing_checkpoint": {**ok, "checkpoint": str(root / "nothing.pt")},
      "other_torch_model": {**ok, "checkpoint": files["other.pt"]},
      "folder_not_a_run": {**ok, "checkpoint": str(not_run)},
      "width_mismatch": {**ok, "model.width_divisor": 8},
  }
  # The happy path's three runs, the longest chain, start first.
  jobs = {"happy": lambda: _happy_chain(work("happy"), clip, ckpt)}
  jobs.update({name: (lambda f=fields, n=name: _run(_command(work(n), **f)))
               for name, fields in cases.items()})
  mounts = {}
  for name in ("read_only", "full_disk"):
    mounts[name] = str(root / "mnt" / name)
    os.makedirs(mounts[name])
  unshare_problem = _unshare_problem(mounts["read_only"])
  if unshare_problem is None:
    # Read-only: the work dir is the mount itself, remounted read-only.
    jobs["read_only"] = lambda: _in_tmpfs(
        mounts["read_only"], f"mount -o remount,ro {mounts['read_only']}",
        _command(mounts["read_only"], **ok))
    # Full disk: 200 kB hold more than the WAVs' lower bound (9 x 16 kB for
    # the 4 maps) but not the WAVs and the figure: a write fails midway.
    jobs["full_disk"] = lambda: _in_tmpfs(
        mounts["full_disk"], "", _command(
            os.path.join(mounts["full_disk"], "out"), **ok, top=4))
  with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
    futures = {name: pool.submit(job) for name, job in jobs.items()}
    done = {name: f.result() for name, f in futures.items()}
  out = {name: (work(name), result) for name, result in done.items()}
  out["_unshare_problem"] = unshare_problem
  return out


def _one_error(proc, *words) -> str:
  """The single `error:` line of a failed run; it names every word."""
  text = proc.stdout + proc.stderr
  assert proc.returncode == 1, text
  assert "Traceback" not in text, text
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1, text
  for word in words:
    assert word.lower() in errors[0].lower(), (word, errors[0])
  return errors[0]


def _nothing_written(workdir):
  assert not os.path.exists(workdir) or not os.listdir(workdir), (
      os.listdir(workdir))


def _bad_input(cli, name, *words):
  workdir, proc = cli[name]
  line = _one_error(proc, *words)
  _nothing_written(workdir)
  return line


# --- Bad input: one test per case --------------------------------------------


def test_missing_clip_is_one_error(cli):
  _bad_input(cli, "missing_clip", "no_such_clip.wav", "not found")


def test_corrupt_clip_is_one_error(cli):
  _bad_input(cli, "corrupt_clip", "corrupt.wav", "unreadable or corrupt")


def test_silent_clip_is_one_error(cli):
  _bad_input(cli, "silent_clip", "silent.wav", "silent clip")


def test_nan_samples_are_one_error(cli):
  _bad_input(cli, "nan_clip", "nan.wav", "2 NaN")


def test_wrong_sample_rate_names_both_rates_and_the_flag(cli):
  _bad_input(cli, "wrong_rate", "clip16k.wav", "16000 Hz", "8000 Hz",
             "--config.resample=True")


def test_clip_shorter_than_the_receptive_field_is_one_error(cli):
  _bad_input(cli, "short_clip", "short.wav",
             f"{cnn12.MIN_INPUT_LENGTH - 1} samples",
             f"{cnn12.MIN_INPUT_LENGTH}", "receptive field")


def test_layer_out_of_range_is_one_error(cli):
  _bad_input(cli, "layer_12", "config.layer=12", "1..11")


def test_map_out_of_range_is_one_error(cli):
  _bad_input(cli, "map_1e6", "config.maps", "feature map 1000000 does not "
             "exist", f"has {TINY[LAYER - 1]} feature maps")


def test_missing_checkpoint_is_one_error(cli):
  _bad_input(cli, "missing_checkpoint", "config.checkpoint", "nothing.pt",
             "no such file")


@pytest.mark.parametrize("case", ["other_torch_model", "folder_not_a_run"])
def test_checkpoint_of_another_model_is_one_error(cli, case):
  _bad_input(cli, case, "not a CNN12")


def test_torch_widths_differing_from_the_model_block_are_one_error(cli):
  line = _bad_input(cli, "width_mismatch", "config.model",
                    "width_divisor=8", "width_divisor=64")
  assert str(tuple(w // 8 for w in cnn12.WIDTHS)) in line
  assert str(TINY) in line


def test_read_only_workdir_is_one_error(cli):
  if cli["_unshare_problem"]:
    pytest.fail(cli["_unshare_problem"])
  _, proc = cli["read_only"]
  _one_error(proc, "read-only")
  assert _left_in_mount(proc) == []


def test_full_disk_is_one_error(cli):
  if cli["_unshare_problem"]:
    pytest.fail(cli["_unshare_problem"])
  _, proc = cli["full_disk"]
  # The disk filled up while the outputs were being written (the WAVs'
  # lower bound fitted): what was written is gone.
  _one_error(proc, "disk full", "while writing the outputs", "nothing")
  assert _left_in_mount(proc) == []


# --- The happy path -----------------------------------------------------------


def test_sonifies_a_clip_and_a_rerun_reuses_it(cli, assets):
  workdir, runs = cli["happy"]
  first = runs["first"]
  assert first.returncode == 0, first.stdout + first.stderr
  results = json.load(open(os.path.join(workdir, "results.json")))
  made_by = json.load(open(os.path.join(workdir, "made_by.json")))
  x, rate = sf.read(os.path.join(workdir, "input.wav"))
  assert rate == RATE and x.shape == (RATE,)
  assert os.path.getsize(os.path.join(workdir, "spectrograms.png")) > 1000
  width = TINY[LAYER - 1]
  maps = [e["map"] for e in results["maps"]]
  assert sorted(maps) == list(range(1, width + 1))  # top=4 of 4 maps.
  activity = [e["activity"] for e in results["maps"]]
  assert activity == sorted(activity, reverse=True)
  assert [e["rank"] for e in results["maps"]] == list(range(1, width + 1))
  for e in results["maps"]:
    sub = f"L{LAYER}_m{e['map']}"
    assert e["sonification_wav"] == f"{sub}/sonification.wav"
    for name in ("sonification.wav", "residual.wav"):
      s, r = sf.read(os.path.join(workdir, sub, name))
      assert r == RATE and s.shape == x.shape  # The clip's length.
    assert e["silent"] == (e["activity"] == 0)
    if e["silent"]:
      assert e["coherence"] is None
    else:
      assert 0 <= e["coherence"] <= 1
  assert made_by["clip"]["fingerprint"] == sonify_clip.file_fingerprint(
      assets["clip"])
  assert made_by["checkpoint"]["widths"] == list(TINY)
  assert made_by["config"]["layer"] == LAYER
  assert not os.path.exists(os.path.join(workdir, sonify_clip.PARTIAL))
  # The same command again reuses everything (no file rewritten).
  again = runs["again"]
  assert again.returncode == 0, again.stdout + again.stderr
  assert f"reused {workdir}" in again.stdout
  for path, stamp in runs["stamps"].items():
    assert os.stat(path).st_mtime_ns == stamp, path
  # Another layer in the same work dir: refused, naming the field.
  line = _one_error(runs["other"], "ProvenanceError", "config.layer")
  assert "was 5, now 4" in line


def test_not_enough_room_fails_before_the_network_runs(assets, tmp_path,
                                                        monkeypatch):
  """A disk without room for the WAVs is refused before anything runs
  (in-process: the check, then no sonify call and nothing left)."""
  from recon_jax import inversion  # pylint: disable=g-import-not-at-top
  from configs import sonify_clip as config_file  # pylint: disable=g-import-not-at-top

  def never(*_, **__):
    raise AssertionError("the network ran")

  monkeypatch.setattr(inversion, "map_activity", never)
  monkeypatch.setattr(inversion, "sonify", never)
  free = shutil.disk_usage(tmp_path)._replace(free=10_000)
  monkeypatch.setattr(shutil, "disk_usage", lambda _: free)
  c = config_file.get_config()
  c.clip, c.checkpoint = assets["clip"], assets["ckpt"]
  workdir = str(tmp_path / "new" / "out")
  with pytest.raises(OSError) as e:
    sonify_clip.run(c, workdir)
  assert e.value.errno == errno.ENOSPC
  assert not os.path.exists(tmp_path / "new")



def test_a_recon_jax_run_folder_and_a_resampled_clip(assets, tmp_path):
  """The checkpoint as a recon_jax run folder (seed_0/ with
  model_config.json and a checkpoint, read by cnn12_eval.load_encoder;
  here written from the PyTorch file's weights instead of trained), and a
  16 kHz clip with config.resample=True."""
  import optax  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from configs import sonify_clip as config_file  # pylint: disable=g-import-not-at-top
  from recon_jax import models  # pylint: disable=g-import-not-at-top
  from recon_jax import provenance  # pylint: disable=g-import-not-at-top
  from recon_jax.train import cnn12_supervised as sup  # pylint: disable=g-import-not-at-top
  from recon_jax.train import loop  # pylint: disable=g-import-not-at-top
  params = models.cnn12_params_from_torch(
      torch.load(assets["ckpt"], weights_only=True), widths=TINY)
  run_dir = tmp_path / "run" / "seed_0"
  run_dir.mkdir(parents=True)
  sup.write_initial_state(str(run_dir), {"encoder": params},
                          optax.adam(1e-3), loop.make_mesh())
  provenance.write_json_atomic(
      str(run_dir / sup.MODEL_CONFIG),
      {"kind": "cnn12_contrastive",
       "encoder": sup.encoder_record(cnn12.CNN12(widths=TINY))})
  clip = str(tmp_path / "clip16k.wav")
  sf.write(clip, _chirp(2 * RATE, 2 * RATE), 2 * RATE, subtype="PCM_16")
  c = config_file.get_config()
  c.clip, c.checkpoint, c.resample = clip, str(tmp_path / "run"), True
  # Block 4's map 1 is silent on this clip (zero activation), map 2 not.
  c.layer, c.maps = 4, (1, 2)
  c.model.width_divisor = 64
  workdir = str(tmp_path / "out")
  results = sonify_clip.run(c, workdir)["results"]
  assert results["network"]["source"] == "recon_jax run"
  assert results["network"]["step"] == 0
  # The same weights as the PyTorch file: the same fingerprint.
  assert results["network"]["fingerprint"] == provenance.fingerprint_arrays(
      params)
  assert results["file_rate"] == 2 * RATE and results["resampled"]
  silent, active = results["maps"]
  assert (silent["map"], silent["silent"], silent["activity"]) == (1, True, 0)
  assert silent["coherence"] is None  # Undefined for a silent map.
  assert active["map"] == 2 and not active["silent"]
  assert 0 <= active["coherence"] <= 1
  for entry, peak in ((silent, 0.0), (active, 0.9)):
    s, rate = sf.read(os.path.join(workdir, entry["sonification_wav"]))
    assert rate == RATE and s.shape == (RATE,)
    assert np.max(np.abs(s)) == pytest.approx(peak, abs=1e-3)
  assert (silent["authors_channel"], active["authors_channel"]) == (0, 1)

  # The authors' numbering (channels from 0): their channel 1 is map 2.
  c.map_numbering, c.maps = "authors", (1,)
  theirs = sonify_clip.run(c, str(tmp_path / "authors"))["results"]
  (entry,) = theirs["maps"]
  assert (entry["map"], entry["authors_channel"]) == (2, 1)
  assert entry["activity"] == active["activity"]
  c.maps = (TINY[3],)  # One past their last channel.
  with pytest.raises(ValueError, match=rf"numbered 0..{TINY[3] - 1} "
                     r"\(map_numbering='authors'\)"):
    sonify_clip.run(c, str(tmp_path / "authors_bad"))
  c.maps = (-1,)
  with pytest.raises(ValueError, match="from 0"):
    sonify_clip.check_config(c)

def test_damaged_torch_checkpoints_are_named(assets, tmp_path):
  """NaN weights are refused (not sonified into 'silent' maps); a truncated
  file is one line naming it."""
  import torch  # pylint: disable=g-import-not-at-top
  from configs import sonify_clip as config_file  # pylint: disable=g-import-not-at-top
  state = torch.load(assets["ckpt"], weights_only=True)
  name = next(k for k in state if k.endswith("features.conv3.bias"))
  state[name][1] = float("inf")
  damaged = str(tmp_path / "inf_bias.pt")
  torch.save(state, damaged)
  c = config_file.get_config()
  c.checkpoint = damaged
  with pytest.raises(ValueError, match=r"parameter conv3/bias holds 1 "
                     r"NaN/Inf value\(s\).*damaged"):
    sonify_clip.load_network(c)
  data = open(assets["ckpt"], "rb").read()
  truncated = str(tmp_path / "truncated.pt")
  with open(truncated, "wb") as f:
    f.write(data[:len(data) // 2])
  c.checkpoint = truncated
  with pytest.raises(ValueError, match=r"truncated.pt: .*(not a PyTorch "
                     r"checkpoint|truncated or damaged)"):
    sonify_clip.load_network(c)


# --- The README's library example -------------------------------------------


def test_readme_example_sonifies_a_pytorch_checkpoint(tmp_path, monkeypatch):
  _save_torch_cnn12(tmp_path / "cnn12.pt")
  sf.write(tmp_path / "my_clip.wav", _chirp(RATE), RATE, subtype="PCM_16")
  monkeypatch.chdir(tmp_path)
  exec(compile(README_EXAMPLE, "README example", "exec"), {})  # pylint: disable=exec-used
  s, rate = sf.read(tmp_path / "my_clip_L5_m1.wav")
  assert rate == RATE and s.shape == (RATE,)
  assert np.max(np.abs(s)) == pytest.approx(0.9, abs=1e-3)
