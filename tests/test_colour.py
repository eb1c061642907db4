"""Footage tagged with a colour space (``--colorspace``): frames are sketched as Blender shows
them, through OpenColorIO with a config written here (Blender's own config is checked against
Blender's renders in tests/addon/test_footage_frames.py)."""
import json

import numpy as np
import pytest
from PIL import Image

from media import write_video
from test_cli import dynasketch, one_line_error

pytest.importorskip("PyOpenColorIO")

from engine.colour import ShownColours  # noqa: E402
from engine.errors import EngineError  # noqa: E402
from engine.video import FrameRange, open_video  # noqa: E402

# Blender's roles, display and view, and a colour space whose codes are the fourth root of
# light ("Gamma 4": light = code ** 4), easy to check by hand.
CONFIG = """ocio_profile_version: 2
roles:
  default_byte: sRGB
  default_float: Linear
  scene_linear: Linear
file_rules:
  - !<Rule> {name: Default, colorspace: Linear}
displays:
  sRGB:
    - !<View> {name: Standard, colorspace: sRGB}
colorspaces:
  - !<ColorSpace>
    name: Linear
  - !<ColorSpace>
    name: sRGB
    to_scene_reference: !<ExponentWithLinearTransform> {gamma: 2.4, offset: 0.055}
  - !<ColorSpace>
    name: Gamma 4
    to_scene_reference: !<ExponentTransform> {value: 4}
"""


def srgb(light: np.ndarray) -> np.ndarray:
    light = np.clip(light, 0, 1)
    return np.round(np.where(light <= 0.0031308, 12.92 * light, 1.055 * light ** (1 / 2.4) - 0.055) * 255)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.ocio"
    path.write_text(CONFIG)
    return str(path)


def ramp() -> np.ndarray:
    x = np.linspace(0, 255, 64).round().astype(np.uint8)[None, :].repeat(16, 0)
    return np.dstack([x, x[:, ::-1], np.full_like(x, 90)])


def test_tagged_footage_is_shown_from_its_colour_space(config, tmp_path):
    codes = ramp()
    png = str(tmp_path / "still.png")
    Image.fromarray(codes).save(png)
    movie = write_video(str(tmp_path / "take.mp4"), codes[None].repeat(2, 0), pix_fmt="yuv444p")
    for path in (png, movie):
        _, decoded, _ = next(open_video(path).frames(FrameRange(0, 1)))         # (the movie's are lossy)
        source = open_video(path, colour=ShownColours("Gamma 4", config))
        _, rgb, _ = next(source.frames(FrameRange(0, 1)))
        assert np.abs(rgb - srgb((decoded / 255.0) ** 4)).max() <= 1, path
        assert np.abs(rgb.astype(int) - codes).mean() > 20            # darker than the codes read as sRGB
        assert source.identity()[-1][0] == "Gamma 4"                   # a resume and a mask cache see it
    # an EXR's light in that colour space: its values are codes, light = value ** 4
    light = np.dstack([codes / 255.0, np.ones(codes.shape[:2])]).astype(np.float32)
    exr = write_video(str(tmp_path / "render.exr"), light[None], pix_fmt="gbrapf32le")
    _, rgb, alpha = next(open_video(exr, colour=ShownColours("Gamma 4", config)).frames(FrameRange(0, 1)))
    assert np.abs(rgb - srgb((codes / 255.0) ** 4)).max() <= 1 and alpha.min() == 255


def test_footage_in_its_files_default_colour_space_is_read_as_it_is(config, tmp_path):
    """Blender's defaults (sRGB for movies and 8-bit images, Linear Rec.709 for EXR and DPX)
    need neither a config nor OpenColorIO: the frames and the clip's identity are as without
    a colour space. An sRGB-tagged EXR is not its default: its values are codes."""
    png = str(tmp_path / "still.png")
    Image.fromarray(ramp()).save(png)
    plain = open_video(png)
    tagged = open_video(png, colour=ShownColours("sRGB"))                 # no config anywhere
    assert tagged.colour is None and tagged.identity() == plain.identity()
    assert np.array_equal(next(tagged.frames(FrameRange(0, 1)))[1], next(plain.frames(FrameRange(0, 1)))[1])
    codes = ramp()[None] / np.float32(255)
    exr = write_video(str(tmp_path / "render.exr"), codes.astype(np.float32), pix_fmt="gbrpf32le")
    linear = open_video(exr, colour=ShownColours("Linear Rec.709"))
    assert linear.colour is None
    _, rgb, _ = next(open_video(exr, colour=ShownColours("sRGB", config)).frames(FrameRange(0, 1)))
    assert np.abs(rgb.astype(int) - ramp()).max() <= 1                   # sRGB codes shown as they are


def test_a_colour_space_is_part_of_the_job_and_its_errors_are_one_line(config, disc_clip, tmp_path, monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)
    out = tmp_path / "out"
    args = ["sketch", disc_clip["video"], "--out", out, "--frames", "0:2", "--preset", "fast",
            "--strokes", 3, "--seeds", 1, "--mask", disc_clip["mask"], "--no-preview"]
    line = one_line_error(dynasketch(*args, "--colorspace", "Gamma 5", "--ocio-config", config))
    assert "'Gamma 5' is not in" in line and "Gamma 4" in line, line           # the names it has
    assert not out.exists() or not (out / "sketch.json").exists()
    for colorspace, where, expected in (("Gamma 4", None, "--ocio-config PATH"),
                                        ("Gamma 4", str(tmp_path / "missing.ocio"), "not a readable OpenColorIO"),
                                        ("sRGB", None, None)):            # Blender's default: no config needed
        if expected is None:
            assert not ShownColours(colorspace, where).converts(floating=False)
            continue
        with pytest.raises(EngineError, match=expected):
            ShownColours(colorspace, where)
    done = dynasketch(*args, "--colorspace", "Gamma 4", env={"OCIO": config})        # $OCIO, as Blender reads it
    assert done.returncode == 0, done.stderr
    sketch = json.loads((out / "sketch.json").read_text())
    assert sketch["source"]["colorspace"] == "Gamma 4" and len(sketch["frames"]) == 2
    before = (out / "sketch.json").read_bytes()
    assert "--overwrite" in one_line_error(dynasketch(*args))          # the file's own colours: other input
    assert (out / "sketch.json").read_bytes() == before
