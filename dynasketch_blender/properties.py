"""Scene properties: the sketch settings shown in the sidebar, and the job's live status; the
window manager's: the live status of a model download (never saved in a file)."""
from __future__ import annotations

import bpy
from bpy.app.handlers import persistent
from bpy.props import (BoolProperty, EnumProperty, FloatProperty, FloatVectorProperty, IntProperty, PointerProperty,
                       StringProperty)

from .styles import COLOURS, DEFAULT_STYLE, STYLES

PRESETS = [("fast", "Fast", "Few optimisation steps: a quick look"),
           ("default", "Default", "Balanced quality and time"),
           ("paper", "Paper", "The paper's budget; slow without a GPU")]
# The numbers are what a .blend file saves: the first three are those of files saved before
# Box and Blender Mask came.
MASKS = [("auto", "Auto", "The clip's alpha channel, else a masking network (InSPyReNet or ISNet) where its "
                          "weights are here", "", 0),
         ("box", "Box", "A box around the subject: a tracking marker's search area in the Clip Editor, one "
                        "box per keyframed marker; the masking network follows what is in it", "", 3),
         ("blender_mask", "Blender Mask", "A Mask drawn in the Clip Editor's Mask mode, rendered for each "
                                          "frame", "", 4),
         ("file", "Mask File", "A mask video or image sequence, white = subject", "", 2),
         ("none", "None", "Sketch the whole frame", "", 1)]
DEVICES = [("auto", "Auto", "The GPU when there is one (NVIDIA, else Apple)"), ("cpu", "CPU", "The processor"),
           ("cuda", "CUDA GPU", "An NVIDIA GPU"), ("mps", "Apple GPU", "The GPU of an Apple silicon Mac")]
BACKGROUNDS = [("paper", "Paper", "Strokes on white"),
               ("footage", "Footage", "Strokes over the clip"),
               ("transparent", "Transparent", "Strokes on a transparent background")]

# Settings the add-on preferences give defaults for (preference name = "default_" + name).
DEFAULTED = ("strokes", "width", "preset", "seeds", "device", "background")


def _is_grease_pencil(_settings, obj) -> bool:
    return obj.type == "GREASEPENCIL"


def _chosen(settings, _context) -> None:
    """A defaulted setting set by the user (or a script): the preferences' defaults must not
    replace it later."""
    settings.defaults_applied = True


class DynaSketchSettings(bpy.types.PropertyGroup):
    strokes: IntProperty(name="Strokes", default=16, min=1, max=256, update=_chosen,
                         description="Strokes per frame: fewer strokes, more abstraction")
    width: FloatProperty(name="Width", default=1.5, min=0.1, max=20.0, update=_chosen,
                         description="Stroke width in pixels of the 224 px working canvas")
    preset: EnumProperty(name="Preset", items=PRESETS, default="default", update=_chosen,
                         description="How long the engine optimises each frame")
    use_source_range: BoolProperty(name="Whole Clip", default=True,
                                   description="Sketch every frame the clip or strip shows")
    frame_start: IntProperty(name="Start", default=1, description="First scene frame to sketch")
    frame_end: IntProperty(name="End", default=250, description="Last scene frame to sketch")
    frame_step: IntProperty(name="Step", default=1, min=1, max=100,
                            description="Sketch every n-th frame (each keyframe holds until the next)")
    mask_mode: EnumProperty(name="Subject", items=MASKS, default="auto",
                            description="What the strokes draw: the subject, found by the engine or "
                                        "picked here, or the whole frame")
    subject_track: StringProperty(name="Track",
                                  description="The tracking track whose marker's search area frames the "
                                              "subject; each keyframed marker is a box on its frame "
                                              "(empty: the clip's active track)")
    subject_mask: PointerProperty(name="Mask", type=bpy.types.Mask,
                                  description="The Mask whose shapes cover the subject, rendered white on "
                                              "black for each frame sketched")
    mask_path: StringProperty(name="Mask File", subtype="FILE_PATH",
                              description="Mask video or image sequence with the clip's size and length. "
                                          "A numbered image is read with the images numbered after it, "
                                          "as a movie clip opened from it; an image on its own masks every frame")
    seeds: IntProperty(name="Seeds", default=3, min=1, max=16, update=_chosen,
                       description="Tries for the first frame; the best is kept")
    device: EnumProperty(name="Device", items=DEVICES, default="auto", update=_chosen,
                         description="Where the engine computes")
    target_object: PointerProperty(name="Target", type=bpy.types.Object, poll=_is_grease_pencil,
                                   description="Grease Pencil object whose \"Sketch\" layer receives the "
                                               "strokes (empty: a new object for the clip)")
    background: EnumProperty(name="Background", items=BACKGROUNDS, default="paper", update=_chosen,
                             description="What the render shows behind the strokes")
    match_scene: BoolProperty(name="Match Scene to Clip", default=True,
                              description="Set the scene's frame rate, resolution and range from the clip")
    style: EnumProperty(name="Style", items=STYLES, default=DEFAULT_STYLE,
                        description="The medium the strokes are drawn in (Apply Style changes a result's)")
    line_colour: EnumProperty(name="Line Colour", items=COLOURS, default="medium",
                              description="The colour of the lines")
    line_custom: FloatVectorProperty(name="Colour", subtype="COLOR", size=3, min=0.0, max=1.0,
                                     default=(0.8, 0.1, 0.1), description="The lines' colour")
    boil: BoolProperty(name="Boil", default=False,
                       description="Lines that wobble on 2s, as redrawn by hand each other frame (a Noise modifier)")
    defaults_applied: BoolProperty(default=False, options={"HIDDEN"})
    # live status of the running job (written by the operators, read by the panels)
    running: BoolProperty(default=False, options={"HIDDEN"})
    progress: FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR", options={"HIDDEN"})
    status: StringProperty(default="", options={"HIDDEN"})
    warning: StringProperty(default="", options={"HIDDEN"})        # the engine's latest warning event
    failed: BoolProperty(default=False, options={"HIDDEN"})
    log_path: StringProperty(default="", subtype="FILE_PATH", options={"HIDDEN"})


