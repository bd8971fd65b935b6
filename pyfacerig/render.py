"""A small CPU rasterizer for looking at templates and rigs without a GPU.

Pure numpy: triangles are projected with a pinhole camera, every candidate
pixel inside a triangle's bounding box is tested with edge functions at once,
the z-buffer keeps the nearest fragment (largest 1/w), and attributes (UV,
normal) are interpolated perspective-correctly (barycentrics weighted by 1/w).
Shading is Lambert with a key light plus ambient, times the texture.
It is meant for contact sheets and tests, not for speed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InvalidInputError

MAX_CANDIDATES = 4_000_000      # pixel candidates per batch (memory bound)


@dataclass
class Mesh:
    """vertices (N, 3), faces (F, 3) int, uvs (N, 2) glTF-style (or None), texture (H, W, 3) uint8,
    vertex_colors (N, 3) float 0..255 (or None; used when there is no texture)."""

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray | None = None
    texture: np.ndarray | None = None
    color: tuple = (200, 200, 200)
    double_sided: bool = False
    vertex_colors: np.ndarray | None = None


@dataclass
class Camera:
    """Pinhole camera looking at ``target`` from ``distance`` after a yaw/pitch about the target.

    yaw > 0 turns the camera toward the subject's left (+X); fov_deg is the vertical field of view.
    """

    target: np.ndarray = field(default_factory=lambda: np.zeros(3))
    distance: float = 0.6
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    fov_deg: float = 20.0

    def view(self, points: np.ndarray) -> np.ndarray:
        """Points in camera space: x right, y up, z = distance along the view axis (>0 in front)."""
        yaw, pitch = np.radians(self.yaw_deg), np.radians(self.pitch_deg)
        ry = np.array([[np.cos(yaw), 0, -np.sin(yaw)], [0, 1, 0], [np.sin(yaw), 0, np.cos(yaw)]])
        rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
        p = (points - self.target) @ (rx @ ry).T
        return np.stack([p[:, 0], p[:, 1], self.distance - p[:, 2]], 1)


def _check_mesh(m: Mesh, k: int) -> None:
    v, f = np.asarray(m.vertices), np.asarray(m.faces)
    if v.ndim != 2 or v.shape[1] != 3 or not np.isfinite(v).all():
        raise InvalidInputError(f"mesh {k}: vertices must be a finite (N, 3) array, got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or f.size and (f.min() < 0 or f.max() >= len(v)):
        raise InvalidInputError(f"mesh {k}: faces must be (F, 3) indices into {len(v)} vertices")
    if m.texture is not None and (m.uvs is None or len(m.uvs) != len(v)):
        raise InvalidInputError(f"mesh {k}: a texture needs one uv per vertex")


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (N, 3)."""
    fn = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    n = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return n / np.where(norm > 0, norm, 1.0)


