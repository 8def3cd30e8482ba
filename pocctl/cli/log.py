"""pocctl's own log records (the embedded AWS's pollers, executor, gateway) as terminal lines."""

from __future__ import annotations

import logging

from pocctl.cli.terminal import Terminal, escape


class LogHandler(logging.Handler):
    """One line per record, with the traceback only under --verbose."""

    def __init__(self, terminal: Terminal) -> None:
        super().__init__()
        self.terminal = terminal

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            message = f"{message}: {type(exc).__name__}: {exc}"
        style = "yellow" if record.levelno >= logging.WARNING else "dim"
        self.terminal.err.print(f"[{style}]{escape(message)}[/]")
        if exc is not None and self.terminal.verbose:
            self.terminal.err.print_exception()


def route_logging(terminal: Terminal) -> None:
    logger = logging.getLogger("pocctl")
    logger.handlers = [LogHandler(terminal)]
    logger.setLevel(logging.DEBUG if terminal.verbose else logging.WARNING)
    logger.propagate = False
