"""The strokes a run carries from frame to frame once an artist has edited one: their ids, which
are locked (kept as drawn), the artist's own points of the locked ones, and the fields the
artist gave (width, opacity, widths). A run that was never revised carries ids 0..N-1 and
nothing else, and writes what it always wrote."""
from __future__ import annotations

import numpy as np


def knots(points) -> int:
    """On-curve points of ``3*S+1`` cubic control points."""
    return (len(points) - 1) // 3 + 1


def resampled(values: list, count: int) -> list:
    """``values`` (one per on-curve point) at ``count`` points spread the same way."""
    if len(values) == count:
        return list(values)
    return [round(float(v), 4) for v in np.interp(np.linspace(0, 1, count), np.linspace(0, 1, len(values)), values)]


def dense(points: np.ndarray, per_segment: int = 16) -> np.ndarray:
    """Points along ``3*S+1`` cubic control points ``(K, 2)``, ``(S*per_segment+1, 2)``."""
    t = np.linspace(0, 1, per_segment + 1)[:-1, None]
    out = []
    for a, b, c, d in zip(points[0:-1:3], points[1::3], points[2::3], points[3::3]):
        s = 1 - t
        out.append(s ** 3 * a + 3 * s * s * t * b + 3 * s * t * t * c + t ** 3 * d)
    return np.concatenate(out + [points[-1:]])


def fit_cubic(points: np.ndarray, segments: int) -> np.ndarray:
    """``segments`` cubics ``(3*segments+1, 2)`` through the curve of any ``3*S+1`` control
    points: split by length, each piece fitted by least squares from its ends."""
    line = dense(np.asarray(points, np.float64))
    run = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))])
    u = run / run[-1] if run[-1] > 0 else np.linspace(0, 1, len(line))
    out = [line[0]]
    for k in range(segments):
        lo, hi = k / segments, (k + 1) / segments
        a = np.array([np.interp(lo, u, line[:, 0]), np.interp(lo, u, line[:, 1])])
        d = np.array([np.interp(hi, u, line[:, 0]), np.interp(hi, u, line[:, 1])])
        inside = (u > lo) & (u < hi)
        t = (u[inside] - lo) / (hi - lo)
        if len(t) < 2:                     # a straight piece: handles at a third
            b, c = a + (d - a) / 3, a + 2 * (d - a) / 3
        else:
            s = 1 - t
            rest = line[inside] - (s ** 3)[:, None] * a - (t ** 3)[:, None] * d
            basis = np.stack([3 * s * s * t, 3 * s * t * t], 1)
            (b, c), *_ = np.linalg.lstsq(basis, rest, rcond=None)
        out += [b, c, d]
    return np.array(out)


def similarity(before: np.ndarray, after: np.ndarray):
    """The shift, turn and zoom that best carry points ``before`` onto ``after`` ``(P, 2)``,
    as a function of points ``(K, 2)``."""
    zb = before[:, 0] + 1j * before[:, 1]
    za = after[:, 0] + 1j * after[:, 1]
    cb, ca = zb.mean(), za.mean()
    spread = np.sum(np.abs(zb - cb) ** 2)
    a = np.sum((za - ca) * np.conj(zb - cb)) / spread if spread > 1e-12 else 1.0

    def carry(points: np.ndarray) -> np.ndarray:
        z = (points[:, 0] + 1j * points[:, 1] - cb) * a + ca
        return np.stack([z.real, z.imag], 1)
    return carry


class StrokeSet:
    def __init__(self, ids: list[int], locked: list[bool] | None = None, drawn: dict | None = None,
                 extras: dict | None = None, cubics: np.ndarray | None = None):
        self.ids = list(ids)
        self.locked = list(locked) if locked is not None else [False] * len(ids)
        self.drawn = {int(k): np.asarray(v, np.float64) for k, v in (drawn or {}).items()}   # id -> (K, 2) source px
        self.extras = {int(k): dict(v) for k, v in (extras or {}).items()}                   # id -> given fields
        self.cubics = cubics          # (N, P, 2) source px: the strokes on the last frame written

    @classmethod
    def generated(cls, count: int) -> "StrokeSet":
        return cls(list(range(count)))

    @classmethod
    def from_state(cls, state: dict | None, count: int) -> "StrokeSet":
        """The set a resume state holds, else ``count`` generated strokes."""
        state = state or {}
        cubics = state.get("strokes")
        cubics = None if cubics is None or np.asarray(cubics).ndim != 3 else np.asarray(cubics, np.float64)
        saved = state.get("stroke_set")
        if not saved:                  # after a revision that only deleted the last ids, fewer than asked
            return cls(list(range(count if cubics is None else len(cubics))), cubics=cubics)
        return cls(saved["ids"], saved["locked"], saved.get("drawn"), saved.get("extras"), cubics)

    def as_state(self) -> dict | None:
        """For the resume state (plain lists); None while the strokes are the generated ones."""
        if self.ids == list(range(len(self.ids))) and not any(self.locked) and not self.extras:
            return None
        return {"ids": list(self.ids), "locked": list(self.locked),
                "drawn": {k: v.tolist() for k, v in self.drawn.items()},
                "extras": {k: dict(v) for k, v in self.extras.items()}}

    def locked_mask(self) -> list[bool] | None:
        return list(self.locked) if any(self.locked) else None

    def records(self, base: list[dict], cubics: np.ndarray) -> list[dict]:
        """The frame's stroke records from the generated ones ``base`` (``export.stroke_records``
        of ``cubics`` ``(N, P, 2)``, source px): each with its id and the artist's fields, a
        locked stroke as drawn, carried from the last frame by the move of its cubic."""
        if self.as_state() is None:
            self.cubics = cubics
            return base
        out = []
        for i, (sid, record) in enumerate(zip(self.ids, base)):
            record = {**record, "id": sid, **self.extras.get(sid, {})}
            if self.locked[i]:
                if sid in self.drawn and self.cubics is not None:
                    self.drawn[sid] = similarity(self.cubics[i], cubics[i])(self.drawn[sid])
                if sid in self.drawn:
                    record["points"] = [[round(float(x), 3), round(float(y), 3)] for x, y in self.drawn[sid]]
                record["locked"] = True
            if "widths" in record and len(record["widths"]) != knots(record["points"]):
                record["widths"] = resampled(record["widths"], knots(record["points"]))
            out.append(record)
        self.cubics = cubics
        return out
