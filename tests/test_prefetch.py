"""Decoding and masking ahead of the optimiser: same frames, in order, errors where they
belong, a thread that stops when the run does, and no masking again on resume."""
import threading
import time

import numpy as np
import pytest
import torch

from engine.canvas import SubjectFraming
from engine.errors import EngineError, Interrupted
from engine.masks.files import MaskFileMasker
from engine.pipeline import CanvasFrames
from engine.prefetch import Prefetcher
from engine.video import FrameRange, open_video


def wait_for(condition, seconds=10.0):
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        time.sleep(0.01)
    return condition()


def test_items_are_produced_ahead_in_order_and_no_further_than_asked():
    made = []

    def items():
        for i in range(20):
            made.append(i)
            yield i

    with Prefetcher(items(), ahead=4) as ahead:
        assert next(ahead) == 0
        # while the consumer is busy, the next items are produced: up to 4 waiting in the
        # queue and one more in hand
        assert wait_for(lambda: len(made) >= 5)
        time.sleep(0.2)
        assert len(made) <= 6
        assert list(ahead) == list(range(1, 20))


def test_a_producer_error_is_raised_where_its_item_would_come():
    def items():
        yield "a"
        yield "b"
        raise EngineError("mask frame 2 does not line up")

    ahead = Prefetcher(items(), ahead=8)
    assert next(ahead) == "a" and next(ahead) == "b"
    with pytest.raises(EngineError, match="does not line up"):
        next(ahead)
    with pytest.raises(StopIteration):
        next(ahead)
    assert not ahead.thread.is_alive()


def test_close_stops_the_thread_and_closes_the_source():
    closed = threading.Event()

    def endless():
        try:
            while True:
                yield np.zeros(3)
        finally:
            closed.set()

    ahead = Prefetcher(endless(), ahead=2)
    next(ahead)
    ahead.close()
    assert not ahead.thread.is_alive() and closed.is_set()


def test_canvas_frames_ahead_give_the_frames_and_masks_of_the_plain_stream(disc_clip, device):
    source = open_video(disc_clip["video"])
    rng = FrameRange(0, source.info.frame_count)
    def frames(ahead):
        masker = MaskFileMasker(disc_clip["mask"], source.info, rng)
        framing = SubjectFraming(source.info.width, source.info.height, 64)
        return list(CanvasFrames(source, rng, masker, framing, device, ahead=ahead))

    plain, early = frames(0), frames(5)
    assert [f.index for f in early] == [f.index for f in plain] == list(range(source.info.frame_count))
    for a, b in zip(plain, early):
        assert a.box == b.box and torch.equal(a.image, b.image) and torch.equal(a.mask, b.mask)
        assert np.array_equal(a.track_image, b.track_image)
        assert a.mask.sum() > 0


def test_a_stop_ends_the_stream_and_its_thread(disc_clip):
    source = open_video(disc_clip["video"])
    rng = FrameRange(0, source.info.frame_count)
    framing = SubjectFraming(source.info.width, source.info.height, 64)
    stop = threading.Event()
    before = threading.active_count()
    stream = CanvasFrames(source, rng, MaskFileMasker(disc_clip["mask"], source.info, rng), framing,
                           torch.device("cpu"), stop.is_set, ahead=3)
    next(stream)
    stop.set()
    with pytest.raises(Interrupted):
        next(stream)
    assert wait_for(lambda: threading.active_count() == before)


