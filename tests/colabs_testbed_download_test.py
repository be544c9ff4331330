"""colabs/testbed_download.py: local testbed or GitHub's exp_data/, offline.

The archives here are built like GitHub's (a pax header, everything under
'<repo>-<ref>/') and served by file:// URLs, so the download path runs without a
network.
"""
import io
import tarfile

import pytest
from conftest import load_colab_module

from scaling_jax.runs import openlm_testbed

TOP = "scaling-79adc26"  # GitHub's top folder: repository name and ref


testbed_download = load_colab_module("testbed_download")


def _github_tarball(path, files: dict, symlinks=()):
  """A .tar.gz laid out as GitHub's archive of a repository holding `files`."""
  with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT,
                    pax_headers={"comment": "79adc26378fb"}) as archive:
    for name, data in files.items():
      info = tarfile.TarInfo(f"{TOP}/{name}")
      info.size = len(data)
      archive.addfile(info, io.BytesIO(data))
    for name, target in symlinks:
      info = tarfile.TarInfo(f"{TOP}/{name}")
      info.type, info.linkname = tarfile.SYMTYPE, target
      archive.addfile(info)
  return path


RELEASE = {
    "README.md": b"repo readme",
    "exp_data/eval_metadata.csv": b"Eval Task,Task Category\n",
    "exp_data/models/rpj-a-1.0.json": b'{"name": "rpj-a-1.0"}',
    "exp_data/evals/evaluation_rpj-a-1.0_heavy.json": b"{}",
    "scaling/exp_data/models/elsewhere.json": b"not the testbed",
    "exp_data/../escape.json": b"outside",
}


def test_extracts_only_exp_data_from_a_github_archive(tmp_path):
  archive = _github_tarball(tmp_path / "repo.tar.gz", RELEASE,
                            symlinks=[("exp_data/models/link.json", "/etc/passwd")])
  dest = tmp_path / "cache" / "openlm_testbed"
  with open(archive, "rb") as stream:
    count = testbed_download.extract_folder(stream, dest, source=str(archive))
  written = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
  assert written == ["eval_metadata.csv", "evals/evaluation_rpj-a-1.0_heavy.json",
                     "models/rpj-a-1.0.json"] and count == 3
  assert (dest / "models" / "rpj-a-1.0.json").read_bytes() == b'{"name": "rpj-a-1.0"}'
  assert not (tmp_path / "cache" / "escape.json").exists()
  assert [p.name for p in dest.parent.iterdir()] == ["openlm_testbed"]  # no staging left


def test_an_archive_without_the_testbed_leaves_nothing(tmp_path):
  archive = _github_tarball(tmp_path / "repo.tar.gz", {"README.md": b"moved"})
  dest = tmp_path / "cache" / "openlm_testbed"
  with pytest.raises(ValueError, match=r"repo\.tar\.gz: no exp_data/models/.*TESTBED_DIR"):
    testbed_download.locate("", download_dir=dest, url=archive.as_uri())
  assert list(dest.parent.iterdir()) == []


def test_a_local_testbed_is_used_without_download(tmp_path, capsys):
  local = tmp_path / "local"
  (local / "models").mkdir(parents=True)
  (local / "eval_metadata.csv").write_text("")
  found = testbed_download.locate(str(local), download_dir=tmp_path / "cache",
                                  url=(tmp_path / "no_such.tar.gz").as_uri())
  assert found == local and not (tmp_path / "cache").exists()


def test_downloads_once_then_reuses_the_copy(tmp_path, capsys):
  archive = _github_tarball(tmp_path / "repo.tar.gz", RELEASE)
  dest = tmp_path / "cache"
  assert testbed_download.locate(str(tmp_path / "absent"), dest, archive.as_uri()) == dest
  assert "downloading exp_data/" in capsys.readouterr().out
  archive.unlink()  # a second download would now fail
  assert testbed_download.locate(str(tmp_path / "absent"), dest, archive.as_uri()) == dest
  assert "using the copy downloaded" in capsys.readouterr().out


def test_a_folder_in_the_way_is_named(tmp_path):
  archive = _github_tarball(tmp_path / "repo.tar.gz", RELEASE)
  (tmp_path / "cache").mkdir()
  with pytest.raises(FileExistsError, match=r"cache exists but holds no testbed"):
    testbed_download.locate("", tmp_path / "cache", archive.as_uri())


def test_the_released_layout_reads_as_the_testbed(testbed_dir, tmp_path):
  # ../shared's copy of exp_data/, packed as GitHub packs it: the download must give
  # the folder the importer reads, models and downstream accuracies included.
  files = {f"exp_data/{p.relative_to(testbed_dir)}": p.read_bytes()
           for p in testbed_dir.rglob("*") if p.is_file()}
  archive = _github_tarball(tmp_path / "scaling.tar.gz", files)
  found = testbed_download.locate("", tmp_path / "testbed", archive.as_uri())
  rows = openlm_testbed.load_rows(found)
  assert len(rows) == len(list((testbed_dir / "models").glob("*.json")))
  assert sum(any(k.startswith("acc/") for k in row) for row in rows) == len(rows)
