"""Download Models in the add-on's preferences: the real engine's `models download` against a
local server standing in for a mirror (DYNASKETCH_MODEL_MIRROR), into the Model Folder."""
import time

import pytest
from helpers import RecordingLayout, WithLayout
from model_server import PAYLOAD, serving


@pytest.fixture
def mirror(monkeypatch):
    with serving() as url:
        monkeypatch.setenv("DYNASKETCH_MODEL_MIRROR", f"{url}/mirror")
        yield url


def prefs_with_models(prefs, folder, names):
    prefs.model_dir, prefs.download_models = str(folder), set(names)
    return prefs


def test_download_models_fills_the_model_folder(blender, prefs, engine_cli, mirror, tmp_path):
    bpy = blender
    prefs_with_models(prefs, tmp_path / "models", {"cotracker3-offline"})
    prefs.doctor_report = "cotracker3-offline: missing"                # what Check Engine said before
    assert bpy.ops.dynasketch.download_models() == {"FINISHED"}
    assert (tmp_path / "models" / "scaled_offline.pth").read_bytes() == PAYLOAD
    status = bpy.context.window_manager.dynasketch_download
    assert not status.running and not status.failed and status.progress == 1.0
    assert status.status == f"Downloaded cotracker3-offline into {tmp_path / 'models'}"
    assert prefs.doctor_report == ""                                   # no longer true


def test_a_corrupt_download_is_one_line_and_keeps_nothing(blender, prefs, engine_cli, mirror, tmp_path):
    bpy = blender
    prefs_with_models(prefs, tmp_path / "models", {"clip-rn101"})       # the table's checksum won't match
    with pytest.raises(RuntimeError):
        bpy.ops.dynasketch.download_models()
    status = bpy.context.window_manager.dynasketch_download
    assert status.failed and not status.running
    assert status.status.startswith("Download failed: download of clip-rn101 is corrupt")
    assert "\n" not in status.status and "Traceback" not in status.status
    assert not list((tmp_path / "models").iterdir())


def test_a_model_folder_that_cannot_be_made_says_which_preference_to_change(blender, prefs, engine_cli,
                                                                          mirror, tmp_path):
    bpy = blender
    (tmp_path / "a-file").write_text("not a folder")
    prefs_with_models(prefs, tmp_path / "a-file" / "models", {"cotracker3-offline"})
    with pytest.raises(RuntimeError):
        bpy.ops.dynasketch.download_models()
    status = bpy.context.window_manager.dynasketch_download
    assert status.failed and not status.running
    assert status.status == (f"Download failed: cannot create the model folder {tmp_path / 'a-file' / 'models'} "
                             "(Not a directory); set the Model Folder (preferences) to a folder you can write to")


def test_nothing_is_downloaded_while_blenders_online_access_is_off(blender, prefs, engine_cli, mirror, tmp_path):
    bpy = blender
    prefs_with_models(prefs, tmp_path / "models", {"cotracker3-offline"})
    bpy.context.preferences.system.use_online_access = False
    with pytest.raises(RuntimeError, match="online access is off"):
        bpy.ops.dynasketch.download_models()
    assert bpy.context.window_manager.dynasketch_download.failed
    assert not (tmp_path / "models").exists()


def test_cancel_stops_the_download_and_the_next_one_resumes(blender, engine_cli, tmp_path, monkeypatch):
    from dynasketch_blender import engine_process, model_download, operators

    with serving() as url:
        monkeypatch.setenv("DYNASKETCH_MODEL_MIRROR", f"{url}/slow")
        job = model_download.ModelDownload(operators.engine_command(blender.context), ["cotracker3-offline"],
                                           str(tmp_path))
        assert job.start() == engine_process.RUNNING
        deadline = time.monotonic() + 60
        while job.step() == engine_process.RUNNING and job.progress == 0.0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert 0.0 < job.progress < 1.0 and job.message.startswith("scaled_offline.pth (1 of 1): ")
        began = time.monotonic()
        job.cancel()
        assert time.monotonic() - began < 3 and job.state == engine_process.CANCELLED
        assert job.process.returncode() is not None
        had = (tmp_path / "scaled_offline.pth.part").stat().st_size
        assert 0 < had < len(PAYLOAD)

        monkeypatch.setenv("DYNASKETCH_MODEL_MIRROR", url)
        again = model_download.ModelDownload(operators.engine_command(blender.context), ["cotracker3-offline"],
                                             str(tmp_path))
        again.start()
        while again.step() == engine_process.RUNNING:
            time.sleep(0.05)
        assert again.state == engine_process.DONE, again.error
        assert (tmp_path / "scaled_offline.pth").read_bytes() == PAYLOAD


def test_check_engine_reads_the_model_folder_of_the_preferences(blender, prefs, engine_cli, tmp_path):
    bpy = blender
    prefs_with_models(prefs, tmp_path / "mine", set())
    bpy.ops.dynasketch.check_engine()
    assert str(tmp_path / "mine" / "RN101.pt") in prefs.doctor_report, prefs.doctor_report


def test_the_preferences_show_the_download_and_its_progress(blender, prefs):
    bpy = blender
    status = bpy.context.window_manager.dynasketch_download
    for running, expected in [(False, ("operator", "dynasketch.download_models")),
                              (True, ("progress", 0.4, "ViT-B-32.pt (2 of 4): 40 of 338 MB"))]:
        status.running, status.progress, status.status = running, 0.4, "ViT-B-32.pt (2 of 4): 40 of 338 MB"
        drawn = []
        type(prefs).draw(WithLayout(prefs, RecordingLayout(bpy, drawn)), bpy.context)
        assert ("prop", "download_models") in drawn and expected in drawn
        assert (("operator", "dynasketch.cancel_download") in drawn) == running


def test_a_download_stopped_by_opening_a_file_does_not_look_busy(blender, prefs):
    """Opening a file ends the modal Download Models (its cancel() stops the engine); the
    preferences then say so instead of showing a bar that never moves."""
    from dynasketch_blender import properties

    status = blender.context.window_manager.dynasketch_download
    status.running, status.status = True, "ViT-B-32.pt (2 of 4)"
    properties._after_load(None)                        # Blender's load_post
    assert not status.running
    assert status.status == "The download stopped when a file was opened (Download Models resumes it)"
