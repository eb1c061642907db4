"""Install Engine: the engine's own environment in a per-user folder, made with uv.

Pure functions decide everything (where the folder is, which PyTorch build fits this
platform, machine and driver, the exact uv commands); ``InstallJob`` runs those commands as
step functions, like ``engine_process.EngineJob``, so the modal operator and the tests drive it
the same way. Standard library only: Blender's Python never imports the engine or torch.

The folder (``engine_home``) holds ``env/`` (the engine's environment), ``python/`` (uv's
managed Python), ``cache/`` (uv's cache) and ``install.log``. A new environment is made as
``env.new/`` and replaces ``env/`` only after its smoke test (``dynasketch doctor``) passes;
a cancelled or failed install removes ``env.new/`` and leaves ``env/`` as it was.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from .engine_process import CANCELLED, DONE, FAILED, RUNNING, engine_environment

PYTHON_VERSION = "3.11"
MARKER = "dynasketch-install.json"        # in env/: what was installed, for a second install's no-op
GB = 1024 ** 3
MASKING_MODEL = "isnet-general-use"       # the masking network Install Engine fetches last (docs/MODELS.md)


class InstallRefused(Exception):
    """This machine cannot get an engine (one line saying why and what to do)."""


# -- where ---------------------------------------------------------------------------------
def engine_home(system: str = sys.platform, environ=os.environ, home: str | None = None) -> str:
    """The per-user folder that holds the engine, independent of Blender's version:
    ``%LOCALAPPDATA%\\DynaSketch``, ``~/Library/Application Support/DynaSketch``, or
    ``${XDG_DATA_HOME:-~/.local/share}/dynasketch``."""
    home = home or os.path.expanduser("~")
    if system == "win32":
        base = environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        return os.path.join(base, "DynaSketch")
    if system == "darwin":
        return os.path.join(home, "Library", "Application Support", "DynaSketch")
    return os.path.join(environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share"), "dynasketch")


def env_python(env_dir: str, system: str = sys.platform) -> str:
    """The interpreter of an environment uv made."""
    if system == "win32":
        return os.path.join(env_dir, "Scripts", "python.exe")
    return os.path.join(env_dir, "bin", "python")


def installed_python(home: str, system: str = sys.platform) -> str:
    """The installed engine's interpreter under ``home``, or "" when there is none."""
    python = env_python(os.path.join(home, "env"), system)
    return python if os.path.isfile(python) else ""


# -- which PyTorch -------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """What an install gets: ``backend`` (cuda, cpu or mps), the constraints file for this
    platform and backend, and uv's ``--torch-backend`` (None: the default index, PyPI)."""
    backend: str
    constraints: str
    torch_backend: str | None
    label: str


BACKENDS = ("auto", "cuda", "cpu", "mps")


def nvidia_driver(system: str = sys.platform, which=shutil.which, exists=os.path.exists) -> bool:
    """An NVIDIA driver here: ``nvidia-smi`` on PATH or in its usual place, or the kernel
    driver's version file (Linux)."""
    if which("nvidia-smi"):
        return True
    if system == "win32":
        root = os.environ.get("SystemRoot", r"C:\Windows")
        return exists(os.path.join(root, "System32", "nvidia-smi.exe"))
    return system.startswith("linux") and exists("/proc/driver/nvidia/version")


def choose_target(system: str, machine: str, nvidia: bool, override: str = "auto") -> Target:
    """The PyTorch build for this platform (``sys.platform``), machine (``platform.machine()``)
    and driver, or the override; a pure function. An Intel Mac is refused: current PyTorch
    has no build for it."""
    machine = machine.lower()
    arm = machine in ("arm64", "aarch64")
    if override not in BACKENDS:
        raise InstallRefused(f"unknown compute backend {override!r}: choose one of {', '.join(BACKENDS)}")
    if system == "darwin":
        if not arm:
            raise InstallRefused("an Intel Mac cannot run the engine: current PyTorch is built for Apple "
                                 "silicon Macs only")
        if override in ("auto", "mps"):
            return Target("mps", "macos-arm64.txt", None, "Apple GPU (MPS)")
        if override == "cpu":
            return Target("cpu", "macos-arm64.txt", None, "CPU")
        raise InstallRefused("a Mac has no NVIDIA GPU: choose Auto or CPU")
    if override == "mps":
        raise InstallRefused("Apple GPU (MPS) is only for Apple silicon Macs: choose Auto, CUDA or CPU")
    platform_name = "windows" if system == "win32" else "linux"
    if not (machine in ("x86_64", "amd64") or (arm and platform_name == "linux")):
        raise InstallRefused(f"no PyTorch build for {platform_name} on {machine}")
    cuda = override == "cuda" or (override == "auto" and nvidia and not arm)
    if cuda and arm:
        raise InstallRefused("CUDA builds of PyTorch for Linux on ARM are not supported here: choose CPU")
    if platform_name == "windows":       # PyPI's Windows build is CPU only; CUDA from PyTorch's index
        return (Target("cuda", "windows-cuda.txt", "cu130", "NVIDIA GPU (CUDA 13)") if cuda
                else Target("cpu", "windows-cpu.txt", None, "CPU"))
    return (Target("cuda", "linux-cuda.txt", None, "NVIDIA GPU (CUDA 13)") if cuda     # PyPI's is CUDA
            else Target("cpu", "linux-cpu.txt", "cpu", "CPU"))


