"""The command line's error kinds and exit codes (shared by the parser and the subcommands)."""

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class UsageError(Exception):
    """A bad command-line value: exit 2."""


class CommandError(Exception):
    """Any other problem the user can fix: exit 1."""
