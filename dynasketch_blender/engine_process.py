"""Running the engine (the ``dynasketch`` command) in its own process.

Blender never imports the engine or torch: ``EngineProcess`` starts the command, reads its
``--progress json`` lines on a thread, and stops it with SIGTERM (the engine then keeps its
finished frames and exits with code 130). Standard library only.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading

ADDON_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class EngineNotFound(Exception):
    pass


def find_engine(interpreter: str = "") -> list[str]:
    """The command prefix that runs the engine, e.g. ``[python, "-m", "engine"]``.

    In order: the interpreter set in the preferences, ``$DYNASKETCH_PYTHON``, a
    ``dynasketch`` on PATH, the project's ``.venv`` beside the add-on's source folder.
    """
    candidates = [interpreter, os.environ.get("DYNASKETCH_PYTHON", "")]
    for python in candidates:
        if python:
            python = os.path.abspath(os.path.expanduser(python))
            if not os.path.isfile(python):
                raise EngineNotFound(f"engine interpreter not found: {python} (fix it in the add-on preferences)")
            return [python, "-m", "engine"]
    command = shutil.which("dynasketch")
    if command:
        return [command]
    for venv_python in (os.path.join(ADDON_SOURCE_ROOT, ".venv", "bin", "python"),
                        os.path.join(ADDON_SOURCE_ROOT, ".venv", "Scripts", "python.exe")):
        if os.path.isfile(venv_python):
            return [venv_python, "-m", "engine"]
    raise EngineNotFound("no DynaSketch engine found: set its Python interpreter in "
                         "Preferences > Add-ons > DynaSketch (the .venv/bin/python of the engine)")


class EngineProcess:
    """One run of the engine; ``events()`` drains the JSON lines read so far."""

    def __init__(self, command: list[str], env: dict | None = None):
        self.command = command
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        self.other_output: list[str] = []

    def start(self) -> None:
        kwargs = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            kwargs["start_new_session"] = True       # Ctrl-C in Blender's terminal is ours alone
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL, text=True, bufsize=1, env=self.env,
                                        **kwargs)
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                self._lines.put(json.loads(line))
            except ValueError:
                self.other_output.append(line)

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr.append(line.rstrip())
            del self.stderr[:-200]

    def events(self) -> list[dict]:
        out = []
        while True:
            try:
                out.append(self._lines.get_nowait())
            except queue.Empty:
                return out

    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, grace: float = 1.0) -> int | None:
        """SIGTERM, then kill after ``grace`` seconds; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.returncode()
        try:
            self.process.send_signal(signal.SIGTERM if sys.platform != "win32" else signal.CTRL_BREAK_EVENT)
            return self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def last_error(self) -> str:
        """The engine's own one-line error, if it printed one."""
        for line in reversed(self.stderr):
            if line.startswith("dynasketch: "):
                return line[len("dynasketch: "):].removeprefix("error: ")
        return self.stderr[-1] if self.stderr else ""


def run_doctor(prefix: list[str], timeout: float = 120.0) -> str:
    """What ``dynasketch doctor`` says, or why it could not run."""
    try:
        done = subprocess.run(prefix + ["doctor"], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the engine did not run: {exc}"
    text = done.stdout.strip() or done.stderr.strip()
    return text if done.returncode == 0 else f"the engine failed (exit {done.returncode}): {text[-500:]}"
