"""Atomic file writes, the store manifest and the write journal that makes a write all-or-nothing.

A store write replaces one or more Parquet files *and* the manifest that records their
checksums. Each file is replaced atomically (temporary file, fsync, ``os.replace``), but a
kill between two replacements would leave files that disagree with the manifest. So a write
is journalled:

1. every new file is written as a temporary file next to its target (fsynced);
2. the journal ``<root>/.journal.json`` (moves to make + the complete new manifest) is
   written atomically: **this is the commit point**;
3. the moves are applied (``os.replace`` / unlink), the manifest is written, the journal is
   deleted.

A kill before step 2 leaves the old store (the temporary files are ignored and swept by the
next write); a kill after it is rolled forward by :func:`recover`, which every store command
runs first (under the store lock). Replaying a journal is idempotent.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from pathlib import Path

import polars as pl

from data_loaders.errors import DataError

MANIFEST = "manifest.json"
JOURNAL = ".journal.json"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_path(path: Path) -> None:
    """fsync a file (its bytes are on disk before a rename points to them) or a folder (a
    rename or unlink in it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(target: Path) -> Path:
    """A unique hidden temporary name next to ``target`` (``.<name>.<uuid>.tmp``)."""
    return target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")


def stage_parquet(frame: pl.DataFrame, target: Path) -> tuple[Path, str]:
    """Write ``frame`` to a fsynced temporary file next to ``target``; return it and its sha256."""
    tmp = temp_name(target)
    try:
        frame.write_parquet(tmp, compression="zstd", statistics=True)
        fsync_path(tmp)
        return tmp, sha256_file(tmp)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _commit(tmp: Path, target: Path) -> None:
    fsync_path(tmp)
    os.replace(tmp, target)
    fsync_path(target.parent)


def atomic_write_parquet(frame: pl.DataFrame, target: Path) -> str:
    """Write ``frame`` to ``target`` atomically (temp file, fsync, rename); return its sha256."""
    tmp, digest = stage_parquet(frame, target)
    try:
        os.replace(tmp, target)
        fsync_path(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return digest


def atomic_write_text(text: str, target: Path) -> None:
    """Write ``text`` to ``target`` atomically (temp file, fsync, rename)."""
    tmp = temp_name(target)
    try:
        tmp.write_text(text, encoding="utf-8")
        _commit(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


class Manifest:
    """Provenance of every stored file: checksum, rows, range and the writes that made it."""

    def __init__(self, root: Path) -> None:
        self.path = root / MANIFEST

    def load(self) -> dict:
        """The manifest as a dict (``{"version": 1, "files": {relpath: entry}}``)."""
        if not self.path.exists():
            return {"version": 1, "files": {}}
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise DataError(
                f"store manifest {self.path}: expected JSON, found a corrupt file ({exc}); "
                "it is rewritten atomically, so it was edited by hand: restore it or delete it "
                "(the Parquet files stay valid; provenance history is lost)"
            ) from exc

    @staticmethod
    def record(manifest: dict, relpath: str, *, sha256: str, frame: pl.DataFrame, time_column: str,
               write: dict) -> None:
        """Update ``manifest`` in memory for one rewritten file (saved by the journal commit)."""
        times = frame[time_column].dt.epoch("ms")
        entry = manifest["files"].setdefault(relpath, {"writes": []})
        entry.update(sha256=sha256, rows=frame.height, range=[int(times.min()), int(times.max())])
        entry["writes"].append(write)


def commit(root: Path, manifest: dict, moves: list[tuple[Path | None, Path]]) -> None:
    """Journal then apply ``moves`` (``(staged temp file, target)``; ``None`` deletes the target).

    The caller holds the store lock and has staged every temporary file. On any failure
    before the journal is written the temporary files are removed and the store is unchanged.
    """
    journal = {"manifest": manifest,
               "moves": [[None if tmp is None else tmp.relative_to(root).as_posix(),
                          target.relative_to(root).as_posix()] for tmp, target in moves]}
    try:
        atomic_write_text(json.dumps(journal), root / JOURNAL)
    except BaseException:
        for tmp, _ in moves:
            if tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        raise
    _apply(root, journal)


def _apply(root: Path, journal: dict) -> None:
    for tmp_rel, target_rel in journal["moves"]:
        target = root / target_rel
        if tmp_rel is None:
            if target.exists():
                target.unlink()
                fsync_path(target.parent)
            _prune_empty(target.parent, root)
        elif (root / tmp_rel).exists():  # already moved when a replay was itself interrupted
            os.replace(root / tmp_rel, target)
            fsync_path(target.parent)
    atomic_write_text(json.dumps(journal["manifest"], indent=1, sort_keys=True), root / MANIFEST)
    (root / JOURNAL).unlink()
    fsync_path(root)


def _prune_empty(folder: Path, root: Path) -> None:
    """Remove now-empty partition folders up to the dataset folder (a removed partition vanishes)."""
    while folder != root and folder.parent != root:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def recover(root: Path) -> bool:
    """Finish a write that was killed after its commit point; True when one was found.

    The caller holds the store lock.
    """
    path = root / JOURNAL
    if not path.exists():
        return False
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
        journal["moves"], journal["manifest"]  # noqa: B018 - shape check
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise DataError(
            f"store journal {path}: expected the journal of an interrupted write, found a corrupt file "
            f"({exc}); it is written atomically, so it was edited by hand: delete it, then run "
            "`margincall data validate` to see which files disagree with the manifest"
        ) from exc
    _apply(root, journal)
    return True