def test_a_resumed_run_decodes_and_masks_only_what_it_still_needs(disc_clip, tmp_path, monkeypatch):
    """After a stop, the same command goes on from the last finished frame: frames already
    sketched are not masked again (a neural masker costs seconds a frame on a CPU)."""
    import json

    import engine.pipeline as pipeline
    from engine.pipeline import Job, run_sketch
    from engine.progress import Progress
    from engine.settings import Settings

    masked: list[list[int]] = []
    real_build = pipeline.build_masker

    def counting_masker(*args):
        masker, calls = real_build(*args), []
        masked.append(calls)

        class Counting:
            name = masker.name

            def __call__(self, index, rgb, alpha):
                calls.append(index)
                return masker(index, rgb, alpha)
        return Counting()

    monkeypatch.setattr(pipeline, "build_masker", counting_masker)

    class Counted(Progress):
        done = 0

        def stage(self, stage, done, total, message=""):
            Counted.done = done

    def job():
        settings = Settings.from_preset("fast", mask=disc_clip["mask"], strokes=4, seeds=1, window=4)
        return Job(disc_clip["video"], str(tmp_path / "out"), settings, preview=False)

    with pytest.raises(Interrupted):
        run_sketch(job(), Counted(), should_stop=lambda: Counted.done >= 5)
    finished = json.loads((tmp_path / "out" / "sketch.json").read_text())["frames"]
    last = finished[-1]["index"]
    assert 0 < len(finished) < 12
    run_sketch(job(), Progress())
    assert masked[1] == list(range(last, 12))          # from the last finished frame, once each
    sketch = json.loads((tmp_path / "out" / "sketch.json").read_text())
    assert [f["index"] for f in sketch["frames"]] == list(range(12))
    assert sketch["frames"][:len(finished)] == finished


def slow_masker_run(disc_clip, tmp_path, monkeypatch, seconds_per_mask: float, should_stop=lambda: False,
                    **settings):
    """run_sketch on the disc clip with a masker that records when it is called and takes
    ``seconds_per_mask`` a frame (a neural masker on a CPU takes seconds)."""
    import engine.pipeline as pipeline
    from engine.pipeline import Job, run_sketch
    from engine.progress import Progress
    from engine.settings import Settings

    real_build = pipeline.build_masker
    calls: list[int] = []

    def slow(*args):
        masker = real_build(*args)

        class Slow:
            name = masker.name

            def __call__(self, index, rgb, alpha):
                calls.append(index)
                time.sleep(seconds_per_mask)
                return masker(index, rgb, alpha)
        return Slow()

    monkeypatch.setattr(pipeline, "build_masker", slow)
    s = Settings.from_preset("fast", mask=disc_clip["mask"], strokes=4, seeds=1, window=4, **settings)
    return calls, lambda: run_sketch(Job(disc_clip["video"], str(tmp_path / "out"), s, preview=False),
                                     Progress(), should_stop)


def test_masking_starts_while_the_models_load(disc_clip, tmp_path, monkeypatch):
    """The first frames are masked while the tracker and the loss load, not after."""
    import engine.pipeline as pipeline

    calls, run = slow_masker_run(disc_clip, tmp_path, monkeypatch, 0.0)
    real_init = pipeline.Sketcher.__init__
    masked_during_load = []

    def loading(self, *a, **k):                  # a model load that takes a while
        masked_during_load.append(wait_for(lambda: len(calls) >= 2, seconds=10.0))
        real_init(self, *a, **k)

    monkeypatch.setattr(pipeline.Sketcher, "__init__", loading)
    run()
    assert masked_during_load == [True]
    assert sorted(calls) == calls == list(range(12))


def test_a_model_that_fails_to_load_does_not_wait_for_the_mask_at_hand(disc_clip, tmp_path,
                                                                        monkeypatch):
    """CLIP guidance asked for without its weights: the error comes at once, though the
    masker is 10 s into a frame, and the output folder holds nothing half-made."""
    monkeypatch.setenv("DYNASKETCH_HOME", str(tmp_path / "no-models"))
    calls, run = slow_masker_run(disc_clip, tmp_path, monkeypatch, 10.0, guidance="clip")
    start = time.monotonic()
    with pytest.raises(EngineError, match="dynasketch models download clip-rn101"):
        run()
    assert time.monotonic() - start < 8.0 and calls == [0]     # not after the 10 s frame
    assert not (tmp_path / "out" / "sketch.json").exists()


def test_a_stop_does_not_wait_for_the_frame_being_masked(disc_clip, tmp_path, monkeypatch):
    """Ctrl-C while the first frame takes 10 s to mask: the run stops within a second or two."""
    masking: list[list[int]] = []                 # the masker's calls, once it exists
    calls, run = slow_masker_run(disc_clip, tmp_path, monkeypatch, 10.0,
                                 should_stop=lambda: bool(masking and masking[0]))
    masking.append(calls)
    start = time.monotonic()
    with pytest.raises(Interrupted):
        run()
    assert time.monotonic() - start < 8.0 and calls == [0]     # not after the 10 s frame
