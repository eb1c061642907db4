"""DynaSketch for Blender: sketch a movie clip or strip into animated Grease Pencil strokes.

The engine runs in its own process (see docs/CONTRACT.md); this add-on uses bpy and the
standard library only.
"""

from . import (batch_operators, engine_process, install_operators, operators, panels, preferences, properties,
               revise)

MODULES = (properties, preferences, operators, revise, install_operators, batch_operators, panels)


def register():
    for module in MODULES:
        module.register()


def unregister():
    engine_process.stop_all()
    for module in reversed(MODULES):
        module.unregister()
