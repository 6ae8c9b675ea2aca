"""`python -m recon_jax --config=configs/<file>.py --workdir=DIR`; --help
lists the experiments (see recon_jax/main.py)."""
from recon_jax import main

if __name__ == "__main__":
  main.console_main()
