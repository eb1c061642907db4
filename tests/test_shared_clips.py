"""On the real development clips in ../shared/clips (skipped when they are absent)."""
import json

from media import shared_clip
from test_cli import check_contract, dynasketch

from bench import metrics


def test_soapbox_is_coherent_and_on_the_subject(tmp_path):
    clip, mask = shared_clip("soapbox.mp4"), shared_clip("soapbox.mask.mp4")
    runs = {}
    for mode in ("temporal", "independent"):
        out = tmp_path / mode
        extra = ["--no-temporal"] if mode == "independent" else []
        result = dynasketch("sketch", clip, "--mask", mask, "--out", out, "--frames", "0:24",
                            "--preset", "fast", "--no-preview", *extra)
        assert result.returncode == 0, result.stderr
        runs[mode] = json.loads((out / "sketch.json").read_text())
    check_contract(runs["temporal"], 16, list(range(24)))
    assert metrics.jitter(runs["temporal"]) < 0.5 * metrics.jitter(runs["independent"])
    assert metrics.flicker(runs["temporal"]) < metrics.flicker(runs["independent"])
    assert metrics.ink_on_subject(runs["temporal"], mask) >= 0.9


def test_bmx_full_hd_is_fitted_without_cropping(tmp_path):
    clip = shared_clip("bmx-bumps.mp4")
    out = tmp_path / "bmx"
    result = dynasketch("sketch", clip, "--out", out, "--frames", "0:6", "--preset", "fast",
                        "--strokes", 8, "--seeds", 1, "--no-preview")
    assert result.returncode == 0, result.stderr
    sketch = json.loads((out / "sketch.json").read_text())
    assert (sketch["width"], sketch["height"]) == (1920, 1080)
    check_contract(sketch, 8, list(range(6)))
