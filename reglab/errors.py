"""Errors reglab raises for user mistakes that are not a single bad parameter."""

from reglab._validation import InvalidParameterError

__all__ = ["UserError", "InvalidParameterError"]


class UserError(Exception):
    """A user mistake (a missing file, a malformed config, a bad column): one line, what, where, how to fix.

    The CLI prints it without a traceback and exits with code 2.
    """
