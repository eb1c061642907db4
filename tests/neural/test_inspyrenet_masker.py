"""InSPyReNet masking through transparent-background's Remover, on randomly initialised
weights of the real architecture saved as a checkpoint, with the per-clip mask cache."""
import dataclasses
import hashlib
import os
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
import torch

pytest.importorskip("transparent_background")

from engine import models  # noqa: E402
from engine.masks import build_masker  # noqa: E402
from engine.errors import EngineError  # noqa: E402
from engine.video import FrameRange, open_video  # noqa: E402
from media import moving_disc, write_video  # noqa: E402


@pytest.fixture(scope="module")
def model_home(tmp_path_factory):
    """A model folder holding a random InSPyReNet (SwinB) checkpoint as ckpt_fast.pth."""
    from transparent_background.InSPyReNet import InSPyReNet_SwinB

    torch.manual_seed(0)
    net = InSPyReNet_SwinB(depth=64, pretrained=False, base_size=[384, 384], threshold=None)
    home = tmp_path_factory.mktemp("models")
    torch.save(net.state_dict(), home / "ckpt_fast.pth")
    return home


def use_model_folder(monkeypatch, folder):
    """The engine's model folder is ``folder``, and the table's md5 is its random checkpoint's."""
    monkeypatch.setenv("DYNASKETCH_HOME", str(folder))
    md5 = hashlib.md5((folder / "ckpt_fast.pth").read_bytes()).hexdigest()
    monkeypatch.setitem(models.MODELS, "inspyrenet-fast",
                        dataclasses.replace(models.MODELS["inspyrenet-fast"], md5=md5))


def test_masks_come_from_the_network_and_are_cached(model_home, tmp_path, monkeypatch, device):
    use_model_folder(monkeypatch, model_home)
    frames, _ = moving_disc(t_len=3)
    clip = open_video(write_video(str(tmp_path / "disc.mp4"), frames))
    rng = FrameRange(0, 3)

    masker = build_masker("inspyrenet-fast", clip, rng, device)
    assert masker.name == "inspyrenet"
    first = [masker(i, rgb, a) for i, rgb, a in clip.frames(rng)]
    assert all(m.shape == (96, 128) and set(np.unique(m)) <= {0.0, 1.0} for m in first)
    assert os.path.exists(masker.cache.path)
    assert not [f for f in os.listdir(os.path.dirname(masker.cache.path)) if f.endswith(".part.mkv")]
    assert os.path.isdir(model_home / "transparent-background")           # its config went here

    again = build_masker("inspyrenet-fast", clip, rng, torch.device("cpu"))
    assert again.name == "inspyrenet (cached)"
    second = [again(i, rgb, a) for i, rgb, a in clip.frames(rng)]
    assert again.remover is None                                         # the network never ran
    assert all(np.array_equal(a, b) for a, b in zip(first, second))

    # The footage re-exported to the same path, same size and length: its masks are made anew.
    before = os.stat(clip.info.path).st_mtime_ns
    frames, _ = moving_disc(t_len=3, radius=10)
    clip = open_video(write_video(clip.info.path, frames))
    os.utime(clip.info.path, ns=(before + 10**9, before + 10**9))
    replaced = build_masker("inspyrenet-fast", clip, rng, torch.device("cpu"))
    assert replaced.name == "inspyrenet" and replaced.cache.path != masker.cache.path


@pytest.fixture
def read_only_models(model_home, tmp_path):
    """A read-only copy of the model folder holding only the weights, as a studio shares them
    (a read-only bind mount: needs root, skipped elsewhere)."""
    weights, shared = tmp_path / "weights", tmp_path / "shared-models"
    weights.mkdir()
    shared.mkdir()
    shutil.copy(model_home / "ckpt_fast.pth", weights)
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "--bind", str(weights), str(shared)],
                                                   capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("a read-only bind mount needs root")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(shared)], check=True, capture_output=True)
        yield shared
    finally:
        subprocess.run(["umount", "-l", str(shared)], check=False)


def test_a_read_only_model_folder_keeps_the_mask_cache_in_the_temporary_folder(read_only_models, tmp_path,
                                                                                monkeypatch):
    use_model_folder(monkeypatch, read_only_models)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    frames, _ = moving_disc(t_len=2)
    clip = open_video(write_video(str(tmp_path / "disc.mp4"), frames))
    rng = FrameRange(0, 2)
    masker = build_masker("inspyrenet-fast", clip, rng, torch.device("cpu"))
    masks = [masker(i, rgb, a) for i, rgb, a in clip.frames(rng)]
    assert masker.cache.path.startswith(str(tmp_path / "tmp" / "dynasketch-")) and os.path.exists(masker.cache.path)
    assert os.listdir(read_only_models) == ["ckpt_fast.pth"]                # nothing written there
    again = build_masker("inspyrenet-fast", clip, rng, torch.device("cpu"))
    assert again.name == "inspyrenet (cached)"
    assert all(np.array_equal(m, again(i, rgb, a)) for m, (i, rgb, a) in zip(masks, clip.frames(rng)))


def test_missing_weights_name_the_download_command(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNASKETCH_HOME", str(tmp_path))
    frames, _ = moving_disc(t_len=2)
    clip = open_video(write_video(str(tmp_path / "disc.mp4"), frames))
    with pytest.raises(EngineError, match="dynasketch models download inspyrenet-base"):
        build_masker("inspyrenet", clip, FrameRange(0, 2), torch.device("cpu"))
    assert build_masker("auto", clip, FrameRange(0, 2), torch.device("cpu")).name == "none"


def test_masks_are_the_removers_own_thresholded_map(model_home, tmp_path, device):
    """``segment`` skips the Remover's full-size post-processing, not its result."""
    from engine.masks.inspyrenet import load_remover, segment

    remover = load_remover(str(model_home / "ckpt_fast.pth"), "fast", device, str(tmp_path / "tb"))
    network, outputs = remover.model, {}                # the network runs once per image
    remover.model = lambda x: outputs.setdefault(x.cpu().numpy().tobytes(), network(x))
    frames, _ = moving_disc(t_len=2, size=(120, 200))
    noise = np.random.default_rng(0).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    masks = []
    for rgb in [*frames, noise]:
        mask = segment(remover, rgb)
        expected = np.asarray(remover.process(rgb, type="map", threshold=0.5))[..., 0]
        assert mask.shape == rgb.shape[:2] and mask.dtype == np.uint8
        assert np.array_equal(mask, expected)
        masks.append(mask)
    coverage = np.mean([m.mean() / 255 for m in masks])
    assert 0.0 < coverage < 1.0                         # a mask with both sides to compare