def rasterize(screen: np.ndarray, inv_w: np.ndarray, faces: np.ndarray, width: int, height: int):
    """Z-buffered coverage of triangles given in pixel coordinates.

    screen: (N, 2) pixel positions (x right, y down, pixel centres at integers + 0.5);
    inv_w: (N,) 1/depth (larger is nearer). Returns per pixel the triangle id (-1 where
    empty) and the screen-space barycentrics (H, W, 3).
    """
    tri_id = np.full(height * width, -1, np.int64)
    best = np.full(height * width, -np.inf)
    bary = np.zeros((height * width, 3))
    a, b, c = screen[faces[:, 0]], screen[faces[:, 1]], screen[faces[:, 2]]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    lo = np.floor(np.minimum(np.minimum(a, b), c) - 0.5).astype(np.int64)
    hi = np.ceil(np.maximum(np.maximum(a, b), c) - 0.5).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi[:, 0] = np.minimum(hi[:, 0], width - 1)
    hi[:, 1] = np.minimum(hi[:, 1], height - 1)
    nx, ny = hi[:, 0] - lo[:, 0] + 1, hi[:, 1] - lo[:, 1] + 1
    keep = (nx > 0) & (ny > 0) & (np.abs(area) > 1e-12)
    tris = np.flatnonzero(keep)
    counts = (nx * ny)[tris]
    start = 0
    while start < len(tris):
        cum = np.cumsum(counts[start:])
        stop = start + max(1, int(np.searchsorted(cum, MAX_CANDIDATES)))
        batch = tris[start:stop]
        n_per = counts[start:stop]
        t = np.repeat(batch, n_per)
        local = np.arange(n_per.sum()) - np.repeat(np.cumsum(n_per) - n_per, n_per)
        px = lo[t, 0] + local % nx[t]
        py = lo[t, 1] + local // nx[t]
        cx, cy = px + 0.5, py + 0.5
        at, bt, ct, ar = a[t], b[t], c[t], area[t]
        w0 = ((bt[:, 0] - cx) * (ct[:, 1] - cy) - (bt[:, 1] - cy) * (ct[:, 0] - cx)) / ar
        w1 = ((ct[:, 0] - cx) * (at[:, 1] - cy) - (ct[:, 1] - cy) * (at[:, 0] - cx)) / ar
        w2 = 1.0 - w0 - w1
        inside = (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9)
        t, px, py, w0, w1, w2 = t[inside], px[inside], py[inside], w0[inside], w1[inside], w2[inside]
        depth = w0 * inv_w[faces[t, 0]] + w1 * inv_w[faces[t, 1]] + w2 * inv_w[faces[t, 2]]
        pix = py * width + px
        order = np.lexsort((-depth, pix))           # per pixel, nearest first
        pix, depth, t = pix[order], depth[order], t[order]
        w = np.stack([w0, w1, w2], 1)[order]
        first = np.concatenate([[True], pix[1:] != pix[:-1]])
        pix, depth, t, w = pix[first], depth[first], t[first], w[first]
        nearer = depth > best[pix]
        pix, depth, t, w = pix[nearer], depth[nearer], t[nearer], w[nearer]
        best[pix], tri_id[pix], bary[pix] = depth, t, w
        start = stop
    return tri_id.reshape(height, width), bary.reshape(height, width, 3)


