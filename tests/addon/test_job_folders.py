"""Remove Job Folders (the add-on's preferences) clears the job folders in the Work Folder,
but never a job an engine is writing, nor anything the add-on did not make. The folders of
footage saved again since go by themselves: test_sketch_with_engine.py."""
import os
import time

from test_sketch_with_engine import start_a_long_job


def fake_job(root, name, inputs):
    """A job folder as the add-on leaves one: its record, a sketch and a preview."""
    from dynasketch_blender import job_folders

    folder = root / name
    job_folders.write_record(str(folder), next(iter(inputs), ""), inputs)
    (folder / "sketch.json").write_text("{}")
    (folder / "preview.mp4").write_bytes(b"\0" * 200_000)
    return folder


def test_remove_job_folders_keeps_a_running_job_and_what_is_not_a_job(blender, prefs, engine_cli, tmp_path, capfd):
    bpy = blender
    from dynasketch_blender import sketch_job

    root = tmp_path / "work"
    prefs.work_dir = str(root)
    job, _ = start_a_long_job(bpy, tmp_path)
    try:
        assert os.path.dirname(job.out) == str(root)
        done = [fake_job(root, f"clip-{i}", {}) for i in range(2)]
        (root / "mine").mkdir()
        (root / "mine" / "keep.txt").write_text("keep me")
        (root / "list.txt").write_text("keep me too")

        assert bpy.ops.dynasketch.remove_job_folders() == {"FINISHED"}
        assert f"Removed 2 job folders (0.4 MB) from {root}; 1 in use kept" in capfd.readouterr().out
        assert not any(folder.exists() for folder in done)
        assert sorted(os.listdir(root)) == sorted(["list.txt", "mine", os.path.basename(job.out)])
        assert (root / "mine" / "keep.txt").read_text() == "keep me"
        time.sleep(0.5)
        assert job.step() == sketch_job.RUNNING                        # the running job goes on
    finally:
        job.cancel()
    # Once it has stopped, it goes too (a cancelled job only served a resume).
    assert bpy.ops.dynasketch.remove_job_folders() == {"FINISHED"}
    assert sorted(os.listdir(root)) == ["list.txt", "mine"]


def test_remove_job_folders_reports_what_it_freed(blender, prefs, tmp_path):
    from dynasketch_blender import job_folders

    root = tmp_path / "work"
    for i in range(3):
        fake_job(root, f"clip-{i}", {})
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    assert size > 600_000
    assert job_folders.remove_all(str(root)) == (3, size, 0)
    assert os.listdir(root) == []
