"""CLIP ViT saliency (attention rollout) through the engine's CLIP loader, on a small random
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
