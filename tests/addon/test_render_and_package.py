"""A Workbench render of the result (in a subprocess: without EGL Blender aborts the whole
process), and the extension zip built by build_addon.py and installed into bpy."""
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ENGINE_PYTHON, engine_cli_problem
from media import write_sketch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

RENDER = r"""
import sys, bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
sys.path.insert(0, {root!r})
import dynasketch_blender
dynasketch_blender.register()
bpy.ops.dynasketch.import_sketch(filepath={sketch!r}, background={background!r})
scene = bpy.context.scene
scene.render.engine = "BLENDER_WORKBENCH"
scene.render.image_settings.file_format = "PNG"
scene.render.image_settings.color_mode = "RGBA"
scene.frame_set(3)
scene.render.filepath = {png!r}
bpy.ops.render.render(write_still=True)
import os; os._exit(0)     # bpy 4.5 can hang in its EGL teardown after the image is written
"""


def render(tmp_path, background):
    pytest.importorskip("bpy")
    from PIL import Image

    doc = write_sketch(tmp_path / "sketch.json", frames=(0, 2, 4), width=320, height=240)
    png = tmp_path / f"{background}.png"
    script = RENDER.format(root=ROOT, sketch=str(tmp_path / "sketch.json"), png=str(png), background=background)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    if done.returncode != 0 and "EGL" in done.stderr + done.stdout:
        pytest.fail("Blender could not render headless: install libegl1 libegl-mesa0 libgl1-mesa-dri\n"
                    + done.stderr[-1500:])
    assert done.returncode == 0 and png.exists(), done.stderr[-2000:]
    return doc, np.asarray(Image.open(png).convert("RGBA")).astype(float)


def test_workbench_render_shows_ink_where_the_strokes_are(tmp_path):
    doc, image = render(tmp_path, "paper")
    gray = image[..., :3].mean(-1)
    assert gray.shape == (240, 320)
    # scene frame 3 shows the keyframe of source frame 2, aligned with the footage's pixels
    for stroke in doc["frames"][1]["strokes"]:
        for x, y in (stroke["points"][0], stroke["points"][-1]):
            patch = gray[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4]
            assert patch.min() < 100, (x, y)
    assert np.median(gray) > 200                                      # paper is white
    assert gray[5:25, 280:315].min() > 200                            # no ink far from strokes
    assert gray[200:235, 5:300].min() > 200


def test_transparent_background_renders_only_the_ink(tmp_path):
    doc, image = render(tmp_path, "transparent")
    alpha = image[..., 3]
    assert np.median(alpha) == 0                                      # nothing behind the strokes
    x, y = doc["frames"][1]["strokes"][0]["points"][0]
    assert alpha[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4].max() > 200


INSTALL = r"""
import sys, bpy
bpy.ops.extensions.package_install_files(filepath={zip!r}, repo="user_default", enable_on_install=True)
enabled = [m for m in bpy.context.preferences.addons.keys() if m.endswith("dynasketch")]
assert enabled, list(bpy.context.preferences.addons.keys())
assert hasattr(bpy.ops.dynasketch, "sketch") and hasattr(bpy.types.Scene, "dynasketch")
prefs = bpy.context.preferences.addons[enabled[0]].preferences
prefs.default_strokes = 7
bpy.ops.dynasketch.reset_settings()
assert bpy.context.scene.dynasketch.strokes == 7
bpy.ops.dynasketch.import_sketch(filepath={sketch!r})
assert [o for o in bpy.data.objects if o.type == "GREASEPENCIL"]
bpy.ops.dynasketch.check_engine()
print("DOCTOR", prefs.doctor_report.replace("\n", " | "))
print("INSTALLED", enabled[0])
import importlib, os, subprocess                   # Install Engine's pieces came with the zip
install = importlib.import_module(enabled[0] + ".install_operators")
uv = install.engine_install.uv_binary()               # the wheel Blender installed; run bit set
print("UV", subprocess.run([uv, "--version"], capture_output=True, text=True).stdout.strip())
wheel, constraints = install.shipped_files()
print("SHIPPED", os.path.isfile(wheel), os.path.isfile(os.path.join(constraints, "linux-cpu.txt")))
if {movie!r}:                        # Sketch as a user runs it: the installed add-on, its preferences
    prefs.default_device = "cpu"
    clip = bpy.data.movieclips.load({movie!r})
    s = bpy.context.scene.dynasketch
    s.preset, s.strokes, s.seeds, s.mask_mode, s.device = "fast", 3, 1, "none", "auto"
    assert bpy.ops.dynasketch.sketch(clip=clip.name) == {{"FINISHED"}}, s.status
    print("SKETCHED", s.status)
"""


