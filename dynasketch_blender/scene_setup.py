"""Putting a built sketch into the scene: camera, render background, scene settings, and
replacing an earlier result of the same clip only once the new one is complete."""
from __future__ import annotations

import os

import bpy

from . import source as sources
from .grease_pencil_builder import Placement, grease_pencil_datablocks

KEY = "dynasketch_key"          # custom property: which clip or strip a result belongs to


def new_camera(placement: Placement, label: str, movie_clip) -> bpy.types.Object:
    """An orthographic camera looking down at the sketch plane, framing it exactly, with the
    movie clip (when there is one) as its viewport background."""
    cam = bpy.data.cameras.new(f"DynaSketch Camera {label}")
    cam.type = "ORTHO"
    cam.ortho_scale = max(placement.plane_width, placement.plane_height)
    cam.clip_start, cam.clip_end = 0.1, 100.0
    if movie_clip is not None:
        cam.show_background_images = True
        bg = cam.background_images.new()
        bg.source = "MOVIE_CLIP"
        bg.clip = movie_clip
        bg.alpha = 0.5
    obj = bpy.data.objects.new(cam.name, cam)
    obj.location = (0.0, 0.0, 10.0)
    return obj


FOOTAGE = "dynasketch_footage"  # custom property of the add-on's footage images: the colour space asked for


def footage_image(path: str, kind: str, colorspace: str = "") -> bpy.types.Image:
    """The footage as an image that shows it as the clip or strip does: read in the same
    ``colorspace`` (a log or ACES plate's, say; "": the file's default). An earlier footage
    image of the add-on's reading it so is used again; the user's own images are left alone."""
    for image in bpy.data.images:
        if (image.get(FOOTAGE) == colorspace and image.library is None and image.source == kind
                and os.path.abspath(bpy.path.abspath(image.filepath)) == path):
            return image
    image = bpy.data.images.load(path, check_existing=False)
    image.source = kind
    if colorspace:
        image.colorspace_settings.name = colorspace
    image[FOOTAGE] = colorspace
    return image


def new_footage_plane(placement: Placement, label: str, path: str, kind: str, first_frame: int,
                      pictures: list[int], shown: tuple[int, int] | None = None,
                      colorspace: str = "") -> bpy.types.Object:
    """The footage on a plane just behind the strokes, for the 'footage' background. ``path``
    is the movie, or an image sequence's first image; ``kind`` its image source ("MOVIE",
    "SEQUENCE", "FILE"). From scene frame ``first_frame`` on it shows ``pictures`` one a frame
    (a movie's frame counted from 1, or an image's number; ``Source.footage_pictures``), the
    pictures the strokes were drawn on, and before and after them the first and the last, as
    the Sequencer holds a strip's ends. ``shown``: the scene frames (first, last) it is seen
    over, as a strip's handles bound it; hidden outside them. ``colorspace``: the footage's."""
    mesh = bpy.data.meshes.new(f"DynaSketch Footage {label}")
    w, h = placement.plane_width / 2, placement.plane_height / 2
    mesh.from_pydata([(-w, -h, -0.01), (w, -h, -0.01), (w, h, -0.01), (-w, h, -0.01)], [], [(0, 1, 2, 3)])
    uv = mesh.uv_layers.new()
    for loop, co in zip(uv.data, [(0, 0), (1, 0), (1, 1), (0, 1)]):
        loop.uv = co
    image = footage_image(path, kind, colorspace)
    mat = bpy.data.materials.new(f"DynaSketch Footage {label}")
    if mat.node_tree is None:                 # Blender 4.5; 5.0 materials always have nodes
        mat.use_nodes = True
    nodes = mat.node_tree.nodes
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = image
    if kind != "FILE":
        show_pictures(tex.image_user, first_frame, pictures)
    emission = nodes.new("ShaderNodeEmission")
    mat.node_tree.links.new(tex.outputs["Color"], emission.inputs["Color"])
    out = next(n for n in nodes if n.type == "OUTPUT_MATERIAL")
    mat.node_tree.links.new(emission.outputs["Emission"], out.inputs["Surface"])
    mesh.materials.append(mat)
    obj = bpy.data.objects.new(mesh.name, mesh)
    if shown is not None:
        for frame, hidden in ((shown[0] - 1, True), (shown[0], False), (shown[1] + 1, True)):
            obj.hide_render = obj.hide_viewport = hidden
            obj.keyframe_insert("hide_render", frame=frame)
            obj.keyframe_insert("hide_viewport", frame=frame)
        obj.hide_render = obj.hide_viewport = False
    return obj


