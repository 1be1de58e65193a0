"""Atomic file and directory writes: write to a temporary sibling, then rename.

A crash or an exception part-way through never leaves a half-written file at the target
path: either the old content (or nothing) or the complete new content is there. Temporary
siblings are named ``.NAME.tmp.XXXX`` (:data:`TEMP_MARK`), so a user can tell what one left by a
killed process is, and :func:`remove_stale_temps` can clean them.

Neither writer replaces what it should not: :func:`atomic_path` refuses a target that is a
directory, and :func:`atomic_dir` replaces an existing directory only when ``may_replace``
says it is one of ours (a checkpoint, a corpus build); anything else at the target — a user's
folder, an audio file — is an :class:`~audiolatent.core.errors.OutputError`, and the target is
left untouched. OS errors while writing (read-only filesystem, disk full) become an
``OutputError`` naming the path and the cause.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from audiolatent.core.errors import OutputError

__all__ = ["TEMP_MARK", "atomic_path", "atomic_dir", "remove_stale_temps", "check_output_path", "os_error_message"]

#: every temporary sibling has this in its name: ``.NAME.tmp.XXXX``
TEMP_MARK = ".tmp."


def os_error_message(exc: OSError, path) -> str:
    """``cannot write PATH: no space left on device`` from an OSError (or a safetensors error)."""
    reason = getattr(exc, "strerror", None) or " ".join(str(exc).split()) or type(exc).__name__
    return f"cannot write {path}: {reason[0].lower() + reason[1:] if reason else reason}"


def _is_write_error(exc: Exception) -> bool:
    """Errors of writer libraries that wrap an OS failure (safetensors' SafetensorError, soundfile's LibsndfileError)."""
    return type(exc).__name__ in ("SafetensorError", "LibsndfileError", "SoundFileRuntimeError")


def check_output_path(path, *inputs, what: str = "output") -> Path:
    """Refuse an output path that is an existing directory or the same file as one of ``inputs``.

    Links are followed (``os.path.samefile``), so a symlink or hard link to the input is caught too.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{what} {target} is a directory; give a file path")
    for source in inputs:
        if source is None:
            continue
        try:
            same = target.exists() and os.path.samefile(target, source)
        except OSError:
            same = False
        if same:
            raise OutputError(f"{what} {target} is the input file {source}; refusing to overwrite it")
    return target


def remove_stale_temps(folder) -> list[Path]:
    """Remove temporary siblings (``.NAME.tmp.*``) a killed writer left in ``folder``.

    Call it only where no other writer can be at work (a training run folder at start or resume).
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if not entry.name.startswith(".") or TEMP_MARK not in entry.name:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _default_mode(path: Path, directory: bool) -> None:
    """Give a temp file/dir the permissions a plain ``open``/``mkdir`` would have (mkstemp and
    mkdtemp create them private, 0600/0700, which would make outputs unreadable to others)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    ``suffix`` defaults to the target's suffix, so writers that pick a format from the file
    extension (soundfile) see the right one.

    Raises:
        OutputError: ``path`` is a directory, or the filesystem refused the write.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{target} is a directory; refusing to replace it with a file")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}{TEMP_MARK}", suffix=target.suffix if suffix is None else suffix, dir=target.parent
        )
        os.close(fd)
    except OSError as exc:
        raise OutputError(os_error_message(exc, target)) from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            _default_mode(tmp_path, directory=False)
        os.replace(tmp_path, target)
    except OSError as exc:
        raise OutputError(os_error_message(exc, target)) from None
    except Exception as exc:  # a writer library's own error (safetensors, libsndfile): name the path
        if isinstance(exc, OutputError) or not _is_write_error(exc):
            raise
        raise OutputError(os_error_message(exc, target)) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, may_replace: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success it replaces ``path``.

    An existing directory at ``path`` is swapped out only after the new one is complete, and
    only if ``may_replace(path)`` is true (None: never); otherwise, and for anything that is
    not a directory, the call fails with :class:`OutputError` before anything is written.
    """
    target = Path(path)
    if target.exists() or target.is_symlink():
        if not target.is_dir() or target.is_symlink():
            raise OutputError(f"{target} exists and is not a directory; refusing to replace it")
        if may_replace is None or not may_replace(target):
            raise OutputError(f"{target} exists and is not one of audiolatent's output folders; refusing to replace "
                              "it (remove it or choose another path)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}{TEMP_MARK}", dir=target.parent))
    except OSError as exc:
        raise OutputError(os_error_message(exc, target)) from None
    try:
        yield tmp
        _default_mode(tmp, directory=True)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old{TEMP_MARK}", dir=target.parent))
            old.rmdir()
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(os_error_message(exc, target)) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
