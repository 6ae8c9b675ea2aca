"""The recorded commands stay runnable: every `recon-jax` / `python -m
recon_jax` command in the README and experiments/*.sh names a config file
that loads (with its variant), an experiment that exists, and only fields
the config has; the scripts pass shellcheck; --help lists every experiment.
"""
import glob
import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from recon_jax.experiments import registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(glob.glob(os.path.join(ROOT, "experiments", "*.sh")))


def _commands(text: str) -> list[list[str]]:
  """Every recon-jax command line of a shell script or README (line
  continuations joined, $R and ${VAR} replaced by sample paths)."""
  text = text.replace("\\\n", " ")
  out = []
  for line in text.splitlines():
    m = re.search(r"(?:recon-jax|python -m recon_jax)\s+(.*)", line)
    if not m or "--config=" not in m.group(1):
      continue
    args = m.group(1)
    if line[:m.start()].count("`") % 2:  # Inline code in prose: up to `.
      args = args.split("`")[0]
      if "--workdir=" not in args:
        continue
    args = re.sub(r"\$\{?recipe\}?", "probe", args)  # The loop's.
    args = re.sub(r"\$\{?(\w+)\}?(/?)", r"/data/\1\2", args)
    args = args.split(" && ")[0].split(" | ")[0]
    out.append(shlex.split(args, comments=True))
  return out


def _all_commands():
  found = []
  for path in SCRIPTS + [os.path.join(ROOT, "README.md")]:
    with open(path, encoding="utf-8") as f:
      for args in _commands(f.read()):
        found.append(pytest.param(args, id=f"{os.path.basename(path)}:"
                                  f"{' '.join(args)[:60]}"))
  return found


def _load(config_arg: str):
  path, _, variant = config_arg.partition(":")
  name = os.path.splitext(os.path.basename(path))[0]
  assert os.path.dirname(path) == "configs", config_arg
  module = importlib.import_module(f"configs.{name}")
  return module.get_config(variant) if variant else module.get_config()


def test_there_are_commands_to_check():
  assert len(_all_commands()) >= 15


@pytest.mark.parametrize("args", _all_commands())
def test_command_names_a_loadable_config_and_real_fields(args):
  flags = dict(a.split("=", 1) for a in args if a.startswith("--"))
  assert "--workdir" in flags, args
  config = _load(flags["--config"])
  registry.experiment_of(config)
  for key in flags:
    if key.startswith("--config."):
      target = config
      for part in key[len("--config."):].split("."):
        assert part in target, f"{key}: no such field in {flags['--config']}"
        target = target[part]


def test_scripts_pass_shellcheck():
  assert shutil.which("shellcheck"), "tests/install.sh installs shellcheck"
  assert SCRIPTS
  proc = subprocess.run(["shellcheck", *SCRIPTS], capture_output=True,
                        text=True)
  assert proc.returncode == 0, proc.stdout


def test_help_lists_every_experiment_and_its_configs(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "recon_jax", "--help"],
                        capture_output=True, text=True, cwd=str(tmp_path),
                        timeout=120)
  text = proc.stdout + proc.stderr
  assert proc.returncode == 0, text  # Asking for help is not an error.
  for e in registry.EXPERIMENTS.values():
    assert re.search(rf"^  {e.name}\s", text, re.M), e.name
    for config in e.configs:
      assert f"configs/{config}" in text
      assert os.path.exists(os.path.join(ROOT, "configs",
                                         config.split(":")[0]))


def test_every_config_file_names_a_registered_experiment():
  for path in sorted(glob.glob(os.path.join(ROOT, "configs", "*.py"))):
    name = os.path.splitext(os.path.basename(path))[0]
    if name == "__init__":
      continue
    config = importlib.import_module(f"configs.{name}").get_config()
    assert registry.experiment_of(config).name in registry.EXPERIMENTS


def test_console_script_is_installed():
  assert shutil.which("recon-jax"), "pip install -e . installs recon-jax"


def test_every_config_file_has_its_experiments_fields():
  """registry.check_fields accepts every config an experiment lists (it
  refuses only a config switched to another experiment)."""
  import importlib  # pylint: disable=g-import-not-at-top
  for e in registry.EXPERIMENTS.values():
    for spec in e.configs:
      module, _, variant = spec.partition(":")
      c = importlib.import_module(f"configs.{module[:-3]}").get_config(
          *([variant] if variant else []))
      registry.check_fields(e, c)


def test_every_sonification_analysis_is_an_experiment():
  """configs/sonification.py:<analysis> runs each analysis alone."""
  from configs import sonification as sonification_config  # pylint: disable=g-import-not-at-top
  for name in sonification_config.ANALYSES:
    e = registry.EXPERIMENTS[name]
    assert e.analyses == (name,)
    assert sonification_config.get_config(name).experiment == name