# -- the steps -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    name: str                        # shown to the user
    argv: tuple = ()                 # a command, or () for work done here
    share: float = 0.0               # of the progress bar
    optional: bool = False           # its failure is told, not an install's failure (the engine works without it)


@dataclass(frozen=True)
class Plan:
    """Everything an install does, computed up front (``plan_install``)."""
    home: str
    target: Target
    wheel: str
    constraints: str
    steps: tuple
    env: dict = field(default_factory=dict)     # for uv
    needed_bytes: int = 0


def plan_install(uv: str, home: str, target: Target, wheel: str, constraints_dir: str,
                 python: str = PYTHON_VERSION, wheelhouse: str = "", system: str = sys.platform,
                 masking_model: bool = False, model_dir: str = "") -> Plan:
    """The install as commands: uv's managed Python (or ``python``, an interpreter's path),
    a new environment ``env.new``, the engine wheel with its constraints and PyTorch build,
    and the smoke test. ``wheelhouse``: install offline from that folder of wheels only.
    ``masking_model``: once the engine is in place, the installed engine downloads the
    masking network into ``model_dir`` (the Model Folder; "": the engine's default), an
    optional last step."""
    new = os.path.join(home, "env.new")
    offline = ("--offline", "--no-index", "--find-links", wheelhouse) if wheelhouse else ()
    constraints = os.path.join(constraints_dir, target.constraints)
    steps = [Step("Checking space and permissions", share=0.01)]
    managed = not os.path.isabs(python)
    if managed:
        steps.append(Step(f"Getting Python {python}", (uv, "python", "install", python) + offline[:1], 0.09))
    steps.append(Step("Making the environment", (uv, "venv", "--python", python, "--no-project", new)
                      + offline[:1], 0.05))
    # on a GPU the CLIP backends come too (the engine's `neural` extra): they are what CUDA is for
    path_type = pathlib.PureWindowsPath if system == "win32" else pathlib.PurePosixPath
    wanted = f"dynasketch[neural] @ {path_type(wheel).as_uri()}" if target.backend == "cuda" else wheel
    packages = (uv, "pip", "install", "--python", env_python(new, system), wanted, "--constraints", constraints)
    if target.torch_backend and not wheelhouse:
        packages += ("--torch-backend", target.torch_backend)
    steps.append(Step("Installing the engine and PyTorch", packages + offline, 0.67 if masking_model else 0.75))
    steps.append(Step("Testing the engine", (env_python(new, system), "-m", "engine", "doctor"), 0.08))
    steps.append(Step("Finishing", share=0.02))
    if masking_model:
        installed = env_python(os.path.join(home, "env"), system)
        steps.append(Step("Getting the masking model", (installed, "-m", "engine", "models", "download",
                                                        MASKING_MODEL, "--progress", "json"), 0.08, optional=True))
    env = {"UV_CACHE_DIR": os.path.join(home, "cache"), "UV_PYTHON_INSTALL_DIR": os.path.join(home, "python"),
           "UV_PYTHON_PREFERENCE": "only-managed" if managed else "only-system",
           "UV_NO_PROGRESS": "1", "UV_LINK_MODE": "copy" if system == "win32" else "hardlink"}
    if model_dir:
        env["DYNASKETCH_HOME"] = model_dir         # the engine's Model Folder (its smoke test reads it too)
    needed = (6 if target.backend == "cuda" else 2) * GB
    return Plan(home, target, wheel, constraints, tuple(steps), env, needed)


