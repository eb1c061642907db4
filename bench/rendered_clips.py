"""Clips the project renders itself with Blender, for what the shared clips do not stress.

    .venv/bin/python -m bench.rendered_clips OUT_FOLDER [--frames 24] [--size 640x360]

Writes into OUT_FOLDER, each with its exact mask (the subject's alpha, rendered with the
rest of the scene hidden) as ``<name>.mask.mp4``, so ``bench.quality --clips
OUT_FOLDER/turn.mp4,...`` measures them as it measures the shared clips:

    turn.mp4   a toy scooter and its rider on a checked floor coming round towards the camera:
               it turns 120 degrees about the vertical while it grows about 2.5x (soapbox grows
               but does not turn)
    thin.mp4   a paraglider: a curved wing, a pilot below it and eight thin lines between them,
               swaying and drifting over hills (thin parts several strokes could share)

Rendered with Workbench (no lights to set up, headless, a few seconds a clip); encoded with
PyAV (H.264, the mask lossless-looking at CRF 0). Nothing here is third-party media.
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile

import numpy as np


def material(bpy, name: str, rgb: tuple[float, float, float]):
    mat = bpy.data.materials.new(name)
    mat.diffuse_color = (*rgb, 1.0)
    return mat


def add(bpy, kind: str, name: str, rgb, parent=None, **kw):
    getattr(bpy.ops.mesh, f"primitive_{kind}_add")(**kw)
    obj = bpy.context.object
    obj.name = name
    obj.data.materials.append(material(bpy, name, rgb))
    if parent is not None:
        obj.parent = parent
    return obj


def rod(bpy, name: str, a, b, radius: float, rgb, parent=None):
    """A cylinder from ``a`` to ``b`` (a pole, a line)."""
    import mathutils

    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    length = float(np.linalg.norm(d))
    obj = add(bpy, "cylinder", name, rgb, parent, radius=radius, depth=length, vertices=12,
              location=tuple((a + b) / 2))
    obj.rotation_mode = "QUATERNION"
    obj.rotation_quaternion = mathutils.Vector((0, 0, 1)).rotation_difference(mathutils.Vector(tuple(d / length)))
    return obj


def checker(bpy, name: str, size: int, squares: int, a, b):
    image = bpy.data.images.new(name, size, size)
    ij = (np.arange(size) * squares // size)
    board = ((ij[:, None] + ij[None, :]) % 2).astype(np.float32)
    pixels = np.where(board[..., None] > 0, np.array([*a, 1.0]), np.array([*b, 1.0])).astype(np.float32)
    image.pixels.foreach_set(pixels.ravel())
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    tex = mat.node_tree.nodes.new("ShaderNodeTexImage")
    tex.image = image
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    mat.node_tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def new_scene(bpy, width: int, height: int, frames: int):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = "STUDIO"
    scene.display.shading.color_type = "TEXTURE"      # material colours, and the floor's image
    scene.display.shading.show_shadows = True
    scene.display.shading.show_cavity = True
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.frame_start, scene.frame_end = 0, frames - 1
    scene.world = bpy.data.worlds.new("sky")
    scene.world.color = (0.55, 0.7, 0.85)
    return scene


def camera(bpy, location, target, lens: float = 35.0):
    import mathutils

    bpy.ops.object.camera_add(location=location)
    cam = bpy.context.object
    cam.data.lens = lens
    direction = mathutils.Vector(target) - mathutils.Vector(location)
    cam.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
    bpy.context.scene.camera = cam
    return cam


def scooter_scene(bpy, frames: int):
    """The scooter comes round towards the camera: 120 degrees of turn, about 2.5x larger."""
    bpy.ops.object.empty_add(location=(0, 0, 0))
    rig = bpy.context.object
    rig.name = "scooter"
    red, black, skin, blue = (0.8, 0.1, 0.08), (0.05, 0.05, 0.05), (0.9, 0.7, 0.55), (0.1, 0.2, 0.7)
    add(bpy, "cube", "deck", red, rig, size=1, location=(0, 0, 0.25), scale=(1.2, 0.3, 0.06))
    for x in (-0.55, 0.55):
        wheel = add(bpy, "cylinder", f"wheel{x}", black, rig, radius=0.2, depth=0.12, vertices=24,
                    location=(x, 0, 0.2), rotation=(math.pi / 2, 0, 0))
        add(bpy, "cylinder", f"hub{x}", (0.85, 0.85, 0.85), wheel, radius=0.08, depth=0.14, vertices=16)
    rod(bpy, "stem", (0.55, 0, 0.25), (0.45, 0, 1.25), 0.03, (0.6, 0.6, 0.65), rig)
    rod(bpy, "bar", (0.45, -0.35, 1.25), (0.45, 0.35, 1.25), 0.03, (0.6, 0.6, 0.65), rig)
    rod(bpy, "leg1", (-0.1, -0.08, 0.3), (0.0, -0.08, 0.95), 0.07, blue, rig)
    rod(bpy, "leg2", (0.15, 0.08, 0.3), (0.0, 0.08, 0.95), 0.07, blue, rig)
    add(bpy, "cube", "body", (0.95, 0.75, 0.1), rig, size=1, location=(0.05, 0, 1.25), scale=(0.25, 0.38, 0.6))
    rod(bpy, "arm1", (0.1, -0.2, 1.45), (0.45, -0.3, 1.25), 0.05, skin, rig)
    rod(bpy, "arm2", (0.1, 0.2, 1.45), (0.45, 0.3, 1.25), 0.05, skin, rig)
    add(bpy, "uv_sphere", "head", skin, rig, radius=0.17, location=(0.08, 0, 1.75), segments=24, ring_count=12)
    add(bpy, "uv_sphere", "helmet", red, rig, radius=0.19, location=(0.06, 0, 1.82), segments=24, ring_count=12,
        scale=(1, 1, 0.6))
    # the path: far away going right to left across the view, coming round towards the camera
    for t in range(frames):
        u = t / max(1, frames - 1)
        angle = math.radians(-90 + 120 * u)                # side view -> three-quarter front
        rig.location = (3.6 - 4.4 * u, 13.0 - 10.0 * u, 0)
        rig.rotation_euler = (0, 0, angle + math.pi)
        rig.keyframe_insert("location", frame=t)
        rig.keyframe_insert("rotation_euler", frame=t)
    bpy.ops.mesh.primitive_plane_add(size=60, location=(0, 10, 0))
    floor = bpy.context.object
    floor.name = "floor"
    floor.data.materials.append(checker(bpy, "floor", 512, 24, (0.75, 0.72, 0.65), (0.45, 0.42, 0.38)))
    camera(bpy, (0, -2.5, 1.6), (0, 6, 0.8))
    return rig, [floor]


def paraglider_scene(bpy, frames: int):
    """A wing over a pilot, eight thin lines between them, swaying over hills."""
    bpy.ops.object.empty_add(location=(0, 0, 0))
    rig = bpy.context.object
    rig.name = "paraglider"
    wing = add(bpy, "uv_sphere", "wing", (0.9, 0.35, 0.1), rig, radius=1, segments=48, ring_count=24,
               location=(0, 0, 3.0), scale=(3.2, 0.7, 0.55))
    # flatten the sphere's lower half into an arched canopy
    for v in wing.data.vertices:
        if v.co.z < 0:
            v.co.z *= 0.25
    add(bpy, "uv_sphere", "pilot", (0.15, 0.25, 0.6), rig, radius=0.22, location=(0, 0, 0.2), segments=16,
        ring_count=8, scale=(1, 1, 1.5))
    for k, x in enumerate(np.linspace(-2.7, 2.7, 8)):
        top = (x, 0, 3.0 - 0.9 * (abs(x) / 3.2) ** 2 * 0.55 - 0.1)       # under the canopy's edge
        rod(bpy, f"line{k}", top, (0.12 * np.sign(x), 0, 0.45), 0.012, (0.1, 0.1, 0.1), rig)
    for t in range(frames):
        u = t / max(1, frames - 1)
        rig.location = (-1.5 + 3.0 * u, 12.0, 3.0 + 0.4 * math.sin(2 * math.pi * u))
        rig.rotation_euler = (0, math.radians(12 * math.sin(2 * math.pi * u * 1.5)), math.radians(-20 + 35 * u))
        rig.keyframe_insert("location", frame=t)
        rig.keyframe_insert("rotation_euler", frame=t)
    hills = []
    for k, (x, y, r, rgb) in enumerate([(-12, 40, 14, (0.35, 0.5, 0.3)), (6, 45, 18, (0.3, 0.45, 0.28)),
                                        (22, 38, 12, (0.4, 0.55, 0.32))]):
        hills.append(add(bpy, "uv_sphere", f"hill{k}", rgb, None, radius=r, location=(x, y, -r * 0.55),
                         segments=32, ring_count=16))
    camera(bpy, (0, 0, 4.2), (0, 12, 4.9), lens=40)
    return rig, hills


def render_frames(bpy, scene, folder: str, background: list) -> tuple[list[str], list[str]]:
    """Each frame twice: the scene, and the subject alone on a transparent film (its mask)."""
    rgb, alpha = [], []
    for t in range(scene.frame_start, scene.frame_end + 1):
        scene.frame_set(t)
        for hidden, film, names in ((False, False, rgb), (True, True, alpha)):
            for obj in background:
                obj.hide_render = hidden
            scene.render.film_transparent = film
            path = os.path.join(folder, f"{'mask' if hidden else 'rgb'}_{t:03d}.png")
            scene.render.filepath = path
            bpy.ops.render.render(write_still=True)
            names.append(path)
    return rgb, alpha


def encode(paths: list[str], out: str, fps: int, mask: bool) -> None:
    import av
    from PIL import Image

    with av.open(out, "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        first = Image.open(paths[0])
        stream.width, stream.height = first.size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "0" if mask else "16"}
        for path in paths:
            image = np.asarray(Image.open(path).convert("RGBA"))
            if mask:
                grey = np.where(image[..., 3] > 127, 255, 0).astype(np.uint8)
                frame = np.dstack([grey] * 3)
            else:
                frame = image[..., :3]
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--fps", type=int, default=24)
    ap.add_argument("--only", default="", help="turn or thin")
    args = ap.parse_args()
    width, height = map(int, args.size.split("x"))
    import bpy

    os.makedirs(args.out, exist_ok=True)
    for name, build in (("turn", scooter_scene), ("thin", paraglider_scene)):
        if args.only and args.only != name:
            continue
        scene = new_scene(bpy, width, height, args.frames)
        _, background = build(bpy, args.frames)
        with tempfile.TemporaryDirectory() as folder:
            rgb, alpha = render_frames(bpy, scene, folder, background)
            encode(rgb, os.path.join(args.out, f"{name}.mp4"), args.fps, mask=False)
            encode(alpha, os.path.join(args.out, f"{name}.mask.mp4"), args.fps, mask=True)
        print(f"wrote {os.path.join(args.out, name + '.mp4')} and its mask", flush=True)


if __name__ == "__main__":
    main()
