"""scaling_jax: train model families, evaluate them in the loop, fit scaling laws.

The core (model, training loop, fitter) needs no TensorFlow; seqio/TFDS, XManager and
SLURM support are optional extras.
"""
import pathlib

import setuptools

# Each Python gets a different jax line from pip (3.11: 0.10.x, the last to support
# it; 3.12: 0.12.x); CI tests both, and constraints/py3.11.txt, py3.12.txt pin the
# versions it tested. The caps stop a future jax line, untested, arriving unasked.

CORE = [
    "jax>=0.10,<0.13",
    "flax>=0.12",
    "optax>=0.2.4",
    "orbax-checkpoint>=0.11",
    "jaxopt>=0.8.5",
    "ml-collections>=1.0",
    "absl-py>=2.0",
    "numpy>=1.26",
    "scipy>=1.11",
    "matplotlib>=3.8",
    "pyyaml>=6",  # LLM-Foundry task-suite files
    "tensorboardX>=2.6",  # TensorBoard events and hparams without TensorFlow
    "filelock>=3.12",  # one launcher per unit directory
]

EXTRAS = {
    "test": ["pytest>=8", "pytest-xdist>=3.5", "nbformat>=5.9", "nbclient>=0.10",
             "ipykernel>=6", "submitit>=1.5", "wandb>=0.17"],
    # `tensorflow`, not `tensorflow-cpu`: seqio's tensorflow-text requires the
    # `tensorflow` distribution, and the two install over one package directory.
    "tfds": ["tensorflow-datasets>=4.9", "tensorflow>=2.16"],
    "seqio": ["seqio>=0.0.19"],
    "sentencepiece": ["sentencepiece>=0.2"],
    "hf": ["tokenizers>=0.15"],
    # Prefetching reader (scaling_jax/data/grain_reader.py); without it, same batches.
    "grain": ["grain>=0.2.18"],
    "xm": ["xmanager>=0.6"],
    "slurm": ["submitit>=1.5"],
    # Weights & Biases: units mirror TensorBoard to a W&B run (config.wandb), and the
    # runs source 'wandb' reads a project (scaling_jax/wandb_log.py, runs/wandb_runs.py).
    "wandb": ["wandb>=0.17"],
    # libtpu (~700 MB): the compile dry run compiles for TPU slices on any machine
    # (scaling_jax/aot). pip keeps the installed jax and adds its matching libtpu;
    # `pip install "jax[tpu]==<your jax version>"` says the same explicitly.
    "tpu": ["jax[tpu]"],
}

setuptools.setup(
    name="scaling_jax",
    version="0.1.0",
    description="JAX framework for scaling-law studies: train, evaluate, fit, predict.",
    long_description=pathlib.Path(__file__).with_name("README.md").read_text(
        encoding="utf-8"),
    long_description_content_type="text/markdown",
    author="The scaling_jax authors",
    license="Apache-2.0",
    license_files=["LICENSE"],
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Intended Audience :: Science/Research",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    packages=setuptools.find_packages(include=["scaling_jax", "scaling_jax.*"]),
    python_requires=">=3.11",
    install_requires=CORE,
    extras_require=EXTRAS,
)
