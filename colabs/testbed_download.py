"""The released over-training testbed for the notebooks: a local copy, or GitHub's.

Gadre et al. 2024 published their measurements as folder exp_data/ of
github.com/mlfoundations/scaling (MIT licence): models/NAME.json,
evals/evaluation_NAME_heavy.json and eval_metadata.csv, the layout
scaling_jax.runs.openlm_testbed reads as it is (the public folder holds all 104 models;
../shared/data/openlm_testbed holds 98 of them). Without a local copy, GitHub's tarball
of the repository is streamed and only exp_data/ is kept, into a cache folder that later
runs reuse.
"""
from __future__ import annotations

import pathlib
import shutil
import tarfile
import tempfile
import urllib.request

ARCHIVE_URL = "https://github.com/mlfoundations/scaling/archive/HEAD.tar.gz"
FOLDER = "exp_data"  # the testbed's folder inside the repository
CACHE_DIR = pathlib.Path.home() / ".cache" / "scaling_jax" / "openlm_testbed"


def is_testbed(path) -> bool:
  path = pathlib.Path(path)
  return (path / "models").is_dir() and (path / "eval_metadata.csv").is_file()


def locate(testbed_dir: str, download_dir=CACHE_DIR, url: str = ARCHIVE_URL) -> pathlib.Path:
  """`testbed_dir` when it holds the testbed, else the copy downloaded into `download_dir`."""
  if testbed_dir and is_testbed(testbed_dir):
    return pathlib.Path(testbed_dir)
  download_dir = pathlib.Path(download_dir)
  if is_testbed(download_dir):
    print(f"no testbed at {testbed_dir!r}; using the copy downloaded to {download_dir}")
    return download_dir
  print(f"no testbed at {testbed_dir!r}; downloading {FOLDER}/ of {url} to {download_dir}")
  with urllib.request.urlopen(url, timeout=300) as response:
    extract_folder(response, download_dir, source=url)
  return download_dir


def extract_folder(archive_file, dest, source: str, folder: str = FOLDER) -> int:
  """Writes <top>/<folder>/ of a gzipped tar stream (GitHub's layout) to `dest`.

  Only regular files are written. The tree is assembled beside `dest` and renamed into
  place at the end, so an interrupted download never leaves a partial testbed that a
  later run would take for a whole one. Returns the number of files.
  """
  dest = pathlib.Path(dest)
  if dest.exists():
    raise FileExistsError(f"{dest} exists but holds no testbed (models/, "
                          "eval_metadata.csv); remove it or pass another download_dir")
  dest.parent.mkdir(parents=True, exist_ok=True)
  staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
  try:
    count = 0
    with tarfile.open(fileobj=archive_file, mode="r|gz") as archive:
      for member in archive:
        # GitHub names every entry '<repo>-<ref>/<path in the repository>'.
        parts = pathlib.PurePosixPath(member.name).parts
        inside = parts[2:]
        if (len(parts) < 3 or parts[1] != folder or not member.isfile()
            or ".." in inside):
          continue
        target = staging.joinpath(*inside)
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.extractfile(member) as data, open(target, "wb") as out:
          shutil.copyfileobj(data, out)
        count += 1
    if not is_testbed(staging):
      raise ValueError(f"{source}: no {folder}/models/ and {folder}/eval_metadata.csv "
                       f"in the archive ({count} files under {folder}/); the released "
                       "layout may have changed: set TESTBED_DIR to a local copy")
    staging.rename(dest)
    return count
  finally:
    shutil.rmtree(staging, ignore_errors=True)
