"""The whole mission through the command line, at tiny scale: killed after
its first stage and resumed (finished stages are skipped, not redone), then
summary.md with every figure it names on disk, the page (with the
comparison's section, in Chromium), and refusals."""
import json
import os
import re
import signal
import subprocess
import sys
import time

from playwright.sync_api import sync_playwright
import pytest

from recon_jax.report import sonification_page as page_lib
import subprocess_env  # tests/subprocess_env.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MISSION = [sys.executable, "-m", "recon_jax",
           "--config=configs/mission.py:tiny"]


def _env():
  return subprocess_env.env()


def _run(args, timeout=900):
  return subprocess.run(MISSION + args, cwd=ROOT, env=_env(),
                        capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def mission(tmp_path_factory):
  """The tiny mission, SIGKILLed once its thesis stage is recorded, then the
  same command again. Returns (workdir, first stderr, second process,
  thesis files' mtimes before the rerun)."""
  workdir = tmp_path_factory.mktemp("mission") / "run"
  record = workdir / "stages" / "thesis.json"
  proc = subprocess.Popen(MISSION + [f"--workdir={workdir}"], cwd=ROOT,
                          env=_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 600
  while not record.exists() and proc.poll() is None and time.time() < deadline:
    time.sleep(0.5)
  proc.send_signal(signal.SIGKILL)
  _, first_err = proc.communicate()
  assert record.exists(), first_err[-3000:]
  assert not (workdir / "summary.md").exists()
  thesis_files = {p: os.path.getmtime(p) for p in
                  map(str, (workdir / "thesis").rglob("*")) if os.path.isfile(p)}
  second = _run([f"--workdir={workdir}"])
  return workdir, first_err, second, thesis_files


def test_resumed_mission_skips_finished_stages(mission):
  workdir, first_err, second, thesis_files = mission
  assert second.returncode == 0, second.stderr[-3000:]
  assert "stage thesis: running" in first_err
  assert "stage thesis: finished earlier, skipped" in second.stderr
  assert "stage thesis: running" not in second.stderr
  for stage in ("keywords", "events", "supervised", "contrastive", "probe",
                "sonification", "comparison"):
    assert f"stage {stage}: running" in second.stderr
    assert (workdir / "stages" / f"{stage}.json").exists()
  # Nothing of the finished stage was rewritten.
  assert thesis_files and all(os.path.getmtime(p) == t
                              for p, t in thesis_files.items())
  # Progress: the mission's bar and the stages' own bars (with ETA).
  assert re.search(r"mission: \d/8 stages", second.stderr)
  assert re.search(r"cnn12_events/seed_0: .*<", second.stderr)
  assert "summary: " in second.stdout


def test_summary_shows_every_figure_and_number(mission):
  workdir = mission[0]
  text = (workdir / "summary.md").read_text()
  images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
  assert len(images) >= 10
  for rel in images:
    assert (workdir / rel).is_file(), rel
    # Each picture has its line saying what it shows.
    assert re.search(rf"\*{re.escape(rel)}\*: \S", text), rel
  for heading in ("## The thesis", "## Data made", "## CNN12 on the sound",
                  "## Sonification", "## Every method on both networks"):
    assert heading in text
  assert "| Backprop | L1 | phones |" in text
  assert re.search(r"\| supervised \| .* test/mAP \d\.\d+ \(chance", text)
  assert re.search(r"validation/pair_top1 \d\.\d+ \(chance", text)
  assert "Layer importance" in text
  page = workdir / "sonification" / "sonification_page" / "index.html"
  assert page.is_file() and "sonification_page/index.html" in text
  # Every finding's verdict is stated, with its interval and test.
  rows = re.findall(r"^\| .* \| \*\*(holds|contradicted|not shown at this "
                    r"scale|not tested at this scale)\*\* \| (\S+) \[", text,
                    re.M)
  assert len(rows) >= 8, text


def test_the_page_shows_the_comparison(mission):
  """The comparison stage adds its section to the sonification stage's
  page; in Chromium, each network's grid of players loads."""
  workdir = mission[0]
  folder = workdir / "sonification" / "sonification_page"
  manifest = json.loads((folder / "manifest.json").read_text())
  # Still in the sonification stage's order (the page opens on the first).
  assert list(manifest["models"]) == ["supervised", "contrastive"]
  networks = manifest["comparison"]["networks"]
  assert [n["name"] for n in networks] == ["phone CNN", "CNN12"]
  errors = []
  with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=page_lib.find_chromium(),
                                args=["--no-sandbox"])
    page = browser.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(r.url))
    page.goto((folder / "index.html").as_uri())
    for i, net in enumerate(networks):
      page.select_option("#cmp-network", str(i))
      page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
      page.wait_for_function(
          "() => [...document.querySelectorAll('#comparison audio')].every("
          "a => a.readyState >= 1 || a.error) && "
          "[...document.querySelectorAll('#comparison img')].every("
          "i => i.complete)", timeout=15000)
      players = page.eval_on_selector_all(
          "#cmp-grid audio", "as => as.map(a => [a.readyState, a.error])")
      assert len(players) == sum("wav" in c for c in
                                 net["examples"][0]["cells"]) > 0
      assert all(ready >= 1 and error is None for ready, error in players)
      assert page.eval_on_selector("#comparison figure img",
                                   "i => i.naturalWidth") > 0
    browser.close()
  assert not errors, errors


def test_rerun_of_a_finished_mission_does_nothing_again(mission):
  workdir = mission[0]
  proc = _run([f"--workdir={workdir}"])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stderr.count("finished earlier, skipped") == 8


def test_another_config_for_a_finished_stage_is_refused(mission):
  workdir = mission[0]
  before = (workdir / "stages" / "events.json").read_text()
  proc = _run([f"--workdir={workdir}", "--config.events.seed=3"])
  assert proc.returncode == 1
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and "Traceback" not in proc.stderr
  assert "stage 'events'" in errors[0] and "seed: was 0, now 3" in errors[0]
  assert (workdir / "stages" / "events.json").read_text() == before


def test_stage_records_describe_what_made_them(mission):
  workdir = mission[0]
  record = json.loads((workdir / "stages" / "probe.json").read_text())
  assert record["config"]["encoder"]["workdir"] == "<workdir>/cnn12_simclr"
  assert record["config"]["data"]["source"] == "fsd50k"
  assert str(workdir) not in json.dumps(record)


@pytest.mark.parametrize("flags,pattern", [
    (["--config.stages=('thesis','telepathy')"], r"unknown stage 'telepathy'"),
    (["--config.stages=('probe',)"], r"stage 'probe' needs stage 'events'"),
    (["--config.contrastive.train.batch_size=-1"], r"config.contrastive: "),
    (["--config.sonification.layers=(1,12)"], r"config.sonification: "),
    (["--config.comparison.methods=('telepathy',)"],
     r"config.comparison: .*unknown method 'telepathy'"),
])
def test_bad_mission_config_is_refused_before_any_work(tmp_path, flags,
                                                       pattern):
  workdir = tmp_path / "run"
  proc = _run([f"--workdir={workdir}"] + flags, timeout=120)
  assert proc.returncode == 1, proc.stderr[-2000:]
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and re.search(pattern, errors[0]), proc.stderr
  assert "Traceback" not in proc.stderr
  assert not (workdir / "thesis").exists()
