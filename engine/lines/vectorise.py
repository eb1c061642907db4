"""Centrelines to curves: trace a one-pixel skeleton into paths, prune spurs, join paths
through junctions by good continuation, and fit cubic Beziers to point runs (Schneider,
"An Algorithm for Automatically Fitting Digitized Curves", Graphics Gems 1990).

Paths are ``(K, 2)`` float arrays of x, y at pixel centres; a cubic is ``(4, 2)``.
"""
from __future__ import annotations

import cv2
import numpy as np

_STEPS = [(-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)]


def neighbour_count(skeleton: np.ndarray) -> np.ndarray:
    """How many of its 8 neighbours each skeleton pixel has (0 off the skeleton)."""
    kernel = np.ones((3, 3), np.float32)
    kernel[1, 1] = 0
    count = cv2.filter2D(skeleton.astype(np.float32), -1, kernel, borderType=cv2.BORDER_CONSTANT)
    return np.where(skeleton, count.round().astype(np.int32), 0)


def trace_paths(skeleton: np.ndarray) -> tuple[list[np.ndarray], list[tuple]]:
    """The skeleton's paths between its nodes (ends and junctions) and its closed loops.

    Returns the paths and, per path, the junction labels at its two ends (-1: a free end or
    a loop), junction pixels that touch counting as one junction.
    """
    count = neighbour_count(skeleton)
    junction = count >= 3
    _, junction_label = cv2.connectedComponents(junction.astype(np.uint8), connectivity=8)
    node = skeleton & (count != 2)
    h, w = skeleton.shape
    on = {(int(x), int(y)) for y, x in zip(*np.nonzero(skeleton))}
    is_node = {(int(x), int(y)) for y, x in zip(*np.nonzero(node))}
    used_steps: set = set()                 # (pixel, pixel) pairs already walked
    visited: set = set()
    paths, ends = [], []

    def neighbours(p):
        return [(p[0] + dx, p[1] + dy) for dx, dy in _STEPS if (p[0] + dx, p[1] + dy) in on]

    def label(p):
        return int(junction_label[p[1], p[0]]) - 1 if junction[p[1], p[0]] else -1

    def walk(start, first):
        path = [start, first]
        used_steps.update({(start, first), (first, start)})
        while path[-1] not in is_node:
            nxt = [q for q in neighbours(path[-1]) if (path[-1], q) not in used_steps and q != path[-2]]
            if not nxt:
                break
            # prefer the 4-connected step, so diagonal shortcuts do not fork the walk
            nxt.sort(key=lambda q: abs(q[0] - path[-1][0]) + abs(q[1] - path[-1][1]))
            used_steps.update({(path[-1], nxt[0]), (nxt[0], path[-1])})
            path.append(nxt[0])
            if path[-1] == start:
                break
        visited.update(path)
        return path

    for p in sorted(is_node):
        for q in neighbours(p):
            if (p, q) in used_steps or (q in is_node and junction[p[1], p[0]] and junction[q[1], q[0]]):
                continue
            path = walk(p, q)
            paths.append(np.array(path, np.float64) + 0.5)
            ends.append((label(path[0]), label(path[-1])))
    for p in sorted(on - visited - is_node):          # loops with no node on them
        if p in visited:
            continue
        nb = neighbours(p)
        if nb:
            path = walk(p, nb[0])
            paths.append(np.array(path, np.float64) + 0.5)
            ends.append((-1, -1))
    return paths, ends


def path_length(path: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum()) if len(path) > 1 else 0.0


def _direction(path: np.ndarray, at_start: bool, reach: int = 6) -> np.ndarray:
    """Unit direction pointing out of the path at one end (into the junction)."""
    p = path if at_start else path[::-1]
    k = min(reach, len(p) - 1)
    d = p[0] - p[k]
    return d / max(float(np.linalg.norm(d)), 1e-9)


