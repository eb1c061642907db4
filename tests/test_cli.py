"""The dynasketch command end to end: the sketch.json contract, coherence, bad input, stop/resume."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from media import write_video

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dynasketch(*args, timeout=300, env=None):
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env=None if env is None else {**os.environ, **env})


def check_contract(sketch: dict, strokes: int, frames: list[int]):
    assert sketch["format"] == "dynasketch.sketch" and sketch["version"] == 1
    assert sketch["complete"] is True
    assert [f["index"] for f in sketch["frames"]] == frames
    w, h = sketch["width"], sketch["height"]
    for frame in sketch["frames"]:
        assert [s["id"] for s in frame["strokes"]] == list(range(strokes))
        for s in frame["strokes"]:
            pts = np.array(s["points"])
            assert pts.shape == (13, 2)                      # one cubic, cut in 4 for line weight
            assert len(s["widths"]) == 5 and min(s["widths"]) > 0
            assert (pts[:, 0] > -0.25 * w).all() and (pts[:, 0] < 1.25 * w).all()
            assert (pts[:, 1] > -0.25 * h).all() and (pts[:, 1] < 1.25 * h).all()
            assert s["width"] > 0 and 0 < s["opacity"] <= 1


@pytest.fixture(scope="module")
def disc_run(disc_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    result = dynasketch("sketch", disc_clip["video"], "--out", out, "--mask", disc_clip["mask"],
                        "--preset", "fast", "--strokes", 6, "--seeds", 2, "--progress", "json")
    assert result.returncode == 0, result.stderr
    return out, result


def test_sketch_follows_the_contract_and_the_subject(disc_run, disc_clip):
    out, result = disc_run
    sketch = json.loads((out / "sketch.json").read_text())
    check_contract(sketch, 6, list(range(12)))
    assert (sketch["width"], sketch["height"], sketch["fps"]) == (128, 96, 24.0)
    assert sketch["settings"]["backends"]["mask"] == "file"
    assert len(list((out / "svg").glob("frame_*.svg"))) == 12
    assert (out / "preview.mp4").stat().st_size > 0
    # the disc moves 3 px a frame to the right: so does the sketch
    centres = [np.mean([s["points"] for s in f["strokes"]], axis=(0, 1)) for f in sketch["frames"]]
    moved = centres[-1][0] - centres[0][0]
    assert 0.6 * 33 < moved < 1.4 * 33
    assert abs(centres[-1][1] - centres[0][1]) < 6


def test_progress_is_json_lines(disc_run):
    _, result = disc_run
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["event"] == "start" and lines[-1]["event"] == "done"
    assert all({"event", "stage", "done", "total", "message"} <= set(line) for line in lines)
    stages = {line["stage"] for line in lines}
    assert {"initialise", "track", "optimise", "export"} <= stages
    done = [line["done"] for line in lines]
    assert done == sorted(done) and lines[-1]["done"] == 12


def test_progress_lines_stay_on_stdout_while_a_library_redirects_it(capsys):
    """InSPyReNet's loader prints its settings under contextlib.redirect_stdout (process-wide)
    in the masking thread, while the run reports progress: the lines still reach stdout."""
    import contextlib
    import io

    from engine.progress import make_progress

    progress = make_progress("json")
    library_output = io.StringIO()
    with contextlib.redirect_stdout(library_output):
        progress.start(3, "clip.mp4: 3 frames", "out")
        progress.stage("mask", 0, 3, "decoding and masking")
    assert library_output.getvalue() == ""
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["event"] for line in lines] == ["start", "progress"]


def test_the_log_says_why_auto_took_an_offline_default(disc_clip, tmp_path):
    """A damaged download is not used silently: the run's log names the file, what is wrong
    with it and the command that fixes it, stage by stage."""
    home = tmp_path / "models"
    home.mkdir()
    (home / "ViT-B-32.pt").write_bytes(b"an interrupted download")
    out = tmp_path / "out"
    result = dynasketch("sketch", disc_clip["video"], "--out", out, "--frames", "0:2", "--preset", "fast",
                        "--strokes", 4, "--seeds", 1, "--device", "cpu", "--progress", "none",
                        env={"DYNASKETCH_HOME": str(home), "DYNASKETCH_COTRACKER_PATH": ""})
    assert result.returncode == 0, result.stderr
    settings = json.loads((out / "sketch.json").read_text())["settings"]
    assert settings["backends"]["saliency"] == "edges" and settings["backends"]["guidance"] == "chamfer"
    notes = {}
    for line in (out / "dynasketch.log").read_text().splitlines():
        if "auto took the offline default" in line:
            notes[line.split(" ", 2)[1]] = notes.get(line.split(" ", 2)[1], "") + line.split(": ", 1)[1]
    assert set(notes) == {"mask:", "tracker:", "guidance:", "saliency:"}
    assert f"{home / 'ViT-B-32.pt'} has a wrong checksum" in notes["saliency:"]
    assert "run `dynasketch models download clip-vit-b-32`" in notes["saliency:"]
    assert "--guidance clip" in notes["guidance:"]                   # CLIP is not picked on a CPU
    assert "ckpt_base.pth is missing" in notes["mask:"] or "not installed" in notes["mask:"]
    assert "dynasketch models download isnet-general-use" in notes["mask:"]            # nor ISNet's


def test_a_name_the_locale_cannot_spell_is_sketched_and_logged(disc_clip, tmp_path):
    """A clip named in a script the locale's encoding lacks (Windows' cp1252 and Japanese, here
    an ASCII locale): the run finishes and its log is UTF-8."""
    clip = tmp_path / "スケッチ-ç.mp4"
    clip.write_bytes(open(disc_clip["video"], "rb").read())
    out = tmp_path / "出力"
    done = dynasketch("sketch", clip, "--out", out, "--preset", "fast", "--frames", "0:2", "--strokes", 3,
                      "--seeds", 1, "--mask", "none", "--progress", "json",
                      env={"PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "LC_ALL": "C", "LANG": "C"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["event"] == "done"
    assert "start: スケッチ-ç.mp4: 2 frames of 12" in (out / "dynasketch.log").read_text(encoding="utf-8")


def test_doctor_finds_a_cotracker_checkout(tmp_path):
    """CoTracker is not on PyPI: a checkout named by DYNASKETCH_COTRACKER_PATH counts as
    installed for `doctor` too, which then only asks for the weights."""
    (tmp_path / "co-tracker" / "cotracker").mkdir(parents=True)
    (tmp_path / "co-tracker" / "cotracker" / "__init__.py").write_text("")
    result = dynasketch("doctor", env={"DYNASKETCH_HOME": str(tmp_path / "models"),
                                       "DYNASKETCH_COTRACKER_PATH": str(tmp_path / "co-tracker")})
    line = next(line for line in result.stdout.splitlines() if "cotracker:" in line)
    assert "scaled_offline.pth is missing" in line and "not importable" not in line, line


def test_frame_range_step_and_no_temporal(disc_clip, tmp_path):
    out = tmp_path / "out"
    result = dynasketch("sketch", disc_clip["video"], "--out", out, "--frames", "2:11:3",
                        "--preset", "fast", "--strokes", 4, "--seeds", 1, "--no-temporal",
                        "--no-preview", "--mask", "none")
    assert result.returncode == 0, result.stderr
    sketch = json.loads((out / "sketch.json").read_text())
    check_contract(sketch, 4, [2, 5, 8])
    assert sketch["source"]["frames"] == [2, 11, 3] and sketch["settings"]["temporal"] is False


def one_line_error(result, code=2):
    assert result.returncode == code
    assert "Traceback" not in result.stderr
    # a run on footage with no mask warns at its start (test_subject_masks.py); the error is one line
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("dynasketch: warning:")]
    assert len(lines) == 1 and lines[0].startswith("dynasketch: error:")
    return lines[0]


def test_bad_input_gives_one_line_and_keeps_the_folder(disc_clip, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("this is not a video")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.mp4"
    data = open(disc_clip["video"], "rb").read()
    truncated.write_bytes(data[: len(data) // 2])
    small_mask = write_video(str(tmp_path / "small.mask.mp4"), np.zeros((12, 48, 64, 3), np.uint8))
    short_mask = write_video(str(tmp_path / "short.mask.mp4"), np.zeros((5, 96, 128, 3), np.uint8))
    v = disc_clip["video"]
    cases = [
        ([tmp_path / "missing.mp4"], "not found"),
        ([not_video], "not a readable video"),
        ([empty], "not a readable video"),
        ([truncated], "not a readable video"),
        ([v, "--frames", "5:40"], "12 frames"),
        ([v, "--frames", "20:"], "12 frames"),
        ([v, "--strokes", "0"], "at least 1 stroke"),
        ([v, "--strokes", "-3"], "at least 1 stroke"),
        ([v, "--mask", small_mask], "same size"),
        ([v, "--mask", short_mask], "one mask frame per clip frame"),
        ([v, "--start-number", "1"], "needs an image pattern"),
        ([v, "--mask", short_mask, "--mask-start-number", "1"], "needs a mask image pattern"),
        ([tmp_path / "frame_%04d.png", "--start-number", "1"], "no image numbered 1"),
        ([v, "--device", "cuda"] if not __import__("torch").cuda.is_available() else [v, "--seeds", "0"],
         "cuda" if not __import__("torch").cuda.is_available() else "seed"),
    ]
    for args, expected in cases:
        line = one_line_error(dynasketch("sketch", *args, "--out", out, "--preset", "fast"))
        assert expected in line, line
    assert (out / "mine.txt").read_text() == "keep me"
    assert set(os.listdir(out)) <= {"mine.txt", "dynasketch.log"}     # at most a log was added


def test_other_settings_do_not_overwrite_a_finished_sketch(disc_run, disc_clip):
    out, _ = disc_run
    before = (out / "sketch.json").read_bytes()
    line = one_line_error(dynasketch("sketch", disc_clip["video"], "--out", out, "--strokes", 3,
                                     "--preset", "fast"))
    assert "--overwrite" in line
    assert (out / "sketch.json").read_bytes() == before


def test_overwrite_replaces_the_old_sketchs_files_and_keeps_the_rest(disc_run, disc_clip, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(disc_run[0], out)                   # 12 frames with a preview
    (out / "mine.txt").write_text("keep me")
    before = (out / "sketch.json").read_bytes()
    failed = dynasketch("sketch", disc_clip["video"], "--out", out, "--overwrite", "--guidance", "clip",
                        "--preset", "fast", env={"DYNASKETCH_HOME": str(tmp_path / "no-models")})
    assert "dynasketch models download clip-rn101" in one_line_error(failed)
    assert (out / "sketch.json").read_bytes() == before and len(list((out / "svg").iterdir())) == 12
    result = dynasketch("sketch", disc_clip["video"], "--out", out, "--overwrite", "--frames", "0:4",
                        "--strokes", 3, "--preset", "fast", "--seeds", 1, "--no-preview")
    assert result.returncode == 0, result.stderr
    sketch = json.loads((out / "sketch.json").read_text())
    check_contract(sketch, 3, [0, 1, 2, 3])
    assert sorted(p.name for p in (out / "svg").iterdir()) == [f"frame_{i:06d}.svg" for i in range(4)]
    assert not (out / "preview.mp4").exists()           # the old sketch's preview is gone with it
    assert (out / "mine.txt").read_text() == "keep me" and (out / "dynasketch.log").exists()


def test_an_edited_mask_file_is_other_input(disc_run, disc_clip):
    out, _ = disc_run
    before = (out / "sketch.json").read_bytes()
    args = ["sketch", disc_clip["video"], "--out", out, "--mask", disc_clip["mask"], "--preset", "fast",
            "--strokes", 6, "--seeds", 2, "--progress", "json"]
    mask = os.stat(disc_clip["mask"])
    try:                                                # the mask saved again after an edit
        os.utime(disc_clip["mask"], ns=(mask.st_atime_ns, mask.st_mtime_ns + 10**9))
        assert "--overwrite" in one_line_error(dynasketch(*args))
    finally:
        os.utime(disc_clip["mask"], ns=(mask.st_atime_ns, mask.st_mtime_ns))
    assert (out / "sketch.json").read_bytes() == before
    assert dynasketch(*args).returncode == 0            # the same input: the sketch is kept
    assert (out / "sketch.json").read_bytes() == before


def test_a_full_disk_is_one_line_and_the_run_resumes_once_there_is_room(small_disk):
    from engine.sample import write_sample

    disk, grow = small_disk
    clip = str(disk.parent / "walk.mp4")
    write_sample(clip, None, frames=32, width=160, height=120)
    out = disk / "out"
    # 1 stroke, 32 frames: a sketch.json (with line weight and colour) well smaller than its preview
    args = ["sketch", clip, "--out", out, "--preset", "fast", "--strokes", 1, "--seeds", 1]
    full = dynasketch(*args)
    line = one_line_error(full)
    assert line == (f"dynasketch: error: cannot write {out}: No space left on device; free some space, "
                    "then run the same command again to resume")
    partial = json.loads((out / "sketch.json").read_text())
    assert partial["complete"] is False
    leftovers = [p.name for p in out.rglob("*") if ".tmp-" in p.name or ".part" in p.name]
    assert leftovers == []

    grow(4 << 20)
    resumed = dynasketch(*args, "--progress", "json")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after" in resumed.stdout
    check_contract(json.loads((out / "sketch.json").read_text()), 1, list(range(32)))

    # Room for the sketch but not for its preview: the finished sketch stays, and no partial
    # preview is left to fill the disk.
    preview = (out / "preview.mp4").stat().st_size
    (out / "preview.mp4").unlink()
    sketch = (out / "sketch.json").read_bytes()
    used = os.statvfs(disk)
    room = len(sketch) + 16384                           # sketch.json is written anew beside the old
    assert room < preview - 4096, (room, preview)              # a block short of the preview
    grow((used.f_blocks - used.f_bfree) * used.f_frsize + room)
    no_room = one_line_error(dynasketch(*args))
    assert "preview.mp4" in no_room and "No space left on device" in no_room
    assert (out / "sketch.json").read_bytes() == sketch
    assert not [p.name for p in out.iterdir() if "preview" in p.name]


def start_a_long_run(tmp_path):
    """A 40-frame sketch with JSON progress, paused (SIGSTOP) once 9 frames are done, so that it
    cannot finish, however fast or slow the machine, before the test acts: (process, its
    command, out). ``resume`` lets it go on."""
    from engine.sample import write_sample

    clip, mask = str(tmp_path / "walk.mp4"), str(tmp_path / "walk.mask.mp4")
    write_sample(clip, mask, frames=40, width=160, height=120)
    out = tmp_path / "out"
    args = [sys.executable, "-m", "engine", "sketch", clip, "--out", str(out), "--mask", mask,
            "--preset", "fast", "--strokes", 6, "--seeds", 1, "--progress", "json", "--no-preview"]
    proc = subprocess.Popen([str(a) for a in args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:                                # wait until some frames are done
        event = json.loads(line)
        if event["event"] == "progress" and event["stage"] == "optimise" and event["done"] >= 9:
            proc.send_signal(signal.SIGSTOP)
            break
    return proc, [str(a) for a in args], out


def resume(proc, signum=None):
    """Deliver ``signum`` (if any) to a paused run and let it go on."""
    if signum is not None:
        proc.send_signal(signum)
    proc.send_signal(signal.SIGCONT)


def check_stopped_then_resumed(args, out):
    partial = json.loads((out / "sketch.json").read_text())
    assert partial["complete"] is False
    done = [f["index"] for f in partial["frames"]]
    assert 9 <= len(done) < 40 and done == list(range(len(done)))
    assert "internal error" not in (out / "dynasketch.log").read_text()

    resumed = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    events = [json.loads(line) for line in resumed.stdout.splitlines()]
    assert any("resuming after" in e["message"] for e in events)
    final = json.loads((out / "sketch.json").read_text())
    check_contract(final, 6, list(range(40)))
    assert final["frames"][: len(done)] == partial["frames"]       # finished frames kept as they were


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_keeps_finished_frames_and_resume_completes(tmp_path, signum):
    proc, args, out = start_a_long_run(tmp_path)
    sent = time.monotonic()
    resume(proc, signum)
    rest = proc.stdout.read()
    proc.wait(timeout=30)
    stopped_in = time.monotonic() - sent
    assert proc.returncode == 130
    assert stopped_in < 10                  # at its next step, not after the 31 frames left
    assert json.loads(rest.strip().splitlines()[-1])["event"] == "interrupted"
    check_stopped_then_resumed(args, out)


def test_a_second_run_on_a_busy_folder_is_refused_and_changes_nothing(tmp_path):
    """Two runs writing one folder (a second terminal, a second Blender on the same job) would
    mix two sketches: the second gets one line naming the first, and leaves the folder alone."""
    proc, args, out = start_a_long_run(tmp_path)
    try:
        second = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2
        assert one_line_error(second) == (f"dynasketch: error: --out {out}: another dynasketch run (process "
                                          f"{proc.pid}) is writing there; wait for it to finish or stop it, "
                                          "or choose another folder")
        assert json.loads(second.stdout.splitlines()[-1])["event"] == "error"
    finally:
        resume(proc, signal.SIGTERM)
        proc.stdout.read()
        proc.wait(timeout=30)
    assert proc.returncode == 130                       # the first run stopped as usual, unharmed
    check_stopped_then_resumed(args, out)


def test_a_run_whose_progress_reader_exits_stops_and_resumes(tmp_path):
    """Blender (or `| head`) exits while reading the progress lines: the engine stops at its
    next line, keeping the finished frames, rather than sketch on for nobody or crash."""
    proc, args, out = start_a_long_run(tmp_path)
    proc.stdout.close()
    resume(proc)
    proc.wait(timeout=60)
    stderr = proc.stderr.read()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("dynasketch: stopped after ")
    assert "the program reading the progress lines exited" in stderr and "Traceback" not in stderr
    check_stopped_then_resumed(args, out)


def test_alpha_clip_masks_itself_and_lost_strokes_restart(tmp_path):
    """A disc (alpha = disc) that leaves the frame: the mask comes from alpha, and strokes
    whose points leave with it are re-initialised inside the frame."""
    from PIL import Image

    from media import moving_disc

    frames, masks = moving_disc(t_len=20, speed=6.0)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, (f, m) in enumerate(zip(frames, masks)):
        Image.fromarray(np.dstack([f, m])).save(folder / f"f_{i:03d}.png")
    out = tmp_path / "out"
    result = dynasketch("sketch", folder / "f_%03d.png", "--out", out, "--preset", "fast",
                        "--strokes", 6, "--seeds", 1, "--progress", "json", "--no-preview")
    assert result.returncode == 0, result.stderr
    sketch = json.loads((out / "sketch.json").read_text())
    assert sketch["settings"]["backends"]["mask"] == "alpha"
    check_contract(sketch, 6, list(range(20)))
    messages = " ".join(json.loads(line)["message"] for line in result.stdout.splitlines())
    assert "re-initialised" in messages
    last = np.array([s["points"] for s in sketch["frames"][-1]["strokes"]])
    assert (last[..., 0] >= -1).all() and (last[..., 0] <= 129).all()    # still on the frame


def test_a_stop_while_a_frame_is_masked_ends_the_process_cleanly(tmp_path):
    """SIGTERM while the masker is 10 s into a frame (torch work, as InSPyReNet on a CPU):
    the command reports the stop and exits 130 at once, without aborting in that work."""
    from engine.sample import write_sample

    clip, mask = str(tmp_path / "walk.mp4"), str(tmp_path / "walk.mask.mp4")
    write_sample(clip, mask, frames=12, width=160, height=120)
    driver = tmp_path / "driver.py"
    driver.write_text(f"""
