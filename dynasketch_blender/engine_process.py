"""Running the engine (the ``dynasketch`` command) in its own process.

Blender never imports the engine or torch: ``EngineProcess`` starts the command, reads its
``--progress json`` lines on a thread, and stops it with SIGTERM (the engine then keeps its
finished frames and exits with code 130). Standard library only.
"""
from __future__ import annotations

import atexit
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass

# The folder holding ``dynasketch_blender/`` when the add-on runs from the project's source tree.
ADDON_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Blender's own Python settings (and a virtual environment Blender was started from) must not
# leak into the engine's interpreter.
BLENDER_ONLY_VARIABLES = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONNOUSERSITE", "VIRTUAL_ENV",
                          "__PYVENV_LAUNCHER__")


class EngineNotFound(Exception):
    pass


@dataclass(frozen=True)
class EngineCommand:
    """How to run the engine: ``prefix + ["sketch", ...]``, and where it was found."""

    prefix: tuple
    found_by: str               # "preferences", "$DYNASKETCH_PYTHON", "Install Engine", "PATH", "project .venv"
    cwd: str = ""

    def __str__(self) -> str:
        return f"{' '.join(self.prefix)} (from {self.found_by})"


def shebang_interpreter(script: str) -> str:
    """The absolute interpreter on a script's ``#!`` line, or "" (``/usr/bin/env ...`` too)."""
    try:
        with open(script, "rb") as f:
            first = f.readline(512)
    except OSError:
        return ""
    if not first.startswith(b"#!"):
        return ""
    words = first[2:].decode("utf-8", "replace").split()
    if not words or os.path.basename(words[0]) == "env":
        return ""
    return words[0] if os.path.isabs(words[0]) and os.path.isfile(words[0]) else ""


def _interpreter(path: str, found_by: str) -> EngineCommand:
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(path):
        where = "the add-on preferences" if found_by == "preferences" else found_by
        raise EngineNotFound(f"engine interpreter not found: {path} (fix it in {where})")
    return EngineCommand((path, "-m", "engine"), found_by)


def find_engine(interpreter: str = "", installed: str = "") -> EngineCommand:
    """How to run the engine, in this order: the interpreter set in the preferences,
    ``$DYNASKETCH_PYTHON``, the engine Install Engine made (``installed``: its interpreter,
    ``engine_install.installed_python``), a ``dynasketch`` command on PATH (run with its
    shebang interpreter), the project's ``.venv`` beside the add-on's source folder."""
    if interpreter:
        return _interpreter(interpreter, "preferences")
    if os.environ.get("DYNASKETCH_PYTHON"):
        return _interpreter(os.environ["DYNASKETCH_PYTHON"], "$DYNASKETCH_PYTHON")
    if installed and os.path.isfile(installed):
        return EngineCommand((installed, "-m", "engine"), "Install Engine")
    command = shutil.which("dynasketch")
    if command:
        python = shebang_interpreter(command)
        prefix = (python, os.path.abspath(command)) if python else (os.path.abspath(command),)
        return EngineCommand(prefix, "PATH")
    for venv_python in (os.path.join(ADDON_SOURCE_ROOT, ".venv", "bin", "python"),
                        os.path.join(ADDON_SOURCE_ROOT, ".venv", "Scripts", "python.exe")):
        if os.path.isfile(venv_python) and os.path.isdir(os.path.join(ADDON_SOURCE_ROOT, "engine")):
            return EngineCommand((venv_python, "-m", "engine"), "project .venv", ADDON_SOURCE_ROOT)
    raise EngineNotFound("no DynaSketch engine found: press Install Engine in Preferences > Add-ons > "
                         "DynaSketch (or set Engine Python there, or put dynasketch on PATH)")


def engine_environment(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in BLENDER_ONLY_VARIABLES}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


_running: set = set()           # engine processes started and not yet seen to exit


def stop_all() -> None:
    """Stop every engine still running (Blender quits, or the add-on is disabled)."""
    for engine in list(_running):
        engine.stop(grace=1.0)


atexit.register(stop_all)


