"""Read directory sources and rule files from disk (the I/O around the core).

Directory files are FHIR JSON (a Bundle or one resource), FHIR NDJSON
(`.ndjson`, `.jsonl`) or the sendguard CSV (`.csv`); a folder means every
such file in it. NDJSON and CSV are streamed line by line, so a large
export is never in memory whole. Every problem found is reported together.
"""

from __future__ import annotations

import logging
import mmap
import os
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from sendguard.core.directory import Directory, DirectoryError, Problem, RawEntry
from sendguard.core.directory.builder import DirectoryBuilder
from sendguard.core.directory.csvformat import CsvProblem, entries_from_csv
from sendguard.core.directory.fhir import (
    FhirProblem,
    entries_from_json,
    entries_from_ndjson_line,
)
from sendguard.core.directory.snapshot import FORMAT as SNAPSHOT_FORMAT
from sendguard.core.directory.snapshot import SnapshotError, pack, unpack
from sendguard.core.rules import RuleProblem, RulesError, RuleSet, parse_rules

__all__ = [
    "DIRECTORY_SUFFIXES",
    "directory_files",
    "fingerprint",
    "load_directory",
    "load_or_build",
    "load_rules",
    "load_snapshot",
    "read_entries",
    "rule_files",
    "save_snapshot",
    "shipped_rules_dir",
]

DIRECTORY_SUFFIXES = (".json", ".ndjson", ".jsonl", ".csv")
log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


def directory_files(paths: Sequence[PathLike]) -> list[Path]:
    """The files named, folders expanded to their directory files (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in DIRECTORY_SUFFIXES))
        else:
            out.append(p)
    return out


def read_entries(
    path: Path, problems: list[Problem], *, max_problems: int = 100
) -> Iterator[RawEntry]:
    """Raw entries of one file; malformed records are added to `problems`
    and skipped so that one run reports as many of them as it can."""
    name = str(path)
    try:
        suffix = path.suffix.lower()
        if suffix == ".csv":
            with path.open(encoding="utf-8-sig", newline="") as f:
                try:
                    yield from entries_from_csv(f, name)
                except CsvProblem as exc:
                    problems.append(exc.problem)
        elif suffix in (".ndjson", ".jsonl"):
            yield from _ndjson(path, name, problems, max_problems)
        elif suffix == ".json":
            data = path.read_bytes()
            try:
                yield from entries_from_json(data, name)
            except FhirProblem as exc:
                if "trailing" in str(exc).lower() or "unexpected content" in str(exc).lower():
                    yield from _ndjson(path, name, problems, max_problems)  # NDJSON named .json
                else:
                    problems.append(exc.problem)
        else:
            problems.append(
                Problem(
                    name,
                    "",
                    "",
                    f"unknown file type {suffix!r}; use " + ", ".join(DIRECTORY_SUFFIXES),
                )
            )
    except UnicodeDecodeError as exc:
        problems.append(Problem(name, "", "", f"not UTF-8 text: {exc}"))
    except OSError as exc:
        problems.append(Problem(name, "", "", f"cannot read the file: {exc.strerror or exc}"))


def _ndjson(
    path: Path, name: str, problems: list[Problem], max_problems: int
) -> Iterator[RawEntry]:
    with path.open("rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield from entries_from_ndjson_line(line, name, lineno)
            except FhirProblem as exc:
                problems.append(exc.problem)
                if len(problems) >= max_problems:
                    return


def load_directory(
    paths: Sequence[PathLike], *, as_of: date | None = None, region: str = "GB"
) -> Directory:
    """Load and build a directory from files; all or nothing.

    Raises DirectoryError naming every problem (file, record, field).
    """
    files = directory_files(paths)
    problems: list[Problem] = []
    if not files:
        raise DirectoryError([Problem("", "", "", "no directory files given")])
    builder = DirectoryBuilder(as_of=as_of or date.today(), region=region)
    for path in files:
        for entry in read_entries(path, problems):
            builder.add(entry)
    if problems:
        raise DirectoryError([*problems, *builder.problems])
    return builder.build()


def fingerprint(paths: Sequence[PathLike], region: str) -> dict[str, Any]:
    """What a snapshot was built from: each file's path, size and mtime."""
    files = directory_files(paths)
    return {
        "region": region,
        "files": [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files],
    }


