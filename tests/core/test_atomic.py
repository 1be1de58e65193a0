"""Atomic writes: all or nothing, and outputs with the permissions a plain write would give."""

import os
import stat

import pytest

from audiolatent.core.atomic import atomic_dir, atomic_path


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
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "new").write_text("half")
            raise RuntimeError("crash")
    assert (tmp_path / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "d"]
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["keep"]
