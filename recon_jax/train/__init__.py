"""Training: one data-parallel, checkpointed loop for every model."""
from recon_jax.train.loop import checkpoint_manager
from recon_jax.train.loop import CheckpointWriteError
from recon_jax.train.loop import DATA_AXIS
from recon_jax.train.loop import fit
from recon_jax.train.loop import init_train_state
from recon_jax.train.loop import list_checkpoint_steps
from recon_jax.train.loop import make_mesh
from recon_jax.train.loop import make_train_step
from recon_jax.train.loop import restore_latest
from recon_jax.train.loop import restore_params_at
from recon_jax.train.loop import shard_batch
from recon_jax.train.loop import TrainingDivergedError
from recon_jax.train.loop import TrainState
from recon_jax.train.loop import WorkdirWriteError
from recon_jax.train.losses import nt_xent_loss
from recon_jax.train.losses import sigmoid_binary_cross_entropy
from recon_jax.train.losses import softmax_cross_entropy