def save_snapshot(directory: Directory, path: PathLike, meta: dict[str, Any]) -> None:
    """Write a compiled directory atomically: readers see the old file or the
    new one, never half of one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            for chunk in pack(directory, meta):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def load_snapshot(path: PathLike, *, populate: bool = True) -> tuple[Directory, dict[str, Any]]:
    """Map a compiled directory (read-only; pages are shared between processes).

    With `populate` the mapping is filled up front where the system can
    (Linux's MAP_POPULATE): a lazily mapped index takes a page fault on each
    first touch, which made the first thousand checks after a load or reload
    several times slower. Populating 400 MB (a million entries) from the page
    cache takes a fraction of a second.
    """
    with open(path, "rb") as f:
        if populate and hasattr(mmap, "MAP_POPULATE"):
            mm = mmap.mmap(
                f.fileno(), 0, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE, prot=mmap.PROT_READ
            )
        else:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return unpack(memoryview(mm), keep=mm)


def load_or_build(
    sources: Sequence[PathLike],
    snapshot: PathLike | None,
    *,
    as_of: date | None = None,
    region: str = "GB",
) -> Directory:
    """The directory from its sources, through a snapshot when there is one.

    A snapshot whose fingerprint matches the sources is mapped (a second or
    two even at a million entries); otherwise the sources are built and,
    when a snapshot path is configured, it is rewritten. A snapshot alone
    (no sources) is used as it is.
    """
    day = (as_of or date.today()).toordinal()
    snap = Path(snapshot) if snapshot is not None else None
    if snap is not None and snap.exists():
        if not sources:
            try:
                return load_snapshot(snap)[0].on(day)
            except SnapshotError as exc:
                raise SnapshotError(
                    f"{snap}: {exc}; with no directory sources configured it cannot be "
                    "rebuilt here: run `sendguard directory import SOURCES --snapshot "
                    f"{snap}` (this version writes snapshot format {SNAPSHOT_FORMAT})"
                ) from None
        try:
            # the header decides whether the snapshot is current; only then
            # is the whole file read in
            if load_snapshot(snap, populate=False)[1].get("source") == fingerprint(sources, region):
                return load_snapshot(snap)[0].on(day)
        except (SnapshotError, OSError, ValueError) as exc:
            log.warning("directory snapshot %s not usable (%s); rebuilding", snap, exc)
    d = load_directory(sources, as_of=as_of, region=region)
    if snap is not None:
        try:
            save_snapshot(d, snap, {"source": fingerprint(sources, region)})
        except OSError as exc:
            log.warning("directory snapshot %s not written: %s", snap, exc.strerror or exc)
    return d


def shipped_rules_dir() -> Path:
    """The default rules: packaged with the wheel, or `rules/` in a checkout."""
    packaged = Path(__file__).with_name("default_rules")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "rules"


def rule_files(paths: Sequence[PathLike]) -> list[Path]:
    """`*.toml` files in the folders given (sorted by name), and files given."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(p.glob("*.toml")))
        elif p.exists():
            out.append(p)
        else:
            raise RulesError([RuleProblem(str(p), "", "", "no such file or folder")])
    return out


def _texts(files: list[Path]) -> list[tuple[str, str]]:
    out = []
    problems = []
    for f in files:
        try:
            out.append((str(f), f.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(RuleProblem(str(f), "", "", f"cannot read: {exc}"))
    if problems:
        raise RulesError(problems)
    return out


def load_rules(
    defaults: Sequence[PathLike] | None = None, local: Sequence[PathLike] = ()
) -> RuleSet:
    """The shipped (or given) default rules with local overrides merged over.

    Raises RulesError naming file, rule and field of every problem.
    """
    default_files = rule_files(defaults if defaults is not None else [shipped_rules_dir()])
    local_files = rule_files(local)
    return parse_rules(_texts(default_files), _texts(local_files))