def prune_and_join(paths: list[np.ndarray], ends: list[tuple], spur: float,
                   straightness: float = -0.7) -> list[np.ndarray]:
    """Drop spurs (a path from a free end to a junction shorter than ``spur``), then join the
    paths meeting at each junction in pairs, most nearly straight-through first, while the
    two directions are at least as opposite as ``straightness`` (a cosine)."""
    keep = [i for i, (p, e) in enumerate(zip(paths, ends))
            if not ((e[0] == -1) != (e[1] == -1) and path_length(p) < spur)]
    paths = [paths[i] for i in keep]
    ends = [ends[i] for i in keep]
    at: dict = {}                              # junction -> [(path, end is start)]
    for i, (a, b) in enumerate(ends):
        if a >= 0:
            at.setdefault(a, []).append((i, True))
        if b >= 0 and not (a == b and len(paths[i]) < 3):
            at.setdefault(b, []).append((i, False))
    partner: dict = {}
    for members in at.values():
        pairs = []
        for u in range(len(members)):
            for v in range(u + 1, len(members)):
                if members[u][0] == members[v][0]:
                    continue
                cos = float(_direction(paths[members[u][0]], members[u][1])
                            @ _direction(paths[members[v][0]], members[v][1]))
                pairs.append((cos, members[u], members[v]))
        for cos, a, b in sorted(pairs, key=lambda t: t[0]):
            if cos > straightness:
                break
            if a not in partner and b not in partner:
                partner[a], partner[b] = b, a
    joined, done = [], set()
    for i in range(len(paths)):
        if i in done:
            continue
        # go to one end of the chain i belongs to, then walk it to the other end
        node, start_end, seen = i, True, {i}
        while (node, start_end) in partner:
            nxt, nxt_is_start = partner[(node, start_end)]
            if nxt in seen:
                break
            seen.add(nxt)
            node, start_end = nxt, not nxt_is_start
        chain, cur, enter_start = [], node, start_end
        while True:
            done.add(cur)
            piece = paths[cur] if enter_start else paths[cur][::-1]
            chain.append(piece if not chain else piece[1:])
            out = (cur, not enter_start)
            if out not in partner or partner[out][0] in done:
                break
            cur, enter_start = partner[out][0], partner[out][1]
        joined.append(np.concatenate(chain))
    return joined


# -- Schneider's least-squares cubic fit ---------------------------------------------------
def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _bezier(c: np.ndarray, t: np.ndarray) -> np.ndarray:
    s = 1 - t
    return ((s ** 3)[:, None] * c[0] + (3 * s * s * t)[:, None] * c[1]
            + (3 * s * t * t)[:, None] * c[2] + (t ** 3)[:, None] * c[3])


def _chord(d: np.ndarray) -> np.ndarray:
    u = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(d, axis=0), axis=1))])
    return u / max(u[-1], 1e-12)


def _generate(d: np.ndarray, u: np.ndarray, t1: np.ndarray, t2: np.ndarray) -> np.ndarray:
    s = 1 - u
    b0, b1, b2, b3 = s ** 3, 3 * s * s * u, 3 * s * u * u, u ** 3
    a1, a2 = t1[None] * b1[:, None], t2[None] * b2[:, None]
    c = np.array([[(a1 * a1).sum(), (a1 * a2).sum()], [(a1 * a2).sum(), (a2 * a2).sum()]])
    rest = d - (b0 + b1)[:, None] * d[0] - (b2 + b3)[:, None] * d[-1]
    x = np.array([(a1 * rest).sum(), (a2 * rest).sum()])
    det = c[0, 0] * c[1, 1] - c[0, 1] * c[1, 0]
    span = float(np.linalg.norm(d[-1] - d[0]))
    al = ar = 0.0
    if abs(det) > 1e-12:
        al = (x[0] * c[1, 1] - x[1] * c[0, 1]) / det
        ar = (c[0, 0] * x[1] - c[1, 0] * x[0]) / det
    if al < 1e-6 * span or ar < 1e-6 * span:
        al = ar = span / 3.0
    return np.array([d[0], d[0] + al * t1, d[-1] + ar * t2, d[-1]])


def _reparameterise(d: np.ndarray, u: np.ndarray, c: np.ndarray) -> np.ndarray:
    """One Newton step of each point's parameter towards its nearest point on the curve."""
    q = _bezier(c, u)
    d1 = 3 * (c[1:] - c[:-1])
    d2 = 2 * (d1[1:] - d1[:-1])
    s = 1 - u
    q1 = (s * s)[:, None] * d1[0] + (2 * s * u)[:, None] * d1[1] + (u * u)[:, None] * d1[2]
    q2 = s[:, None] * d2[0] + u[:, None] * d2[1]
    num = ((q - d) * q1).sum(1)
    den = (q1 * q1).sum(1) + ((q - d) * q2).sum(1)
    step = np.where(np.abs(den) > 1e-12, num / np.where(den == 0, 1, den), 0.0)
    return np.clip(u - step, 0.0, 1.0)


def _fit(d: np.ndarray, t1: np.ndarray, t2: np.ndarray, error: float, depth: int,
         first: int = 0) -> list[tuple[np.ndarray, int, int]]:
    """Cubics with the index ranges ``[lo, hi]`` of the points each fits."""
    if len(d) == 2:
        span = float(np.linalg.norm(d[1] - d[0])) / 3.0
        return [(np.array([d[0], d[0] + span * t1, d[1] + span * t2, d[1]]), first, first + 1)]
    u = _chord(d)
    c = _generate(d, u, t1, t2)
    for _ in range(6):
        dist = np.linalg.norm(_bezier(c, u) - d, axis=1)
        if dist.max() <= error or depth > 12:
            return [(c, first, first + len(d) - 1)]
        u = _reparameterise(d, u, c)
        c = _generate(d, u, t1, t2)
    dist = np.linalg.norm(_bezier(c, u) - d, axis=1)
    if dist.max() <= error:
        return [(c, first, first + len(d) - 1)]
    split = int(np.clip(np.argmax(dist), 1, len(d) - 2))
    centre = _unit(d[split - 1] - d[split + 1])
    return (_fit(d[:split + 1], t1, centre, error, depth + 1, first)
            + _fit(d[split:], -centre, t2, error, depth + 1, first + split))