def show_pictures(user: bpy.types.ImageUser, first_frame: int, pictures: list[int]) -> None:
    """Have an image user show ``pictures`` from scene frame ``first_frame`` on, holding the
    first before and the last after. At scene frame f it shows picture Offset + n, where n is
    f - Start + 1 held within 0 ... Duration; so Offset is keyed, and keyed only where it
    changes (a reversed strip: every frame; a strip played forwards: at its start)."""
    user.frame_start, user.frame_duration = first_frame, len(pictures)
    user.use_auto_refresh = True
    offsets = [pictures[0]] + [picture - n for n, picture in enumerate(pictures, 1)]   # from first_frame - 1
    for k, offset in enumerate(offsets):
        if offsets[k - 1:k] != [offset] or offsets[k + 1:k + 2] != [offset]:
            user.frame_offset = offset
            user.keyframe_insert("frame_offset", frame=first_frame - 1 + k)


def remove_data(data) -> None:
    for datablocks in (bpy.data.cameras, bpy.data.meshes, grease_pencil_datablocks()):
        if data.name in datablocks and datablocks[data.name] == data:
            datablocks.remove(data)
            return


def remove_object(obj: bpy.types.Object) -> None:
    data = obj.data
    mats = list(data.materials) if data is not None and hasattr(data, "materials") else []
    bpy.data.objects.remove(obj)
    if data is not None and data.users == 0:
        remove_data(data)
    for mat in mats:
        if mat is not None and mat.users == 0 and mat.name.startswith("DynaSketch Footage"):
            bpy.data.materials.remove(mat)


def remove_result(key: str, keep=()) -> None:
    """Remove an earlier result (its collection, objects and their data) of ``key``, but not
    the objects in ``keep`` (a Target that is the earlier result's sketch)."""
    for coll in [c for c in bpy.data.collections if c.get(KEY) == key]:
        for obj in list(coll.objects):
            if obj not in keep:
                remove_object(obj)
        bpy.data.collections.remove(coll)


class Building:
    """The objects of a result being built, outside every scene until ``install``."""

    def __init__(self, label: str):
        self.label = label
        self.objects: list = []

    def add(self, obj: bpy.types.Object) -> bpy.types.Object:
        self.objects.append(obj)
        return obj

    def discard(self) -> None:
        for obj in self.objects:
            remove_object(obj)
        self.objects.clear()

    def install(self, scene: bpy.types.Scene, key: str, camera: bpy.types.Object,
                target: bpy.types.Object | None = None) -> bpy.types.Collection:
        """Swap the new result in: the old one of the same key goes only now, and the new
        one takes its names. A ``target`` that was the old result's sketch moves into the new."""
        wanted = {obj: obj.name.rsplit(".", 1)[0] if obj.name[-4:-3] == "." and obj.name[-3:].isdigit()
                  else obj.name for obj in self.objects}
        coll = bpy.data.collections.new(f"DynaSketch {self.label}")
        if target is not None and any(c.get(KEY) == key for c in target.users_collection):
            coll.objects.link(target)                # linked before its old collection goes
        remove_result(key, keep=[target])
        coll.name, coll[KEY] = f"DynaSketch {self.label}", key
        for obj, name in wanted.items():
            coll.objects.link(obj)
            obj.name = name
            if obj.data is not None and obj.data.users == 1:
                obj.data.name = name
        scene.collection.children.link(coll)
        scene.camera = camera
        return coll


