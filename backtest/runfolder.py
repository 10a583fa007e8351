"""Run folders (CONTRACTS §6): written whole or not at all, and checked when read.

A run is written into a hidden temporary sibling folder (``.NAME.partial-PID-XXXX``) and
renamed into place only once every table, ``results.duckdb`` and, last, ``manifest.json`` are
on disk. The manifest records the folder's format version and, for every table, its size,
row count and sha256 (``files``); a reader (:func:`verify_run_folder`, used by ``margincall
report``) refuses a folder whose tables are missing or differ. So a run killed while writing
leaves no folder (or the previous one), and two runs writing one folder never mix: the
second finds the folder taken and stops with a message, or, asked to ``overwrite``, swaps its
complete folder in atomically (``renameat2(RENAME_EXCHANGE)`` on Linux).

This module needs only the standard library: ``reports`` imports it to read run folders.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from backtest.errors import EngineError

__all__ = ["MANIFEST", "ROW_GROUP_ROWS", "RUN_FORMAT", "RUN_FORMAT_VERSION", "RunFolderError",
           "check_output_folder", "check_writable_location", "file_record", "verify_run_folder",
           "write_parquet", "write_run_folder", "write_tables"]

#: Name and version of the run-folder layout written in ``manifest.json["format"]``.
#: Version 2 added the ``files`` completeness record; folders without it predate it.
RUN_FORMAT = "margincall-run"
RUN_FORMAT_VERSION = 2
MANIFEST = "manifest.json"
_PARTIAL = re.compile(r"\.(?P<name>.+)\.partial-(?P<pid>\d+)-[^/]+$")
#: Rows per Parquet row group of every table written here (the last group holds the rest).
#: Fixed, so a table's bytes depend on its rows only, not on whether it was written whole or
#: chunk by chunk (a long run streams its per-bar tables); 8Ki rows keep the writer's buffers
#: small (a float column's group is 64 KiB) at a few hundred bytes of footer per group.
ROW_GROUP_ROWS = 1 << 13


class RunFolderError(EngineError, ValueError):
    """A run folder cannot be written where asked, or a folder read is not a complete run."""


# ---------------------------------------------------------------------------- reading
def file_record(path: Path, *, rows: int | None = None) -> dict[str, Any]:
    """Size (bytes), sha256 and, when given, row count of one file, as the manifest records."""
    from data_loaders.store_io import sha256_file

    record: dict[str, Any] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    if rows is not None:
        record["rows"] = int(rows)
    return record


def write_tables(tmp: Path, tables: Mapping[str, Any], *, final: Path | None = None,
                 duckdb_name: str = "results.duckdb") -> dict[str, dict[str, Any]]:
    """Write each frame of ``tables`` as ``tmp/<name>.parquet`` and a DuckDB file of views.

    Parameters
    ----------
    tmp : Path
        The folder being built (see :func:`write_run_folder`).
    tables : mapping of str to polars.DataFrame
        Table name -> frame; the name is the view's and the file's.
    final : Path, optional
        None: the views read ``<name>.parquet`` relative to the folder (it still opens when
        moved; :func:`open_results` sets DuckDB's search path). Otherwise the views read
        ``final/<name>.parquet``, the place the folder reaches when renamed (``allow_empty``
        lets them exist before that).
    duckdb_name : str
        File name of the DuckDB database in the folder.

    Returns
    -------
    dict
        ``{file name: file_record}`` of the parquet files, in the order of ``tables``.
    """
    import duckdb

    files: dict[str, dict[str, Any]] = {}
    for name, frame in tables.items():
        path = tmp / f"{name}.parquet"
        rows = write_parquet(path, [frame])
        files[path.name] = file_record(path, rows=rows)
    con = duckdb.connect(str(tmp / duckdb_name))
    try:
        for name in tables:
            source = (f"{name}.parquet" if final is None
                      else str(final / f"{name}.parquet").replace("'", "''"))
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{source}', "
                        "allow_empty=true)")
    finally:
        con.close()
    return files


# ---------------------------------------------------------------------------- writing
def write_parquet(path: Path, chunks: Iterable[Any], *, views: bool = False) -> int:
    """Write a table given as consecutive polars frames (a table built whole is one) as one
    Parquet file; return its row count. The one Parquet writer of run folders.

    The file holds the frames' concatenation (what ``polars.concat(frames)`` holds) in row
    groups of :data:`ROW_GROUP_ROWS` rows, written by polars' streaming sink, which regroups
    the rows whatever the frames' sizes: the same rows give the same bytes however they were
    chunked (tests/engine/test_streaming_chunks.py). Only a chunk and the row group being
    encoded are held; pyarrow is not needed. A later frame whose schema differs from the
    first one's is cast to it.

    ``views=True``: the frames may be views of memory the producer releases once asked for
    the next one (a streamed table's chunks over spilled columns, ``backtest.spill``); the
    sink encodes a frame after it was handed over, so each is copied as taken (else its
    released pages would be faulted back in, the whole history resident again).

    Raises
    ------
    ValueError
        When ``chunks`` gives no frame at all (not even an empty one): no schema to write.
    """
    import polars as pl
    from polars.io.plugins import register_io_source

    frames = iter(chunks)
    first = next(frames, None)
    if first is None:
        raise ValueError(f"{path.name}: the stream gave no chunk (not even an empty one)")
    schema = first.schema
    rows = [0]

    def source(with_columns: list[str] | None, predicate: Any, n_rows: int | None,
               batch_size: int | None) -> Any:
        # a sink reads every row and column: the pushed-down arguments are honoured all the same
        left = n_rows
        for frame in _chain(first, frames):
            if frame.schema != schema:
                frame = frame.cast(dict(schema))
            if predicate is not None:
                frame = frame.filter(predicate)
            if with_columns is not None:
                frame = frame.select(with_columns)
            if left is not None:
                frame = frame.head(left)
                left -= frame.height
            rows[0] += frame.height
            yield frame.gather(range(frame.height)) if views else frame
            if left is not None and left <= 0:
                return

    register_io_source(source, schema=schema).sink_parquet(path, compression="zstd",
                                                           row_group_size=ROW_GROUP_ROWS)
    return rows[0]


def _chain(first: Any, rest: Any) -> Any:
    yield first
    yield from rest


def verify_run_folder(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Check that ``folder`` holds exactly the tables its manifest records.

    Parameters
    ----------
    folder : Path
        A run folder.
    manifest : mapping
        Its parsed ``manifest.json``.

    Raises
    ------
    RunFolderError
        When the manifest has no run-format record (an older margincall or not a run folder),
        a newer format version than this margincall reads, or when a recorded table is
        missing or its size or sha256 differs (an interrupted or tampered write). The message
        lists every difference and the fix.
    """
    fmt = manifest.get("format")
    if not isinstance(fmt, Mapping) or fmt.get("name") != RUN_FORMAT:
        raise RunFolderError(
            f"{folder}: expected a run manifest with format {RUN_FORMAT!r} version "
            f"{RUN_FORMAT_VERSION}, found {'no format record' if fmt is None else repr(fmt)} "
            f"({_contents(folder)}): the "
            f"folder was written by a margincall older than run format {RUN_FORMAT_VERSION} "
            f"(which cannot tell a complete run from an interrupted one) or is not a run folder; "
            f"re-run the backtest (`margincall run ... --out {folder} --overwrite`)")
    version = fmt.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version != RUN_FORMAT_VERSION:
        newer = isinstance(version, int) and version > RUN_FORMAT_VERSION
        raise RunFolderError(
            f"{folder}: expected run format version {RUN_FORMAT_VERSION}, found {version!r}; "
            + ("it was written by a newer margincall: upgrade margincall to read it"
               if newer else "re-run the backtest with this margincall version"))
    files = manifest.get("files")
    if not isinstance(files, Mapping) or not files:
        raise RunFolderError(f"{folder}: expected the manifest's 'files' record of the run's "
                             f"tables, found {files!r}; re-run the backtest")
    problems = []
    for name, record in files.items():
        path = folder / str(name)
        if not isinstance(record, Mapping):
            problems.append(f"{name}: record {record!r} is not a table record")
        elif not path.is_file():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != record.get("bytes"):
            problems.append(f"{name}: {path.stat().st_size:,} bytes, the manifest records "
                            f"{record.get('bytes')!r}")
        elif file_record(path)["sha256"] != record.get("sha256"):
            problems.append(f"{name}: content differs from the manifest's sha256")
    if problems:
        raise RunFolderError(
            f"{folder}: expected the tables its manifest records, found {len(problems)} "
            f"difference(s): {'; '.join(problems)}. The run was interrupted while being written "
            f"or changed afterwards; re-run the backtest (`--overwrite` replaces this folder)")


def _contents(folder: Path, limit: int = 12) -> str:
    """What a folder holds, for a refusal: ``the folder holds equity.parquet (0 bytes), ...``."""
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file())
    except OSError:
        return "the folder cannot be listed"
    shown = ", ".join(f"{p.name} ({p.stat().st_size:,} bytes)" for p in files[:limit])
    more = f" and {len(files) - limit} more" if len(files) > limit else ""
    return f"the folder holds {shown}{more}" if files else "the folder holds no files"


def _is_run_folder(folder: Path) -> bool:
    """A folder written by ``margincall run`` (any format version): safe to replace."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # a manifest nested too deeply is not a run's
        return False
    if not isinstance(manifest, dict):
        return False
    fmt = manifest.get("format")
    if isinstance(fmt, dict):
        return fmt.get("name") == RUN_FORMAT
    # format 1 had no record: recognise its manifest keys and its equity table
    return {"config", "summary"} <= set(manifest) and (folder / "equity.parquet").is_file()


# ---------------------------------------------------------------------------- writing
def check_output_folder(target: str | Path, *, overwrite: bool = False) -> Path:
    """Check, before a run starts, that its folder can be written; return it as absolute.

    The folder must not exist (or be empty) unless ``overwrite``, which replaces only a run
    folder, never another folder. A probe folder is created in and removed from the nearest
    existing parent, so an unwritable location is found before the backtest runs.

    Raises
    ------
    RunFolderError
        Naming the folder, what was found and the fix.
    """
    target = Path(os.path.abspath(Path(target).expanduser()))
    if not target.name:
        raise RunFolderError(f"{target}: expected a folder to write the run into, found the "
                             f"file-system root; pass --out DIR")
    if target.is_symlink() or target.exists():
        if not target.is_dir() or target.is_symlink():
            raise RunFolderError(
                f"{target}: expected a new folder for the run, found "
                f"{'a symbolic link' if target.is_symlink() else 'a file'}; choose another --out")
        empty = not any(target.iterdir())
        if not empty and not overwrite:
            what = "a run" if _is_run_folder(target) else "other files"
            raise RunFolderError(
                f"{target}: expected a new folder for the run, found one holding {what}; "
                f"choose another --out (or run name), or pass --overwrite to replace a run")
        if not empty and not _is_run_folder(target):
            raise RunFolderError(
                f"{target}: --overwrite replaces only a run folder (one holding a run's "
                f"manifest.json), found a folder of other files; it is left untouched: "
                f"choose another --out")
    return check_writable_location(target)


def check_writable_location(target: str | Path) -> Path:
    """Check that a folder can be written at ``target`` (an existing folder or a new one); return it
    as absolute.

    The location half of :func:`check_output_folder`, for outputs that may go into an existing
    folder (``sweep --out``): a probe folder is created in and removed from the nearest
    existing parent, so an unwritable location is found before any work is done.

    Raises
    ------
    RunFolderError
        Naming the folder, what was found and the fix.
    """
    target = Path(os.path.abspath(Path(target).expanduser()))
    if target.exists() and not target.is_dir():
        raise RunFolderError(f"{target}: expected a folder to write into, found a file; choose another --out")
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RunFolderError(f"{target}: cannot create it: {ancestor} is a file, not a folder; "
                             f"choose another --out")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".margincall-probe-", dir=ancestor))
    except OSError as exc:
        raise RunFolderError(
            f"{target}: expected a writable location, found that {ancestor} refuses new "
            f"folders ({exc.strerror or exc}); choose a writable --out or fix the permissions") from None
    return target


def write_run_folder(target: str | Path, fill: Callable[[Path], dict[str, dict[str, Any]]],
                     manifest: dict[str, Any], *, overwrite: bool = False) -> Path:
    """Write a run folder whole: ``fill`` writes the tables into a temporary folder.

    Parameters
    ----------
    target : path
        The run folder to create (or, with ``overwrite``, to replace).
    fill : callable
        ``fill(tmp_folder) -> {file name: file_record}``: writes the tables and returns their
        records; the manifest (with ``format`` and ``files``) is written after it returns.
    manifest : dict
        JSON-ready manifest content (``format`` and ``files`` are added).
    overwrite : bool
        Replace an existing run folder (atomically where the OS allows it).

    Returns
    -------
    Path
        The absolute run folder.

    Raises
    ------
    RunFolderError
        When the folder exists (without ``overwrite``), is not a run folder, or cannot be
        written; nothing is left behind.
    """
    target = check_output_folder(target, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))
    try:
        files = fill(tmp)
        document = {"format": {"name": RUN_FORMAT, "version": RUN_FORMAT_VERSION}, **manifest,
                    "files": files}
        with open(tmp / MANIFEST, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(document, indent=1, allow_nan=False))
        for path in tmp.iterdir():
            _fsync(path)
        _fsync(tmp)
        _publish(tmp, target, overwrite=overwrite)
        _fsync(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _publish(tmp: Path, target: Path, *, overwrite: bool) -> None:
    try:
        os.rename(tmp, target)  # fails when target is a non-empty folder: never a mix
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR, errno.ENOTDIR):
            raise RunFolderError(f"{target}: could not move the finished run into place "
                                 f"({exc.strerror or exc}); nothing was changed") from None
        if not overwrite:
            raise RunFolderError(
                f"{target}: expected a new folder for the run, found one written meanwhile (by "
                f"another run); this run was not saved: choose another --out, or pass "
                f"--overwrite to replace it") from None
    if not _is_run_folder(target):
        raise RunFolderError(f"{target}: --overwrite replaces only a run folder, found a folder "
                             f"of other files; it is left untouched: choose another --out")
    if _exchange(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the replaced run
        return
    # no atomic exchange on this OS: park the old run beside, then move the new one in; a
    # kill between the two renames leaves both complete folders (old: .NAME.old-*)
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rmdir(old)
    os.rename(target, old)
    os.rename(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


@functools.lru_cache(maxsize=1)
def _renameat2() -> Any:
    """libc's ``renameat2`` (glibc >= 2.28), or None; looked up once (find_library is slow)."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    return getattr(ctypes.CDLL(libc_name, use_errno=True), "renameat2", None)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux's ``renameat2(RENAME_EXCHANGE)``; False if absent."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise RunFolderError(f"{b}: could not swap in the new run ({os.strerror(code)}); the old run "
                         f"is unchanged")


