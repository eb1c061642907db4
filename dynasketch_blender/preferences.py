"""Add-on preferences: where the engine is, the model folder, and defaults."""
from __future__ import annotations

import bpy
from bpy.props import EnumProperty, StringProperty

from .properties import DEVICES


class DynaSketchPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    engine_python: StringProperty(
        name="Engine Python", subtype="FILE_PATH",
        description="Python interpreter of the DynaSketch engine (e.g. the project's .venv/bin/python); "
                    "empty: $DYNASKETCH_PYTHON, a dynasketch command on PATH, or the project's .venv")
    model_dir: StringProperty(name="Model Folder", subtype="DIR_PATH",
                              description="Where the engine keeps model weights (DYNASKETCH_HOME)")
    device: EnumProperty(name="Default Device", items=DEVICES, default="auto")
    doctor_report: StringProperty(default="")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "engine_python")
        layout.prop(self, "model_dir")
        layout.prop(self, "device")
        layout.operator("dynasketch.check_engine", icon="CHECKMARK")
        if self.doctor_report:
            box = layout.box()
            for line in self.doctor_report.splitlines()[:40]:
                box.label(text=line)


def preferences(context=None) -> DynaSketchPreferences | None:
    addon = (context or bpy.context).preferences.addons.get(__package__)
    return addon.preferences if addon else None


def register() -> None:
    bpy.utils.register_class(DynaSketchPreferences)


def unregister() -> None:
    bpy.utils.unregister_class(DynaSketchPreferences)
