"""Errors a user can act on. The CLI prints ``error: <message>`` on one line and exits with
``exit_code``; nothing else (no traceback)."""


class UserError(Exception):
    """Bad input from the user: a file, a model, an option. Exit code 2."""

    exit_code: int = 2


class ToolError(UserError):
    """An external tool (Verilator, Yosys, g++) is missing or failed. Exit code 3."""

    exit_code: int = 3


class SimulationError(UserError):
    """The simulated hardware stalled or disagreed with the reference. Exit code 4."""

    exit_code: int = 4