def _clean(points: np.ndarray) -> np.ndarray:
    keep = np.concatenate([[True], np.linalg.norm(np.diff(points, axis=0), axis=1) > 1e-9])
    return points[keep]


def _end_tangents(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    reach = min(3, len(d) - 1)
    return _unit(d[reach] - d[0]), _unit(d[-1 - reach] - d[-1])


def fit_cubics(points: np.ndarray, error: float) -> list[np.ndarray]:
    """Cubics ``(4, 2)`` through ``points`` ``(K, 2)``, none further than ``error`` from them."""
    d = _clean(points)
    if len(d) < 2:
        return []
    return [c for c, _, _ in _fit(d, *_end_tangents(d), error, 0)]


def one_cubic(points: np.ndarray) -> tuple[np.ndarray, float]:
    """The best single cubic through ``points`` and its largest distance from them."""
    d = points
    t1, t2 = _end_tangents(d)
    if len(d) == 2:
        return _fit(d, t1, t2, 0.0, 0)[0][0], 0.0
    u = _chord(d)
    c = _generate(d, u, t1, t2)
    for _ in range(4):
        u = _reparameterise(d, u, c)
        c = _generate(d, u, t1, t2)
    return c, float(np.linalg.norm(_bezier(c, u) - d, axis=1).max())


def fit_in(points: np.ndarray, pieces: int, fine: float, coarse: float) -> list[np.ndarray]:
    """``points`` in at most ``pieces`` cubics, detailed where the line is: a fit at ``fine``
    tolerance, then neighbouring pieces merged, the pair a single cubic fits best first,
    while that cubic stays within ``coarse``. Where that still needs too many pieces, the
    longest are kept."""
    d = _clean(points)
    if len(d) < 2:
        return []
    found = _fit(d, *_end_tangents(d), fine, 0)
    ranges = [(lo, hi) for _, lo, hi in found]
    cubics = [c for c, _, _ in found]

    def merged(k):                               # ranges k and k+1 as one cubic
        return one_cubic(d[ranges[k][0]:ranges[k + 1][1] + 1])

    costs = [merged(k) for k in range(len(ranges) - 1)]
    while len(ranges) > pieces and costs:
        k = int(np.argmin([e for _, e in costs]))
        if costs[k][1] > coarse:
            break
        cubics[k:k + 2] = [costs[k][0]]
        ranges[k:k + 2] = [(ranges[k][0], ranges[k + 1][1])]
        costs.pop(k)
        if k < len(costs):
            costs[k] = merged(k)
        if k > 0:
            costs[k - 1] = merged(k - 1)
    if len(cubics) > pieces:
        lengths = [ranges[k][1] - ranges[k][0] for k in range(len(ranges))]
        keep = sorted(np.argsort(lengths)[::-1][:pieces])
        cubics = [cubics[k] for k in keep]
    return cubics


def split_cubic(c: np.ndarray, segments: int) -> np.ndarray:
    """A cubic ``(4, 2)`` as ``segments`` joined cubics, ``(3 * segments + 1, 2)``."""
    out, rest = [c[0]], c
    for k in range(segments, 1, -1):
        t = 1.0 / k                           # de Casteljau at the next piece's end
        a, b = rest[:-1] * (1 - t) + rest[1:] * t, None
        b = a[:-1] * (1 - t) + a[1:] * t
        m = b[0] * (1 - t) + b[1] * t
        out += [a[0], b[0], m]
        rest = np.array([m, b[1], a[2], rest[3]])
    out += [rest[1], rest[2], rest[3]]
    return np.array(out)


def sub_cubic(c: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """The part of cubic ``c`` ``(4, 2)`` from parameter ``t0`` to ``t1``, as a cubic
    (its blossom at (t0, t0, t0), (t0, t0, t1), (t0, t1, t1), (t1, t1, t1))."""
    def blossom(u1, u2, u3):
        a = c[:-1] * (1 - u1) + c[1:] * u1
        b = a[:-1] * (1 - u2) + a[1:] * u2
        return b[0] * (1 - u3) + b[1] * u3
    return np.array([blossom(t0, t0, t0), blossom(t0, t0, t1), blossom(t0, t1, t1), blossom(t1, t1, t1)])
