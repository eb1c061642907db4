"""Blender (bpy 5.0.1 as a Python module) with the add-on registered from the source tree."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))


@pytest.fixture
def blender(monkeypatch):
    bpy = pytest.importorskip("bpy")
    import dynasketch_blender

    bpy.ops.wm.read_factory_settings(use_empty=True)
    monkeypatch.setenv("DYNASKETCH_PYTHON", sys.executable)     # the engine: this venv's python
    dynasketch_blender.register()
    yield bpy
    dynasketch_blender.unregister()
