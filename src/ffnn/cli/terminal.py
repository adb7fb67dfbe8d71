"""What reaches a terminal: text from files and file names (labels, metadata, paths a user typed)
goes through ``ffnn._files.printable`` here, once, instead of at every message that might hold it.

While a command runs, a standard stream that is a terminal is wrapped so that control characters
(escape sequences that could move the cursor, retitle the window or hide text) are shown escaped
(``\\x1b``); line feeds and tabs pass, and on stderr carriage returns (the progress bar's). A
stream that is a pipe or a file is left alone: predictions written there are data and go out byte
for byte. Text the stream's encoding cannot hold (a label in Greek on an ASCII terminal) is written
as a backslash escape rather than ending the command with a UnicodeEncodeError.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time

from .._files import printable

__all__ = ["escaped_terminals", "Status"]

def _escape(text: str, keep: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c in keep else printable(c) for c in text)


class _Escaping(io.TextIOBase):
    """A text stream that writes to ``stream`` with control characters other than ``keep`` escaped."""

    def __init__(self, stream, keep):
        self._stream, self._keep = stream, keep

    def write(self, text):
        self._stream.write(_escape(text, self._keep))
        return len(text)

    def flush(self):
        self._stream.flush()

    def isatty(self):
        return True

    def fileno(self):
        return self._stream.fileno()

    @property
    def encoding(self):
        return self._stream.encoding

    @property
    def errors(self):
        return self._stream.errors

    def writable(self):
        return True


def _is_terminal(stream):
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


@contextlib.contextmanager
def escaped_terminals():
    """Within the block, ``sys.stdout`` and ``sys.stderr`` escape control characters when they are terminals."""
    saved = sys.stdout, sys.stderr
    errors = {}
    for stream in saved:
        if hasattr(stream, "reconfigure") and getattr(stream, "errors", None) not in (None, "backslashreplace"):
            errors[stream] = stream.errors
            stream.reconfigure(errors="backslashreplace")
    if _is_terminal(sys.stdout):
        sys.stdout = _Escaping(sys.stdout, "\n\t")
    if _is_terminal(sys.stderr):
        sys.stderr = _Escaping(sys.stderr, "\n\t\r")
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:  # None: the stream was closed when the command started (>&-)
                    stream.flush()
            except (OSError, ValueError):
                pass
        sys.stdout, sys.stderr = saved
        for stream, previous in errors.items():
            try:
                stream.reconfigure(errors=previous)
            except (OSError, ValueError):  # pragma: no cover - a stream closed meanwhile
                pass


class Status:
    """A long computation's progress on standard error: on a terminal, one line rewritten at most
    twice a second (and erased by :meth:`close`); elsewhere (a log file), a line every ``every``
    seconds. Silent for the first ``after`` seconds, so a short run prints nothing.

    ``show(text)`` takes the text, or a function of ``left(fraction done) -> seconds left``
    building it, called only when a line is due."""

    def __init__(self, after=2.0, every=10.0, stream=None):
        self.after, self.every = after, every
        self.stream = stream if stream is not None else sys.stderr
        self.start = self.last = time.perf_counter()
        self.tty = _is_terminal(self.stream)
        self.shown, self.width = False, 0

    def _left(self, fraction):
        spent = time.perf_counter() - self.start
        return spent * (1 - fraction) / fraction if fraction > 0 else float("inf")

    def show(self, text):
        now = time.perf_counter()
        if now - self.start < self.after or (self.shown and now - self.last < (0.5 if self.tty else self.every)):
            return
        self.last, self.shown = now, True
        line = text(self._left) if callable(text) else text
        if self.tty:  # padded over the last line: no escape sequence (the terminal wrapper escapes them)
            self.stream.write("\r" + line + " " * max(0, self.width - len(line)))
            self.width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self):
        """Erase a terminal's status line (before the caller prints what it measured)."""
        if self.shown and self.tty:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
        self.shown, self.width = False, 0