def marker_for(plan: Plan) -> dict:
    """What a finished install records, and a second install compares."""
    digest = hashlib.sha256()
    for path in (plan.wheel, plan.constraints):
        with open(path, "rb") as f:
            digest.update(f.read())
    return {"backend": plan.target.backend, "files": digest.hexdigest()}


# -- what went wrong, in one line ----------------------------------------------------------
KNOWN_FAILURES = (
    (r"No space left on device|os error 28|ENOSPC|disk quota exceeded",
     "the disk is full: free some space (PyTorch needs a few GB) or choose another Engine Folder, then "
     "Install Engine again"),
    (r"certificate|CERTIFICATE_VERIFY_FAILED|UnknownIssuer|invalid peer certificate",
     "a download's certificate was refused (a proxy that inspects traffic?): set SSL_CERT_FILE to your "
     "proxy's certificate, or UV_NATIVE_TLS=1 to use the system's certificates, then try again"),
    (r"os error 206|filename or extension is too long|path too long|MAX_PATH",
     "a path is too long for Windows: turn on long paths (LongPathsEnabled) or choose a shorter Engine "
     "Folder, then try again"),
    (r"os error 32|being used by another process|os error 5\b|Access is denied",
     "a file was locked (an antivirus scanning it?): allow the Engine Folder in the antivirus, or try again "
     "in a minute"),
    (r"dns error|failed to lookup address|Could not connect|Connection refused|Network is unreachable|"
     r"timed out|tcp connect error|error sending request|offline mode|Failed to download",
     "no network: connect to the internet (or set HTTPS_PROXY for a proxy) and Install Engine again"),
    (r"Permission denied|os error 13|Read-only file system|os error 30",
     "cannot write to the Engine Folder: choose a folder you can write to in the preferences"),
)


def explain(output: str) -> str:
    """One line for a known failure in uv's (or the smoke test's) output, or ""."""
    for pattern, line in KNOWN_FAILURES:
        if re.search(pattern, output, re.I):
            return line
    return ""


def check_folder(home: str, needed: int) -> str:
    """Why an install cannot go into ``home`` (not writable, too little space), or ""."""
    try:
        os.makedirs(home, exist_ok=True)
        probe = os.path.join(home, ".write-test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as exc:
        if explain(str(exc)).startswith("the disk is full"):
            return explain(str(exc))
        return f"cannot write to {home} ({exc.strerror}): choose a folder you can write to as Engine Folder"
    free = shutil.disk_usage(home).free
    if free < needed:
        return (f"the engine needs about {needed / GB:.0f} GB free in {home}, which has {free / GB:.1f} GB: "
                "free some space or choose another Engine Folder")
    return ""


def uv_binary() -> str:
    """uv's executable from the ``uv`` wheel (the add-on's manifest lists it), with its run bit
    set: Blender's wheel installer drops it. Raises InstallRefused when uv is not there."""
    try:
        import uv
        path = uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        raise InstallRefused("uv is not installed with the add-on: reinstall the DynaSketch extension zip") from None
    if os.name != "nt" and not os.access(path, os.X_OK):
        os.chmod(path, os.stat(path).st_mode | 0o755)
    return path


def remove_tree(path: str) -> None:
    """Remove a folder; a read-only file (Windows) is made writable first."""
    def writable(func, target, _exc):
        os.chmod(target, 0o700)
        func(target)

    if os.path.isdir(path):
        shutil.rmtree(path, onerror=writable)


def group_alive(pgid: int) -> bool:
    """Whether a process of the group ``pgid`` still runs. Members that have exited and wait
    to be reaped (zombies, which an init may reap a while later) do not count: where /proc
    lists the group's members (Linux), only those not in state Z do."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:              # a member another user owns: still there
        return True
    if not os.path.isdir("/proc"):
        return True
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue                     # gone meanwhile
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def kill_tree(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a process and everything it started (uv's workers, a compiler it ran), and wait
    (up to ``timeout`` seconds) until none of them runs, so that the files they held can be
    removed."""
    if sys.platform == "win32":
        if process.poll() is None:
            subprocess.run(["taskkill", "/T", "/F", "/PID", str(process.pid)], capture_output=True)
        process.wait()
        return
    # its own session: the whole group (its leader not reaped yet, or members left: the id is theirs)
    if process.returncode is None or group_alive(process.pid):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()
    deadline = time.monotonic() + timeout
    while group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.02)


