"""Errors the user can act on. The command line prints them as one line, no traceback."""


class EngineError(Exception):
    """A problem with the input or the settings; the message says what to do."""

    exit_code = 2


class Interrupted(Exception):
    """The run was stopped by SIGINT or SIGTERM; finished frames are kept."""

    exit_code = 130
