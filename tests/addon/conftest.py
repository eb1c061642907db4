"""Blender (bpy 5.0.1 as a Python module) with the add-on registered from the source tree,
generated movies, and the real engine when its command line works."""
import functools
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# The engine's interpreter: this one, unless the tests run in a Blender-only environment
# (e.g. bpy 4.5 in a second venv) and point at the engine's.
ENGINE_PYTHON = os.environ.get("DYNASKETCH_TEST_ENGINE_PYTHON", sys.executable)


@pytest.fixture
def blender(monkeypatch, tmp_path):
    bpy = pytest.importorskip("bpy")
    import dynasketch_blender

    bpy.ops.wm.read_factory_settings(use_empty=True)
    monkeypatch.setenv("DYNASKETCH_PYTHON", ENGINE_PYTHON)
    monkeypatch.setenv("TMPDIR", str(tmp_path))                  # job folders go under the test's tmp
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dynasketch_blender.register()
    yield bpy
    dynasketch_blender.unregister()


@pytest.fixture
def prefs(blender):
    """The add-on's preferences, as when it is enabled."""
    from dynasketch_blender.preferences import preferences

    addons = blender.context.preferences.addons
    entry = addons.new()
    entry.module = "dynasketch_blender"
    blender.context.preferences.system.use_online_access = True       # Blender's "Allow Online Access"
    yield preferences()
    blender.context.preferences.system.use_online_access = False
    addons.remove(entry)


@functools.lru_cache(maxsize=1)
def engine_cli_problem() -> str:
    """Why the engine's command line cannot be used here, or "" when it can."""
    try:
        done = subprocess.run([ENGINE_PYTHON, "-m", "engine", "sketch", "--help"], capture_output=True,
                              text=True, timeout=120, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the engine did not run: {exc}"
    if done.returncode != 0 or "--progress" not in done.stdout:
        return f"`python -m engine sketch --help` does not work yet (exit {done.returncode}): " \
               f"{(done.stderr or done.stdout).strip()[-300:]}"
    return ""


@pytest.fixture
def engine_cli():
    problem = engine_cli_problem()
    if problem:
        pytest.skip(problem)


@pytest.fixture(scope="session")
def disc_movie(tmp_path_factory):
    """A 10-frame 128x96 mp4 of a moving disc, made here."""
    from media import moving_disc, write_video

    frames, _ = moving_disc(t_len=10)
    return write_video(str(tmp_path_factory.mktemp("movie") / "disc.mp4"), frames)