SIZE = re.compile(r"Downloading (\S+) \(([\d.]+)\s*(KiB|MiB|GiB)\)")
UNITS = {"KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}


class InstallJob:
    """One install, as step functions: ``start()``, then ``step()`` until it is not RUNNING;
    ``cancel()`` at any time (the running command's whole process tree stops and ``env.new``
    is removed). ``message`` is the current step and ``last_line`` uv's last output line;
    ``report()`` is the text Copy Report copies."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.state = RUNNING
        self.progress = 0.0
        self.message = "starting"
        self.last_line = ""
        self.error = ""
        self.downloaded = 0                  # bytes uv said it is downloading
        self.warning = ""                    # an optional step that failed: one line (the install stands)
        self._step_error = ""                # the engine's own error line in the running step's output
        self.log_path = os.path.join(plan.home, "install.log")
        self._index = -1
        self._process: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()
        self._output: list[str] = []
        self._log = None
        self.started = time.time()

    # -- driving ---------------------------------------------------------------------------
    def start(self) -> str:
        why = check_folder(self.plan.home, self.plan.needed_bytes)
        if why:
            return self._fail(why, cleanup=False)
        if not os.path.isfile(self.plan.wheel):
            return self._fail(f"the engine wheel is missing ({self.plan.wheel}): reinstall the DynaSketch "
                              "extension zip", cleanup=False)
        if not os.path.isfile(self.plan.constraints):
            return self._fail(f"the constraints file is missing ({self.plan.constraints}): reinstall the "
                              "DynaSketch extension zip", cleanup=False)
        self._log = open(self.log_path, "w", encoding="utf-8")
        self._write(f"Install Engine into {self.plan.home}: {self.plan.target.label}")
        if self._already_installed():
            self.state, self.progress = DONE, 1.0
            self.message = f"The engine is already installed ({self.plan.target.label}); nothing to do"
            self._write(self.message)
            self._close()
            return self.state
        remove_tree(os.path.join(self.plan.home, "env.new"))       # what a killed install left
        self._next()
        return self.state

    def step(self) -> str:
        """Read what the running command printed; start the next step when it ends."""
        if self.state != RUNNING or self._process is None:
            return self.state
        self._drain()
        code = self._process.poll()
        if code is None:
            return RUNNING
        self._drain()
        if code != 0:
            output = "\n".join(self._output[-60:])
            step = self.plan.steps[self._index]
            line = (self._step_error or explain(output)
                    or f"{step.name.lower()} failed (exit code {code}): {self.last_line or 'no output'}")
            if not step.optional:
                return self._fail(line)
            self.warning = line
            self._write(f"{step.name} failed: {line}")
        self._next()
        return self.state

    def cancel(self) -> None:
        if self.state != RUNNING:
            return
        if self._process is not None:
            kill_tree(self._process)
        remove_tree(os.path.join(self.plan.home, "env.new"))
        if self.plan.steps[self._index].optional:       # after the engine was put in place
            self.message = (f"Engine installed ({self.plan.target.label}) in {self.plan.home}; the masking model's "
                            "download was stopped (Download Models resumes it)")
        else:
            self.message = "Install cancelled; the engine that was there is unchanged"
        self.state = CANCELLED
        self._write(self.message)
        self._close()

    def report(self) -> str:
        """What happened, to paste into a bug report."""
        lines = [f"DynaSketch Install Engine: {self.state}", f"folder: {self.plan.home}",
                 f"target: {self.plan.target.label} ({self.plan.target.constraints})",
                 f"platform: {sys.platform}, Python {sys.version.split()[0]}",
                 f"step: {self.message}", f"error: {self.error or '-'}", f"warning: {self.warning or '-'}",
                 f"log: {self.log_path}", ""]
        return "\n".join(lines + self._output[-40:])

    # -- the steps -------------------------------------------------------------------------
    def _next(self) -> None:
        while True:
            self._index += 1
            self.progress = sum(s.share for s in self.plan.steps[:self._index])
            if self._index >= len(self.plan.steps):
                return self._finish()
            step = self.plan.steps[self._index]
            self.message, self.last_line, self._step_error = step.name, "", ""
            self._write(f"== {step.name}")
            if step.argv:
                return self._run(step)
            if step.name == "Finishing":
                return self._swap()

    def _run(self, step: Step) -> None:
        self._write("$ " + " ".join(step.argv))
        kwargs = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if sys.platform == "win32" \
            else {"start_new_session": True}
        env = engine_environment(self.plan.env)      # none of Blender's Python settings
        try:
            self._process = subprocess.Popen(step.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, text=True, encoding="utf-8",
                                             errors="replace", env=env, cwd=self.plan.home, **kwargs)
        except OSError as exc:
            self._fail(f"{step.name.lower()} did not start: {exc.strerror or exc}")
            return
        threading.Thread(target=self._read, args=(self._process,), daemon=True).start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self._lines.put(line.rstrip())
        process.stdout.close()

    def _drain(self) -> None:
        share = self.plan.steps[self._index].share
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if not line:
                continue
            self.last_line = line
            self._output.append(line)
            del self._output[:-400]
            self._write(line)
            if line.startswith("{") and self._read_event(line, share):
                continue
            size = SIZE.search(line)
            if size:
                self.downloaded += int(float(size.group(2)) * UNITS[size.group(3)])
                self.message = f"{self.plan.steps[self._index].name} ({self.downloaded / GB:.2f} GB to download)"
            done = sum(s.share for s in self.plan.steps[:self._index])
            self.progress = max(self.progress, min(done + share * 0.95, self.progress + share * 0.02))

    def _read_event(self, line: str, share: float) -> bool:
        """A ``--progress json`` line of the engine (docs/CONTRACT.md: ``models download``), shown
        as the step's progress and message; False if the line is not one."""
        try:
            event = json.loads(line)
        except ValueError:
            return False
        if not isinstance(event, dict) or "event" not in event:
            return False
        kind, text = event.get("event"), str(event.get("message", ""))
        step = self.plan.steps[self._index].name
        if kind == "error":
            self._step_error = text.replace("DYNASKETCH_HOME", "the Model Folder (preferences)")
        elif kind == "progress":
            done, total = event.get("done") or 0, event.get("total") or 0
            size = f": {done / 1e6:.0f} of {total / 1e6:.0f} MB" if total else ""
            text = f"{text}{size}"
            fraction = (((event.get("file") or 0) + (min(1.0, done / total) if total else 0.0))
                        / (event.get("files") or 1))
            before = sum(s.share for s in self.plan.steps[:self._index])
            self.progress = max(self.progress, before + share * fraction)
            self.message = f"{step} ({text})" if text else step
        self.last_line = text or self.last_line
        return True

    def _already_installed(self) -> bool:
        marker = os.path.join(self.plan.home, "env", MARKER)
        try:
            with open(marker, encoding="utf-8") as f:
                return json.load(f) == marker_for(self.plan) and bool(installed_python(self.plan.home))
        except (OSError, ValueError):
            return False

    def _swap(self) -> None:
        """The smoke test passed: env.new becomes env (the old one removed only now)."""
        home = self.plan.home
        new, current, old = (os.path.join(home, n) for n in ("env.new", "env", "env.old"))
        try:
            with open(os.path.join(new, MARKER), "w", encoding="utf-8") as f:
                json.dump(marker_for(self.plan), f)
            remove_tree(old)
            if os.path.isdir(current):
                os.replace(current, old)              # (Windows: fails while the old engine runs)
            os.replace(new, current)
        except OSError as exc:
            if not os.path.isdir(current) and os.path.isdir(old):
                os.replace(old, current)              # the old engine back where it was
            self._fail(explain(str(exc)) or f"cannot put the new engine in place ({exc.strerror or exc}): "
                       "close anything using the engine (a running sketch) and Install Engine again")
            return
        remove_tree(old)
        self._next()

    def _finish(self) -> None:
        self.state, self.progress = DONE, 1.0
        self.message = f"Engine installed ({self.plan.target.label}) in {self.plan.home}"
        if self.warning:                    # the engine works without it: said in the same line
            self.message += (f"; the masking model was not downloaded: {self.warning} "
                             "(Download Models gets it later)")
        self._write(self.message)
        self._close()

    def _fail(self, reason: str, cleanup: bool = True) -> str:
        self.state, self.error, self.message = FAILED, reason, f"Install failed: {reason}"
        if cleanup:
            remove_tree(os.path.join(self.plan.home, "env.new"))
        self._write(self.message)
        self._close()
        return self.state

    def _write(self, line: str) -> None:
        if self._log is not None:
            self._log.write(line + "\n")
            self._log.flush()

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def remove_engine(home: str) -> str:
    """Remove the installed engine (its environment, managed Python and cache); the message."""
    if not os.path.isdir(os.path.join(home, "env")):
        return f"No engine is installed in {home}"
    for name in ("env", "env.new", "env.old", "python", "cache"):
        remove_tree(os.path.join(home, name))
    return f"Removed the engine from {home}"
