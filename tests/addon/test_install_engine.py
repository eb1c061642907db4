"""Install Engine, offline on Linux: the backend choice for every platform, machine and driver
(against the exact uv command), the whole install with real uv from a local wheel folder
(``.venv/wheelhouse``, made by scripts/setup.sh) into a folder of the test's own, a sketch
through bpy with the installed engine, cancel, rollback, a second install, and the one-line
failures. uv's managed Python cannot be had offline here, so the install uses this machine's
Python 3.11 (``DYNASKETCH_INSTALL_PYTHON``); the managed-Python command is checked in the
pure tests. Windows and macOS paths are checked only as pure functions."""
import dataclasses
import os
import shutil
import stat
import subprocess
import sys
import time
import zipfile

import pytest
from model_server import serving

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WHEELHOUSE = os.path.join(ROOT, ".venv", "wheelhouse")

from dynasketch_blender import engine_install as E  # noqa: E402


def machine_python() -> str:
    """This machine's Python 3.11 (outside any venv), for the offline install."""
    for candidate in (getattr(sys, "_base_executable", ""), shutil.which("python3.11") or ""):
        if candidate and os.path.isfile(candidate) and "/.venv/" not in candidate:
            return candidate
    pytest.skip("no Python 3.11 outside the venv for uv to make the engine's environment from")


def need_wheelhouse() -> None:
    if not os.path.isfile(os.path.join(WHEELHOUSE, ".complete")):
        pytest.skip("no local wheel folder: scripts/setup.sh makes .venv/wheelhouse")


@pytest.fixture(scope="module")
def engine_wheel(tmp_path_factory):
    sys.path.insert(0, ROOT)
    import build_addon

    return build_addon.engine_wheel(str(tmp_path_factory.mktemp("wheel")))


def uv() -> str:
    import uv as uv_package

    return uv_package.find_uv_bin()


# -- pure functions --------------------------------------------------------------------------
@pytest.mark.parametrize("system, machine, nvidia, override, backend, constraints, torch_backend", [
    ("linux", "x86_64", True, "auto", "cuda", "linux-cuda.txt", None),        # PyPI's build is CUDA
    ("linux", "x86_64", False, "auto", "cpu", "linux-cpu.txt", "cpu"),
    ("linux", "x86_64", True, "cpu", "cpu", "linux-cpu.txt", "cpu"),           # the override wins
    ("linux", "aarch64", True, "auto", "cpu", "linux-cpu.txt", "cpu"),
    ("win32", "AMD64", True, "auto", "cuda", "windows-cuda.txt", "cu130"),    # PyTorch's CUDA index
    ("win32", "AMD64", False, "auto", "cpu", "windows-cpu.txt", None),
    ("darwin", "arm64", False, "auto", "mps", "macos-arm64.txt", None),
    ("darwin", "arm64", False, "cpu", "cpu", "macos-arm64.txt", None),
])
def test_the_pytorch_build_follows_platform_machine_and_driver(system, machine, nvidia, override, backend,
                                                               constraints, torch_backend):
    target = E.choose_target(system, machine, nvidia, override)
    assert (target.backend, target.constraints, target.torch_backend) == (backend, constraints, torch_backend)
    assert os.path.isfile(os.path.join(ROOT, "constraints", constraints))
    home = "C:\\Users\\a\\AppData\\Local\\DynaSketch" if system == "win32" else "/home/a/.local/share/dynasketch"
    wheel = "C:\\addon\\engine_wheel\\dynasketch-0.1.0-py3-none-any.whl" if system == "win32" \
        else "/addon/engine_wheel/dynasketch-0.1.0-py3-none-any.whl"
    plan = E.plan_install("uv", home, target, wheel, "/addon/constraints", system=system)
    commands = [s.argv for s in plan.steps if s.argv]
    new = os.path.join(home, "env.new")
    python = E.env_python(new, system)
    wanted = wheel if backend != "cuda" else \
        ("dynasketch[neural] @ file:///C:/addon/engine_wheel/dynasketch-0.1.0-py3-none-any.whl" if system == "win32"
         else "dynasketch[neural] @ file:///addon/engine_wheel/dynasketch-0.1.0-py3-none-any.whl")
    install = ("uv", "pip", "install", "--python", python, wanted, "--constraints",
               os.path.join("/addon/constraints", constraints)) + (("--torch-backend", torch_backend)
                                                                 if torch_backend else ())
    assert commands == [("uv", "python", "install", "3.11"),
                        ("uv", "venv", "--python", "3.11", "--no-project", new),
                        install,
                        (python, "-m", "engine", "doctor")]
    assert plan.env["UV_PYTHON_INSTALL_DIR"] == os.path.join(home, "python")
    assert plan.env["UV_PYTHON_PREFERENCE"] == "only-managed"
    assert plan.needed_bytes == (6 if backend == "cuda" else 2) * E.GB


