"""Errors a user can act on. The CLI prints ``error: <message>`` on one line and exits with
``exit_code``; nothing else (no traceback).

A message may quote model text (node and tensor names a model file chose): every error's
message is made one printable line when the error is built (:func:`hetero.ir.text.printable`:
control characters, newlines included, become visible escapes), so no terminal escape
sequence reaches the terminal or a log and the CLI's ``error:`` line is the whole message."""

from hetero.ir.text import printable


class UserError(Exception):
    """Bad input from the user: a file, a model, an option. Exit code 2. String arguments become
    one printable line (see the module docstring)."""

    exit_code: int = 2

    def __init__(self, *args):
        super().__init__(*(printable(a) if isinstance(a, (str, bytes)) else a for a in args))


class ToolError(UserError):
    """An external tool (Verilator, Yosys, g++) is missing or failed. Exit code 3."""

    exit_code: int = 3


class SimulationError(UserError):
    """The simulated hardware stalled or disagreed with the reference. Exit code 4."""

    exit_code: int = 4
