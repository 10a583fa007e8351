"""The one walker of the store's folder tree: partitions, data files, and stray files.

Every command that looks at the tree (``data ls``, ``data validate``, reads, the DuckDB
catalog, ``data rm``) goes through :func:`walk`, so a file the store did not write
(``.DS_Store``, an editor's backup, a stray folder) is skipped the same way everywhere and
reported as a note instead of crashing a command or being read as data.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from data_loaders.schemas import DATASETS, get_schema

#: Partition column -> folder key (``symbol`` is stored as ``symbol_key``).
PARTITION_DIR = {"exchange": "exchange", "symbol": "symbol_key", "timeframe": "timeframe",
                 "price_type": "price_type"}
_YEAR = re.compile(r"^year=(\d{4})$")
_DATA_FILE = re.compile(r"^part-\d{4}(?:-\d{2}-\d{2})?\.parquet$")
_OUR_TEMP = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")  # io.temp_name: swept by the next write
_ROOT_FILES = {"manifest.json", ".lock", ".journal.json"}
#: Folders at the root the store owns besides the datasets: ``cache`` holds derived results
#: (fitted Monte Carlo models, ``backtest.risk.model_cache``); no walker reads it as data.
_ROOT_DIRS = {"cache"}


@dataclass
class Layout:
    """What :func:`walk` found under one dataset (or the whole root)."""

    partitions: list[tuple[dict[str, str], Path]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    strays: list[Path] = field(default_factory=list)


def data_files(partition: Path, strays: list[Path] | None = None) -> list[Path]:
    """Data files of one partition folder (``year=YYYY/part-*.parquet``), sorted."""
    out: list[Path] = []
    if not partition.is_dir():
        return out
    for year in sorted(partition.iterdir()):
        if not (year.is_dir() and _YEAR.match(year.name)):
            if strays is not None:
                strays.append(year)
            continue
        for path in sorted(year.iterdir()):
            if path.is_file() and _DATA_FILE.match(path.name) and path.name[5:9] == year.name[5:]:
                out.append(path)
            elif strays is not None and not _OUR_TEMP.match(path.name):
                strays.append(path)
    return out


def walk(root: Path, dataset: str) -> Layout:
    """Partitions (``{column: folder value}``, path), data files and strays of ``dataset``."""
    schema = get_schema(dataset)
    layout = Layout()
    level = [({}, root / dataset)] if (root / dataset).is_dir() else []
    for column in schema.partitions:
        key = PARTITION_DIR[column] + "="
        deeper = []
        for values, folder in level:
            for child in sorted(folder.iterdir()):
                if child.is_dir() and child.name.startswith(key) and len(child.name) > len(key):
                    deeper.append(({**values, column: child.name[len(key):]}, child))
                elif not _OUR_TEMP.match(child.name):
                    layout.strays.append(child)
        level = deeper
    for values, folder in level:
        files = data_files(folder, layout.strays)
        layout.partitions.append((values, folder))
        layout.files.extend(files)
    return layout


def root_strays(root: Path) -> list[Path]:
    """Entries directly under the store root that the store did not write."""
    if not root.is_dir():
        return []
    return [p for p in sorted(root.iterdir())
            if not (p.name in _ROOT_FILES or _OUR_TEMP.match(p.name)
                    or (p.is_dir() and (p.name in DATASETS or p.name in _ROOT_DIRS)))]


def all_strays(root: Path) -> list[Path]:
    """Every stray file or folder in the store (root and every dataset)."""
    strays = root_strays(root)
    for dataset in DATASETS:
        strays.extend(walk(root, dataset).strays)
    return strays


def matching_files(root: Path, dataset: str, wanted: dict[str, str | None]) -> list[Path]:
    """Data files of the partitions whose folder values equal ``wanted`` (None matches any)."""
    return [path for values, folder in walk(root, dataset).partitions
            if all(value is None or values.get(column) == value for column, value in wanted.items())
            for path in data_files(folder)]
