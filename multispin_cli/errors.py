"""Typed errors: the library raises these, the CLI turns them into one line on stderr and an exit code.

Exit codes follow the usual convention: 2 for bad input (the user's mistake, fixable by changing the
input), 1 for a failure of multispin itself.
"""

from __future__ import annotations

from pathlib import Path


class MultispinError(Exception):
    """Base class of every error multispin raises on purpose."""

    exit_code = 1


class InputError(MultispinError):
    """Bad input: a malformed profile, plan, option value or data file (exit 2)."""

    exit_code = 2

    def __init__(self, reason: str, *, path: str | Path | None = None, key: str | None = None):
        self.reason = reason
        self.path = None if path is None else str(path)
        self.key = key
        super().__init__(self._message())

    def _message(self) -> str:
        where = [part for part in (self.path, self.key) if part]
        return ": ".join([*where, self.reason])


class ProfileError(InputError):
    """A deployment profile (or a fragment it includes) that cannot be used as written."""


class PlanFileError(InputError):
    """A plan file (multispin's own TOML/JSON output) that is missing keys or does not match."""


class InfeasibleError(InputError):
    """The constraints admit no plan; the message says which user and why."""


class MeasurementError(MultispinError):
    """Timings that failed their own checks (a machine busy while measuring); exit 1, since the input
    was fine: measure again on an idle machine, or write them anyway with --force."""


class MissingExtraError(InputError):
    """An optional feature whose extra is not installed; the message names the extra."""

    def __init__(self, feature: str, extra: str, module: str):
        self.extra = extra
        super().__init__(
            f"{feature} needs the optional dependency '{module}': "
            f"install it with `pip install 'multispin[{extra}]'`"
        )