class EngineProcess:
    """One run of the engine; ``events()`` drains the JSON lines read so far."""

    def __init__(self, command: list[str], env: dict | None = None, cwd: str = ""):
        self.command = list(command)
        self.env = engine_environment(env)
        self.cwd = cwd or tempfile.gettempdir()
        self.process: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()
        self._readers: list[threading.Thread] = []
        self.stderr: list[str] = []
        self.other_output: list[str] = []

    def start(self) -> None:
        kwargs = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            kwargs["start_new_session"] = True       # Ctrl-C in Blender's terminal is ours alone
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL, text=True, encoding="utf-8",
                                        errors="replace", bufsize=1, env=self.env, cwd=self.cwd, **kwargs)
        _running.add(self)
        self._readers = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if isinstance(event, dict):
                self._lines.put(event)
            else:
                self.other_output.append(line)
                del self.other_output[:-200]

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

    def drain(self) -> tuple[list[dict], int | None]:
        """The JSON lines read since the last call and the exit code (None while it runs);
        once it has exited, every line up to the end of its output."""
        events = self.events()
        code = self.returncode()
        if code is not None:
            self.finish_reading()
            events += self.events()
        return events, code

    def returncode(self) -> int | None:
        code = None if self.process is None else self.process.poll()
        if code is not None:
            _running.discard(self)
        return code

    def finish_reading(self, timeout: float = 2.0) -> None:
        """After the exit: wait for the readers to reach the end of the pipes, then close the
        pipes (a pipe whose reader is still at it is left to the reader)."""
        for reader in self._readers:
            reader.join(timeout)
        for reader, pipe in zip(self._readers, (self.process.stdout, self.process.stderr)):
            if not reader.is_alive():
                pipe.close()

    def stop(self, grace: float = 1.0) -> int | None:
        """SIGTERM, then kill after ``grace`` seconds; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.returncode()
        try:
            self.process.send_signal(signal.SIGTERM if sys.platform != "win32" else signal.CTRL_BREAK_EVENT)
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.finish_reading(timeout=0.1)
        return self.returncode()

    def last_error(self) -> str:
        """The engine's own one-line error, if it printed one."""
        for line in reversed(self.stderr):
            if line.startswith("dynasketch: "):
                return line[len("dynasketch: "):].removeprefix("error: ")
        for line in reversed(self.stderr):
            if line.strip():
                return line.strip()
        return ""


RUNNING, DONE, FAILED, CANCELLED = "RUNNING", "DONE", "FAILED", "CANCELLED"


class EngineJob:
    """One engine command as step functions, so a modal operator (and tests, where modal
    operators do not run) drive it the same way: ``start()``, then ``step()`` until it is not
    RUNNING; ``cancel()`` at any time. Subclasses read the JSON lines (``_read``)."""

    cancelled_message = "cancelled"

    def __init__(self, command: list[str], env: dict | None = None, cwd: str = ""):
        self.command = list(command)
        self.process = EngineProcess(self.command, env, cwd)
        self.state = RUNNING
        self.progress = 0.0
        self.message = "starting the engine"
        self.error = ""
        self.engine_error = ""              # the engine's own "error" line, if it sent one

    def start(self) -> str:
        try:
            self.process.start()
        except OSError as exc:
            self._fail(f"the engine did not start: {exc}")
        return self.state

    def step(self) -> str:
        """Read what the engine said since the last step; returns the job's state."""
        if self.state != RUNNING:
            return self.state
        events, code = self.process.drain()
        self._read(events)
        if code is None:
            return RUNNING
        if code == 0:
            self.state, self.progress = DONE, 1.0
            self._succeeded()
        elif code == 130:
            self.state, self.message = CANCELLED, self.cancelled_message
        elif code < 0:
            self._fail(f"the engine crashed (signal {-code})"
                       + (f": {self.process.last_error()}" if self.process.last_error() else ""))
        else:
            self._fail(self.engine_error or self.process.last_error() or f"the engine stopped with exit code {code}")
        return self.state

    def cancel(self) -> None:
        if self.state == RUNNING:
            self.process.stop(grace=1.0)
            self.state, self.message = CANCELLED, self.cancelled_message

    def _read(self, events: list[dict]) -> None:
        for event in events:
            if event.get("event") == "error":
                self.engine_error = str(event.get("message", ""))

    def _succeeded(self) -> None:
        pass

    def _fail(self, reason: str) -> None:
        self.state = FAILED
        self.error = self.message = reason


def run_doctor(command: EngineCommand, model_dir: str = "", timeout: float = 120.0) -> str:
    """What ``dynasketch doctor`` says about the weights in ``model_dir`` (empty: the engine's
    default folder), or why it could not run."""
    env = engine_environment({"DYNASKETCH_HOME": model_dir} if model_dir else None)
    try:
        done = subprocess.run(list(command.prefix) + ["doctor"], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, env=env,
                              cwd=command.cwd or tempfile.gettempdir())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the engine did not run: {exc}"
    text = done.stdout.strip() or done.stderr.strip()
    return text if done.returncode == 0 else f"the engine failed (exit {done.returncode}): {text[-500:]}"
