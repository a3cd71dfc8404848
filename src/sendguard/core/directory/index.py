"""Compact lookup structures built once per directory load.

`MultiMap` maps integer keys to entry numbers with two sorted numpy arrays
(12 bytes a pair, binary search). `DeletionIndex` finds strings within k
edits (SymSpell style): every string is stored under the hashes of itself
and of each string made by deleting up to k of its characters; a query
looks up its own deletion variants, and the few candidates that come back
are confirmed by the caller with an exact edit distance. Hashes are
computed for whole columns of equal-length strings at once with numpy, so
a million strings index in about a second.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["DeletionIndex", "MultiMap", "fold", "mix", "query_keys", "salt_of", "skey"]

MASK = (1 << 64) - 1
_B = 0x100000001B3  # odd multiplier: powers stay invertible mod 2**64
_MAX_POW = 130
_POW = [pow(_B, e, 1 << 64) for e in range(_MAX_POW)]
_POW_NP = np.array(_POW, dtype=np.uint64)
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB

IntArray = npt.NDArray[np.int32]


def fold(text: str) -> int:
    """Polynomial hash of the code points of `text` (mod 2**64)."""
    h = 0
    for c in text:
        h = (h * _B + ord(c) + 1) & MASK
    return h


def mix(x: int) -> int:
    """splitmix64 finaliser: spreads a fold over all 64 bits."""
    x &= MASK
    x ^= x >> 30
    x = (x * _M1) & MASK
    x ^= x >> 27
    x = (x * _M2) & MASK
    return x ^ (x >> 31)


_U30, _U27, _U31, _U32 = (np.uint64(b) for b in (30, 27, 31, 32))
_UM1, _UM2 = np.uint64(_M1), np.uint64(_M2)


def _mix_np(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    x = x ^ (x >> _U30)
    x = x * _UM1
    x = x ^ (x >> _U27)
    x = x * _UM2
    return x ^ (x >> _U31)


def skey(text: str) -> int:
    """A stable 64-bit key of a string for the exact-match indexes.

    Unlike `hash()` it is the same in every process, so compiled directories
    can be saved and shared; two C checksums keep it fast. Every lookup
    confirms its hits, so a rare collision costs a little work, never a
    wrong answer.
    """
    b = text.encode("utf-8", "surrogatepass")
    return (zlib.crc32(b) << 32) | zlib.adler32(b)


def salt_of(group: str) -> int:
    """A 64-bit salt for a blocking group (e.g. an email domain)."""
    return mix(fold(group) ^ 0x5EED)


class MultiMap:
    """Integer key -> entry numbers, as sorted parallel arrays."""

    __slots__ = ("keys", "vals")

    def __init__(
        self, keys: npt.NDArray[np.uint64] | npt.NDArray[np.uint32], vals: IntArray
    ) -> None:
        self.keys = keys
        self.vals = vals

    @classmethod
    def build(cls, keys: Iterable[int], vals: Iterable[int]) -> MultiMap:
        k = np.fromiter((x & MASK for x in keys), dtype=np.uint64)
        v = np.fromiter(vals, dtype=np.int32)
        return cls.from_arrays(k, v)

    @classmethod
    def from_arrays(cls, keys: npt.NDArray[np.uint64], vals: IntArray) -> MultiMap:
        order = np.lexsort((vals, keys))
        return cls(keys[order], vals[order])

    def get(self, key: int) -> list[int]:
        keys = self.keys
        k = keys.dtype.type(key & MASK)
        lo = int(keys.searchsorted(k))
        hi = lo
        while hi < len(keys) and keys[hi] == k:  # most keys hold one or two entries
            hi += 1
        return self.vals[lo:hi].tolist() if hi > lo else []

    def get_many(self, keys: Sequence[int] | npt.NDArray[Any]) -> list[int]:
        """Entry numbers stored under any of `keys`, without duplicates."""
        if len(keys) == 0 or len(self.keys) == 0:
            return []
        if isinstance(keys, np.ndarray):
            q = keys.astype(self.keys.dtype)
        else:
            q = np.array([k & MASK for k in keys], dtype=self.keys.dtype)
        stored = self.keys
        lo = stored.searchsorted(q, "left")
        hit = stored[np.minimum(lo, len(stored) - 1)] == q
        if not hit.any():
            return []
        q, lo = q[hit], lo[hit]
        n = stored.searchsorted(q, "right") - lo  # values under each key found
        if int(n.max()) == 1:
            at = lo
        else:  # every position of every run, without a Python loop per key
            starts = np.repeat(lo - (np.cumsum(n) - n), n)
            at = starts + np.arange(len(starts))
        return list(dict.fromkeys(self.vals[at].tolist()))

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.vals.nbytes)


def _variants_np(cps: npt.NDArray[np.uint64], k: int) -> list[npt.NDArray[np.uint64]]:
    """Folds of each row and of its deletion variants (up to k deletions)."""
    m, n = cps.shape
    prefix = np.zeros((m, n + 1), dtype=np.uint64)
    for j in range(n):
        prefix[:, j + 1] = prefix[:, j] * np.uint64(_B) + cps[:, j]
    suffix = np.zeros((m, n + 1), dtype=np.uint64)
    for j in range(n - 1, -1, -1):
        suffix[:, j] = cps[:, j] * _POW_NP[n - 1 - j] + suffix[:, j + 1]
    out = [prefix[:, n]]
    if k >= 1:
        for p in range(n):
            out.append(prefix[:, p] * _POW_NP[n - 1 - p] + suffix[:, p + 1])
    if k >= 2:
        for p in range(n):
            for q in range(p + 1, n):
                mid = prefix[:, q] - prefix[:, p + 1] * _POW_NP[q - p - 1]
                out.append(
                    prefix[:, p] * _POW_NP[n - 2 - p] + mid * _POW_NP[n - 1 - q] + suffix[:, q + 1]
                )
    return out


def _frozen(a: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    a.flags.writeable = False  # shared by every query through the caches below
    return a


@cache
def _positions(n: int) -> npt.NDArray[np.intp]:
    return _frozen(np.arange(n))


@cache
def _pairs(n: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Positions (p, q), p < q, of the two characters a 2-deletion drops."""
    p, q = np.triu_indices(n, 1)
    return _frozen(p), _frozen(q)


