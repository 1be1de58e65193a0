"""Atomic writes: all or nothing, and outputs with the permissions a plain write would give."""

import os
import stat

import pytest

from audiolatent.core.atomic import TEMP_MARK, atomic_dir, atomic_path, check_output_path, remove_stale_temps
from audiolatent.core.errors import OutputError


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_file_appears_complete_with_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("hello")
            assert not (tmp_path / "a.txt").exists()
        assert (tmp_path / "a.txt").read_text() == "hello"
        assert mode(tmp_path / "a.txt") == 0o644  # not mkstemp's private 0600
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "x").write_text("1")
        assert mode(tmp_path / "d") == 0o755 and (tmp_path / "d" / "x").read_text() == "1"
    finally:
        os.umask(old)


def test_a_failed_write_leaves_the_old_content_and_no_temp_files(tmp_path):
    (tmp_path / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "d", may_replace=lambda p: True) as tmp:
            (tmp / "new").write_text("half")
            raise RuntimeError("crash")
    assert (tmp_path / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "d"]
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["keep"]


def test_atomic_dir_never_replaces_what_is_not_ours(tmp_path):
    mine = tmp_path / "mydir"
    mine.mkdir()
    (mine / "keep.txt").write_text("precious")
    with pytest.raises(OutputError, match="refusing to replace"):
        with atomic_dir(mine):
            raise AssertionError("the body must not run")
    assert (mine / "keep.txt").read_text() == "precious"
    victim = tmp_path / "victim.wav"
    victim.write_bytes(b"RIFF")
    with pytest.raises(OutputError, match="not a directory"):
        with atomic_dir(victim, may_replace=lambda p: True):
            pass
    assert victim.read_bytes() == b"RIFF"
    with atomic_dir(mine, may_replace=lambda p: (p / "keep.txt").is_file()) as tmp:  # ours: replaced
        (tmp / "new").write_text("1")
    assert [p.name for p in mine.iterdir()] == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mydir", "victim.wav"]


def test_atomic_path_refuses_a_directory_and_names_os_errors(tmp_path):
    (tmp_path / "out.wav").mkdir()
    with pytest.raises(OutputError, match="is a directory"):
        with atomic_path(tmp_path / "out.wav"):
            pass
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores the mode bits
            pytest.skip("running as a user that can write anywhere")
        with pytest.raises(OutputError, match=r"cannot write .*ro/x.txt: permission denied"):
            with atomic_path(ro / "x.txt") as tmp:
                tmp.write_text("1")
    finally:
        os.chmod(ro, 0o700)


def test_a_failing_writer_inside_the_block_is_named(tmp_path):
    with pytest.raises(OutputError, match=r"cannot write .*a.txt: no space left on device"):
        with atomic_path(tmp_path / "a.txt"):
            raise OSError(28, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_output_that_is_the_input_is_refused(tmp_path):
    src = tmp_path / "in.wav"
    src.write_bytes(b"x")
    link = tmp_path / "link.wav"
    link.symlink_to(src)
    for out in (src, link, tmp_path / "." / "in.wav"):
        with pytest.raises(OutputError, match="is the input file"):
            check_output_path(out, src)
    with pytest.raises(OutputError, match="is a directory"):
        check_output_path(tmp_path, src)
    assert check_output_path(tmp_path / "new.latent", src) == tmp_path / "new.latent"


def test_stale_temps_are_named_and_removed(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "out.wav") as tmp:
            assert tmp.name.startswith(".out.wav" + TEMP_MARK)
            raise RuntimeError
    (tmp_path / f".step_5{TEMP_MARK}abc").mkdir()
    (tmp_path / f".latest{TEMP_MARK}xyz").write_text("step_5")
    (tmp_path / ".hidden").write_text("user's")
    removed = remove_stale_temps(tmp_path)
    assert sorted(p.name for p in removed) == [f".latest{TEMP_MARK}xyz", f".step_5{TEMP_MARK}abc"]
    assert [p.name for p in tmp_path.iterdir()] == [".hidden"]
