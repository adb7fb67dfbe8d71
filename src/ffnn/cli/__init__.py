"""The ``ffnn`` command: parser.py reads the command line; each subcommand runs through the library in
the module of its kind (train_command, model_commands for predict/evaluate/info, check_commands for
gradcheck/explain, export_command, bench_command; commands.py gathers them), on what shared.py holds
for all of them (output checks, reading models and data, predictions, scores); errors.py holds the
exit codes and the two error kinds, terminal.py the escaping and the progress line, bench*.py the
benchmark."""

from .parser import main

__all__ = ["main"]
