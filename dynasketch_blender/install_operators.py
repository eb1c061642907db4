"""Operators of Install Engine: Install Engine (modal, with a progress bar; Esc or the
cancel button stops it and removes the half-made environment), Cancel Install, Remove
Engine, Open Install Log and Copy Install Report. The work is ``engine_install``'s."""
from __future__ import annotations

import glob
import os
import platform
import sys

import bpy

from . import engine_install
from .engine_process import ADDON_SOURCE_ROOT, RUNNING
from .operators import StatusJobOperator
from .preferences import preferences

ADDON_DIR = os.path.dirname(os.path.abspath(__file__))
_install: engine_install.InstallJob | None = None


def install_home(context) -> str:
    """The Engine Folder preference as an absolute path, else the per-user default."""
    prefs = preferences(context)
    folder = prefs.engine_folder if prefs else ""
    return os.path.normpath(bpy.path.abspath(folder)) if folder else engine_install.engine_home()


def shipped_files() -> tuple[str, str]:
    """The engine wheel and the constraints folder shipped in the extension zip (from the
    project's source tree: its constraints; the wheel then comes from build_addon.py)."""
    wheels = sorted(glob.glob(os.path.join(ADDON_DIR, "engine_wheel", "dynasketch-*.whl")))
    constraints = os.path.join(ADDON_DIR, "constraints")
    if not os.path.isdir(constraints):
        constraints = os.path.join(ADDON_SOURCE_ROOT, "constraints")
    return (wheels[-1] if wheels else os.path.join(ADDON_DIR, "engine_wheel", "dynasketch.whl")), constraints


def make_plan(context) -> engine_install.Plan:
    """The install for this machine. ``$DYNASKETCH_WHEELHOUSE`` (a folder of wheels) installs
    offline from it, and ``$DYNASKETCH_INSTALL_PYTHON`` uses that interpreter instead of
    uv's managed Python: for machines without internet."""
    from .operators import model_folder

    prefs = preferences(context)
    target = engine_install.choose_target(sys.platform, platform.machine(), engine_install.nvidia_driver(),
                                          prefs.compute_backend if prefs else "auto")
    wheel, constraints = shipped_files()
    return engine_install.plan_install(
        engine_install.uv_binary(), install_home(context), target, wheel, constraints,
        python=os.environ.get("DYNASKETCH_INSTALL_PYTHON") or engine_install.PYTHON_VERSION,
        wheelhouse=os.environ.get("DYNASKETCH_WHEELHOUSE", ""),
        masking_model=prefs.install_masking_model if prefs else True, model_dir=model_folder(context))


def install_running() -> bool:
    return _install is not None and _install.state == RUNNING


class DYNASKETCH_OT_install_engine(StatusJobOperator, bpy.types.Operator):
    """Install the DynaSketch engine with its own Python and PyTorch into the Engine Folder
    (a few GB; Esc stops, and the engine that was there stays)"""

    bl_idname = "dynasketch.install_engine"
    bl_label = "Install Engine"
    status_name = "dynasketch_install"

    def _start(self, context) -> bool:
        global _install
        if install_running():
            self.report({"ERROR"}, "DynaSketch: an install is already running (its ✕ button stops it)")
            return False
        if not bpy.app.online_access and not os.environ.get("DYNASKETCH_WHEELHOUSE"):
            return self._fail(context, "Blender's online access is off: allow it in Preferences > System > "
                                       "Network, then Install Engine again")
        try:
            plan = make_plan(context)
        except engine_install.InstallRefused as exc:
            return self._fail(context, f"Install Engine: {exc}")
        _install = self._job = engine_install.InstallJob(plan)
        status = context.window_manager.dynasketch_install
        status.log_path = _install.log_path
        if _install.start() == engine_install.FAILED:
            return self._fail(context, _install.message)
        status.running, status.failed, status.progress = True, False, _install.progress
        status.status, status.last_line = _install.message, ""
        return True

    def _failure(self) -> str:
        return self._job.message                     # "Install failed: ..."


class DYNASKETCH_OT_cancel_install(bpy.types.Operator):
    """Stop Install Engine; the half-made environment is removed and the engine that was
    there stays"""

    bl_idname = "dynasketch.cancel_install"
    bl_label = "Cancel Install"

    def execute(self, context):
        if _install is not None:
            _install.cancel()
        return {"FINISHED"}


class DYNASKETCH_OT_remove_engine(bpy.types.Operator):
    """Remove the engine Install Engine made (its environment, Python and download cache;
    model weights stay)"""

    bl_idname = "dynasketch.remove_engine"
    bl_label = "Remove Engine"

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        if install_running():
            self.report({"ERROR"}, "DynaSketch: an install is running; cancel it first")
            return {"CANCELLED"}
        message = engine_install.remove_engine(install_home(context))
        status = context.window_manager.dynasketch_install
        status.status, status.failed = message, False
        prefs = preferences(context)
        if prefs:
            prefs.doctor_report = ""
        self.report({"INFO"}, message)
        return {"FINISHED"}


class DYNASKETCH_OT_open_install_log(bpy.types.Operator):
    """Open Install Engine's log in the system's text viewer"""

    bl_idname = "dynasketch.open_install_log"
    bl_label = "Open Log"

    def execute(self, context):
        path = context.window_manager.dynasketch_install.log_path
        if not path or not os.path.isfile(path):
            self.report({"ERROR"}, "DynaSketch: there is no install log yet")
            return {"CANCELLED"}
        bpy.ops.wm.path_open(filepath=path)
        return {"FINISHED"}


class DYNASKETCH_OT_copy_install_report(bpy.types.Operator):
    """Copy what Install Engine did (platform, step, error, the log's last lines) to paste into
    a bug report"""

    bl_idname = "dynasketch.copy_install_report"
    bl_label = "Copy Report"

    def execute(self, context):
        if _install is not None:
            text = _install.report()
        else:
            path = context.window_manager.dynasketch_install.log_path
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()[-8000:]
            except OSError:
                self.report({"ERROR"}, "DynaSketch: there is no install report yet")
                return {"CANCELLED"}
        context.window_manager.clipboard = text
        self.report({"INFO"}, "Install report copied")
        return {"FINISHED"}


CLASSES = (DYNASKETCH_OT_install_engine, DYNASKETCH_OT_cancel_install, DYNASKETCH_OT_remove_engine,
           DYNASKETCH_OT_open_install_log, DYNASKETCH_OT_copy_install_report)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    if _install is not None:
        _install.cancel()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
