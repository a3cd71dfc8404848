"""A compiled directory as one flat buffer: save once, map in a second.

Layout: a magic line, an 8-byte little-endian header length, a JSON header
(array names, dtypes, offsets and lengths; domains; warnings; caller
metadata), then every array's raw bytes aligned to 64 bytes. `unpack`
builds numpy views straight onto the buffer (a memory map in practice), so
loading costs no parsing and several processes share one copy in the page
cache. This module only converts; reading and writing files is the caller's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from sendguard.core.directory.directory import Directory
from sendguard.core.directory.index import DeletionIndex, MultiMap

__all__ = ["FORMAT", "MAGIC", "SnapshotError", "pack", "unpack"]

FORMAT = 2  # 2: with the fax number index
MAGIC = f"sendguard-directory {FORMAT}\n".encode()
_ALIGN = 64


class SnapshotError(ValueError):
    """The buffer is not a complete sendguard directory snapshot."""


def _arrays(d: Directory) -> dict[str, npt.NDArray[Any]]:
    out: dict[str, npt.NDArray[Any]] = {
        "kinds": d.kinds,
        "offsets": d.offsets,
        "blob": np.frombuffer(d.blob, dtype=np.uint8),
        "link_offsets": d.link_offsets,
        "link_targets": d.link_targets,
        "link_kinds": d.link_kinds,
    }
    for name in ("refs", "emails", "numbers", "names", "places"):
        m: MultiMap = getattr(d, name)
        out[f"{name}.keys"], out[f"{name}.vals"] = m.keys, m.vals
    for name in ("near_all", "near_pro", "near_fax"):
        idx: DeletionIndex = getattr(d, name)
        out[f"{name}.keys"], out[f"{name}.vals"] = idx.map.keys, idx.map.vals
    return out


def pack(d: Directory, meta: dict[str, Any] | None = None) -> Iterator[bytes | memoryview]:
    """The snapshot of `d` as chunks to write one after another."""
    arrays = _arrays(d)
    layout: dict[str, list[Any]] = {}
    at = 0
    for name, a in arrays.items():
        layout[name] = [a.dtype.str, int(a.shape[0]), at]
        at += -(-a.nbytes // _ALIGN) * _ALIGN
    header = orjson.dumps(
        {
            "as_of": d.as_of,
            "arrays": layout,
            "near_all": [d.near_all.k, d.near_all.max_len],
            "near_pro": [d.near_pro.k, d.near_pro.max_len],
            "near_fax": [d.near_fax.k, d.near_fax.max_len],
            "domains": d.domains,
            "warnings": list(d.warnings),
            "meta": meta or {},
        }
    )
    start = len(MAGIC) + 8 + len(header)
    pad = -start % _ALIGN
    yield MAGIC + len(header).to_bytes(8, "little") + header + b"\0" * pad
    for a in arrays.values():
        data = np.ascontiguousarray(a).data.cast("B")
        yield data
        yield b"\0" * (-len(data) % _ALIGN)


def unpack(buf: memoryview, *, keep: object = None) -> tuple[Directory, dict[str, Any]]:
    """A Directory viewing `buf`; `keep` is held as long as the Directory
    lives (the memory map the buffer belongs to)."""
    if bytes(buf[: len(MAGIC)]) != MAGIC:
        raise SnapshotError("not a sendguard directory snapshot (or another version)")
    n = int.from_bytes(buf[len(MAGIC) : len(MAGIC) + 8], "little")
    start = len(MAGIC) + 8
    try:
        header = orjson.loads(buf[start : start + n])
    except orjson.JSONDecodeError as exc:
        raise SnapshotError(f"the snapshot header is damaged: {exc}") from None
    base = start + n + (-(start + n) % _ALIGN)
    arrays: dict[str, npt.NDArray[Any]] = {}
    for name, (dtype, count, offset) in header["arrays"].items():
        dt = np.dtype(dtype)
        end = base + offset + count * dt.itemsize
        if end > len(buf):
            raise SnapshotError(f"the snapshot is truncated (array {name})")
        arrays[name] = np.frombuffer(buf, dtype=dt, count=count, offset=base + offset)

    def mm(name: str) -> MultiMap:
        return MultiMap(arrays[f"{name}.keys"], arrays[f"{name}.vals"])

    blob_at = base + header["arrays"]["blob"][2]
    d = Directory(
        as_of=header["as_of"],
        kinds=arrays["kinds"],
        offsets=arrays["offsets"],
        blob=buf[blob_at : blob_at + header["arrays"]["blob"][1]],
        link_offsets=arrays["link_offsets"],
        link_targets=arrays["link_targets"],
        link_kinds=arrays["link_kinds"],
        refs=mm("refs"),
        emails=mm("emails"),
        numbers=mm("numbers"),
        names=mm("names"),
        places=mm("places"),
        near_all=DeletionIndex(header["near_all"][0], header["near_all"][1], mm("near_all")),
        near_pro=DeletionIndex(header["near_pro"][0], header["near_pro"][1], mm("near_pro")),
        near_fax=DeletionIndex(header["near_fax"][0], header["near_fax"][1], mm("near_fax")),
        domains={k: (v[0], v[1]) for k, v in header["domains"].items()},
        warnings=tuple(header["warnings"]),
        keep=keep,
    )
    return d, dict(header["meta"])