@pytest.mark.parametrize("system, machine, override, why", [
    ("darwin", "x86_64", "auto", "an Intel Mac cannot run the engine"),
    ("darwin", "arm64", "cuda", "a Mac has no NVIDIA GPU"),
    ("linux", "x86_64", "mps", "only for Apple silicon Macs"),
    ("win32", "ARM64", "auto", "no PyTorch build for windows on arm64"),
])
def test_what_cannot_be_installed_is_refused_in_one_line(system, machine, override, why):
    with pytest.raises(E.InstallRefused, match=why) as refused:
        E.choose_target(system, machine, True, override)
    assert "\n" not in str(refused.value)


def test_an_nvidia_driver_is_found_by_nvidia_smi_or_the_kernel_driver(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'NVIDIA-SMI 580.1'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    assert E.nvidia_driver("linux", exists=lambda p: False)                 # a fake nvidia-smi on PATH
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert not E.nvidia_driver("linux", exists=lambda p: False)
    assert E.nvidia_driver("linux", exists=lambda p: p == "/proc/driver/nvidia/version")   # driver files
    assert not E.nvidia_driver("darwin", exists=lambda p: True)
    monkeypatch.setenv("SystemRoot", "C:\\Windows")
    assert E.nvidia_driver("win32", exists=lambda p: p.endswith("nvidia-smi.exe"))
    assert E.choose_target("linux", "x86_64", E.nvidia_driver("linux", exists=lambda p: True)).backend == "cuda"


def test_the_engine_folder_does_not_depend_on_blender():
    assert E.engine_home("win32", {"LOCALAPPDATA": "C:\\Users\\a\\AppData\\Local"}, "C:\\Users\\a") \
        == os.path.join("C:\\Users\\a\\AppData\\Local", "DynaSketch")
    assert E.engine_home("darwin", {}, "/Users/a") == "/Users/a/Library/Application Support/DynaSketch"
    assert E.engine_home("linux", {}, "/home/a") == "/home/a/.local/share/dynasketch"
    assert E.engine_home("linux", {"XDG_DATA_HOME": "/data"}, "/home/a") == "/data/dynasketch"
    assert E.env_python("C:\\e\\env", "win32").endswith(os.path.join("Scripts", "python.exe"))


@pytest.mark.parametrize("output, starts", [
    ("error: Failed to fetch: `https://example.invalid/simple/torch/`\n  Caused by: dns error: failed to lookup "
     "address information", "no network"),
    ("  Caused by: invalid peer certificate: UnknownIssuer", "a download's certificate was refused"),
    ("error: failed to write to file: No space left on device (os error 28)", "the disk is full"),
    ("error: failed to create directory: The filename or extension is too long. (os error 206)",
     "a path is too long for Windows"),
    ("error: failed to rename: The process cannot access the file because it is being used by another process. "
     "(os error 32)", "a file was locked"),
])
def test_known_failures_each_get_one_line_that_says_what_to_do(output, starts):
    line = E.explain(output)
    assert line.startswith(starts) and "\n" not in line


# -- the whole install, offline ----------------------------------------------------------------
def offline_plan(home, wheel, constraints_dir=os.path.join(ROOT, "constraints"), wheelhouse=WHEELHOUSE):
    return E.plan_install(uv(), str(home), E.choose_target("linux", "x86_64", False), wheel, constraints_dir,
                          python=machine_python(), wheelhouse=wheelhouse)


def run(job, timeout=600):
    job.start()
    deadline = time.time() + timeout
    while job.step() == E.RUNNING:
        assert time.time() < deadline, job.message
        time.sleep(0.1)
    return job.state


def test_install_engine_offline_then_sketch_through_blender(blender, prefs, engine_wheel, disc_movie, tmp_path,
                                                            monkeypatch):
    """Install Engine as an artist presses it (the operator, background mode), from the local
    wheel folder with this machine's Python; then Check Engine finds it and a clip is sketched
    with it; a second install does nothing; Remove Engine removes it."""
    need_wheelhouse()
    bpy = blender
    from dynasketch_blender import install_operators

    home = tmp_path / "engine home"                                      # a space in the path
    prefs.engine_folder = str(home)
    monkeypatch.setattr(install_operators, "shipped_files",
                        lambda: (engine_wheel, os.path.join(ROOT, "constraints")))
    monkeypatch.setenv("DYNASKETCH_WHEELHOUSE", WHEELHOUSE)
    monkeypatch.setenv("DYNASKETCH_INSTALL_PYTHON", machine_python())
    monkeypatch.delenv("DYNASKETCH_PYTHON")                              # the installed engine, not the tests'
    monkeypatch.setenv("VIRTUAL_ENV", os.path.join(ROOT, ".venv"))       # Blender's own: never inherited
    monkeypatch.setenv("PYTHONPATH", os.path.join(ROOT, "tests"))
    prefs.model_dir = str(tmp_path / "models")
    started = time.time()
    with serving() as url:       # the masking model from a local mirror: its file is not ISNet's, so refused
        monkeypatch.setenv("DYNASKETCH_MODEL_MIRROR", url)
        assert bpy.ops.dynasketch.install_engine() == {"FINISHED"}
    status = bpy.context.window_manager.dynasketch_install
    assert not status.failed and status.status.startswith(f"Engine installed (CPU) in {home}; the masking model "
                                                          "was not downloaded: download of isnet-general-use is "
                                                          "corrupt"), status.status
    assert status.status.endswith("(Download Models gets it later)") and "\n" not in status.status
    python = E.installed_python(str(home))
    assert python and os.path.isfile(os.path.join(home, "env", E.MARKER))
    assert not os.path.exists(home / "env.new")
    first = time.time() - started
    log = open(status.log_path).read()
    assert "== Testing the engine" in log and "== Getting the masking model" in log
    assert f"$ {python} -m engine models download isnet-general-use --progress json" in log
    assert not list((tmp_path / "models").glob("isnet-general-use.onnx*"))     # nothing corrupt kept

    bpy.ops.dynasketch.check_engine()
    assert prefs.doctor_report.startswith(f"engine: {python} -m engine (from Install Engine)"), prefs.doctor_report
    assert "[ok] splat" in prefs.doctor_report
    clip = bpy.data.movieclips.load(disc_movie)
    s = bpy.context.scene.dynasketch
    s.preset, s.strokes, s.seeds, s.mask_mode, s.device = "fast", 3, 1, "none", "cpu"
    assert bpy.ops.dynasketch.sketch(clip=clip.name) == {"FINISHED"}, s.status
    assert s.status.startswith("Sketched 10 frames"), s.status

    again = time.time()
    assert bpy.ops.dynasketch.install_engine() == {"FINISHED"}           # a second install: a no-op
    assert "already installed" in status.status and time.time() - again < min(first, 10)

    assert bpy.ops.dynasketch.remove_engine() == {"FINISHED"}
    assert not E.installed_python(str(home)) and not os.path.exists(home / "python")
    bpy.ops.dynasketch.check_engine()
    assert "(from Install Engine)" not in prefs.doctor_report


def old_engine(home):
    """An engine installed before: its environment with a file in it."""
    env = home / "env"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").write_text("old")
    return env / "bin" / "python"


def test_cancel_mid_install_removes_the_half_made_environment_and_keeps_the_old_one(engine_wheel, tmp_path):
    need_wheelhouse()
    home = tmp_path / "home"
    old = old_engine(home)
    job = E.InstallJob(offline_plan(home, engine_wheel))
    job.start()
    deadline = time.time() + 120
    while job.message != "Installing the engine and PyTorch" or not job.last_line:
        assert job.step() == E.RUNNING and time.time() < deadline, job.message
        time.sleep(0.05)
    process = job._process
    job.cancel()
    assert job.state == E.CANCELLED and process.poll() is not None
    assert not running_members(process.pid)                             # the tree: nothing runs on
    wait_until_gone(process.pid)                                        # and its zombies get reaped
    assert not (home / "env.new").exists()
    assert old.read_text() == "old"                                       # untouched
    assert "Install cancelled" in open(job.log_path).read()


def group_states(pgid: int) -> list[str]:
    """The states (R, S, Z, ...) of the processes in the process group ``pgid``, from /proc."""
    states = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            states.append(fields[0].decode())
    return states


def running_members(pgid: int) -> list[str]:
    return [state for state in group_states(pgid) if state != "Z"]


def wait_until_gone(pgid: int, timeout: float = 10.0) -> None:
    """The group has no process left, zombies included (`pgrep -g`), within ``timeout``: an
    init that reaps a second late is fine."""
    deadline = time.monotonic() + timeout
    while subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True).stdout:
        assert time.monotonic() < deadline, group_states(pgid)
        time.sleep(0.05)