def test_built_zip_validates_installs_and_sketches_as_an_extension(tmp_path, disc_movie):
    pytest.importorskip("bpy")
    build = subprocess.run([sys.executable, os.path.join(ROOT, "build_addon.py"), "--out", str(tmp_path),
                            "--uv-platforms", "linux-x64"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    assert "validated by" in build.stdout
    zip_path = build.stdout.split()[0]
    assert os.path.basename(zip_path) == "dynasketch-0.1.0.zip"
    import zipfile
    names = zipfile.ZipFile(zip_path).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names and "operators.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert "engine_wheel/dynasketch-0.1.0-py3-none-any.whl" in names and "constraints/linux-cuda.txt" in names
    assert [n for n in names if n.startswith("wheels/uv-") and "x86_64" in n]
    write_sketch(tmp_path / "sketch.json")
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender-user"), "DYNASKETCH_PYTHON": ENGINE_PYTHON}
    movie = "" if engine_cli_problem() else disc_movie
    script = INSTALL.format(zip=zip_path, sketch=str(tmp_path / "sketch.json"), movie=movie)
    done = subprocess.run([sys.executable, "-c", script],
                          capture_output=True, text=True, timeout=240, env=env, cwd=str(tmp_path))
    assert done.returncode == 0 and "INSTALLED bl_ext.user_default.dynasketch" in done.stdout, \
        done.stdout[-2000:] + done.stderr[-3000:]
    assert "UV uv 0.13.9" in done.stdout and "SHIPPED True True" in done.stdout, done.stdout[-2000:]
    doctor = next(line for line in done.stdout.splitlines() if line.startswith("DOCTOR"))
    assert f"engine: {ENGINE_PYTHON} -m engine (from $DYNASKETCH_PYTHON)" in doctor
    if movie:
        assert "the engine failed" not in doctor and "did not run" not in doctor, doctor
        assert "SKETCHED Sketched 10 frames into disc.mp4 Sketch" in done.stdout, done.stdout[-2000:]


def test_manifest_fields():
    import tomllib

    with open(os.path.join(ROOT, "blender_manifest.toml"), "rb") as f:
        manifest = tomllib.load(f)
    assert manifest["schema_version"] == "1.0.0" and manifest["id"] == "dynasketch"
    assert manifest["type"] == "add-on" and manifest["blender_version_min"] == "4.5.0"
    # network: Download Models (the engine fetches weights only when it is pressed)
    assert set(manifest["permissions"]) == {"files", "network"}
    assert "Download Models" in manifest["permissions"]["network"]


def test_addon_imports_nothing_heavy():
    """bpy and the standard library only (and uv, the wheel the manifest lists, which only
    finds uv's executable): torch and numpy stay out of Blender."""
    import ast

    allowed = set(sys.stdlib_module_names) | {"bpy", "bpy_extras", "uv"}
    folder = os.path.join(ROOT, "dynasketch_blender")
    for name in os.listdir(folder):
        if name.endswith(".py"):
            tree = ast.parse(open(os.path.join(folder, name), encoding="utf-8").read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    mods = [node.module]
                else:
                    continue
                for mod in mods:
                    assert mod.split(".")[0] in allowed, f"{name} imports {mod}"
