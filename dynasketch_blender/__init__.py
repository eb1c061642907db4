"""DynaSketch for Blender: sketch a movie clip or strip into animated Grease Pencil strokes.

The engine runs in its own process (see docs/CONTRACT.md); this add-on uses bpy and the
standard library only.
"""

from . import operators, panels, preferences, properties

MODULES = (properties, preferences, operators, panels)


def register():
    for module in MODULES:
        module.register()


def unregister():
    for module in reversed(MODULES):
        module.unregister()