def test_kill_tree_waits_for_the_whole_group(tmp_path):
    """A step whose command started workers of its own (a shell with a sleeping child that
    ignores SIGTERM): once kill_tree returns, none of them runs."""
    process = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 60 & sleep 60 & wait"], start_new_session=True)
    deadline = time.monotonic() + 10
    while len(group_states(process.pid)) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    E.kill_tree(process)
    assert process.returncode is not None and not running_members(process.pid)
    assert not E.group_alive(process.pid)
    wait_until_gone(process.pid)
    E.kill_tree(process)                                                   # a second time: nothing to do


ENGINE_MAIN = "import sys\nprint('engine broken')\nsys.exit({doctor_exit})\n"

# `python -m engine`: a doctor that passes, and a `models download` that writes its JSON lines a
# few times a second (docs/CONTRACT.md), then the file into DYNASKETCH_HOME, or fails as asked.
DOWNLOADING_MAIN = """import json, os, sys, time
def say(**kw): print(json.dumps(kw), flush=True)
if sys.argv[1] == "doctor":
    sys.exit(0)
home = os.environ["DYNASKETCH_HOME"]
say(event="start", stage="download", done=0, total=0, message="1 model", out=home)
for done in (0, 60, 120, 176):
    say(event="progress", stage="download", done=done * 10**6, total=176 * 10**6,
        message="isnet-general-use.onnx (1 of 1)", file=0, files=1, model=sys.argv[3])
    time.sleep({pause})
if {fail}:
    say(event="error", stage="download", done=0, total=0, message="cannot reach github.com: check the network")
    sys.exit(2)
os.makedirs(home, exist_ok=True)
open(os.path.join(home, sys.argv[3] + ".onnx"), "w").write("weights")
say(event="done", stage="download", done=1, total=1, message="1 model", out=home)
"""


