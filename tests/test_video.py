"""Decoding through PyAV/Pillow: containers, image sequences, frame ranges, alpha, the canvas fit."""
import numpy as np
import pytest
from PIL import Image

from media import frame_number, moving_disc, numbered_frames, write_video
from engine.canvas import Letterbox
from engine.errors import EngineError
from engine.masks.files import MaskFileMasker, mask_file_identity
from engine.video import FrameRange, VideoInfo, open_video, parse_frame_range


@pytest.mark.parametrize("ext", ["mp4", "mov", "mkv", "webm", "avi", "gif"])
def test_containers_decode_every_frame(tmp_path, ext):
    frames, _ = moving_disc(t_len=6)
    pix = "rgb8" if ext == "gif" else "yuv420p"
    path = write_video(str(tmp_path / f"clip.{ext}"), frames, pix_fmt=pix)
    source = open_video(path)
    assert (source.info.width, source.info.height, source.info.frame_count) == (128, 96, 6)
    decoded = list(source.frames(FrameRange(0, 6)))
    assert [i for i, _, _ in decoded] == list(range(6))
    # the disc moves right: its darkest column moves with it
    centre = [np.argmax((255 - rgb.mean(-1)).sum(0)) for _, rgb, _ in decoded]
    assert centre[-1] > centre[0] + 8


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_a_phone_clip_is_decoded_upright(tmp_path, rotation):
    """Phones store the sensor's frames with a display rotation; players and Blender apply it
    (bpy's movie clip of such a file is portrait), so the sketch must be drawn on it applied."""
    frames, _ = moving_disc(t_len=4)                              # stored 128 x 96, disc moving right
    source = open_video(write_video(str(tmp_path / "phone.mp4"), frames, rotation=rotation))
    turns = rotation // 90
    upright = np.rot90(frames, turns, axes=(1, 2))
    assert (source.info.height, source.info.width) == upright.shape[1:3]
    decoded = [rgb for _, rgb, _ in source.frames(FrameRange(0, 4))]
    assert all(rgb.flags.c_contiguous for rgb in decoded)
    assert np.abs(np.stack(decoded).astype(int) - upright).mean() < 6      # lossy codec, same picture
    assert np.abs(np.stack(decoded).astype(int) - np.rot90(upright, 2, axes=(1, 2))).mean() > 20


