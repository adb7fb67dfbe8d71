"""The ``ffnn`` command: parser.py reads the command line, commands.py runs each subcommand through
the library, errors.py holds the exit codes and the two error kinds, bench.py is ``ffnn bench``."""

from .parser import main

__all__ = ["main"]
