"""sendguard: stop patient data going to the wrong recipient.

from sendguard import Guard
guard = Guard.load(directory="demo/directory.json")
verdict = guard.check_email(["jane.smith@gmial.com"], patient="9434765919")
verdict.action, verdict.findings
"""

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
