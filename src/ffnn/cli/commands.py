"""The ``ffnn`` subcommands, each in the module of its kind (one function per command, taking the
parsed arguments): training, the commands that use a saved model, the checks of back-propagation,
export and the benchmark. The parser (:mod:`ffnn.cli.parser`) takes them from here."""

from .bench_command import cmd_bench
from .check_commands import cmd_explain, cmd_gradcheck
from .export_command import cmd_export
from .model_commands import cmd_evaluate, cmd_info, cmd_predict
from .train_command import cmd_train

__all__ = ["cmd_train", "cmd_predict", "cmd_evaluate", "cmd_info", "cmd_gradcheck", "cmd_explain", "cmd_export",
           "cmd_bench"]
