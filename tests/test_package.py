"""The package's surface: every subpackage is listed and reachable after a
plain `import recon_jax`, without importing the heavy ones up front."""
import subprocess
import sys


def test_dir_lists_every_subpackage_and_all_matches():
  code = (
      "import sys, recon_jax\n"
      "subs = ['analysis', 'data', 'experiments', 'inversion', 'metrics',\n"
      "        'models', 'ops', 'report', 'train']\n"
      "public = [n for n in dir(recon_jax) if not n.startswith('_')]\n"
      "assert public == subs, public\n"
      "assert sorted(recon_jax.__all__) == sorted(subs + ['__version__'])\n"
      "assert 'recon_jax.train' not in sys.modules  # still lazy\n"
      "assert recon_jax.train.fit is not None\n"
      "assert 'recon_jax.train' in sys.modules\n")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