# Frame times as phones write them (seconds), and the frame Blender 4.5 and 5.0 show at each of
# its frames; tests/addon/test_footage_frames.py checks these against bpy itself.
TIMINGS = {
    "dropped frames": ([i / 30 for i in range(10)] + [(i + 3) / 30 for i in range(10, 30)],
                       list(range(10)) + [9, 9, 9] + list(range(10, 30))),
    "a burst at twice the rate": ([i / 30 for i in range(10)] + [1 / 3 + (i - 10) / 60 for i in range(10, 20)]
                                  + [1 / 2 + (i - 20) / 30 for i in range(20, 30)],
                                  [i // 2 for i in range(20)] + list(range(10, 20))
                                  + [20 + i // 2 for i in range(20)]),
    "a late start": ([0.5 + i / 30 for i in range(30)], list(range(30))),
}


@pytest.mark.parametrize("timing", TIMINGS)
def test_a_variable_frame_rate_clip_is_read_frame_for_frame_as_blender_shows_it(tmp_path, timing):
    """Frame k is the picture Blender shows at the clip's frame k, so the sketch stays on the
    footage: a dropped frame repeats the one before, as Blender shows it."""
    times, shown = TIMINGS[timing]
    path = write_video(str(tmp_path / "phone.mp4"), numbered_frames(len(times)), fps=30, times=times)
    source = open_video(path)
    assert source.info.frame_count == len(shown)
    pictures = [rgb for _, rgb, _ in source.frames(FrameRange(0, len(shown)))]
    assert [frame_number(rgb) for rgb in pictures] == shown
    assert not any(np.shares_memory(a, b) for a, b in zip(pictures, pictures[1:]))   # a repeat is a copy
    # a range, and a resumed run, see the same frames
    assert [frame_number(rgb) for _, rgb, _ in source.frames(FrameRange(9, 20, 3))] == shown[9:20:3]


def test_image_folder_and_pattern(tmp_path):
    frames, _ = moving_disc(t_len=5)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"frame_{i + 1:04d}.png")
    folder = open_video(str(tmp_path))
    pattern = open_video(str(tmp_path / "frame_%04d.png"), fps=12)
    assert folder.info.frame_count == pattern.info.frame_count == 5
    assert pattern.info.fps == 12
    got = [rgb for _, rgb, _ in pattern.frames(FrameRange(1, 5, 2))]
    assert len(got) == 2 and np.array_equal(got[0], frames[1])


def test_a_sequence_runs_from_its_start_number_to_the_first_missing_image(tmp_path):
    """How Blender reads an image sequence chosen by one of its files."""
    frames = numbered_frames(12)
    for n in (3, 4, 5, 6, 7, 9, 10):                   # 8 is missing
        Image.fromarray(frames[n]).save(tmp_path / f"shot_{n:04d}.png")
    pattern = str(tmp_path / "shot_%04d.png")

    def numbers(source):
        return [frame_number(rgb) for _, rgb, _ in source.frames(FrameRange(0, source.info.frame_count))]
    assert numbers(open_video(pattern)) == [3, 4, 5, 6, 7, 9, 10]      # every image it matches
    assert numbers(open_video(pattern, start_number=4)) == [4, 5, 6, 7]
    assert numbers(open_video(pattern, start_number=9)) == [9, 10]
    with pytest.raises(EngineError, match="no image numbered 8"):
        open_video(pattern, start_number=8)


def test_a_mask_sequence_is_read_from_its_start_number(tmp_path):
    """A roto artist's mask renders numbered from 1001 beside older ones: mask image 1001 is
    the mask of the clip's frame 0 (``--mask-start-number``), frame by frame after it."""
    _, masks = moving_disc(t_len=6)
    for n in range(997, 1007):                        # 997..1000: an older matte, all subject
        mask = masks[n - 1001] if n >= 1001 else np.full_like(masks[0], 255)
        Image.fromarray(mask).save(tmp_path / f"matte.{n}.png")
    clip = VideoInfo("clip.mp4", 128, 96, 24.0, 6, False)
    masker = MaskFileMasker(str(tmp_path / "matte.%d.png"), clip, FrameRange(2, 6), start_number=1001)
    for index in range(2, 6):
        assert np.array_equal(masker(index, None, None) > 0.5, masks[index] > 127), index
    with pytest.raises(EngineError, match="needs a mask image pattern"):
        MaskFileMasker(str(tmp_path / "matte.1001.png"), clip, FrameRange(0, 6), start_number=1001)
    with pytest.raises(EngineError, match="no image numbered 990"):
        MaskFileMasker(str(tmp_path / "matte.%d.png"), clip, FrameRange(0, 6), start_number=990)
    with pytest.raises(EngineError, match="goes with a mask image pattern"):
        mask_file_identity("auto", 1001)


def write_depth_exr(path, width=4, height=2):
    """A valid uncompressed scanline EXR holding one channel, ``depth.Z`` (a depth pass
    rendered on its own): no colour to show."""
    import struct

    def attribute(name, kind, value):
        return name.encode() + b"\0" + kind.encode() + b"\0" + struct.pack("<i", len(value)) + value
    box = struct.pack("<4i", 0, 0, width - 1, height - 1)
    header = b"".join([
        b"\x76\x2f\x31\x01", struct.pack("<i", 2),
        attribute("channels", "chlist", b"depth.Z\0" + struct.pack("<iB3xii", 2, 0, 1, 1) + b"\0"),
        attribute("compression", "compression", b"\0"), attribute("dataWindow", "box2i", box),
        attribute("displayWindow", "box2i", box), attribute("lineOrder", "lineOrder", b"\0"),
        attribute("pixelAspectRatio", "float", struct.pack("<f", 1)),
        attribute("screenWindowCenter", "v2f", struct.pack("<2f", 0, 0)),
        attribute("screenWindowWidth", "float", struct.pack("<f", 1)), b"\0"])
    line = 8 + 4 * width
    offsets = b"".join(struct.pack("<Q", len(header) + 8 * height + y * line) for y in range(height))
    lines = b"".join(struct.pack("<ii", y, 4 * width) + struct.pack(f"<{width}f", *[2.5] * width)
                     for y in range(height))
    with open(path, "wb") as f:
        f.write(header + offsets + lines)


def test_an_exr_with_no_colour_pass_says_so(tmp_path):
    path = str(tmp_path / "depth_0001.exr")
    write_depth_exr(path)
    with pytest.raises(EngineError, match="depth_0001.exr: not a readable image .no colour pass, only depth.Z"):
        open_video(path)


def test_a_percent_sign_in_a_name_is_part_of_the_name(tmp_path):
    """A movie named ``50%_done.mp4`` is that movie; in a pattern ``%%`` is a literal ``%``."""
    movie = write_video(str(tmp_path / "50%_done.mp4"), numbered_frames(3))
    assert [frame_number(rgb) for _, rgb, _ in open_video(movie).frames(FrameRange(0, 3))] == [0, 1, 2]
    frames = numbered_frames(3)
    for n in range(3):
        Image.fromarray(frames[n]).save(tmp_path / f"100%_{n + 1:d}.png")
    source = open_video(str(tmp_path / "100%%_%d.png"), start_number=2)
    assert [frame_number(rgb) for _, rgb, _ in source.frames(FrameRange(0, 2))] == [1, 2]


def test_alpha_channel_is_read(tmp_path):
    frames, masks = moving_disc(t_len=3)
    for i, (f, m) in enumerate(zip(frames, masks)):
        Image.fromarray(np.dstack([f, m])).save(tmp_path / f"f{i}.png")
    source = open_video(str(tmp_path))
    assert source.info.has_alpha
    _, rgb, alpha = next(iter(source.frames(FrameRange(0, 1))))
    assert rgb.shape == (96, 128, 3) and np.array_equal(alpha, masks[0])


@pytest.mark.parametrize("codec,pix_fmt,ext", [("libvpx-vp9", "yuva420p", "webm"),    # Blender's RGBA WebM
                                               ("qtrle", "argb", "mov")])
def test_a_movie_with_alpha_masks_itself(tmp_path, codec, pix_fmt, ext):
    """ffmpeg's own VP9 decoder drops a WebM's alpha; Blender reads it with libvpx, and so
    must the engine, or a keyed subject is sketched with its background."""
    frames, masks = moving_disc(t_len=3)
    path = write_video(str(tmp_path / f"keyed.{ext}"), np.concatenate([frames, masks[..., None]], -1),
                       codec=codec, pix_fmt=pix_fmt)
    source = open_video(path)
    assert source.info.has_alpha
    decoded = list(source.frames(FrameRange(0, 3)))
    for (_, rgb, alpha), mask in zip(decoded, masks):
        assert rgb.shape == (96, 128, 3) and alpha.shape == (96, 128)
        assert ((alpha > 127) != (mask > 127)).mean() < 0.01


def test_frame_range_is_a_slice():
    assert list(parse_frame_range("2:8:3", 10).indices()) == [2, 5]
    assert list(parse_frame_range(":3", 10).indices()) == [0, 1, 2]
    assert list(parse_frame_range("7:", 10).indices()) == [7, 8, 9]
    assert len(parse_frame_range(None, 10)) == 10
    for bad in ["5:5", "0:11", "12:", "a:b", "0:5:0", "-1:3", "1:2:3:4"]:
        with pytest.raises(EngineError):
            parse_frame_range(bad, 10)


def test_letterbox_pads_and_maps_both_ways():
    box = Letterbox(1920, 1080, 224)
    x0, y0, w, h = box.placement
    assert (x0, w) == (0, 224) and h == 126 and y0 == 49
    pts = np.array([[0.0, 0.0], [1920.0, 1080.0], [960.0, 540.0]])
    canvas = box.to_canvas(pts)
    assert np.allclose(canvas[2], [112, 112], atol=0.5)
    assert np.allclose(box.to_source(canvas), pts)
    image = np.zeros((1080, 1920, 3), np.uint8)
    fitted = box.fit(image)
    assert fitted.shape == (224, 224, 3)
    assert (fitted[:y0] == 255).all() and (fitted[y0:y0 + h] == 0).all()   # nothing cropped
