"""recon_jax: train audio CNNs and turn their activations back into sound."""
import setuptools

setuptools.setup(
    name="recon_jax",
    version="0.1.0",
    description=("Reconstruct spectrograms and audio from the activations of "
                 "audio CNNs, in JAX/Flax."),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["recon_jax", "recon_jax.*"]),
    package_data={"recon_jax": ["data/tables/*.tsv", "data/text/*.txt"]},
    # One command for every experiment (recon_jax/main.py).
    entry_points={"console_scripts": ["recon-jax=recon_jax.main:console_main"]},
    install_requires=[
        "jax>=0.4.35,<0.11",
        "flax>=0.10,<0.13",
        "optax>=0.2.3,<0.3",
        "orbax-checkpoint>=0.11,<0.13",
        "ml-collections>=0.1.1,<2",
        "absl-py>=2.0,<3",
        "numpy>=1.26,<3",
        "scipy>=1.11,<2",
        "soundfile>=0.12,<1",
        "matplotlib>=3.8,<4",
        # The only offline source of speech with exact phone timings.
        "espeakng-loader>=0.2.4,<0.3",
        # The field's TensorBoard event writer (no TensorFlow needed).
        "tensorboardX>=2.6,<3",
        # Progress bars with ETA for every long stage.
        "tqdm>=4.66,<5",
        # Streaming input for data sets larger than memory (recon_jax.data.
        # pipeline): Google's deterministic, checkpointable loader for JAX,
        # and the ArrayRecord shards it reads (recon_jax.data.pack).
        "grain>=0.2.12,<0.3",
        "array-record>=0.7,<0.9",
    ],
    # The base install is what the main job (configs/mission.py) imports;
    # sizes per dependency: docs/install.md.
    extras_require={
        # References the tests compare with (torch: the paper's own framework,
        # CPU build; scikit-learn: mAP/AUC), a browser driver for the page
        # test, and TFDS with TensorFlow for the TFDS source's tests (and
        # for reading the event files the metric writer's test checks).
        "test": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "torch==2.13.0",
                 "scikit-learn>=1.4,<2", "playwright>=1.45,<2",
                 "tensorflow-datasets>=4.9,<5", "tensorflow-cpu>=2.16,<3"],
        # The TFDS speech_commands source (recon_jax.data.tfds_source, a
        # second keyword source; imported only when read): TFDS and the
        # TensorFlow its readers need. Not in the base install: with its
        # dependencies (pyarrow) TFDS adds about 210 MB (docs/install.md).
        "tfds": ["tensorflow-datasets>=4.9,<5", "tensorflow-cpu>=2.16,<3"],
        # TensorBoard itself, to view the event files runs write
        # (`tensorboard --logdir`); writing them needs only tensorboardX.
        "tensorboard": ["tensorboard>=2.16,<3"],
        # References users compare with; torch pinned to the CPU build.
        "bench": ["torch==2.13.0", "librosa>=0.10,<0.12"],
    },
)