def sample_bilinear(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Texture colours (K, C) float at glTF uvs (K, 2) (v = 0 is the top row), clamped at the edges."""
    h, w = texture.shape[:2]
    x = np.clip(uv[:, 0] * w - 0.5, 0, w - 1)
    y = np.clip(uv[:, 1] * h - 0.5, 0, h - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    tex = texture.astype(np.float64)
    return ((tex[y0, x0] * (1 - fx) + tex[y0, x1] * fx) * (1 - fy)
            + (tex[y1, x0] * (1 - fx) + tex[y1, x1] * fx) * fy)


def render(meshes: list[Mesh], camera: Camera, width: int = 512, height: int = 512,
           background=(90, 90, 96), light_dir=(0.35, 0.45, 1.0), ambient: float = 0.35) -> np.ndarray:
    """(height, width, 3) uint8 image of the meshes."""
    return render_with_ids(meshes, camera, width, height, background, light_dir, ambient)[0]


def render_with_ids(meshes: list[Mesh], camera: Camera, width: int = 512, height: int = 512,
                    background=(90, 90, 96), light_dir=(0.35, 0.45, 1.0), ambient: float = 0.35):
    """The image of :func:`render`, plus what each pixel sees.

    Returns (image (H, W, 3) uint8, mesh (H, W) int (-1: background), triangle (H, W) int into
    that mesh's faces, barycentrics (H, W, 3) float, perspective-correct).
    """
    if not meshes:
        raise InvalidInputError("render needs at least one mesh")
    for k, m in enumerate(meshes):
        _check_mesh(m, k)
    focal = 0.5 * height / np.tan(np.radians(camera.fov_deg) / 2)
    all_screen, all_invw, all_faces, owner, offsets = [], [], [], [], [0]
    normals, kept = [], []
    for k, m in enumerate(meshes):
        v = np.asarray(m.vertices, float)
        f = np.asarray(m.faces, np.int64)
        cam = camera.view(v)
        if (cam[:, 2] <= 1e-6).any():
            raise InvalidInputError(f"mesh {k} reaches behind the camera")
        screen = np.stack([0.5 * width + focal * cam[:, 0] / cam[:, 2],
                           0.5 * height - focal * cam[:, 1] / cam[:, 2]], 1)
        if not m.double_sided:
            # back faces (clockwise on screen, since y points down) are culled
            a, b, c = screen[f[:, 0]], screen[f[:, 1]], screen[f[:, 2]]
            area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
            kept.append(np.flatnonzero(area < 0))
            f = f[area < 0]
        else:
            kept.append(np.arange(len(f)))
        all_screen.append(screen)
        all_invw.append(1.0 / cam[:, 2])
        all_faces.append(f + offsets[-1])
        owner.append(np.full(len(f), k))
        normals.append(vertex_normals(v, np.asarray(m.faces, np.int64)))
        offsets.append(offsets[-1] + len(v))
    screen, inv_w = np.vstack(all_screen), np.concatenate(all_invw)
    faces, owner, normals = np.vstack(all_faces), np.concatenate(owner), np.vstack(normals)
    tri, bary = rasterize(screen, inv_w, faces, width, height)
    image = np.empty((height, width, 3))
    image[:] = background
    hit = tri >= 0
    t = tri[hit]
    w = bary[hit] * inv_w[faces[t]]                   # perspective-correct barycentrics
    w /= w.sum(1, keepdims=True)
    corners = faces[t]
    light = np.asarray(light_dir, float)
    light /= np.linalg.norm(light)
    n = np.einsum("kj,kjd->kd", w, normals[corners])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    shade = ambient + (1.0 - ambient) * np.clip(n @ light, 0.0, 1.0)
    colour = np.zeros((len(t), 3))
    for k, m in enumerate(meshes):
        sel = owner[t] == k
        if not sel.any():
            continue
        if m.texture is not None:
            uv_all = np.asarray(m.uvs, float)
            uv = np.einsum("kj,kjd->kd", w[sel], uv_all[corners[sel] - offsets[k]])
            colour[sel] = sample_bilinear(m.texture, uv)[:, :3]
        elif m.vertex_colors is not None:
            colour[sel] = np.einsum("kj,kjd->kd", w[sel], np.asarray(m.vertex_colors, float)[corners[sel] - offsets[k]])
        else:
            colour[sel] = m.color
    image[hit] = colour * shade[:, None]
    mesh_id = np.full((height, width), -1)
    mesh_id[hit] = owner[t]
    triangle = np.full((height, width), -1)
    triangle[hit] = np.concatenate(kept)[t]          # index into the mesh's own face list
    barycentrics = np.zeros((height, width, 3))
    barycentrics[hit] = w
    return np.clip(np.round(image), 0, 255).astype(np.uint8), mesh_id, triangle, barycentrics


def bake(uvs: np.ndarray, faces: np.ndarray, attributes: np.ndarray, size: int):
    """Rasterize a per-vertex attribute (N, C) into a (size, size, C) UV atlas.

    Returns the atlas and a (size, size) bool coverage mask; texels outside the
    chart are 0.  glTF uv convention: v = 0 is the atlas's top row.
    """
    screen = np.asarray(uvs, float) * size
    tri, bary = rasterize(screen, np.ones(len(uvs)), np.asarray(faces, np.int64), size, size)
    hit = tri >= 0
    out = np.zeros((size, size, attributes.shape[1]))
    corners = np.asarray(faces)[tri[hit]]
    out[hit] = np.einsum("kj,kjd->kd", bary[hit], attributes[corners])
    return out, hit


# --------------------------------------------------------------------------- template helpers
def fill_empty(atlas: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Copy each uncovered texel from its nearest covered texel (no seams under mip-mapping)."""
    from scipy.ndimage import distance_transform_edt
    _, (iy, ix) = distance_transform_edt(~covered, return_indices=True)
    return atlas[iy, ix]


def eye_texture(iris_uv_radius: float, pupil_uv_radius: float, iris_rgb=(92, 70, 52),
                size: int = 256) -> np.ndarray:
    """Procedural eyeball texture for the template's azimuthal eye UVs (iris centred)."""
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
    r = np.hypot(xx - 0.5, yy - 0.5)
    angle = np.arctan2(yy - 0.5, xx - 0.5)
    sclera = np.array([236.0, 232.0, 226.0])
    img = np.tile(sclera, (size, size, 1))
    img *= (1.0 - 0.12 * np.clip((r - 0.2) / 0.3, 0, 1))[..., None]      # darker toward the back
    iris = np.asarray(iris_rgb, float) * (0.85 + 0.15 * np.cos(angle * 40)[..., None])
    iris *= (0.7 + 0.5 * (r / iris_uv_radius))[..., None].clip(0, 1.2)
    in_iris = r < iris_uv_radius
    img[in_iris] = iris[in_iris]
    limbus = np.abs(r - iris_uv_radius) < 0.06 * iris_uv_radius
    img[limbus] *= 0.45
    img[r < pupil_uv_radius] = (12, 10, 10)
    return np.clip(img, 0, 255).astype(np.uint8)


MOUTH_COLOURS = {"mouth": (96, 34, 38), "teeth": (232, 226, 208), "tongue": (178, 84, 88)}


def template_meshes(template, weights=None, skin_texture=None, eye_rgb=None) -> list[Mesh]:
    """Meshes of every part posed by ARKit ``weights`` (dict name -> float or (52,)).

    template: a template or a built :class:`pyfacerig.Avatar` (both have ``parts`` and
    ``shape_names``); skin_texture (H, W, 3) uint8 in the skin's atlas (an avatar's, say).
    """
    names = template.shape_names
    if weights is None:
        w = np.zeros(len(names))
    elif isinstance(weights, dict):
        w = np.zeros(len(names))
        for k, val in weights.items():
            if k not in names:
                raise InvalidInputError(f"unknown shape name {k!r}")
            w[names.index(k)] = float(val)
    else:
        w = np.asarray(weights, float)
        if w.shape != (len(names),):
            raise InvalidInputError(f"weights must have shape ({len(names)},), got {w.shape}")
    from .templates import load_default
    extras = getattr(template, "extras", None) or load_default().extras
    iris_r = extras["iris_uv_radius"]
    pupil_r = extras["pupil_uv_radius"]
    eye_tex = eye_texture(iris_r, pupil_r, iris_rgb=eye_rgb or (92, 70, 52))
    meshes = []
    for name, part in template.parts.items():
        verts = part.split(part.vertices + np.tensordot(w, part.shape_deltas, axes=1))
        if part.material == "skin":
            tex = skin_texture if skin_texture is not None else np.full((4, 4, 3), (205, 170, 150), np.uint8)
            meshes.append(Mesh(verts, part.export_faces, part.uvs, tex))
        elif part.material == "eye":
            meshes.append(Mesh(verts, part.export_faces, part.uvs, eye_tex))
        else:
            meshes.append(Mesh(verts, part.export_faces, color=MOUTH_COLOURS[part.material]))
    return meshes


def face_camera(template, yaw_deg: float = 0.0, distance: float = 0.6, fov_deg: float = 19.0,
                landmark_ids=None) -> Camera:
    """A camera framing the face of a template or avatar, turned by ``yaw_deg`` and kept centred.

    It starts looking at the point between forehead and chin, then slides sideways so the
    skin's projected outline is centred (a turned face's outline is not symmetric about
    any fixed pivot).  landmark_ids (468,): the skin's landmark vertices; default the
    template's own, or the default template's for an avatar (pass its template's for an
    avatar built from another template).
    """
    from .templates import load_default
    if landmark_ids is None:
        landmark_ids = getattr(template, "landmark_vertex_ids", None)
    if landmark_ids is None:
        landmark_ids = load_default().landmark_vertex_ids
    lm = np.asarray(template.parts["skin"].vertices)[np.asarray(landmark_ids)]
    target = np.array([0.0, 0.5 * (lm[10, 1] + lm[152, 1]), lm[:468, 2].mean()])
    camera = Camera(target=target, distance=distance, yaw_deg=yaw_deg, fov_deg=fov_deg)
    cam = camera.view(np.asarray(template.parts["skin"].vertices))
    x = cam[:, 0] / cam[:, 2]
    offset = 0.5 * (x.min() + x.max()) * distance       # camera-space shift at the target's depth
    yaw = np.radians(yaw_deg)
    right = np.array([np.cos(yaw), 0.0, -np.sin(yaw)])    # camera x axis in world coordinates
    camera.target = target + offset * right
    return camera