def fake_engine_wheel(folder, doctor_exit: int = 0, main: str = ENGINE_MAIN) -> str:
    """A wheel named dynasketch whose ``python -m engine`` runs ``main`` (by default a doctor
    that exits with ``doctor_exit``)."""
    path = os.path.join(folder, "dynasketch-0.1.0-py3-none-any.whl")
    info = "dynasketch-0.1.0.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("engine/__init__.py", "")
        zf.writestr("engine/__main__.py", main.format(doctor_exit=doctor_exit))
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: dynasketch\nVersion: 0.1.0\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


def fake_engine_install(tmp_path, doctor_exit: int = 0, main: str = ENGINE_MAIN, masking_model: bool = False):
    """An old engine in ``tmp_path/home`` and an install of ``fake_engine_wheel`` over it
    (no dependencies, no constraints): ``(home, the old engine's python, the job)``; with
    ``masking_model``, its last step downloads the masking model into ``tmp_path/models``."""
    home = tmp_path / "home"
    old = old_engine(home)
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    constraints = tmp_path / "constraints"
    constraints.mkdir()
    (constraints / "linux-cpu.txt").write_text("")
    wheel = fake_engine_wheel(str(tmp_path), doctor_exit, main)
    plan = E.plan_install(uv(), str(home), E.choose_target("linux", "x86_64", False), wheel, str(constraints),
                          python=machine_python(), wheelhouse=str(empty), masking_model=masking_model,
                          model_dir=str(tmp_path / "models"))
    return home, old, E.InstallJob(plan)


