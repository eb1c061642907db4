"""Sidebar panels "DynaSketch" in the Clip Editor and the Sequencer. Layout only."""
from __future__ import annotations

import bpy


def draw_settings(layout, settings) -> None:
    col = layout.column(align=True)
    col.prop(settings, "strokes")
    col.prop(settings, "width")
    layout.prop(settings, "preset")
    layout.prop(settings, "use_source_range")
    if not settings.use_source_range:
        row = layout.row(align=True)
        row.prop(settings, "frame_start")
        row.prop(settings, "frame_end")
    layout.prop(settings, "frame_step")
    layout.prop(settings, "mask_mode")
    if settings.mask_mode == "file":
        layout.prop(settings, "mask_path")
    layout.prop(settings, "seeds")
    layout.prop(settings, "device")
    layout.prop(settings, "target_name")
    layout.prop(settings, "background")
    layout.prop(settings, "match_scene")


def draw_run(layout, settings) -> None:
    if settings.running:
        layout.progress(factor=settings.progress, type="BAR", text=settings.status or "working")
        layout.operator("dynasketch.cancel", icon="CANCEL")
    else:
        layout.operator("dynasketch.sketch", icon="GREASEPENCIL")
        if settings.status:
            layout.label(text=settings.status)
            if settings.log_path and "failed" in settings.status.lower():
                layout.label(text=f"Log: {settings.log_path}")


class DYNASKETCH_PT_clip(bpy.types.Panel):
    bl_label = "DynaSketch"
    bl_idname = "DYNASKETCH_PT_clip"
    bl_space_type = "CLIP_EDITOR"
    bl_region_type = "UI"
    bl_category = "DynaSketch"

    @classmethod
    def poll(cls, context):
        return context.space_data.clip is not None

    def draw(self, context):
        settings = context.scene.dynasketch
        draw_run(self.layout, settings)
        draw_settings(self.layout, settings)


class DYNASKETCH_PT_sequencer(bpy.types.Panel):
    bl_label = "DynaSketch"
    bl_idname = "DYNASKETCH_PT_sequencer"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "DynaSketch"

    def draw(self, context):
        settings = context.scene.dynasketch
        draw_run(self.layout, settings)
        draw_settings(self.layout, settings)


CLASSES = (DYNASKETCH_PT_clip, DYNASKETCH_PT_sequencer)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
