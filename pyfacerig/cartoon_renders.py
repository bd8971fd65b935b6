"""Synthetic cartoon faces rendered from the project's own head template, with exact landmarks.

The training data of the cartoon landmark network (``tools/train_cartoon_landmarks.py``, issue
#14) and the held-out renders its tests measure it on.  Every sample is one rasterization of the
whole head (:func:`pyfacerig.render.render_with_ids`) with

* a random identity: the template's semantic identity modifiers (MakeHuman's targets), a few at
  random plus, often, exaggerated eyes, nose or head shape;
* a random expression from the Face Units (the 52 ARKit shape deltas) and a random pose;
* a look, shaded per pixel from what each pixel sees (triangle and barycentrics): flat colour,
  cel bands, soft or photo shading, ink outlines, flat hair and lips, or a photo texture in the
  skin atlas; and eyes either the template's own eyeballs or eyes DRAWN on the face (a dot, a
  big anime eye, an almond eye), up to twice the eye opening's size.

Drawn features live in a planar texture over the template's NEUTRAL front view (x, y of the
neutral vertices): a pixel showing a surface point samples the drawing at that point's neutral
position, so the drawing sticks to the skin through identity, expression and pose, and reaches
over the eyeballs seen through the eye openings.

Ground truth: MediaPipe's 478 points.  A landmark is a point of the template's surface given by
its neutral position; it is located on the front of the neutral skin (or, inside an eye opening,
on the eyeball), carried to the posed mesh by its barycentrics and projected with the render's
camera.  For a drawn eye, the eye's 16 contour points are moved onto the drawn eye's outline and
the landmarks around it by the same smooth radial magnification the big-eye tests use
(tests/test_build_eyes.py), so the landmark set says where the drawn eye IS; the irises are the
drawn irises.  Nothing is detected: the points are exact by construction.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import render
from .landmarks import LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR

__all__ = ["LOOKS", "TRAINING_LOOKS", "HELD_OUT_LOOKS", "Sample", "Renderer", "crop_box"]

#: Shading styles x eye styles.  Training uses TRAINING_LOOKS; HELD_OUT_LOOKS (a shading and an
#: eye style never rendered in training, on skin colours outside the training palette) are for
#: measuring the network on looks it has not seen.
SHADINGS = ("flat", "cel", "soft", "photo")
EYE_STYLES = ("model", "dot", "anime", "almond")
TRAINING_LOOKS = tuple((s, e) for s in SHADINGS for e in EYE_STYLES if not (s == "photo" and e != "model"))
HELD_OUT_LOOKS = (("poster", "button"), ("poster", "anime"), ("cel", "button"), ("flat", "button"))
LOOKS = TRAINING_LOOKS + HELD_OUT_LOOKS

_TRAIN_SKINS = ((255, 220, 185), (241, 194, 125), (198, 134, 96), (250, 205, 200), (255, 232, 140),
                (120, 80, 60), (230, 230, 235), (160, 210, 140))
_HELD_OUT_SKINS = ((170, 190, 250), (250, 170, 120), (210, 180, 240))
_HAIRS = ((40, 30, 25), (120, 70, 30), (230, 190, 60), (60, 60, 160), (200, 60, 60), (30, 120, 90))
_INK = (25, 20, 20)

#: Share of the identity modifiers that exaggerate a feature (cartoon proportions).
_EXAGGERATE = {"eyes": ("eyes/l-eye-scale-incr", "eyes/r-eye-scale-incr"),
               "nose": ("nose/nose-scale-horiz-incr", "nose/nose-scale-vert-incr", "nose/nose-volume-incr",
                        "nose/nose-scale-horiz-decr", "nose/nose-scale-vert-decr"),
               "head": ("head/head-round", "head/head-scale-horiz-incr", "head/head-scale-vert-decr",
                        "head/head-fat-incr", "head/head-scale-horiz-decr", "head/head-triangular")}


@dataclass
class Sample:
    """One render: image (S, S, 3) uint8 RGB; points (478, 2) float64 in its pixels (x right,
    y down, continuous: pixel (i, j) covers [i, i+1) x [j, j+1)); the look (shading, eye style)."""

    image: np.ndarray
    points: np.ndarray
    look: tuple


def crop_box(points: np.ndarray) -> tuple[float, float, float, float]:
    """The face box the network's crops are taken around: the bbox of the 468 face-mesh points."""
    p = np.asarray(points, dtype=np.float64)[:468, :2]
    lo, hi = p.min(axis=0), p.max(axis=0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def _magnification(r, radius, factor):
    """The big-eye tests' smooth radial magnification: ``factor`` at 0, 1 at ``radius``."""
    t = np.clip(r / radius, 0.0, 1.0)
    return factor + (1.0 - factor) * (3 * t ** 2 - 2 * t ** 3)


class Renderer:
    """Renders samples of one template.  ``photo_textures``: skin atlases ((H, W, 3) uint8 in the
    template's skin UV layout, e.g. ``Avatar.textures["skin"]`` decoded) for the photo look."""

    def __init__(self, template, photo_textures=(), size: int = 160, landmark_ids=None):
        self.template, self.size = template, int(size)
        self.photo_textures = [np.ascontiguousarray(t) for t in photo_textures]
        skin = template.parts["skin"]
        self.skin = skin
        # ``landmark_ids``: another landmark definition on the same skin (the one a network was
        # trained on, to measure it in its own terms); the template's own by default.
        self.ids = np.asarray(template.landmark_vertex_ids if landmark_ids is None else landmark_ids, dtype=np.int64)
        self.neutral = np.asarray(skin.vertices, dtype=np.float64)
        self.names = list(template.extras["identity_modifiers"])
        self.basis = np.asarray(template.identity_basis, dtype=np.float32)
        self.regions = {k: np.asarray(v, dtype=np.float64) for k, v in template.regions.items()}
        self.eye_contours = (np.asarray(RIGHT_EYE_CONTOUR), np.asarray(LEFT_EYE_CONTOUR))
        neutral_landmarks = self.neutral[self.ids]
        # Landmark neutral positions: the 468 skin vertices; the irises from the template's points.
        self.landmarks = np.vstack([neutral_landmarks, np.asarray(template.extras["landmarks"])[468:478]])
        # Front-facing triangles of the neutral skin and eyeballs, for locating neutral (x, y) points.
        self.skin_front = self._front(self.neutral, np.asarray(skin.faces, np.int64))
        self.eye_parts = {"eye_right": (468, 0), "eye_left": (473, 1)}  # iris ids, contour index
        self.eye_front = {name: self._front(np.asarray(template.parts[name].vertices, np.float64),
                                            np.asarray(template.parts[name].faces, np.int64))
                          for name in self.eye_parts}
        # Iris landmarks as eyeball vertices (the model eyes' iris follows the eyeball's look shapes).
        self.iris_vertex = {}
        for name, (first, _) in self.eye_parts.items():
            ev = np.asarray(template.parts[name].vertices)
            self.iris_vertex[name] = np.array([int(np.argmin(np.linalg.norm(ev - self.landmarks[i], axis=1)))
                                               for i in range(first, first + 5)])
        self.split_neutral = {name: part.split(np.asarray(part.vertices, np.float64))
                              for name, part in template.parts.items()}
        self.split_regions = {k: skin.split(v[:, None])[:, 0] for k, v in self.regions.items()}

    @staticmethod
    def _front(vertices, faces, cells: int = 64):
        """Front-facing triangles of a neutral part, for :meth:`_locate`: their 2-D corners, the
        barycentric solve's dot products, and a ``cells`` x ``cells`` grid of the triangles whose
        box meets each cell (sorted), so a query tests a few triangles instead of all of them."""
        n = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
        keep = n[:, 2] > 0.05 * np.linalg.norm(n, axis=1)
        f = faces[keep]
        a, b, c = (vertices[f[:, k], :2] for k in range(3))
        v0, v1 = b - a, c - a
        d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
        den = d00 * d11 - d01 * d01
        corners = np.stack([a, b, c])
        # A margin well above the inside test's 1e-7 barycentric slack times a triangle's size.
        lo_t, hi_t = corners.min(axis=0) - 1e-6, corners.max(axis=0) + 1e-6
        lo, hi = lo_t.min(axis=0), hi_t.max(axis=0)
        step = (hi - lo) / cells
        first = np.clip(((lo_t - lo) // step).astype(int), 0, cells - 1)
        last = np.clip(((hi_t - lo) // step).astype(int), 0, cells - 1)
        grid = [[] for _ in range(cells * cells)]
        for t in range(len(f)):
            for iy in range(first[t, 1], last[t, 1] + 1):
                for ix in range(first[t, 0], last[t, 0] + 1):
                    grid[iy * cells + ix].append(t)
        grid = [np.asarray(g, dtype=np.int64) for g in grid]
        return {"faces": f, "a": a, "v0": v0, "v1": v1, "d00": d00, "d01": d01, "d11": d11, "den": den,
                "ok": np.abs(den) > 1e-20, "lo": lo, "step": step, "cells": cells, "grid": grid}

    @staticmethod
    def _locate(front, queries):
        """(K,) triangle index into front faces (-1: none) and (K, 3) barycentrics of 2-D points.

        The first (lowest-index) front triangle that contains the point, as a test of every
        triangle would give; only the triangles listed in the point's grid cell are tested."""
        tri = np.full(len(queries), -1)
        bary = np.zeros((len(queries), 3))
        cells, lo, step = front["cells"], front["lo"], front["step"]
        for k, q in enumerate(queries):
            ix, iy = np.floor((q - lo) / step).astype(int)
            if not (0 <= ix < cells and 0 <= iy < cells):
                continue
            cand = front["grid"][iy * cells + ix]
            if not len(cand):
                continue
            v0, v1, den = front["v0"][cand], front["v1"][cand], front["den"][cand]
            d00, d01, d11 = front["d00"][cand], front["d01"][cand], front["d11"][cand]
            v2 = q - front["a"][cand]
            d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
            with np.errstate(divide="ignore", invalid="ignore"):
                v = (d11 * d20 - d01 * d21) / den
                w = (d00 * d21 - d01 * d20) / den
            u = 1 - v - w
            inside = front["ok"][cand] & (u >= -1e-7) & (v >= -1e-7) & (w >= -1e-7)
            hits = np.flatnonzero(inside)
            if len(hits):
                tri[k] = cand[hits[0]]
                bary[k] = (u[hits[0]], v[hits[0]], w[hits[0]])
        return tri, bary

    # ------------------------------------------------------------------ sampling
    def random_identity(self, rng: np.random.Generator, exaggerate: float = 0.6) -> np.ndarray:
        w = np.zeros(len(self.names))
        picks = rng.choice(len(self.names), size=int(rng.integers(4, 14)), replace=False)
        w[picks] = rng.uniform(0.2, 1.0, len(picks))
        for feature, names in _EXAGGERATE.items():
            if rng.random() < exaggerate:
                chosen = names if feature == "eyes" else [names[int(rng.integers(len(names)))]]
                strength = rng.uniform(0.4, 1.0)
                for n in chosen:
                    w[self.names.index(n)] = strength
        return w

    def random_expression(self, rng: np.random.Generator, drawn_eyes: bool) -> np.ndarray:
        names = self.template.shape_names
        w = np.zeros(len(names))
        count = int(rng.integers(0, 5))
        for k in rng.choice(len(names), size=count, replace=False):
            if drawn_eyes and names[k].startswith("eye"):
                continue        # a drawn eye does not blink or look around
            w[k] = rng.uniform(0.1, 0.9) * (0.35 if names[k].startswith("eyeBlink") else 1.0)
        if rng.random() < 0.3:
            w[names.index("jawOpen")] = rng.uniform(0.1, 0.6)
        return w

    def render(self, rng: np.random.Generator, look, held_out_colours: bool = False) -> Sample:
        """One render in ``look`` = (shading, eye style)."""
        return self.render_looks(rng, [look], held_out_colours)[0]

    def render_looks(self, rng: np.random.Generator, looks, held_out_colours: bool = False) -> list:
        """One identity, expression and pose rasterized once and shaded in each of ``looks``.

        The rasterization is most of a sample's cost and does not depend on the look, so the
        training data shades each one several times (different looks, drawings and colours)."""
        drawn_any = any(e != "model" for _, e in looks)
        t = self.template
        identity = self.random_identity(rng)
        expression = self.random_expression(rng, drawn_any)
        skin_neutral = self.neutral + np.tensordot(identity.astype(np.float32), self.basis, axes=1)
        from .rig import follow_parts
        followers = follow_parts(t, skin_neutral)
        posed = {"skin": skin_neutral + np.tensordot(expression, self.skin.shape_deltas, axes=1)}
        for name, (vertices, deltas) in followers.items():
            posed[name] = vertices + np.tensordot(expression, deltas, axes=1)

        camera = render.Camera(
            target=np.array([rng.normal(0, 0.004), self.landmarks[[10, 152], 1].mean() + rng.normal(0, 0.004),
                             self.landmarks[:468, 2].mean()]),
            distance=float(rng.uniform(0.45, 1.2)), yaw_deg=float(rng.uniform(-32, 32)),
            pitch_deg=float(rng.uniform(-18, 18)), fov_deg=0.0)
        face_height = self.landmarks[10, 1] - self.landmarks[152, 1]
        # Face (chin to hairline) filling 52-66 % of the frame, whatever the distance.
        camera.fov_deg = float(np.degrees(2 * np.arctan(face_height / rng.uniform(0.52, 0.66) / 2 / camera.distance)))

        meshes = [render.Mesh(t.parts[n].split(posed[n]), t.parts[n].export_faces) for n in t.parts]
        size = self.size
        _, mesh_id, tri, bary = render.render_with_ids(meshes, camera, size, size)
        geometry = self._pixel_geometry(meshes, mesh_id, tri, bary)
        samples = []
        for look in looks:
            drawn = look[1] != "model"
            targets, drawing = (self._drawn_eyes(rng, look[1]) if drawn else (self.landmarks[:, :2], None))
            image = self._shade(rng, look, meshes, camera, mesh_id, tri, bary, geometry, drawing, held_out_colours)
            points = self._ground_truth(posed, targets, drawn, camera)
            samples.append(Sample(image=image, points=points, look=tuple(look)))
        return samples

    def _pixel_geometry(self, meshes, mesh_id, tri, bary):
        """Per pixel: neutral (x, y), unit normal, and whether the neutral surface faces forward."""
        size = self.size
        neutral_xy = np.zeros((size, size, 2))
        normal = np.zeros((size, size, 3))
        front = np.zeros((size, size))
        for k, name in enumerate(self.template.parts):
            sel = mesh_id == k
            if not sel.any():
                continue
            faces = np.asarray(meshes[k].faces, np.int64)[tri[sel]]
            w = bary[sel]
            v = self.split_neutral[name]
            neutral_xy[sel] = np.einsum("kj,kjd->kd", w, v[faces][:, :, :2])
            vn = render.vertex_normals(np.asarray(meshes[k].vertices, np.float64), np.asarray(meshes[k].faces, np.int64))
            n = np.einsum("kj,kjd->kd", w, vn[faces])
            normal[sel] = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
            fn = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
            front[sel] = fn[:, 2] > 0.2 * np.linalg.norm(fn, axis=1)
        return neutral_xy, normal, front

    # ------------------------------------------------------------------ drawn eyes
    def _drawn_eyes(self, rng, style):
        """Neutral-space landmark targets (478, 2) with the eyes on the drawn eyes, and the drawing."""
        targets = self.landmarks[:, :2].copy()
        sx = rng.uniform(1.0, 1.8)
        sy = {"dot": rng.uniform(2.0, 3.6), "anime": rng.uniform(2.2, 4.2), "almond": rng.uniform(1.0, 1.8),
              "button": rng.uniform(2.0, 3.2)}[style] * sx ** 0.3
        eyes = []
        original = self.landmarks[:, :2].copy()
        for (iris_first, which), contour in zip(self.eye_parts.values(), self.eye_contours):
            c = original[contour]
            centre = c.mean(axis=0)
            half_w = 0.5 * np.linalg.norm(c[0] - c[8])
            half_h = 0.5 * (c[1:8, 1].max() - c[9:16, 1].min())
            a, b = sx * half_w, sy * half_h
            # Contour on the drawn outline: corners at +-a, lid points on an ellipse (dot, anime,
            # button) or on the scaled lid curve (almond).
            dx = np.clip(c[:, 0] - centre[0], -half_w, half_w) * sx
            upper = np.zeros(16, bool)
            upper[1:8] = True
            lower = np.zeros(16, bool)
            lower[9:16] = True
            if style == "almond":
                dy = (c[:, 1] - centre[1]) * sy
            else:
                dy = b * np.sqrt(np.clip(1 - (dx / a) ** 2, 0, 1)) * np.where(upper, 1, np.where(lower, -1, 0))
            drawn = np.column_stack([centre[0] + dx, centre[1] + dy])
            # Move every landmark near the eye by the radial magnification (the eye's own 16 points
            # exactly onto the drawing).
            radius = 1.6 * 2 * half_w
            factor = 0.5 * (sx + sy)
            d = original[:468] - centre
            r = np.linalg.norm(d, axis=1)
            near = (r < radius) & ~np.isin(np.arange(468), contour)
            targets[:468][near] = centre + d[near] * _magnification(r[near], radius, factor)[:, None]
            targets[contour] = drawn
            iris_r = {"dot": 0.75, "anime": 0.62, "almond": 0.9, "button": 0.4}[style] * min(a, b)
            if style == "almond":
                iris_r = 0.85 * b
            iris_c = centre + [rng.uniform(-0.12, 0.12) * a, (rng.uniform(-0.05, 0.1) if style != "dot" else 0) * b]
            rim = self.landmarks[iris_first + 1:iris_first + 5, :2] - self.landmarks[iris_first, :2]
            rim = rim / np.linalg.norm(rim, axis=1, keepdims=True)
            targets[iris_first] = iris_c
            targets[iris_first + 1:iris_first + 5] = iris_c + iris_r * rim
            eyes.append((centre, a, b, drawn, iris_c, iris_r))
        # Brows follow the (moved) brow landmarks; drawn as a band.
        return targets, {"style": style, "eyes": eyes, "targets": targets}

    # ------------------------------------------------------------------ ground truth
    def _ground_truth(self, posed, targets, drawn, camera):
        world = np.empty((478, 3))
        world[:468] = posed["skin"][self.ids]
        moved = np.flatnonzero(np.linalg.norm(targets[:468] - self.landmarks[:468, :2], axis=1) > 1e-9)
        if len(moved):
            world[moved] = self._surface_points(posed, targets[moved])
        if drawn:
            world[468:] = self._surface_points(posed, targets[468:478])
        else:
            for name, (first, _) in self.eye_parts.items():
                world[first:first + 5] = posed[name][self.iris_vertex[name]]
        return self._project(world, camera)

    def _surface_points(self, posed, queries):
        """Posed 3-D points at neutral (x, y) positions: on the skin's front, else on an eyeball."""
        out = np.empty((len(queries), 3))
        tri, bary = self._locate(self.skin_front, queries)
        faces = self.skin_front["faces"]
        for k in range(len(queries)):
            if tri[k] >= 0:
                out[k] = bary[k] @ posed["skin"][faces[tri[k]]]
                continue
            for name in self.eye_parts:
                etri, ebary = self._locate(self.eye_front[name], queries[k:k + 1])
                if etri[0] >= 0:
                    out[k] = ebary[0] @ posed[name][self.eye_front[name]["faces"][etri[0]]]
                    break
            else:   # outside every front triangle: the nearest skin vertex
                nearest = int(np.argmin(np.linalg.norm(self.neutral[:, :2] - queries[k], axis=1)))
                out[k] = posed["skin"][nearest]
        return out

    def _project(self, world, camera):
        cam = camera.view(world)
        focal = 0.5 * self.size / np.tan(np.radians(camera.fov_deg) / 2)
        x = 0.5 * self.size + focal * cam[:, 0] / cam[:, 2]
        y = 0.5 * self.size - focal * cam[:, 1] / cam[:, 2]
        return np.column_stack([x, y])

    # ------------------------------------------------------------------ shading
    def _canvas(self, rng, drawing, brow_colour, draw_brows, res=0.0004):
        """The drawing over the neutral front view (x in [-0.1, 0.1] m, y in [-0.13, 0.13] m):
        (RGB (h, w, 3) uint8, alpha (h, w) uint8, lower-left corner (2,), metres per texel)."""
        lo = np.array([-0.1, -0.13])
        size = (int(0.2 / res), int(0.26 / res))
        rgb = np.zeros((size[1], size[0], 3), np.uint8)
        alpha = np.zeros((size[1], size[0]), np.uint8)

        def to_px(p):   # neutral metres -> canvas pixels (y down), in cv2's 2-bit fixed point
            texel = np.column_stack([p[..., 0] - lo[0], 0.26 - (p[..., 1] - lo[1])]) / res
            return np.round(texel * 4).astype(np.int32)
        targets = drawing["targets"] if drawing else self.landmarks[:, :2]
        ink = tuple(int(v) for v in _INK)

        def fill(poly, colour):
            cv2.fillPoly(rgb, [to_px(poly)], colour, lineType=cv2.LINE_AA, shift=2)
            cv2.fillPoly(alpha, [to_px(poly)], 255, lineType=cv2.LINE_AA, shift=2)

        def line(poly, colour, width, closed=False):
            w = max(1, int(round(width / res)))
            cv2.polylines(rgb, [to_px(poly)], closed, colour, w, lineType=cv2.LINE_AA, shift=2)
            cv2.polylines(alpha, [to_px(poly)], closed, 255, w, lineType=cv2.LINE_AA, shift=2)

        if draw_brows:
            for upper, lower in (((70, 63, 105, 66, 107), (46, 53, 52, 65, 55)),
                                 ((300, 293, 334, 296, 336), (276, 283, 282, 295, 285))):
                band = np.vstack([targets[list(upper)], targets[list(lower)][::-1]])
                fill(band, brow_colour)
        if drawing:
            style = drawing["style"]
            iris_colour = tuple(int(v) for v in rng.integers(30, 200, 3))
            for centre, a, b, outline, iris_c, iris_r in drawing["eyes"]:
                t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
                ellipse = np.column_stack([centre[0] + a * np.cos(t), centre[1] + b * np.sin(t)])
                shape = outline[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]] if style == "almond" else ellipse
                circle = lambda c, r: np.column_stack([c[0] + r * np.cos(t), c[1] + r * np.sin(t)])  # noqa: E731
                if style == "dot":
                    fill(shape, ink)
                    fill(circle(centre + [0.3 * a, 0.35 * b], 0.22 * min(a, b)), (255, 255, 255))
                else:
                    fill(shape, (255, 255, 255))
                    # The iris, clipped to the eye: drawn on a copy then masked by the eye shape.
                    eye_mask = np.zeros_like(alpha)
                    cv2.fillPoly(eye_mask, [to_px(shape)], 255, lineType=cv2.LINE_AA, shift=2)
                    layer = rgb.copy()
                    cv2.fillPoly(layer, [to_px(circle(iris_c, iris_r))], iris_colour if style != "button" else ink,
                                 lineType=cv2.LINE_AA, shift=2)
                    if style != "button":
                        cv2.fillPoly(layer, [to_px(circle(iris_c, 0.5 * iris_r))], ink, lineType=cv2.LINE_AA, shift=2)
                        cv2.fillPoly(layer, [to_px(circle(iris_c + [-0.35 * iris_r, 0.4 * iris_r], 0.25 * iris_r))],
                                     (255, 255, 255), lineType=cv2.LINE_AA, shift=2)
                    m = (eye_mask.astype(np.float32) / 255)[..., None]
                    rgb[:] = np.round(layer * m + rgb * (1 - m)).astype(np.uint8)
                    line(shape, ink, 0.0006 if style != "anime" else 0.0008, closed=True)
                    if style == "anime":   # lash line over the upper lid
                        upper = ellipse[(t > 0.1) & (t < np.pi - 0.1)]
                        line(upper, ink, 0.0016)
        return rgb, alpha, lo, res

    def _shade(self, rng, look, meshes, camera, mesh_id, tri, bary, geometry, drawing, held_out_colours):
        shading, eye_style = look
        t = self.template
        size = self.size
        neutral_xy, normal, front = geometry
        palette = _HELD_OUT_SKINS if held_out_colours else _TRAIN_SKINS
        skin_rgb = np.asarray(palette[int(rng.integers(len(palette)))], np.float64)
        skin_rgb = np.clip(skin_rgb * rng.uniform(0.9, 1.08) + rng.normal(0, 6, 3), 0, 255)
        hair = _HAIRS[int(rng.integers(len(_HAIRS)))]
        lips = np.clip(skin_rgb * [0.85, 0.55, 0.55] + rng.normal(0, 8, 3), 0, 255)
        photo = shading == "photo" and bool(self.photo_textures)
        image = np.zeros((size, size, 3))
        hit = mesh_id >= 0
        names = list(t.parts)
        for k, name in enumerate(names):
            sel = mesh_id == k
            if not sel.any():
                continue
            faces = np.asarray(meshes[k].faces, np.int64)[tri[sel]]
            w = bary[sel]
            if name == "skin":
                if photo:
                    tex = self.photo_textures[int(rng.integers(len(self.photo_textures)))]
                    uv = np.einsum("kj,kjd->kd", w, np.asarray(self.skin.uvs, np.float64)[faces])
                    colour = render.sample_bilinear(tex, uv)
                else:
                    colour = np.tile(skin_rgb, (len(w), 1))
                    region = lambda r: np.einsum("kj,kj->k", w, self.split_regions[r][faces])  # noqa: E731
                    colour[region("lips") > 0.5] = lips
                    colour[region("scalp") > 0.5] = hair
                    colour[region("mouth_interior") > 0.5] = (90, 30, 35)
                image[sel] = colour
            elif t.parts[name].material == "eye":
                if drawing is None:
                    iris = tuple(int(v) for v in rng.integers(30, 160, 3))
                    tex = render.eye_texture(t.extras["iris_uv_radius"], t.extras["pupil_uv_radius"], iris, size=128)
                    uv = np.einsum("kj,kjd->kd", w, np.asarray(t.parts[name].uvs, np.float64)[faces])
                    image[sel] = render.sample_bilinear(tex, uv)
                else:
                    image[sel] = (245, 245, 245)
            else:
                image[sel] = render.MOUTH_COLOURS[t.parts[name].material]
        # The drawing (brows in the cartoon looks, drawn eyes) over the front of skin and eyeballs.
        draw_brows = not photo
        if drawing is not None or draw_brows:
            brow = hair if rng.random() < 0.5 else _INK
            rgb, alpha, lo, res = self._canvas(rng, drawing, tuple(int(v) for v in brow), draw_brows)
            sel = hit & (front > 0) & np.isin(mesh_id, [names.index("skin"), names.index("eye_left"),
                                                          names.index("eye_right")])
            xy = neutral_xy[sel]
            uv = np.column_stack([(xy[:, 0] - lo[0]) / res / rgb.shape[1],
                                  (0.26 - (xy[:, 1] - lo[1])) / res / rgb.shape[0]])
            a = render.sample_bilinear(alpha[..., None], uv)[:, 0] / 255.0
            image[sel] = image[sel] * (1 - a[:, None]) + render.sample_bilinear(rgb, uv) * a[:, None]

        # Lighting.
        light = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.2, 0.9), 1.0])
        light /= np.linalg.norm(light)
        lambert = np.clip(normal @ light, 0, 1)
        n_cam = normal @ self._rotation(camera).T
        if shading == "flat":
            factor = np.ones((size, size))
        elif shading == "cel":
            factor = np.where(lambert > rng.uniform(0.35, 0.6), 1.0, rng.uniform(0.7, 0.85))
        elif shading == "poster":
            factor = 0.62 + 0.19 * np.floor(np.clip(lambert, 0, 0.999) * 3)
        else:
            amb = rng.uniform(0.5, 0.7) if shading == "soft" else rng.uniform(0.3, 0.5)
            factor = amb + (1 - amb) * lambert
        image *= factor[..., None]
        # Ink outlines: the silhouette (grazing normals) and the edges between parts.
        if shading != "photo" and rng.random() < 0.85:
            rim = hit & (n_cam[..., 2] < rng.uniform(0.15, 0.3))
            edges = np.zeros_like(hit)
            edges[:, 1:] |= mesh_id[:, 1:] != mesh_id[:, :-1]
            edges[1:, :] |= mesh_id[1:, :] != mesh_id[:-1, :]
            image[(rim | edges) & hit] = _INK
        background = self._background(rng)
        image[~hit] = background[~hit]
        out = np.clip(np.round(image), 0, 255).astype(np.uint8)
        if rng.random() < 0.4:
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 0.9))
        return out

    @staticmethod
    def _rotation(camera):
        yaw, pitch = np.radians(camera.yaw_deg), np.radians(camera.pitch_deg)
        ry = np.array([[np.cos(yaw), 0, -np.sin(yaw)], [0, 1, 0], [np.sin(yaw), 0, np.cos(yaw)]])
        rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
        # Camera.view puts the camera on the rotated +z axis: a normal facing it has (R n)_z > 0.
        return rx @ ry

    def _background(self, rng):
        size = self.size
        kind = int(rng.integers(4))
        c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        ys = np.linspace(0, 1, size)[:, None, None]
        if kind == 0:
            return np.broadcast_to(c0, (size, size, 3)).astype(np.float64)
        if kind == 1:
            return np.broadcast_to(c0 * (1 - ys) + c1 * ys, (size, size, 3)).astype(np.float64)
        if kind == 2:   # low-frequency noise: blobs of colour
            small = rng.integers(0, 256, (4, 4, 3)).astype(np.float32)
            return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float64)
        img = np.broadcast_to(c0, (size, size, 3)).astype(np.float64).copy()   # shapes
        for _ in range(int(rng.integers(2, 7))):
            centre = tuple(int(v) for v in rng.integers(0, size, 2))
            cv2.circle(img, centre, int(rng.integers(5, size // 3)), tuple(float(v) for v in rng.integers(0, 256, 3)), -1)
        return img