def query_keys(text: str, k: int, salt: int) -> npt.NDArray[np.uint64]:
    """The index keys (32-bit, as uint64) of `text` and its deletion
    variants in group `salt`: the same folds as `_variants_np`, for one
    query string, computed with numpy (a Python loop over the ~200
    two-deletion variants of a 20-character address cost ~0.2 ms).
    """
    cps = [ord(c) + 1 for c in text]
    n = len(cps)
    pre = [0] * (n + 1)
    for j in range(n):
        pre[j + 1] = (pre[j] * _B + cps[j]) & MASK
    suf = [0] * (n + 1)
    for j in range(n - 1, -1, -1):
        suf[j] = (cps[j] * _POW[n - 1 - j] + suf[j + 1]) & MASK
    prefix = np.array(pre, dtype=np.uint64)
    suffix = np.array(suf, dtype=np.uint64)
    with np.errstate(over="ignore"):  # arithmetic is mod 2**64 on purpose
        parts = [prefix[n : n + 1]]
        if k >= 1 and n:
            at = _positions(n)
            parts.append(prefix[at] * _POW_NP[n - 1 - at] + suffix[at + 1])
        if k >= 2 and n > 1:
            p, q = _pairs(n)
            mid = prefix[q] - prefix[p + 1] * _POW_NP[q - p - 1]
            parts.append(prefix[p] * _POW_NP[n - 2 - p] + mid * _POW_NP[n - 1 - q] + suffix[q + 1])
        folds = np.concatenate(parts)
        return _mix_np(folds ^ np.uint64(salt & MASK)) >> _U32


