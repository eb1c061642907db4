"""Footage tagged with a colour space (a log or ACES plate), turned into the picture Blender
shows for it, so that strokes are drawn on what the animator sees.

Blender reads a clip or strip in the colour space set on it (its *Color Space*) and shows it
through the scene's display and view. The engine sketches the picture of the Standard view
on the config's default display (sRGB): the file's own picture for footage in the file's
default colour space (``default_byte`` for movies and 8-bit images, ``default_float`` for EXR
and DPX, Blender's roles), which the decoder already gives without OpenColorIO. Only other
colour spaces go through OpenColorIO (the ``opencolorio`` package) with the config Blender
uses: ``--ocio-config``, else ``$OCIO``.
"""
from __future__ import annotations

import os

import numpy as np

from .errors import EngineError

VIEW = "Standard"                 # the view whose picture is sketched, where the config has it
# Blender's default_byte and default_float roles: the decoder shows footage tagged so as it is
BLENDER_DEFAULTS = ("sRGB", "Linear Rec.709")


class ShownColours:
    """Footage in ``colorspace`` of the OpenColorIO config ``config`` (a path; None:
    ``$OCIO``), shown on the config's default display in its Standard view.

    ``converts(floating)`` says whether footage read as bytes (``False``) or as float light
    (``True``) needs converting; ``shown(values)`` converts ``(H, W, 3)`` float values (byte
    codes / 255, or an EXR's light) into the ``uint8`` picture. Blender's own defaults are
    known without the config, so footage tagged with them needs neither it nor OpenColorIO."""

    def __init__(self, colorspace: str, config: str | None = None):
        path = config or os.environ.get("OCIO") or ""
        self.name, self.path = colorspace, os.path.abspath(path) if path else ""
        self.processor = None
        self.defaults = BLENDER_DEFAULTS
        if colorspace not in BLENDER_DEFAULTS:
            self._load()

    def converts(self, floating: bool) -> bool:
        """Whether footage read as float light (EXR, DPX) or as bytes needs converting: it is
        not in the file's default colour space, which the decoder shows as Blender does. The
        config is read (its errors raised) the first time it is needed."""
        if self.name == self.defaults[floating]:
            return False
        if self.processor is None:
            self._load()                            # the config's own defaults may differ
        return self.name != self.defaults[floating]

    def shown(self, values: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` float values in this colour space -> the ``uint8`` picture shown."""
        rgb = np.ascontiguousarray(values, dtype=np.float32)
        self.processor.applyRGB(rgb)                # in place, batched over the whole frame
        return np.round(np.clip(np.nan_to_num(rgb), 0, 1) * 255).astype(np.uint8)

    def identity(self) -> list:
        """What a resumed run and a mask cache must match: the colour space and its config."""
        stat = os.stat(self.path) if self.path else None
        return [self.name, self.path] + ([stat.st_size, stat.st_mtime_ns] if stat else [])

    def _load(self) -> None:
        """The config, its default roles and the processor; errors are one line."""
        if not self.path:
            raise EngineError(f"--colorspace {self.name!r} needs the OpenColorIO config Blender uses: pass "
                              "--ocio-config PATH (Blender's is <version>/datafiles/colormanagement/config.ocio "
                              "in its folder) or set OCIO")
        try:
            import PyOpenColorIO as ocio
        except ImportError:
            raise EngineError("--colorspace needs the opencolorio package: pip install opencolorio "
                              "(scripts/setup.sh installs it)") from None
        try:
            config = ocio.Config.CreateFromFile(self.path)
        except Exception as exc:  # OCIO raises its own Exception for a missing or bad file
            raise EngineError(f"{self.path}: not a readable OpenColorIO config "
                              f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        space = config.getColorSpace(self.name)
        if space is None:
            names = [s.getName() for s in config.getColorSpaces()]
            raise EngineError(f"--colorspace {self.name!r} is not in {self.path} (it has "
                              f"{', '.join(names[:12])}{', ...' if len(names) > 12 else ''})")
        roles = [config.getColorSpace(role) for role in ("default_byte", "default_float")]
        self.defaults = tuple(r.getName() if r is not None else d for r, d in zip(roles, BLENDER_DEFAULTS))
        display = config.getDefaultDisplay()
        view = VIEW if VIEW in list(config.getViews(display)) else config.getDefaultView(display)
        transform = ocio.DisplayViewTransform(src=space.getName(), display=display, view=view)
        self.processor = config.getProcessor(transform).getDefaultCPUProcessor()