def test_a_failed_smoke_test_rolls_back(tmp_path):
    home, old, job = fake_engine_install(tmp_path, doctor_exit=1)
    assert run(job) == E.FAILED
    assert job.error.startswith("testing the engine failed (exit code 1): engine broken"), job.error
    assert not (home / "env.new").exists() and old.read_text() == "old"
    assert "error: testing the engine failed" in job.report()


def test_read_only_folder_full_disk_and_missing_wheel_each_give_one_line(engine_wheel, tmp_path, small_disk):
    disk, grow = small_disk                      # a real 64 KiB file system: far too small
    job = E.InstallJob(offline_plan(disk / "engine", engine_wheel))
    assert job.start() == E.FAILED
    assert job.error.startswith("the engine needs about 2 GB free in") and "\n" not in job.error

    read_only = tmp_path / "ro"
    read_only.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(read_only)]).returncode != 0:
        pytest.skip("mounting a read-only tmpfs needs root")
    try:
        job = E.InstallJob(offline_plan(read_only / "engine", engine_wheel))
        assert job.start() == E.FAILED
        assert job.error.startswith(f"cannot write to {read_only / 'engine'}") and "Engine Folder" in job.error
    finally:
        subprocess.run(["umount", "-l", str(read_only)])

    job = E.InstallJob(offline_plan(tmp_path / "home", str(tmp_path / "missing.whl")))
    assert job.start() == E.FAILED
    assert job.error.startswith("the engine wheel is missing") and "reinstall" in job.error


def test_uv_gets_its_run_bit_back(tmp_path, monkeypatch):
    """Blender's wheel installer drops the run bit of uv's executable: it is set again."""
    import uv as uv_package

    copy = tmp_path / "uv"
    shutil.copy(uv(), copy)
    copy.chmod(0o644)
    monkeypatch.setattr(uv_package, "find_uv_bin", lambda: str(copy))
    path = E.uv_binary()
    assert os.stat(path).st_mode & stat.S_IXUSR
    assert subprocess.run([path, "--version"], capture_output=True, text=True).stdout.startswith("uv ")


def test_the_engine_never_inherits_blenders_python_settings(monkeypatch):
    from dynasketch_blender.engine_process import engine_environment

    for name in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__"):
        monkeypatch.setenv(name, "/blender/python")
    env = engine_environment()
    assert not {"PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__"} & set(env)