def _variant_count(n: int, k: int, max_len: int) -> int:
    """How many folds `_variants_np` yields for strings of length n."""
    if n > max_len or n == 0:
        return 1
    return 1 + (n if k >= 1 else 0) + (n * (n - 1) // 2 if k >= 2 else 0)


class DeletionIndex:
    """Strings within `k` edits of a query, blocked by a salt (e.g. domain).

    Keys are 32-bit, so unrelated strings can collide: callers must confirm
    every candidate with an exact distance, which they do anyway.
    """

    __slots__ = ("k", "map", "max_len")

    def __init__(self, k: int, max_len: int, mapping: MultiMap) -> None:
        self.k = k
        self.max_len = max_len
        self.map = mapping

    @classmethod
    def build(
        cls,
        strings: Sequence[str],
        salts: Sequence[int] | npt.NDArray[np.uint64],
        vals: Sequence[int] | npt.NDArray[np.int32],
        *,
        k: int = 1,
        max_len: int = 48,
    ) -> DeletionIndex:
        """Index `strings[i]` (in group `salts[i]`) as pointing to `vals[i]`.

        Strings longer than `max_len` are indexed whole, without variants.
        """
        by_len: dict[int, list[int]] = defaultdict(list)
        for i, s in enumerate(strings):
            by_len[min(len(s), max_len + 1)].append(i)
        salt_arr = np.asarray(salts, dtype=np.uint64)
        val_arr = np.asarray(vals, dtype=np.int64).astype(np.uint64)
        total = sum(len(idxs) * _variant_count(n, k, max_len) for n, idxs in by_len.items())
        packed = np.empty(total, dtype=np.uint64)
        at = 0
        for n, idxs in by_len.items():
            rows = np.array(idxs, dtype=np.int64)
            if n > max_len:
                folds = [np.array([fold(strings[i]) for i in idxs], dtype=np.uint64)]
            elif n == 0:
                folds = [np.zeros(len(idxs), dtype=np.uint64)]
            else:
                raw = "".join(strings[i] for i in idxs).encode("utf-32-le")
                cps = np.frombuffer(raw, dtype=np.uint32).reshape(len(idxs), n)
                folds = _variants_np(cps.astype(np.uint64) + np.uint64(1), k)
            salt = salt_arr[rows]
            val = val_arr[rows]
            for f in folds:
                key32 = _mix_np(f ^ salt) >> np.uint64(32)
                packed[at : at + len(rows)] = (key32 << np.uint64(32)) | val
                at += len(rows)
        # Sort in place, then split into keys and values chunk by chunk,
        # dropping repeats ("aab" yields "ab" twice), so the peak stays near
        # twice the final size; np.unique would use a much slower hash table.
        packed.sort()
        keys = np.empty(total, dtype=np.uint32)
        values = np.empty(total, dtype=np.int32)
        kept = 0
        chunk = 1 << 20
        for lo in range(0, total, chunk):
            part = packed[lo : lo + chunk]
            keep = np.empty(len(part), dtype=bool)
            keep[0] = lo == 0 or part[0] != packed[lo - 1]
            np.not_equal(part[1:], part[:-1], out=keep[1:])
            sel = part[keep]
            keys[kept : kept + len(sel)] = sel >> np.uint64(32)
            values[kept : kept + len(sel)] = sel.astype(np.uint32).view(np.int32)
            kept += len(sel)
        del packed
        keys = keys[:kept].copy() if kept < total else keys
        values = values[:kept].copy() if kept < total else values
        return cls(k, max_len, MultiMap(keys, values))

    def candidates(self, text: str, salt: int) -> list[int]:
        """Values of strings that may lie within k edits of `text`."""
        if len(text) > self.max_len:
            return self.map.get_many([mix(fold(text) ^ salt) >> 32])
        return self.map.get_many(query_keys(text, self.k, salt))

    def __len__(self) -> int:
        return len(self.map)

    @property
    def nbytes(self) -> int:
        return self.map.nbytes