import sys, time, torch
sys.path.insert(0, {ROOT!r})
import engine.pipeline as pipeline
from engine import cli

real = pipeline.build_masker

def slow(*args):
    masker = real(*args)

    class Slow:
        name = masker.name

        def __call__(self, index, rgb, alpha):
            print("masking", index, file=sys.stderr, flush=True)
            end, x = time.monotonic() + 10, torch.rand(256, 256)
            while time.monotonic() < end:
                x = torch.tanh(x @ x)
            return masker(index, rgb, alpha)
    return Slow()

pipeline.build_masker = slow
sys.argv = ["dynasketch", *sys.argv[1:]]
cli.run()
""")
    proc = subprocess.Popen([sys.executable, str(driver), "sketch", clip, "--out", str(tmp_path / "out"),
                             "--mask", mask, "--preset", "fast", "--progress", "json", "--no-preview"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:                            # the first frame is being masked
        if line.startswith("masking 0"):
            break
    time.sleep(0.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 8                 # as a stop between steps, not after the 10 s frame
    assert proc.returncode == 130, err
    assert "terminate called" not in err and "stopped after 0 of 12 frames" in err
    assert json.loads(out.strip().splitlines()[-1])["event"] == "interrupted"


def test_out_of_memory_says_what_to_do_and_keeps_the_finished_frames(disc_clip, tmp_path, monkeypatch,
                                                                       capsys):
    """The device runs out of memory in the second window (on a GPU, Blender's own use of it
    can do that): one line says what to do, the finished frames stay, and a second run goes on."""
    import torch

    import engine.pipeline as pipeline
    from engine import cli

    real_window, calls = pipeline.Sketcher.window, []

    def window(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_window(self, *a, **k)

    monkeypatch.setattr(pipeline.Sketcher, "window", window)
    monkeypatch.setattr(cli.StopFlag, "install", lambda self: None)      # keep pytest's Ctrl-C
    out = tmp_path / "out"
    args = ["sketch", disc_clip["video"], "--out", str(out), "--mask", disc_clip["mask"], "--preset", "fast",
            "--strokes", "4", "--seeds", "1", "--progress", "json", "--no-preview"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dynasketch: error: out of memory on this computer")
    assert "run the same command again" in err[0]
    kept = json.loads((out / "sketch.json").read_text())
    assert not kept["complete"] and 1 < len(kept["frames"]) < 12

    monkeypatch.setattr(pipeline.Sketcher, "window", real_window)
    assert cli.main(args) == 0
    final = json.loads((out / "sketch.json").read_text())
    assert final["complete"] and [f["index"] for f in final["frames"]] == list(range(12))
    assert final["frames"][:len(kept["frames"])] == kept["frames"]