def _remove_stale_partials(target: Path) -> None:
    """Remove temporary folders of this run name left by killed processes (dead PIDs only)."""
    try:
        siblings = list(target.parent.iterdir())
    except OSError:
        return
    for path in siblings:
        match = _PARTIAL.match(path.name)
        if not match or match["name"] != target.name or not path.is_dir():
            continue
        pid = int(match["pid"])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:  # alive, another user's
            pass


def _fsync(path: Path) -> None:
    # a rename is durable only after the data it points to is on disk
    from data_loaders.store_io import fsync_path

    fsync_path(path)


def open_results(folder: str | Path) -> Any:
    """Open a run folder's ``results.duckdb`` read-only, wherever the folder now lives.

    Its views name the tables relative to the run folder (``equity.parquet``), so a copied or
    moved run still opens; DuckDB resolves such paths against ``file_search_path``, set here
    to the folder. (From a shell: ``cd RUN && duckdb -readonly results.duckdb``.)

    Raises
    ------
    RunFolderError
        When the folder holds no ``results.duckdb``.
    """
    import duckdb

    base = Path(folder).expanduser().resolve()
    database = base / "results.duckdb"
    if not database.is_file():
        raise RunFolderError(
            f"{base}: expected results.duckdb (written with every run), found no such file; "
            f"pass a run folder written by `margincall run`")
    con = duckdb.connect(str(database), read_only=True)
    con.execute("SET file_search_path = '" + base.as_posix().replace("'", "''") + "'")
    return con
