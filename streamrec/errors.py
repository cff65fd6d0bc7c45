"""Errors that reach the user as one line (no traceback)."""


class UserError(Exception):
    """Bad input from the user: a missing file, a malformed argument, an unusable model dir (exit 2)."""


class ServiceUnavailable(Exception):
    """A service (broker, Redis) that should be there does not answer (exit 1: retrying may help)."""
