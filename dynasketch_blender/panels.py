"""Sidebar panels "DynaSketch" in the Clip Editor and the Sequencer. Layout only."""
from __future__ import annotations

import bpy

from . import source as sources
from . import subject


class DynaSketchPanel:
    bl_region_type = "UI"
    bl_category = "DynaSketch"

    @staticmethod
    def settings(context):
        return sources.settings_scene(context).dynasketch


class DynaSketchMainPanel(DynaSketchPanel):
    """Sketch / Cancel, the live progress, the last result or error, and the sketch settings."""

    bl_label = "DynaSketch"

    def draw_header_preset(self, context):
        self.layout.operator("dynasketch.reset_settings", text="", icon="LOOP_BACK", emboss=False)

    def draw(self, context):
        layout = self.layout
        settings = self.settings(context)
        if settings.running:
            layout.progress(factor=settings.progress, type="BAR", text=settings.status or "Working")
            layout.operator("dynasketch.cancel", icon="CANCEL")
            if settings.warning:
                layout.box().label(text=settings.warning, icon="ERROR")
        else:
            layout.label(text=sources.describe(context), icon="SEQUENCE" if context.space_data.type ==
                         "SEQUENCE_EDITOR" else "FILE_MOVIE")
            layout.operator("dynasketch.sketch", icon="OUTLINER_OB_GREASEPENCIL")
            if context.space_data.type == "SEQUENCE_EDITOR":
                layout.operator("dynasketch.sketch_strips", icon="SEQ_STRIP_DUPLICATE")
            if settings.status or settings.warning:
                box = layout.box()
                if settings.status:
                    box.label(text=settings.status, icon="ERROR" if settings.failed else "INFO")
                if settings.warning:
                    box.label(text=settings.warning, icon="ERROR")
                if settings.failed and settings.log_path:
                    box.label(text=f"Log: {settings.log_path}")

        layout = layout.column()
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.enabled = not settings.running
        col = layout.column(align=True)
        col.prop(settings, "strokes")
        col.prop(settings, "width")
        layout.prop(settings, "preset")
        col = layout.column(heading="Frames")
        col.prop(settings, "use_source_range")
        sub = col.column(align=True)
        sub.active = not settings.use_source_range
        sub.prop(settings, "frame_start")
        sub.prop(settings, "frame_end")
        col.prop(settings, "frame_step")
        layout.prop(settings, "mask_mode")
        if settings.mask_mode == "file":
            layout.prop(settings, "mask_path")
        elif settings.mask_mode == "box":
            tracks = subject.track_owner(context)
            if tracks is not None:
                layout.prop_search(settings, "subject_track", tracks, "tracks", icon="TRACKER")
            else:
                layout.prop(settings, "subject_track", icon="TRACKER")
            layout.label(text=subject.describe_box(settings, context), icon="SELECT_SET")
        elif settings.mask_mode == "blender_mask":
            layout.prop(settings, "subject_mask")
        layout.prop(settings, "seeds")
        layout.prop(settings, "device")


class DynaSketchOutputPanel(DynaSketchPanel):
    """Where the strokes go and how the scene renders them."""

    bl_label = "Result"
    bl_options = {"DEFAULT_CLOSED"}
    # a strip's sketch gets a scene of its own, fitted to the footage; the edit is not matched
    matches_scene = True

    def draw(self, context):
        layout = self.layout
        settings = self.settings(context)
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.enabled = not settings.running
        layout.prop(settings, "target_object")
        layout.prop(settings, "background")
        if self.matches_scene:
            layout.prop(settings, "match_scene")
        layout.prop(settings, "style")
        layout.prop(settings, "line_colour")
        if settings.line_colour == "custom":
            layout.prop(settings, "line_custom")
        layout.prop(settings, "boil")
        layout.operator("dynasketch.apply_style", icon="BRUSH_DATA")
        # an edit of the result at the current frame, carried through the frames after (revise.py)
        col = layout.column(align=True)
        col.operator("dynasketch.resketch_from_here", icon="FORWARD")
        row = col.row(align=True)
        row.operator("dynasketch.delete_stroke_everywhere", icon="TRASH")
        row.operator("dynasketch.lock_strokes", icon="LOCKED")


class DYNASKETCH_PT_clip(DynaSketchMainPanel, bpy.types.Panel):
    bl_idname = "DYNASKETCH_PT_clip"
    bl_space_type = "CLIP_EDITOR"


class DYNASKETCH_PT_clip_result(DynaSketchOutputPanel, bpy.types.Panel):
    bl_idname = "DYNASKETCH_PT_clip_result"
    bl_space_type = "CLIP_EDITOR"
    bl_parent_id = "DYNASKETCH_PT_clip"


class DYNASKETCH_PT_sequencer(DynaSketchMainPanel, bpy.types.Panel):
    bl_idname = "DYNASKETCH_PT_sequencer"
    bl_space_type = "SEQUENCE_EDITOR"


class DYNASKETCH_PT_sequencer_result(DynaSketchOutputPanel, bpy.types.Panel):
    bl_idname = "DYNASKETCH_PT_sequencer_result"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_parent_id = "DYNASKETCH_PT_sequencer"
    matches_scene = False


CLASSES = (DYNASKETCH_PT_clip, DYNASKETCH_PT_clip_result, DYNASKETCH_PT_sequencer,
           DYNASKETCH_PT_sequencer_result)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