def test_the_installed_engine_is_found_after_dynasketch_python_and_before_path(tmp_path, monkeypatch):
    from dynasketch_blender.engine_process import find_engine

    installed = tmp_path / "env" / "bin" / "python"
    installed.parent.mkdir(parents=True)
    installed.write_text("")
    other = tmp_path / "other-python"
    other.write_text("")
    on_path = tmp_path / "path"
    on_path.mkdir()
    (on_path / "dynasketch").write_text("#!/bin/sh\n")
    (on_path / "dynasketch").chmod(0o755)
    monkeypatch.setenv("PATH", str(on_path))
    monkeypatch.setenv("DYNASKETCH_PYTHON", str(other))
    assert find_engine("", str(installed)).found_by == "$DYNASKETCH_PYTHON"
    monkeypatch.delenv("DYNASKETCH_PYTHON")
    assert find_engine("", str(installed)).found_by == "Install Engine"
    assert find_engine("", "").found_by == "PATH"
    assert dataclasses.is_dataclass(find_engine("", str(installed)))


def test_an_old_engine_that_cannot_be_moved_stays_and_the_new_one_goes(tmp_path, monkeypatch):
    """Windows cannot rename an environment whose Python runs (a sketch going on): the install
    fails in one line, the old engine stays in place, the new one is removed."""
    home, old, job = fake_engine_install(tmp_path, doctor_exit=0)
    replace = os.replace

    def locked(src, dst):
        if str(src).endswith(os.sep + "env"):
            raise PermissionError(5, "Access is denied", str(src))
        return replace(src, dst)

    monkeypatch.setattr(E.os, "replace", locked)
    assert run(job) == E.FAILED
    assert job.error.startswith("a file was locked"), job.error
    assert old.read_text() == "old" and not (home / "env.new").exists()


def test_the_preferences_show_the_install_and_its_progress(blender, prefs):
    from helpers import RecordingLayout, WithLayout

    bpy = blender
    status = bpy.context.window_manager.dynasketch_install
    status.log_path = "/tmp/install.log"
    for running in (False, True):
        status.running, status.progress = running, 0.4
        status.status, status.last_line = "Installing the engine and PyTorch", "Downloading torch (800.1MiB)"
        drawn = []
        type(prefs).draw(WithLayout(prefs, RecordingLayout(bpy, drawn)), bpy.context)
        assert ("prop", "engine_folder") in drawn and ("prop", "compute_backend") in drawn
        assert (("progress", 0.4, "Installing the engine and PyTorch") in drawn) == running
        assert (("label", "Downloading torch (800.1MiB)") in drawn) == running
        assert (("operator", "dynasketch.cancel_install") in drawn) == running
        assert (("operator", "dynasketch.install_engine") in drawn) != running
        assert ("operator", "dynasketch.open_install_log") in drawn
        assert ("operator", "dynasketch.copy_install_report") in drawn


# -- the masking model, Install Engine's last step ------------------------------------------------
def test_the_masking_model_is_the_last_step_and_runs_the_installed_engine():
    target = E.choose_target("linux", "x86_64", False)
    plan = E.plan_install("uv", "/h", target, "/w.whl", "/c", masking_model=True, model_dir="/models")
    last = plan.steps[-1]
    assert [s.name for s in plan.steps[-3:]] == ["Testing the engine", "Finishing", "Getting the masking model"]
    assert last.argv == ("/h/env/bin/python", "-m", "engine", "models", "download", "isnet-general-use",
                         "--progress", "json")
    assert last.optional and not any(s.optional for s in plan.steps[:-1])
    assert plan.env["DYNASKETCH_HOME"] == "/models"
    assert sum(s.share for s in plan.steps) == pytest.approx(1.0)
    without = E.plan_install("uv", "/h", target, "/w.whl", "/c")
    assert without.steps[-1].name == "Finishing" and "DYNASKETCH_HOME" not in without.env
    assert sum(s.share for s in without.steps) == pytest.approx(1.0)


def drive(job, timeout=120):
    """Run ``job`` to its end; what it showed at each step: (message, last line, progress)."""
    seen = []
    job.start()
    deadline = time.time() + timeout
    while job.step() == E.RUNNING:
        assert time.time() < deadline, job.message
        seen.append((job.message, job.last_line, round(job.progress, 3)))
        time.sleep(0.02)
    return seen


