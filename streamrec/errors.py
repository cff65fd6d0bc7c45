"""Errors that reach the user as one line (no traceback)."""


class UserError(Exception):
    """Bad input from the user: a missing file, a malformed argument, an unusable model dir."""
