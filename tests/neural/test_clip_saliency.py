"""CLIP ViT saliency (attention rollout) through the real open_clip loader, on a small random
ViT-B/32-family model saved as a checkpoint file."""
import pytest
import torch

open_clip = pytest.importorskip("open_clip")

from engine.neural.clip_saliency import ClipSaliency  # noqa: E402


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory):
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(0)
    model = CLIP(embed_dim=32, vision_cfg=CLIPVisionCfg(layers=2, width=64, patch_size=32, image_size=224),
                 text_cfg=CLIPTextCfg(context_length=77, vocab_size=1000, width=64, heads=1, layers=1),
                 quick_gelu=True)
    path = tmp_path_factory.mktemp("vit") / "ViT-B-32.pt"
    torch.save(model.state_dict(), path)
    return str(path)


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
