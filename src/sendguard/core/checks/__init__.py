"""All checks; importing this package fills the CHECKS table."""

from sendguard.core.checks import common, email, fax, letter
from sendguard.core.checks.base import CHECKS, CheckSpec, Params, register

__all__ = ["CHECKS", "CheckSpec", "Params", "common", "email", "fax", "letter", "register"]
