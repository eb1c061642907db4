"""The artist picks the subject on real footage with two subjects (../shared/clips/dog.mp4: a
woman and a dog; skipped without it): a box on one sketches that one, measured against the
reference masks checked by eye (bench/references/dog.json), with the real ISNet network."""
import json

import numpy as np
import pytest

from bench import metrics, references
from media import shared_clip
from test_cli import dynasketch

FRAMES = 16


@pytest.fixture(scope="module")
def dog(tmp_path_factory):
    shared_clip("dog.mp4")
    folder = tmp_path_factory.mktemp("dog-reference")
    return {case["subject"]: dict(case, mask=references.mask_video(case, str(folder), FRAMES))
            for case in references.cases() if case.get("reference") == "dog"}


def test_the_reference_masks_are_the_woman_and_the_dog(dog):
    """Pinned as checked by eye: two subjects side by side on frame 0, the woman on the left,
    apart from each other, each a plausible share of the frame on every frame."""
    ref = references.load("dog")
    woman, pet = ref["subjects"]["woman"]["masks"][:FRAMES], ref["subjects"]["dog"]["masks"][:FRAMES]
    assert woman.shape == (FRAMES, 720, 1280)
    assert all(0.03 < m.mean() < 0.15 for m in woman) and all(0.01 < m.mean() < 0.1 for m in pet)
    assert np.nonzero(woman[0])[1].mean() < np.nonzero(pet[0])[1].mean()
    assert max((w & d).sum() for w, d in zip(woman, pet)) < 50            # a few pixels where they touch


@pytest.mark.parametrize("chosen, other", [("dog", "woman"), ("woman", "dog")])
def test_a_box_on_one_subject_sketches_that_one(dog, setup_isnet, tmp_path, chosen, other):
    home = tmp_path / "models"
    home.mkdir()
    (home / setup_isnet.rsplit("/", 1)[1]).symlink_to(setup_isnet)
    out = tmp_path / "out"
    result = dynasketch("sketch", dog[chosen]["clip"], "--out", out, "--frames", f"0:{FRAMES}",
                        "--subject", dog[chosen]["box"], "--preset", "fast", "--seeds", 1, "--no-preview",
                        "--progress", "none", env={"DYNASKETCH_HOME": str(home)}, timeout=900)
    assert result.returncode == 0, result.stderr
    sketch = json.loads((out / "sketch.json").read_text())
    assert sketch["settings"]["backends"]["mask"] == "isnet-subject"
    assert metrics.ink_on_subject(sketch, dog[chosen]["mask"]) >= 0.9
    assert metrics.ink_on_subject(sketch, dog[other]["mask"]) <= 0.1