def apply_background(scene: bpy.types.Scene, background: str) -> None:
    """'paper' (white), 'footage' (the clip behind the strokes) or 'transparent'."""
    scene.render.film_transparent = background == "transparent"
    scene.view_settings.view_transform = "Standard"      # white paper stays white, ink black
    if background == "paper":
        if scene.world is None:
            scene.world = bpy.data.worlds.new("DynaSketch Paper")
        scene.world.color = (1.0, 1.0, 1.0)
        if scene.world.node_tree:
            for node in scene.world.node_tree.nodes:
                if node.type == "BACKGROUND":
                    node.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
    if background == "footage":
        scene.display.shading.color_type = "TEXTURE"
        scene.display.shading.light = "FLAT"


def match_scene(scene: bpy.types.Scene, sketch, first_frame: int, last_frame: int, frame_rate: bool = True) -> None:
    """Frame rate (unless not ``frame_rate``), resolution and frame range of the scene follow the clip."""
    fps = sketch.fps
    if frame_rate:
        scene.render.fps = max(1, round(fps))
        scene.render.fps_base = scene.render.fps / fps if fps else 1.0
    scene.render.resolution_x, scene.render.resolution_y = sketch.width, sketch.height
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    scene.frame_start, scene.frame_end = first_frame, last_frame


def sketch_scene(edit: bpy.types.Scene, key: str, label: str) -> bpy.types.Scene:
    """The scene a strip's sketch is built in, so that the edit shows it through a scene strip
    (``show_in_edit``): the earlier sketch's of the strip, else a new one. It plays at the
    edit's frame rate, in the edit's frame numbers."""
    scene = next((s for s in bpy.data.scenes if s.get(KEY) == key and s != edit), None)
    if scene is None:
        scene = bpy.data.scenes.new(f"DynaSketch {label}")
        scene[KEY] = key
    scene.render.fps, scene.render.fps_base = edit.render.fps, edit.render.fps_base
    return scene


# what a sketch strip keeps of the one it replaces (an editor's choices) and copies of the
# strip it sketches (where that strip's picture lies in the edit's frame)
KEPT_SETTINGS = ("blend_type", "blend_alpha", "mute", "lock")
PLACEMENT_SETTINGS = ("use_flip_x", "use_flip_y")


def _copy(source, target, names) -> None:
    for name in names:
        setattr(target, name, getattr(source, name))


def _settable(struct) -> list[str]:
    return [p.identifier for p in struct.bl_rna.properties if not p.is_readonly and p.identifier != "rna_type"]


def show_in_edit(edit: bpy.types.Scene, scene: bpy.types.Scene, strip_name: str, name: str) -> bpy.types.Strip:
    """Show ``scene`` (a strip's sketch, over its frame range) in the edit: a scene strip over
    the frames it covers, in the first channel above the strip ``strip_name`` free there,
    placed as that strip is (position, scale, rotation, crop, flips: the sketch scene renders
    at the footage's size, so it lines up with the footage), blended over it. Replaces the
    scene strip of an earlier sketch, keeping its channel, blend, opacity, mute and lock."""
    everything = list(sources.all_strips(edit))
    sketched = next((s for s in everything if s.name == strip_name), None)
    earlier = next((s for s in everything if s.type == "SCENE" and s.scene == scene), None)
    meta = (sketched or earlier).parent_meta() if (sketched or earlier) else None
    container = meta or edit.sequence_editor
    strips = container.strips if hasattr(container, "strips") else container.sequences     # 5.0 / 4.5
    first, last = scene.frame_start, scene.frame_end
    kept = {setting: getattr(earlier, setting) for setting in KEPT_SETTINGS} if earlier else {"blend_type": "ALPHA_OVER"}
    channel = earlier.channel if earlier else (sketched.channel + 1 if sketched else 2)
    if earlier is not None:
        strips.remove(earlier)

    def taken(c):
        return any(s.channel == c and s.frame_final_start <= last and s.frame_final_end > first for s in strips)
    while taken(channel) and channel < 128:
        channel += 1
    strip = strips.new_scene(name, scene, channel, first)
    if sketched is not None:
        _copy(sketched, strip, PLACEMENT_SETTINGS)
        _copy(sketched.transform, strip.transform, _settable(sketched.transform))
        _copy(sketched.crop, strip.crop, _settable(sketched.crop))
    for setting, value in kept.items():
        setattr(strip, setting, value)
    return strip
