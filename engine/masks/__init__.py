"""Masks: which pixels of each frame are the subject.

A masker is called once per frame, in order: ``masker(index, rgb, alpha)`` returns an
``(H, W) float32`` mask in [0, 1] (1 = subject) or ``None`` for "the whole frame".

* ``files``: the clip's alpha channel, a mask video or image sequence, or no mask.
* ``isnet``, ``inspyrenet``: the salient-object networks on the whole frame; ``cache`` keeps
  their masks per clip.
* ``subject``: the subject the artist boxed (``--subject``), followed and masked on a crop.
* ``trust``: a network's mask that jumps or scatters is flagged and the carried one held.
* ``flow``: the optical flow that carries masks and boxes from frame to frame.
* ``choose``: which of them runs (``--mask``, ``--subject``).
"""
from .choose import build_masker, choose_masker, require_masker_weights  # noqa: F401
from .files import MODES, mask_file_identity  # noqa: F401
