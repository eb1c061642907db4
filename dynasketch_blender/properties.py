"""Scene properties: the sketch settings shown in the sidebar, and the job's live status."""
from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

PRESETS = [("fast", "Fast", "Few optimisation steps: a quick look"),
           ("default", "Default", "Balanced quality and time"),
           ("paper", "Paper", "The paper's budget; slow without a GPU")]
MASKS = [("auto", "Auto", "The clip's alpha channel, or a neural masker when installed"),
         ("none", "None", "Sketch the whole frame"),
         ("file", "Mask File", "A mask video or image sequence, white = subject")]
DEVICES = [("auto", "Auto", "The GPU when there is one"), ("cpu", "CPU", ""), ("cuda", "CUDA GPU", "")]
BACKGROUNDS = [("paper", "Paper", "Strokes on white"),
               ("footage", "Footage", "Strokes over the clip"),
               ("transparent", "Transparent", "Strokes on a transparent background")]


class DynaSketchSettings(bpy.types.PropertyGroup):
    strokes: IntProperty(name="Strokes", default=16, min=1, max=256,
                         description="Strokes per frame: fewer strokes, more abstraction")
    width: FloatProperty(name="Width", default=1.5, min=0.1, max=20.0,
                         description="Stroke width in pixels of the 224 px working canvas")
    preset: EnumProperty(name="Preset", items=PRESETS, default="default")
    use_source_range: BoolProperty(name="Whole Clip", default=True,
                                   description="Sketch every frame the clip or strip shows")
    frame_start: IntProperty(name="Start", default=1, description="First scene frame to sketch")
    frame_end: IntProperty(name="End", default=250, description="Last scene frame to sketch")
    frame_step: IntProperty(name="Step", default=1, min=1, description="Sketch every n-th frame")
    mask_mode: EnumProperty(name="Mask", items=MASKS, default="auto")
    mask_path: StringProperty(name="Mask File", subtype="FILE_PATH")
    seeds: IntProperty(name="Seeds", default=3, min=1, max=16,
                       description="Tries for the first frame; the best is kept")
    device: EnumProperty(name="Device", items=DEVICES, default="auto")
    target_name: StringProperty(name="Object", default="",
                                description="Name of the Grease Pencil object (empty: after the clip)")
    background: EnumProperty(name="Background", items=BACKGROUNDS, default="paper")
    match_scene: BoolProperty(name="Match Scene to Clip", default=True,
                              description="Set the scene's frame rate, resolution and range from the clip")
    # live status of the running job (written by the operator, read by the panels)
    running: BoolProperty(default=False, options={"SKIP_SAVE"})
    progress: FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR", options={"SKIP_SAVE"})
    status: StringProperty(default="")
    log_path: StringProperty(default="")


def register() -> None:
    bpy.utils.register_class(DynaSketchSettings)
    bpy.types.Scene.dynasketch = bpy.props.PointerProperty(type=DynaSketchSettings)


def unregister() -> None:
    del bpy.types.Scene.dynasketch
    bpy.utils.unregister_class(DynaSketchSettings)
