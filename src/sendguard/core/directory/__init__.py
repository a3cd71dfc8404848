"""The patient and contact directory: records in, indexed lookups out."""

from sendguard.core.directory.builder import build_directory
from sendguard.core.directory.directory import (
    Address,
    Directory,
    DirectoryStats,
    Email,
    Entry,
    Names,
    NearEmail,
    Number,
)
from sendguard.core.directory.records import (
    PROFESSIONAL_KINDS,
    DirectoryError,
    Kind,
    LinkKind,
    Problem,
    RawAddress,
    RawEntry,
    RawLink,
    RawTelecom,
)

__all__ = [
    "PROFESSIONAL_KINDS",
    "Address",
    "Directory",
    "DirectoryError",
    "DirectoryStats",
    "Email",
    "Entry",
    "Kind",
    "LinkKind",
    "Names",
    "NearEmail",
    "Number",
    "Problem",
    "RawAddress",
    "RawEntry",
    "RawLink",
    "RawTelecom",
    "build_directory",
]
