"""Add-on preferences: Install Engine (its folder, compute backend, progress), where the
engine is, the model and work folders, default settings, and what Check Engine found."""
from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from .model_download import AUTO_MODELS, MODEL_ITEMS
from .properties import BACKGROUNDS, COMPUTE_BACKENDS, DEVICES, PRESETS


class DynaSketchPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    engine_folder: StringProperty(
        name="Engine Folder", subtype="DIR_PATH",
        description="Where Install Engine puts the engine's own Python and packages (a few GB). Empty: "
                    "the per-user default (%LOCALAPPDATA%\\DynaSketch, ~/Library/Application Support/DynaSketch, "
                    "~/.local/share/dynasketch)")
    compute_backend: EnumProperty(name="Compute", items=COMPUTE_BACKENDS, default="auto",
                                  description="Which PyTorch build Install Engine installs")
    install_masking_model: BoolProperty(
        name="Masking Model", default=True,
        description="Install Engine ends by downloading ISNet (isnet-general-use, about 180 MB), the network "
                    "that masks the subject; without it the engine sketches the whole frame, or a Box as it is")
    engine_python: StringProperty(
        name="Engine Python", subtype="FILE_PATH",
        description="Python interpreter of the DynaSketch engine (e.g. the project's .venv/bin/python). "
                    "Empty: $DYNASKETCH_PYTHON, a dynasketch command on PATH, or the project's .venv")
    model_dir: StringProperty(name="Model Folder", subtype="DIR_PATH",
                              description="Where the engine keeps model weights (passed as DYNASKETCH_HOME; "
                                          "empty: the engine's default)")
    work_dir: StringProperty(name="Work Folder", subtype="DIR_PATH",
                             description="Where the engine writes each job's frames, log and sketch.json "
                                         "(empty: the system's temporary folder)")
    ray_address: StringProperty(name="Ray Address", default="",
                                description="Sketch Selected Strips runs on this Ray cluster (HOST:PORT of its "
                                            "head, docs/BATCH.md); empty: a local Ray on this computer")
    default_strokes: IntProperty(name="Strokes", default=16, min=1, max=256)
    default_width: FloatProperty(name="Width", default=1.5, min=0.1, max=20.0)
    default_preset: EnumProperty(name="Preset", items=PRESETS, default="default")
    default_seeds: IntProperty(name="Seeds", default=3, min=1, max=16)
    default_device: EnumProperty(name="Device", items=DEVICES, default="auto")
    default_background: EnumProperty(name="Background", items=BACKGROUNDS, default="paper")
    doctor_report: StringProperty(default="", options={"HIDDEN"})
    download_models: EnumProperty(name="Models", items=MODEL_ITEMS, options={"ENUM_FLAG"},
                                  # IMG.LY's ISNet build needs npm: asked for, not by default
                                  default={name for name, _, _ in AUTO_MODELS if name != "isnet-imgly-medium"},
                                  description="Which weight files Download Models fetches into the Model Folder")

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        self._draw_install(layout, context.window_manager.dynasketch_install)
        col = layout.column(heading="Engine")
        col.prop(self, "engine_python")
        col.prop(self, "model_dir")
        col.prop(self, "work_dir")
        col.prop(self, "ray_address")
        col.operator("dynasketch.remove_job_folders", icon="TRASH")
        col = layout.column(heading="New Scenes")
        for name in ("strokes", "width", "preset", "seeds", "device", "background"):
            col.prop(self, "default_" + name)
        col = layout.column(heading="Download")
        col.prop(self, "download_models")
        download = context.window_manager.dynasketch_download
        if download.running:
            row = col.row()
            row.progress(factor=download.progress, type="BAR", text=download.status or "Downloading")
            row.operator("dynasketch.cancel_download", text="", icon="CANCEL")
        else:
            col.operator("dynasketch.download_models", icon="IMPORT")
            if download.status:
                col.label(text=download.status, icon="ERROR" if download.failed else "CHECKMARK")
        layout.operator("dynasketch.check_engine", icon="CHECKMARK")
        if self.doctor_report:
            box = layout.box()
            for line in self.doctor_report.splitlines()[:40]:
                box.label(text=line)


    def _draw_install(self, layout, install) -> None:
        col = layout.column(heading="Install")
        col.prop(self, "engine_folder")
        col.prop(self, "compute_backend")
        col.prop(self, "install_masking_model")
        if install.running:
            row = col.row()
            row.progress(factor=install.progress, type="BAR", text=install.status or "Installing")
            row.operator("dynasketch.cancel_install", text="", icon="CANCEL")
            if install.last_line:
                col.label(text=install.last_line[:120])
        else:
            row = col.row()
            row.operator("dynasketch.install_engine", icon="IMPORT")
            row.operator("dynasketch.remove_engine", icon="TRASH")
            if install.status:
                col.label(text=install.status, icon="ERROR" if install.failed else "CHECKMARK")
        if install.log_path:
            row = col.row()
            row.operator("dynasketch.open_install_log", icon="TEXT")
            row.operator("dynasketch.copy_install_report", icon="COPYDOWN")


def preferences(context=None) -> DynaSketchPreferences | None:
    addon = (context or bpy.context).preferences.addons.get(__package__)
    return addon.preferences if addon else None


def register() -> None:
    bpy.utils.register_class(DynaSketchPreferences)


def unregister() -> None:
    bpy.utils.unregister_class(DynaSketchPreferences)
