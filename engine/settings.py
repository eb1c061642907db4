"""Every option of a sketch run, with the presets that fill in the optimisation budget."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from .errors import EngineError

PRESETS = {
    # steps on the first keyframe, steps per later frame (frames are optimised in windows),
    # steps of a window's second pass after re-seeding what it knotted (0: no second pass)
    "fast": dict(keyframe_steps=80, frame_steps=15, reinit_steps=30, repair_steps=0),
    "default": dict(keyframe_steps=300, frame_steps=40, reinit_steps=80, repair_steps=20),
    # the reference implementation's budget: 2000 steps per seed, 500 per later keyframe
    "paper": dict(keyframe_steps=2000, frame_steps=500, reinit_steps=500, repair_steps=250, window=16),
}


@dataclass
class Settings:
    strokes: int = 16
    width: float = 1.5              # canvas pixels on the 224 canvas
    seeds: int = 3
    preset: str = "default"
    temporal: bool = True
    canvas: int = 224
    framing: str = "subject"        # subject: the canvas follows the mask (canvas.SubjectFraming); frame
    segments: int = 1               # cubic segments per stroke
    mask: str = "auto"
    mask_start_number: int | None = None   # a mask image pattern's first image (--mask-start-number)
    subject: list = field(default_factory=list)   # --subject boxes "X,Y,W,H@FRAME" (masks.subject)
    device: str = "auto"
    seed: int = 0
    # optimisation budget (from the preset unless given)
    keyframe_steps: int = 300
    frame_steps: int = 40
    reinit_steps: int = 80
    window: int = 8                 # later frames optimised together
    repair_steps: int = 20          # a window's second pass (temporal/checks.knotted), 0: none
    keyframe_lr: float = 1.0        # Adam step, canvas pixels
    frame_lr: float = 0.4           # later frames with the chamfer guidance (CLIP: keyframe_lr)
    # with the chamfer guidance: each stroke keeps its keyframe length (losses.length_loss)
    anchor_weight: float = 2.0
    coverage_weight: float = 0.3    # ... and the strokes cover the silhouette (losses.coverage_loss)
    overlap_weight: float = 0.5     # ... and no two strokes draw one line (losses.overlap_loss)
    reseed_distance: float = 0.025  # re-seed a stroke further than this (x subject diagonal) off the lines
    # temporal terms (squared with the chamfer guidance; distances with CLIP, as DynaSketch:
    # optimise.StrokeOptimiser.window)
    track_points: int = 8           # points sampled along each stroke for the track term
    track_grid: int = 40            # a grid of N x N points inside the mask is tracked
    track_weight: float = 0.02
    shape_weight: float = 0.05
    group_weight: float = 0.02
    touch: float = 10.0             # strokes closer than this (canvas px at 224) form a group
    lost_fraction: float = 0.5      # re-initialise a stroke when more of its points are lost
    # which backend runs each stage ("auto" picks)
    guidance: str = "auto"
    saliency: str = "auto"
    tracker: str = "auto"
    backends: dict = field(default_factory=dict)

    @classmethod
    def from_preset(cls, preset: str = "default", **overrides) -> "Settings":
        if preset not in PRESETS:
            raise EngineError(f"--preset {preset!r}: choose one of {', '.join(PRESETS)}")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in overrides.items() if k in known and v is not None}
        settings = cls(preset=preset, **{**PRESETS[preset], **values})
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.strokes <= 0:
            raise EngineError(f"--strokes {self.strokes}: needs at least 1 stroke (16 is the default)")
        if self.strokes > 1024:
            raise EngineError(f"--strokes {self.strokes}: at most 1024 strokes")
        if not self.width > 0:
            raise EngineError(f"--width {self.width}: the stroke width must be above 0 (1.5 is the default)")
        if self.seeds <= 0:
            raise EngineError(f"--seeds {self.seeds}: needs at least 1 seed (3 is the default)")
        if self.framing not in ("subject", "frame"):
            raise EngineError(f"--framing {self.framing!r}: choose subject or frame")
        if self.canvas < 32:
            raise EngineError(f"--canvas {self.canvas}: the canvas must be at least 32 pixels")

    def fingerprint(self, source: str, frames: list[int]) -> dict:
        """What must match for a run to resume another one's output."""
        keep = {k: v for k, v in asdict(self).items() if k not in ("device", "backends")}
        return {"source": source, "frames": frames, **keep}

    def as_dict(self) -> dict:
        return asdict(self)
