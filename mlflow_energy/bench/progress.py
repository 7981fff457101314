"""The benchmark child's progress on the console: one updating line on a terminal, and outside
one (a pipe, a CI log) one line per phase, with a window that repeats (a generate repetition,
a serving window) printed once per run of them. ``bench.log`` beside the result keeps every line."""

from __future__ import annotations

import logging
import shutil
from typing import TextIO

# ``log.info(..., extra={REPEATS: True})``: a window of a series whose every member would
# otherwise print a line.
REPEATS = "mlflow_energy_repeats"


class ProgressHandler(logging.StreamHandler):
    """Progress records (INFO) overwrite one line on a terminal; warnings and errors end that
    line and stand on their own, so they stay readable after the run."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.terminal = stream.isatty()
        self._line_open = False
        self._last_repeated = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if record.levelno > logging.INFO or not self.terminal:
                repeated = bool(getattr(record, REPEATS, False))
                if record.levelno <= logging.INFO and repeated and self._last_repeated:
                    return
                self._last_repeated = repeated and record.levelno <= logging.INFO
                self.end_line()
                self.stream.write(text + "\n")
            else:
                # Cut to the terminal's width: a wrapped line cannot be overwritten.
                width = shutil.get_terminal_size().columns - 1
                self.stream.write("\r\x1b[K" + text.splitlines()[0][:width])
                self._line_open = True
            self.flush()
        except Exception:  # a console that went away must not fail the benchmark
            self.handleError(record)

    def end_line(self) -> None:
        """Ends the updating line, so what is printed next starts on a line of its own."""
        if self._line_open:
            self.stream.write("\n")
            self.flush()
            self._line_open = False

    def close(self) -> None:
        self.end_line()
        super().close()
