"""Installs scaling_jax into a notebook's kernel without replacing its accelerator's jax.

Colab ships jax built for its GPU or TPU (jax, jaxlib and the CUDA plugins or libtpu).
A plain `pip install -e .` keeps that jax only as long as no dependency asks for a newer
one; the moment one does, pip puts PyPI's CPU build in its place and the notebook
silently runs on the CPU. So:
- the installed jax satisfies setup.py's requirement: pip runs under a constraints
  file that pins every installed jax distribution to its version (a dependency that
  cannot live with it then fails loudly instead of swapping jax);
- it does not: jax is upgraded together with the accelerator extra its installed
  plugins show (jax[cuda12], jax[tpu]), so the GPU/TPU build stays matched;
- no jax at all: pip installs the CPU build, as it would anyway.
Nothing is installed when scaling_jax and its requirements are installed already
(a checkout set up by the README's command, or CI).
"""
from __future__ import annotations

import importlib
import importlib.metadata
import pathlib
import re
import subprocess
import sys
import tempfile

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Distributions that make up an accelerator's jax; all are pinned together.
_JAX_PARTS = re.compile(r"^(jax|jaxlib|jax-cuda\d+-(plugin|pjrt)|libtpu(-nightly)?)$")
# Installed distribution -> the jax extra that reinstalls it at a new jax version.
_ACCELERATOR_EXTRAS = {"jax-cuda12-plugin": "cuda12", "jax-cuda13-plugin": "cuda13",
                       "libtpu": "tpu", "libtpu-nightly": "tpu"}


def jax_requirement(root) -> Requirement:
  """setup.py's requirement on jax (e.g. jax>=0.10), read from the checkout's text."""
  path = pathlib.Path(root) / "setup.py"
  match = re.search(r"""["'](jax\s*[<>=!~][^"']*)["']""", path.read_text(encoding="utf-8"))
  if match is None:
    raise ValueError(f"{path}: no requirement on jax (e.g. \"jax>=0.10\") in CORE; "
                     "add one so the notebooks know which jax they may keep")
  return Requirement(match.group(1))


def installed_jax_parts() -> dict[str, str]:
  """Installed jax distributions, canonical name -> version."""
  parts = {}
  for dist in importlib.metadata.distributions():
    name = canonicalize_name(dist.metadata["Name"] or "")
    if _JAX_PARTS.match(name):
      parts[name] = dist.version
  return parts


def missing_requirements(distribution: str = "scaling_jax") -> list[str] | None:
  """Core requirements of the installed distribution that are not met; None if absent."""
  try:
    requires = importlib.metadata.requires(distribution) or []
  except importlib.metadata.PackageNotFoundError:
    return None
  missing = []
  for text in requires:
    requirement = Requirement(text)
    if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
      continue  # an optional extra, or another platform's dependency
    try:
      version = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
      missing.append(text)
      continue
    if not requirement.specifier.contains(version, prereleases=True):
      missing.append(f"{text} (installed {version})")
  return missing


def pip_command(root, requirement: Requirement, jax_parts: dict[str, str],
                constraints_path) -> tuple[list[str], str]:
  """The pip command that installs the checkout at `root`, and what it does to jax.

  Writes the constraints file when the installed jax is kept.
  """
  command = [sys.executable, "-m", "pip", "install", "-q", "-e", str(root)]
  jax_version = jax_parts.get("jax")
  if jax_version is None:
    return command, "no jax installed: pip installs PyPI's (CPU) build"
  if requirement.specifier.contains(jax_version, prereleases=True):
    pins = "".join(f"{name}=={version}\n" for name, version in sorted(jax_parts.items()))
    pathlib.Path(constraints_path).write_text(pins, encoding="utf-8")
    kept = ", ".join(f"{name} {version}" for name, version in sorted(jax_parts.items()))
    return command + ["-c", str(constraints_path)], f"keeping the installed {kept}"
  extras = sorted({extra for name, extra in _ACCELERATOR_EXTRAS.items() if name in jax_parts})
  jax = f"jax[{','.join(extras)}]" if extras else "jax"
  return command + [f"{jax}{requirement.specifier}"], (
      f"the installed jax {jax_version} does not satisfy setup.py's {requirement}: "
      f"upgrading to {jax}{requirement.specifier}; if jax was imported already, restart "
      "the session (Runtime > Restart session) and run the notebook again")


def install(root) -> None:
  """pip-installs the checkout at `root` unless it is installed already (see above)."""
  root = pathlib.Path(root).resolve()
  missing = missing_requirements()
  if missing == []:
    print(f"scaling_jax and its requirements are installed; nothing to do "
          f"(reinstall: pip install -e {root})")
    return
  constraints = pathlib.Path(tempfile.mkdtemp(prefix="scaling_jax_pip.")) / "keep_jax.txt"
  command, plan = pip_command(root, jax_requirement(root), installed_jax_parts(),
                              constraints)
  print(f"installing {root}: {plan}")
  subprocess.run(command, check=True)
  importlib.invalidate_caches()  # let this kernel import what pip just added