class DynaSketchDownload(bpy.types.PropertyGroup):
    """A model download's live status (written by the operators, read by the preferences)."""

    running: BoolProperty(default=False)
    progress: FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    status: StringProperty(default="")
    failed: BoolProperty(default=False)


class DynaSketchInstall(bpy.types.PropertyGroup):
    """Install Engine's live status (written by its operators, read by the preferences)."""

    running: BoolProperty(default=False)
    progress: FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    status: StringProperty(default="")
    last_line: StringProperty(default="")
    failed: BoolProperty(default=False)
    log_path: StringProperty(default="", subtype="FILE_PATH")


COMPUTE_BACKENDS = [("auto", "Auto", "Chosen from this machine: CUDA where an NVIDIA driver is found, the Apple "
                                     "GPU on Apple silicon, else the CPU"),
                    ("cuda", "NVIDIA CUDA", "PyTorch for NVIDIA GPUs (Linux and Windows)"),
                    ("cpu", "CPU", "PyTorch for the processor only (smaller)"),
                    ("mps", "Apple GPU", "PyTorch for Apple silicon Macs")]


def apply_defaults(settings, prefs, force: bool = False) -> None:
    """Copy the preferences' defaults into a scene's settings (once, or again on request)."""
    if prefs is None or (settings.defaults_applied and not force):
        return
    for name in DEFAULTED:
        setattr(settings, name, getattr(prefs, "default_" + name))
    settings.defaults_applied = True


@persistent
def _after_load(_dummy) -> None:
    """A file saved while a sketch ran must not look busy forever; nor must a download that
    opening this file stopped (``operators.EngineJobOperator.cancel``)."""
    from .operators import download_running
    from .preferences import preferences

    for scene in bpy.data.scenes:
        settings = scene.dynasketch
        if settings.running:
            settings.running, settings.status = False, "The sketch was interrupted (Sketch again resumes)"
    _give_defaults(preferences())
    wm = bpy.context.window_manager
    if wm is not None and wm.dynasketch_download.running and not download_running():
        wm.dynasketch_download.running = False
        wm.dynasketch_download.status = "The download stopped when a file was opened (Download Models resumes it)"


@persistent
def _new_scenes(_scene, _depsgraph) -> None:
    """A scene made during the session, or open when the add-on was enabled, takes the
    preferences' defaults on the first update that sees it (files take them on load)."""
    from .preferences import preferences

    _give_defaults(preferences())


def _give_defaults(prefs) -> None:
    """The preferences' defaults to every scene that has not had them (``apply_defaults``)."""
    for scene in bpy.data.scenes:
        apply_defaults(scene.dynasketch, prefs)


def register() -> None:
    bpy.utils.register_class(DynaSketchSettings)
    bpy.utils.register_class(DynaSketchDownload)
    bpy.utils.register_class(DynaSketchInstall)
    bpy.types.Scene.dynasketch = PointerProperty(type=DynaSketchSettings)
    bpy.types.WindowManager.dynasketch_download = PointerProperty(type=DynaSketchDownload)
    bpy.types.WindowManager.dynasketch_install = PointerProperty(type=DynaSketchInstall)
    bpy.app.handlers.load_post.append(_after_load)
    bpy.app.handlers.depsgraph_update_post.append(_new_scenes)


def unregister() -> None:
    if _new_scenes in bpy.app.handlers.depsgraph_update_post:
        bpy.app.handlers.depsgraph_update_post.remove(_new_scenes)
    if _after_load in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_after_load)
    del bpy.types.WindowManager.dynasketch_install
    del bpy.types.WindowManager.dynasketch_download
    del bpy.types.Scene.dynasketch
    bpy.utils.unregister_class(DynaSketchInstall)
    bpy.utils.unregister_class(DynaSketchDownload)
    bpy.utils.unregister_class(DynaSketchSettings)
