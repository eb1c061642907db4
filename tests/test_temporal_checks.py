"""The checks that decide which carried strokes are re-seeded (engine/temporal): knots,
strokes that grow faster than the subject, two strokes on one thin line, a stroke across
close lines."""
import numpy as np
import torch

from engine import bezier
from engine.lines import Lines
from engine.temporal import across, crossings, duplicates, lengthened, scaled_anchor
from engine.temporal.checks import CROSSED, TIPS, lengths


def lines_of(diagonal, count=1):
    image = np.zeros((224, 224), bool)
    return [Lines(image, subject=~image, diagonal=diagonal) for _ in range(count)]


def line(x0, y0, x1, y1):
    return torch.tensor([[x0, y0], [x0 + (x1 - x0) / 3, y0 + (y1 - y0) / 3],
                         [x0 + 2 * (x1 - x0) / 3, y0 + 2 * (y1 - y0) / 3], [x1, y1]], dtype=torch.float32)


def test_a_knot_is_found_and_lines_that_meet_or_lie_apart_are_not():
    wave = torch.tensor([[20.0, 110], [60, 40], [100, 160], [140, 90]])          # an S across y=100: 3 times
    apart = [line(20, 20, 140, 20), line(20, 60, 140, 60)]
    strokes = torch.stack([wave, line(10, 100, 150, 100), *apart])[None]          # (1, 4, 4, 2)
    count = crossings(strokes)[0]
    assert count[0] >= CROSSED and count[1] >= CROSSED                           # the knot, both ways
    assert count[2] == 0 and count[3] == 0
    loop = torch.tensor([[50.0, 50], [10, 120], [90, 120], [50, 50]])            # a closed mark
    assert crossings(loop[None, None])[0, 0] < CROSSED


def test_strokes_may_grow_with_the_subject_and_no_faster():
    stroke = line(0, 0, 50, 0)
    anchor, size = lengths(stroke[None]), torch.tensor([100.0])
    grown = (stroke * 2)[None, None]                                               # twice as long
    assert lengthened(grown, scaled_anchor(anchor, size, lines_of(100.0)))[0, 0]       # subject the same
    assert not lengthened(grown, scaled_anchor(anchor, size, lines_of(200.0)))[0, 0]   # subject grew 2x


def test_two_strokes_on_one_thin_line_are_one_too_many():
    leash = line(20, 100, 200, 100)
    along = line(40, 101, 150, 101)                                                # the same string
    beside = line(40, 140, 150, 140)
    found = duplicates(torch.stack([leash, along, beside])[None], lines_of(200.0))[0]
    assert found.tolist() == [False, True, False]


def test_a_stroke_across_close_lines_is_found_though_every_point_is_near_one():
    image = np.zeros((224, 224), bool)
    image[20:200, 40:180:8] = True                                                # hatching, 8 px apart
    hatching = [Lines(image, subject=np.ones_like(image), diagonal=200.0)]         # reach: 6 px
    samples = lambda stroke: bezier.evaluate_along(stroke[None, None], 8)          # noqa: E731
    along, across_them = line(48, 30, 48, 190), line(45, 100, 170, 120)
    assert not across(samples(along), hatching)[0, 0]
    assert across(samples(across_them), hatching)[0, 0]
    assert (hatching[0].distance()[100, 45:170] <= 6).all()                        # near a line everywhere


def test_strokes_that_meet_at_their_ends_are_no_knot_but_a_crossing_along_them_is():
    left, right = line(20, 20, 103, 200), line(180, 20, 97, 200)                   # a fan's two strings,
    strokes = torch.stack([left, right])[None]                                     # overlapping at the pilot
    assert crossings(strokes)[0].tolist() == [1, 1]
    assert crossings(strokes, ends=TIPS)[0].tolist() == [0, 0]
    knot = torch.stack([line(20, 20, 180, 200), line(180, 20, 20, 200)])[None]     # an X: crossing mid-way
    assert crossings(knot, ends=TIPS)[0].tolist() == [1, 1]


def test_after_optimising_a_string_drawn_twice_is_re_seeded_but_strings_that_met_before_are_not():
    """The window's second pass re-seeds a stroke the optimisation pulled onto another's line,
    and leaves two that already shared a line on the frame before the window (lines that
    converge, as a fan of strings at the pilot, are drawn so on every frame)."""
    from engine.temporal.checks import knotted

    hatch = np.zeros((224, 224), bool)
    hatch[100, 20:201] = hatch[140, 40:151] = True
    lines = [Lines(hatch, subject=np.ones_like(hatch), diagonal=200.0)]
    string, other = line(20, 100, 200, 100), line(40, 140, 150, 140)
    pulled = torch.stack([string, line(40, 101, 150, 101)])                      # now on one string
    samples = bezier.evaluate_along(pulled[None], 8)
    assert not knotted(samples, pulled[None], lines)[0].any()                   # on the lines, no knot
    found = knotted(samples, pulled[None], lines, duplicates(torch.stack([string, other])[None], lines))[0]
    assert found.tolist() == [False, True]
    shared = knotted(samples, pulled[None], lines, duplicates(pulled[None], lines))[0]    # as on the frame before
    assert not shared.any()
