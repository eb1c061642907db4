"""CLIP ViT saliency (CLIPasso's class-token attention x XDoG lines) through the engine's CLIP loader, on a small random
ViT-B/32-family model saved as OpenAI releases CLIP."""
import pytest
import torch

open_clip = pytest.importorskip("open_clip")

from bench.checkpoints import SMALL_TEXT, clip_model, save_openai_clip  # noqa: E402
from engine.neural.clip_saliency import ClipSaliency  # noqa: E402


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory):
    """A 2-block ViT-B/32-family CLIP, written as OpenAI releases CLIP (TorchScript, fp16)."""
    model = clip_model(dict(layers=2, width=64, patch_size=32), embed_dim=32, text=SMALL_TEXT)
    return save_openai_clip(model, str(tmp_path_factory.mktemp("vit") / "ViT-B-32.pt"))


def test_rollout_relevance_and_saliency_map(tiny_vit, device):
    sal = ClipSaliency(tiny_vit, device)
    frames = torch.ones(2, 3, 224, 224, device=device)
    frames[:, :, 50:150, 100:110] = 0.0
    rel = sal.relevance(frames)
    assert rel.shape == (2, 7, 7) and (rel >= 0).all()
    mask = torch.zeros(2, 1, 224, 224, device=device)
    mask[:, :, 40:160, 90:120] = 1
    prob = sal(frames, mask).cpu()
    assert prob.shape == (2, 224, 224)
    assert torch.allclose(prob.flatten(1).sum(1), torch.ones(2), atol=1e-5)
    assert prob[:, :40].sum() == 0 and prob[:, :, :90].sum() == 0            # only inside the mask
    # the dark line (edges) draws more probability than flat paper inside the mask
    assert prob[0, 60:140, 98:112].mean() > prob[0, 60:140, 112:120].mean()


def test_weights_found_since_a_sketch_are_not_mixed_into_it(tiny_vit, tmp_path, monkeypatch):
    """`auto` took edges; ViT-B/32 weights arrive; the same job again is refused with what
    changed (a resume would mix two backends in one sketch); --overwrite sketches with CLIP."""
    import dataclasses
    import hashlib
    import json

    from engine import models
    from engine.errors import EngineError
    from engine.pipeline import Job, run_sketch
    from engine.progress import Progress
    from engine.sample import write_sample
    from engine.settings import Settings

    home = tmp_path / "models"
    home.mkdir()
    monkeypatch.setenv("DYNASKETCH_HOME", str(home))
    clip, mask = str(tmp_path / "walk.mp4"), str(tmp_path / "walk.mask.mp4")
    write_sample(clip, mask, frames=3, width=160, height=120)
    settings = dict(mask=mask, strokes=4, seeds=1, keyframe_steps=4, frame_steps=2, reinit_steps=2,
                    guidance="line", tracker="lucas-kanade", saliency="auto")
    out = tmp_path / "out"
    run_sketch(Job(clip, str(out), Settings.from_preset("fast", **settings), preview=False), Progress())
    first = (out / "sketch.json").read_bytes()
    assert json.loads(first)["settings"]["backends"]["saliency"] == "edges"

    (home / "ViT-B-32.pt").write_bytes(open(tiny_vit, "rb").read())
    digest = hashlib.sha256((home / "ViT-B-32.pt").read_bytes()).hexdigest()
    monkeypatch.setitem(models.MODELS, "clip-vit-b-32",
                        dataclasses.replace(models.MODELS["clip-vit-b-32"], sha256=digest))
    with pytest.raises(EngineError) as refused:
        run_sketch(Job(clip, str(out), Settings.from_preset("fast", **settings), preview=False), Progress())
    assert "made with saliency edges; this run would use saliency clip" in str(refused.value)
    assert "--overwrite" in str(refused.value)
    assert (out / "sketch.json").read_bytes() == first

    run_sketch(Job(clip, str(out), Settings.from_preset("fast", **settings), overwrite=True, preview=False),
               Progress())
    again = json.loads((out / "sketch.json").read_text())
    assert again["settings"]["backends"]["saliency"] == "clip-attention" and again["complete"]
    assert len(again["frames"]) == 3


def test_saliency_is_clipassos_start(tiny_vit):
    """The map is CLIPasso's: relevance upsampled bicubically and min-max normalised, times
    its binarised XDoG of the CLIP-normalised frame (scipy and scikit-image here, as the
    reference), times the mask, then a softmax at T = 0.3 over the positive pixels only."""
    import sys

    import numpy as np
    import torch.nn.functional as F

    sys.path.insert(0, __file__.rsplit("/neural/", 1)[0])
    from test_clipasso_reference import clip_normalised, reference_xdog, smooth_image

    sal = ClipSaliency(tiny_vit, "cpu")
    frames = torch.from_numpy(smooth_image(2)).permute(2, 0, 1)[None].float()
    mask = torch.zeros(1, 1, 224, 224)
    mask[..., 30:200, 40:190] = 1
    ours = sal(frames, mask)[0].numpy()

    on_white = frames * mask + 1 - mask                   # the subject on white, as the reference's
    rel = F.interpolate(sal.relevance(on_white)[:, None], size=(224, 224), mode="bicubic")[0, 0].numpy()
    rel = (rel - rel.min()) / (rel.max() - rel.min())
    on_white = on_white[0].permute(1, 2, 0).numpy().astype(np.float64)
    score = rel * reference_xdog(clip_normalised(on_white)) * mask[0, 0].numpy()
    expected = np.zeros_like(score)
    positive = score > 0
    expected[positive] = np.exp(score[positive] / 0.3) / np.exp(score[positive] / 0.3).sum()
    assert positive.mean() > 0.01
    assert (ours[~positive] == 0).mean() > 0.999           # no start off the salient lines
    assert np.abs(ours - expected).sum() < 0.01
