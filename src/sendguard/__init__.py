"""sendguard: stop patient data going to the wrong recipient.

    from sendguard import Guard
    guard = Guard.load(directory="demo/directory.json")
    verdict = guard.check_email(["jane.smith@gmial.com"], patient="9434765919")
    verdict.action, verdict.findings

Names are imported on first use, so `import sendguard.core` stays free of
the file and network adapters.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "Action",
    "Channel",
    "Config",
    "ConfigError",
    "Directory",
    "DirectoryError",
    "EmailRecipient",
    "Finding",
    "Guard",
    "Header",
    "RulesError",
    "Severity",
    "Verdict",
    "load_config",
]
__version__ = "0.1.0"

_WHERE = {
    "Action": "sendguard.core.models",
    "Channel": "sendguard.core.models",
    "EmailRecipient": "sendguard.core.models",
    "Finding": "sendguard.core.models",
    "Header": "sendguard.core.models",
    "Severity": "sendguard.core.models",
    "Verdict": "sendguard.core.models",
    "Directory": "sendguard.core.directory",
    "DirectoryError": "sendguard.core.directory",
    "RulesError": "sendguard.core.rules",
    "Config": "sendguard.config",
    "ConfigError": "sendguard.config",
    "load_config": "sendguard.config",
    "Guard": "sendguard.guard",
}

if TYPE_CHECKING:
    from sendguard.config import Config, ConfigError, load_config
    from sendguard.core.directory import Directory, DirectoryError
    from sendguard.core.models import (
        Action,
        Channel,
        EmailRecipient,
        Finding,
        Header,
        Severity,
        Verdict,
    )
    from sendguard.core.rules import RulesError
    from sendguard.guard import Guard


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'sendguard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