def test_the_masking_model_download_shows_its_progress_then_the_engine_is_installed(tmp_path):
    home, old, job = fake_engine_install(tmp_path, main=DOWNLOADING_MAIN.format(pause=0.3, fail=False),
                                         masking_model=True)
    seen = drive(job)
    assert job.state == E.DONE and job.message == f"Engine installed (CPU) in {home}" and not job.warning
    assert (tmp_path / "models" / "isnet-general-use.onnx").read_text() == "weights"
    shown = [s for s in seen if s[0].startswith("Getting the masking model (")]
    assert ("Getting the masking model (isnet-general-use.onnx (1 of 1): 60 of 176 MB)",
            "isnet-general-use.onnx (1 of 1): 60 of 176 MB") in [s[:2] for s in shown]
    progress = [s[2] for s in shown]                                     # within the step's share of the bar
    before = sum(step.share for step in job.plan.steps[:-1])
    assert progress == sorted(progress) and before - 0.001 <= progress[0] < progress[-1] <= before + 0.081
    assert E.installed_python(str(home)) and old.read_bytes() != b"old"        # the new engine is in place


def test_a_failed_masking_model_is_one_line_and_the_engine_stays_installed(tmp_path):
    home, _, job = fake_engine_install(tmp_path, main=DOWNLOADING_MAIN.format(pause=0, fail=True),
                                       masking_model=True)
    drive(job)
    assert job.state == E.DONE and job.warning == "cannot reach github.com: check the network"
    assert job.message == (f"Engine installed (CPU) in {home}; the masking model was not downloaded: cannot "
                           "reach github.com: check the network (Download Models gets it later)")
    assert E.installed_python(str(home)) and os.path.isfile(home / "env" / E.MARKER)
    assert not (home / "env.new").exists() and "warning: cannot reach github.com" in job.report()


def test_cancel_during_the_masking_model_keeps_the_installed_engine(tmp_path):
    home, _, job = fake_engine_install(tmp_path, main=DOWNLOADING_MAIN.format(pause=5, fail=False),
                                       masking_model=True)
    job.start()
    deadline = time.time() + 120
    while not job.message.startswith("Getting the masking model ("):
        assert job.step() == E.RUNNING and time.time() < deadline, job.message
        time.sleep(0.02)
    process = job._process
    job.cancel()
    assert job.state == E.CANCELLED and not running_members(process.pid)
    assert job.message == (f"Engine installed (CPU) in {home}; the masking model's download was stopped "
                           "(Download Models resumes it)")
    assert E.installed_python(str(home)) and os.path.isfile(home / "env" / E.MARKER)


def test_install_engine_asks_for_the_masking_model_unless_it_is_turned_off(blender, prefs, monkeypatch, tmp_path):
    from dynasketch_blender import install_operators

    monkeypatch.setattr(E, "uv_binary", lambda: "uv")
    prefs.engine_folder, prefs.model_dir = str(tmp_path / "engine"), str(tmp_path / "models")
    assert prefs.install_masking_model                                   # on by default
    plan = install_operators.make_plan(blender.context)
    assert plan.steps[-1].name == "Getting the masking model"
    assert plan.env["DYNASKETCH_HOME"] == str(tmp_path / "models")
    prefs.install_masking_model = False
    assert install_operators.make_plan(blender.context).steps[-1].name == "Finishing"


def test_download_models_offers_isnet_first_and_keeps_saved_choices(blender, prefs):
    from dynasketch_blender.model_download import AUTO_MODELS

    assert AUTO_MODELS[0][0] == "isnet-general-use"
    assert "isnet-general-use" in prefs.download_models and "isnet-imgly-medium" not in prefs.download_models
    items = prefs.bl_rna.properties["download_models"].enum_items
    # preferences saved before keep their choices: each model keeps its bit
    assert {i.identifier: i.value for i in items} == {
        "clip-rn101": 1, "clip-vit-b-32": 2, "inspyrenet-base": 4, "cotracker3-offline": 8,
        "isnet-imgly-medium": 16, "isnet-general-use": 32}
