"""Progress reporting: a tqdm bar on a terminal, JSON lines for the add-on, or nothing.

JSON lines are the contract in docs/CONTRACT.md: one object per line on stdout with
``event``, ``stage``, ``done``, ``total`` and ``message``.
"""
from __future__ import annotations

import datetime
import json
import os
import sys


class Progress:
    """Silent; the base of the other reporters."""

    def __init__(self):
        self.current = ("decode", 0, 0)
        self.log_path = None
        self.reader_gone = False        # the program reading the lines has exited: the run stops

    def start(self, total: int, message: str, out: str) -> None:
        self.current = ("decode", 0, total)
        self.log(f"start: {message}")

    def stage(self, stage: str, done: int, total: int, message: str = "") -> None:
        self.current = (stage, done, total)
        self.log(f"{stage} {done}/{total}: {message}")

    def log(self, text: str) -> bool:
        """Append a line to the job's log, once its folder exists (never creates folders)."""
        if not self.log_path or not os.path.isdir(os.path.dirname(self.log_path)):
            return False
        stamp = datetime.datetime.now().isoformat(timespec="seconds")
        try:
            # UTF-8 whatever the locale (Windows' is not); a path's undecodable bytes as they were
            with open(self.log_path, "a", encoding="utf-8", errors="surrogateescape") as f:
                f.write(f"{stamp} {text.rstrip()}\n")
        except (OSError, UnicodeError):  # a full disk: the run reports on stderr all the same
            return False
        return True

    def warn(self, message: str) -> None:
        """One line the user should see at once (the run goes on): logged and on stderr."""
        self.log(f"warning: {message}")
        tell(f"dynasketch: warning: {message}")

    def finished(self, summary: dict) -> None:
        pass

    def failed(self, message: str, log: str | None) -> None:
        tell(f"dynasketch: error: {message}")

    def interrupted(self, message: str) -> None:
        tell(f"dynasketch: {message}")

    def close(self) -> None:
        pass


def frames_text(count: int) -> str:
    return f"{count} frame" if count == 1 else f"{count} frames"


def tell(text: str, stream=None) -> bool:
    """Print a line for the user; False when nobody reads the stream any more (the program
    reading it, e.g. Blender, has exited), which is then pointed at the null device so that
    neither later lines nor the exit's flush fail."""
    stream = stream or sys.stderr
    try:
        stream.write(text + "\n")
        stream.flush()
        return True
    except (BrokenPipeError, ConnectionResetError, ValueError):
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
        except (OSError, ValueError):
            pass
        return False


class JsonProgress(Progress):
    def __init__(self):
        super().__init__()
        # Bound now: a library that sends its prints to stderr (contextlib.redirect_stdout,
        # process-wide) in another thread must not take the progress lines with them.
        self.stdout = sys.stdout

    def emit(self, event: str, message: str, **extra) -> None:
        """One JSON line: ``event`` with the current stage, done and total."""
        stage, done, total = self.current
        line = {"event": event, "stage": stage, "done": done, "total": total, "message": message, **extra}
        if not self.reader_gone and not tell(json.dumps(line), self.stdout):
            self.reader_gone = True
            self.log("the program reading the progress lines has exited; stopping")

    def start(self, total, message, out):
        super().start(total, message, out)
        self.emit("start", message, out=out, log=self.log_path)

    def stage(self, stage, done, total, message=""):
        super().stage(stage, done, total, message)
        self.emit("progress", message)

    def warn(self, message):
        """The ``warning`` event (docs/CONTRACT.md), logged."""
        self.log(f"warning: {message}")
        self.emit("warning", message)

    def finished(self, summary):
        stage, done, total = self.current
        self.current = ("export", summary["frames"], max(total, summary["frames"]))
        self.emit("done", frames_text(summary["frames"]), **summary)

    def failed(self, message, log):
        super().failed(message, log)
        self.emit("error", message, log=log)

    def interrupted(self, message):
        super().interrupted(message)
        self.emit("interrupted", message)


class BarProgress(Progress):
    """A tqdm bar over the frames, its description the current stage."""

    def __init__(self):
        super().__init__()
        self.bar = None

    def start(self, total, message, out):
        from tqdm import tqdm

        super().start(total, message, out)
        print(message, file=sys.stderr, flush=True)
        self.bar = tqdm(total=total, unit="frame", file=sys.stderr, dynamic_ncols=True)

    def stage(self, stage, done, total, message=""):
        super().stage(stage, done, total, message)
        if self.bar is not None:
            self.bar.set_description(stage)
            self.bar.set_postfix_str(message[:60], refresh=False)
            self.bar.update(done - self.bar.n)

    def warn(self, message):
        if self.bar is None:
            return super().warn(message)
        self.log(f"warning: {message}")
        self.bar.write(f"dynasketch: warning: {message}", file=sys.stderr)

    def finished(self, summary):
        self.close()
        print(f"wrote {summary['sketch']} ({frames_text(summary['frames'])})", file=sys.stderr, flush=True)

    def failed(self, message, log):
        self.close()
        super().failed(message, log)

    def interrupted(self, message):
        self.close()
        super().interrupted(message)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def make_progress(kind: str) -> Progress:
    if kind == "json":
        return JsonProgress()
    if kind == "bar":
        return BarProgress()
    return Progress()
