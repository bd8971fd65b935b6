"""Texture baking into the template's fixed UV atlas (Pan et al. §3.2.3).

The paper uses the projected image position of each vertex as its texture coordinate
(Eq. 12), which gives every avatar its own UVs.  Game assets want one fixed atlas instead, so
we run Eq. 12 per *texel*: every texel of the skin chart is a point on the fitted surface
(barycentric in its UV triangle); that point is projected into the photo with the fitted pose
and the photo is sampled there.

* Background: before sampling, pixels outside the face are replaced by a breadth-first
  diffusion of face colour (Fig. 4), so small misalignments at the silhouette pull in skin
  instead of background.
* Visibility: a texel only samples the photo if its surface point is the front-most surface
  at that pixel (image-space depth test) and its triangle faces the camera.
* Occlusion: unseen texels first try the mirror point across the face's symmetry plane
  (faces are nearly symmetric in colour, e.g. the far cheek of a turned head); whatever is
  still unseen is filled by the same BFS diffusion in UV space.
* Shapes: where a blendshape stretches skin the photo shows only as a thin band (the upper
  lid folded under the brow, opened over the eye by a blink), the photo would be smeared over
  it; such skin takes the colour filled in from the seen skin around it instead.
* Eyes: a procedural eyeball (sclera, the person's iris colour, pupil) laid out by each
  texel's angle from the eye's optical axis, so it does not depend on how the template
  unwrapped the eyeball.

Every function is deterministic; PNGs are encoded with fixed settings.
"""
from __future__ import annotations

import threading

import cv2
import numpy as np
from scipy.spatial import cKDTree

from ._cache import lookup, remember
from .errors import InvalidInputError
from .render import vertex_normals

__all__ = [
    "rasterize",
    "bfs_diffuse",
    "face_mask_from_labels",
    "face_region_mask",
    "mirror_vertex_map",
    "bake_skin",
    "shape_exposure",
    "photo_reliability",
    "facing_weight",
    "hair_colour",
    "person_probability",
    "iris_colour",
    "eyeball_texture",
    "encode_png",
    "FACE_OVAL",
]

# MediaPipe face-oval landmarks in order around the face (from the face-mesh topology).
FACE_OVAL = np.array([
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
])
# Eye contours (closed loops) and iris landmarks of the 478-point MediaPipe mesh.
_EYE_CONTOURS = (
    np.array([33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]),
    np.array([263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249]),
)
_IRISES = (np.arange(468, 473), np.arange(473, 478))  # centre then 4 boundary points


def rasterize(points: np.ndarray, faces: np.ndarray, shape: tuple[int, int], depth: np.ndarray | None = None):
    """Rasterize triangles given in pixel coordinates (x right, y down, pixel centres at +0.5).

    points (N, 2) float; faces (F, 3) int; shape (height, width); depth (N,) float, larger =
    nearer.  Returns ``(triangle (H, W) int32, -1 where empty; barycentric (H, W, 3) float32)``.

    Triangle ids are drawn with OpenCV's convex-polygon fill (4 fractional bits); with depth,
    triangles are drawn far to near (painter's order by mean depth), which is exact for a
    face mesh seen from the front and a close approximation at the silhouette.  Barycentric
    coordinates of each covered pixel centre are then computed in one vectorised pass and
    clamped to the triangle, since the fill also covers pixels the edges merely touch.
    """
    height, width = shape
    points = np.asarray(points, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    corners = points[faces]  # (F, 3, 2)
    triangle = np.full((height, width), -1, dtype=np.int32)
    # OpenCV puts integer coordinates at pixel centres; ours are at +0.5.
    fixed = np.round((corners - 0.5) * 16.0).astype(np.int32)
    order = np.arange(len(faces)) if depth is None else np.argsort(
        np.asarray(depth, dtype=np.float64)[faces].mean(axis=1), kind="stable")
    # One call per triangle (painter's order needs each id drawn over the last): the loop is
    # call overhead, so it hands OpenCV ready rows and plain ints, positionally (2x faster).
    fill = cv2.fillConvexPoly
    for f, polygon in zip(order.tolist(), fixed[order]):
        fill(triangle, polygon, f, cv2.LINE_8, 4)
    # Barycentrics are affine in the pixel position: b_k = A_k x + B_k y + C_k per triangle.
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    degenerate = np.abs(area) <= 1e-12
    inv = 1.0 / np.where(degenerate, 1.0, area)
    # Edge function of the edge opposite corner k, divided by the area.
    coeff_a = np.stack([(b[:, 1] - c[:, 1]), (c[:, 1] - a[:, 1])], axis=1) * inv[:, None]
    coeff_b = np.stack([(c[:, 0] - b[:, 0]), (a[:, 0] - c[:, 0])], axis=1) * inv[:, None]
    coeff_c = np.stack([b[:, 0] * c[:, 1] - c[:, 0] * b[:, 1], c[:, 0] * a[:, 1] - a[:, 0] * c[:, 1]],
                       axis=1) * inv[:, None]
    coeff_a[degenerate], coeff_b[degenerate], coeff_c[degenerate] = 0.0, 0.0, (1.0, 0.0)
    rows, cols = np.nonzero(triangle >= 0)
    tri = triangle[rows, cols]
    cx = (cols + 0.5).astype(np.float64)[:, None]
    cy = (rows + 0.5).astype(np.float64)[:, None]
    b01 = coeff_a[tri] * cx + coeff_b[tri] * cy + coeff_c[tri]
    bary = np.empty((len(tri), 3), dtype=np.float32)
    bary[:, :2] = b01
    bary[:, 2] = 1.0 - b01[:, 0] - b01[:, 1]
    np.clip(bary, 0.0, None, out=bary)
    bary /= bary.sum(axis=1, keepdims=True)
    barycentric = np.zeros((height, width, 3), dtype=np.float32)
    barycentric[rows, cols] = bary
    return triangle, barycentric


_LAYOUTS: dict = {}


def _layout_cached(uvs, faces, size: int, what: str, compute, *more):
    """``compute()`` for one UV layout at one atlas size, kept for the life of the process.

    A template's atlas never changes, so everything derived from it alone (its rasterisation,
    its texel list, the nearest-chart-texel map) is computed once per template.  Entries are
    keyed by the ids of the arrays they derive from (``uvs``, ``faces`` and any ``more``) and
    hold those arrays, so an id cannot be reused while its entry lives; only read-only
    (template) arrays are cached, and results are read-only.
    """
    sources = (uvs, faces) + more
    key = tuple(id(a) for a in sources) + (int(size), what)
    hit = lookup(_LAYOUTS, key, sources)
    if hit is not None:
        return hit
    value = compute()
    for array in (value if isinstance(value, tuple) else (value,)):
        if isinstance(array, np.ndarray):
            array.setflags(write=False)
    remember(_LAYOUTS, key, sources, value, limit=32)
    return value


def uv_raster(uvs: np.ndarray, faces: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(triangle (size, size) int, barycentrics (size, size, 3)) of a UV layout, rasterised once
    per template (see :func:`_layout_cached`); results are read-only."""
    return _layout_cached(uvs, faces, size, "raster", lambda: rasterize(
        np.asarray(uvs, dtype=np.float64) * size, np.asarray(faces, dtype=np.int64), (size, size)))


def _uv_texels(uvs, faces, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The covered texels of a UV layout, in row-major order: flat index (K,), triangle (K,),
    barycentrics (K, 3) float32 and the triangle's corners (K, 3) int64 (cached per template
    like :func:`uv_raster`)."""
    def compute():
        triangle, bary = uv_raster(uvs, faces, size)
        texels = np.flatnonzero(triangle.reshape(-1) >= 0)
        texel_triangle = triangle.reshape(-1)[texels]
        return (texels, texel_triangle, bary.reshape(-1, 3)[texels],
                np.asarray(faces, dtype=np.int64)[texel_triangle])
    return _layout_cached(uvs, faces, size, "texels", compute)


def _texel_interpolation(uvs, faces, size: int, mirror=None):
    """(K, M) CSR matrix taking per-vertex values to :func:`_uv_texels`'s texels (row k holds
    texel k's three barycentrics at its corners, in corner order); with ``mirror`` (M,), at
    the mirror images of its corners instead.  Cached per template (and mirror map).

    Its product with float32 values adds the three products in corner order in float32 (the
    einsum over gathered corners it replaces did the same), about six times faster.
    """
    import scipy.sparse as sp

    def compute():
        _, _, bary, corners = _uv_texels(uvs, faces, size)
        if mirror is not None:
            corners = np.asarray(mirror)[corners]
        matrix = sp.csr_matrix((bary.ravel(), corners.ravel(), np.arange(0, corners.size + 1, 3)),
                               shape=(len(corners), len(uvs)))
        for array in (matrix.data, matrix.indices, matrix.indptr):
            array.setflags(write=False)
        return matrix
    if mirror is None:
        return _layout_cached(uvs, faces, size, "interpolation", compute)
    return _layout_cached(uvs, faces, size, "mirror interpolation", compute, mirror)


def bfs_diffuse(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill unknown pixels with diffused colour, in breadth-first order from the known ones (Fig. 4).

    image (H, W, C) float or uint8; known (H, W) bool.  Each unknown pixel takes the mean of its
    8-neighbours that were visited before it.  BFS with 8-connectivity visits pixels ring by
    ring in order of chessboard distance to the known set, so a whole ring is processed at once
    (averaging over the previous rings; pixels of the same ring do not feed each other).
    Returns float32 (H, W, C).  With no known pixel the image is returned unchanged.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[:, :, None]
    known = np.asarray(known, dtype=bool)
    if known.shape != image.shape[:2]:
        raise InvalidInputError(f"known mask {known.shape} does not match image {image.shape[:2]}")
    if not known.any() or known.all():
        return image.copy()
    height, width, channels = image.shape
    # Chessboard distance == BFS ring index for 8-connectivity.
    ring = cv2.distanceTransform((~known).astype(np.uint8), cv2.DIST_C, 3).astype(np.int32)
    padded_ring = np.full((height + 2, width + 2), np.iinfo(np.int32).max, dtype=np.int32)
    padded_ring[1:-1, 1:-1] = ring
    values = np.zeros((height + 2) * (width + 2) * channels, dtype=np.float32).reshape(-1, channels)
    values.reshape(height + 2, width + 2, channels)[1:-1, 1:-1] = np.where(known[:, :, None], image, 0)
    flat_ring = padded_ring.reshape(-1)
    stride = width + 2
    offsets = np.array([-stride - 1, -stride, -stride + 1, -1, 1, stride - 1, stride, stride + 1])
    order = np.argsort(flat_ring, kind="stable")
    sorted_ring = flat_ring[order]
    first_unknown = np.searchsorted(sorted_ring, 1)
    last = np.searchsorted(sorted_ring, np.iinfo(np.int32).max)
    bounds = np.flatnonzero(np.diff(sorted_ring[first_unknown:last])) + first_unknown + 1
    for start, stop in zip(np.r_[first_unknown, bounds], np.r_[bounds, last]):
        index = order[start:stop]
        neighbours = index[:, None] + offsets[None, :]
        visited = flat_ring[neighbours] < sorted_ring[start]
        total = np.einsum("kn,knc->kc", visited.astype(np.float32), values[neighbours])
        values[index] = total / visited.sum(axis=1, keepdims=True)
    return values.reshape(height + 2, width + 2, channels)[1:-1, 1:-1].copy()


def face_mask_from_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Face pixels from a face parser's (H, W) label map (19-class convention of
    :data:`pyfacerig.networks.FACE_PARSING_CLASSES`): skin, brows, eyes, nose, mouth and lips;
    not hair, hat, glasses, ears, neck or background.  Returns (H, W) bool."""
    from .networks import FACE_PARSING_CLASSES

    labels = np.asarray(labels)
    if labels.shape != tuple(shape):
        raise InvalidInputError(f"face parser labels {labels.shape} do not match the image {tuple(shape)}")
    face_classes = [FACE_PARSING_CLASSES.index(name) for name in
                    ("skin", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "mouth", "u_lip", "l_lip")]
    return np.isin(labels, face_classes)


def face_region_mask(shape: tuple[int, int], landmarks: np.ndarray, parser_mask: np.ndarray | None = None,
                     erosion: float = 0.02) -> np.ndarray:
    """Face pixels of the photo: (H, W) bool.

    parser_mask (H, W) bool, the face parser's skin+features region, wins when given;
    otherwise the face-oval polygon of the landmarks (478 or 468, image frame).  The mask is
    eroded by ``erosion`` times the face height so the silhouette's mixed pixels count as
    background.
    """
    height, width = shape
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if parser_mask is not None:
        mask = np.asarray(parser_mask, dtype=bool)
        if mask.shape != (height, width):
            raise InvalidInputError(f"parser mask {mask.shape} does not match the image {(height, width)}")
        mask = mask.astype(np.uint8)
    else:
        mask = np.zeros((height, width), dtype=np.uint8)
        polygon = np.round(landmarks[FACE_OVAL, :2] * 16).astype(np.int32)  # 4 fractional bits
        cv2.fillPoly(mask, [polygon], 1, lineType=cv2.LINE_8, shift=4)
    radius = erosion * float(np.ptp(landmarks[FACE_OVAL, 1]))
    if radius > 0:
        # Erode by a disc: keep pixels farther than `radius` from the outside (linear time,
        # unlike a large structuring element on a full-resolution photo).
        return cv2.distanceTransform(mask, cv2.DIST_L2, 3) > radius
    return mask.astype(bool)


def mirror_vertex_map(vertices: np.ndarray) -> np.ndarray:
    """(N,) index of each vertex's mirror image across the template's x = 0 plane (nearest vertex)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    _, index = cKDTree(vertices).query(vertices * np.array([-1.0, 1.0, 1.0]))
    return index.astype(np.int64)


def _bilinear(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Sample (H, W, C) float32 at (K, 2) pixel positions (pixel centres at +0.5)."""
    # cv2.remap wants maps narrower than 32767, so lay the samples out in rows of 1024.
    count = len(xy)
    rows = max(-(-count // 1024), 1)
    maps = np.zeros((2, rows * 1024), dtype=np.float32)
    maps[:, :count] = (xy - 0.5).T
    sampled = cv2.remap(image, maps[0].reshape(rows, 1024), maps[1].reshape(rows, 1024), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
    return sampled.reshape(rows * 1024, -1)[:count]


def bake_skin(
    image: np.ndarray,
    camera_vertices: np.ndarray,
    faces: np.ndarray,
    uvs: np.ndarray,
    mirror: np.ndarray,
    face_mask: np.ndarray,
    size: int = 1024,
    depth_tolerance: float = 0.03,
    min_cosine: float = 0.17,
    keep_unseen: bool = False,
) -> tuple[np.ndarray, dict]:
    """Bake the photo into the skin's fixed UV atlas (§3.2.3, Eq. 12 per texel).

    image (H, W, 3) uint8 RGB at full resolution; camera_vertices (N, 3) the fitted skin in the
    camera frame (pixels, y up, z toward the camera); faces (F, 3); uvs (N, 2) in [0, 1],
    origin top-left; mirror (N,) from :func:`mirror_vertex_map`; face_mask (H, W) bool from
    :func:`face_region_mask`.  ``depth_tolerance`` is the depth test's slack as a fraction of
    the face height; ``min_cosine`` the smallest cosine between a triangle's normal and the
    view axis for it to take photo colour.  Returns (size, size, 3) uint8 RGB and coverage
    statistics; with ``keep_unseen``, instead per chart texel (in :func:`_uv_texels`'s order)
    the (K, 3) float32 photo colours and the (K,) bool mask of the texels that have them (the
    caller fills the rest).
    """
    height, width = image.shape[:2]
    camera_vertices = np.asarray(camera_vertices, dtype=np.float64)
    texels, texel_triangle, _, _ = _uv_texels(uvs, faces, size)
    faces_in, faces = faces, np.asarray(faces, dtype=np.int64)
    image_xy = np.column_stack([camera_vertices[:, 0], -camera_vertices[:, 1]])

    # Work on a crop around the face: diffusion and z-buffer cost scale with its area.  A face
    # much larger than the atlas is resampled down first (the atlas cannot hold more detail).
    extent = float(np.ptp(image_xy, axis=0).max())
    margin = 0.1 * extent
    x0, y0 = np.maximum(np.floor(image_xy.min(axis=0) - margin).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(image_xy.max(axis=0) + margin).astype(int), [width, height])
    if x1 <= x0 or y1 <= y0:
        raise InvalidInputError("the fitted face does not overlap the image")
    zoom = min(1.0, 1.5 * size / max(extent, 1.0))
    crop = image[y0:y1, x0:x1]
    mask = face_mask[y0:y1, x0:x1]
    if zoom < 1.0:
        crop_size = (max(1, round((x1 - x0) * zoom)), max(1, round((y1 - y0) * zoom)))
        crop = cv2.resize(crop, crop_size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask.astype(np.uint8), crop_size, interpolation=cv2.INTER_NEAREST).astype(bool)
    crop_h, crop_w = crop.shape[:2]
    # Camera frame -> crop pixels (y down), keeping z in the same (scaled) units.
    crop_vertices = np.column_stack([(image_xy - [x0, y0]) * zoom, camera_vertices[:, 2] * zoom])
    # Fig. 4: background pixels take diffused face colour before any sampling.
    # (bake_head takes only texels inside the face mask, so it needs no diffused background.)
    diffused = crop.astype(np.float32) if keep_unseen else bfs_diffuse(crop, mask)

    corners = camera_vertices[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    # Cosine between each triangle's normal and the view axis (+z); the mirrored triangle's
    # normal is the reflection of a mirrored winding, hence the sign flip.
    cosine = normals[:, 2] / np.maximum(np.linalg.norm(normals, axis=1), 1e-30)
    # The z-buffer needs the front-facing triangles only: the nearest surface along a line of
    # sight is always one the line enters, which faces the camera.  That halves the triangles
    # to draw on a whole head, whose back faces away.
    front = faces[cosine > 0.0]
    depth_triangle, depth_bary = rasterize(crop_vertices[:, :2], front, (crop_h, crop_w), depth=crop_vertices[:, 2])
    depth_buffer = np.where(
        depth_triangle >= 0,
        np.einsum("hwk,hwk->hw", depth_bary, crop_vertices[:, 2][front[np.maximum(depth_triangle, 0)]]),
        -np.inf,
    ).astype(np.float32)
    slack = depth_tolerance * float(np.ptp(crop_vertices[:, 1]))

    points_f32 = crop_vertices.astype(np.float32)
    texel_count = np.maximum(np.bincount(texel_triangle, minlength=len(faces)), 1)

    def sample(subset, points: np.ndarray, facing: np.ndarray):
        """Photo colour and visibility of the surface points ``points`` (crop pixels and depth)
        of the texels ``subset`` (an index array, or ``slice(None)`` for all of them).

        The depth test is voted per triangle (visible if most of its texels pass): per-texel
        tests flicker where the z-buffer is coarse at the silhouette, which would leave a
        stipple of photo and fill texels.
        """
        col = np.clip(np.floor(points[:, 0]).astype(np.int64), 0, crop_w - 1)
        row = np.clip(np.floor(points[:, 1]).astype(np.int64), 0, crop_h - 1)
        inside = (points[:, 0] >= 0) & (points[:, 1] >= 0) & (points[:, 0] < crop_w) & (points[:, 1] < crop_h)
        passed = inside & (points[:, 2] >= depth_buffer[row, col] - slack)
        votes = np.bincount(texel_triangle[subset], weights=passed, minlength=len(faces)) / texel_count
        visible = inside & facing & (votes[texel_triangle[subset]] > 0.5)
        if keep_unseen:
            # the caller fills everything else itself: only true face pixels count as seen
            visible &= mask[row, col]
        return _bilinear(diffused, points[:, :2]), visible

    everything = slice(None)
    # Grazing triangles (under ~10 degrees to the line of sight) smear a pixel over many texels.
    colour, visible = sample(everything, _texel_interpolation(uvs, faces_in, size) @ points_f32,
                             cosine[texel_triangle] > min_cosine)
    # Unseen texels: the mirror point across the symmetry plane, if that one is visible.
    unseen = np.flatnonzero(~visible)
    mirrored_corners = camera_vertices[mirror[faces]]       # per triangle: its mirror image
    mirrored_normals = np.cross(mirrored_corners[:, 1] - mirrored_corners[:, 0],
                                mirrored_corners[:, 2] - mirrored_corners[:, 0])
    # A mirrored triangle has the opposite winding, so it faces the camera when its z is negative.
    mirrored_cosine = -mirrored_normals[:, 2] / np.maximum(np.linalg.norm(mirrored_normals, axis=1), 1e-30)
    mirror_points = (_texel_interpolation(uvs, faces_in, size, mirror) @ points_f32)[unseen]
    mirror_colour, mirror_visible = sample(unseen, mirror_points, mirrored_cosine[texel_triangle[unseen]] > min_cosine)
    use_mirror = np.zeros(len(texels), dtype=bool)
    use_mirror[unseen[mirror_visible]] = True
    colour[use_mirror] = mirror_colour[mirror_visible]
    known_texels = visible | use_mirror

    if keep_unseen:
        return colour, known_texels
    atlas = np.zeros((size * size, 3), dtype=np.float32)
    known = np.zeros(size * size, dtype=bool)
    atlas[texels] = colour
    known[texels] = known_texels
    # Unseen texels and the atlas outside the chart: diffuse, so mipmaps and seams stay skin-coloured.
    atlas = bfs_diffuse(atlas.reshape(size, size, 3), known.reshape(size, size))
    stats = {
        "chart_texels": int(len(texels)),
        "visible_fraction": float(visible.mean()) if len(texels) else 0.0,
        "mirrored_fraction": float(use_mirror.mean()) if len(texels) else 0.0,
    }
    return np.clip(np.rint(atlas), 0, 255).astype(np.uint8), stats


#: Colours of the parts of the head a portrait never shows (RGB).
MOUTH_INTERIOR_RGB = (112, 38, 44)


def _mesh_laplacian(faces: np.ndarray, count: int):
    import scipy.sparse as sp
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    adjacency = sp.coo_matrix((np.ones(2 * len(edges)), (edges.ravel(), edges[:, ::-1].ravel())),
                              shape=(count, count)).tocsr()
    adjacency.data[:] = 1.0
    return (sp.diags(np.asarray(adjacency.sum(axis=1)).ravel()) - adjacency).tocsr()


_SEGMENTER = None
_SEGMENTER_LOCK = threading.Lock()


def person_probability(image: np.ndarray, left: float, top: float, side: float, size: int = 256) -> np.ndarray:
    """MediaPipe's selfie segmentation (from its wheel) of the square ``side`` pixels wide at
    (``left``, ``top``) of ``image``, resampled to ``size`` x ``size``: (size, size) float32
    probability that a pixel shows the person (hair included) rather than the background.
    Outside the image counts as black.  The graph is process-wide and serialised with a lock
    (MediaPipe graphs are not re-entrant; it costs about 4 ms)."""
    global _SEGMENTER
    scale = size / float(side)
    # Pixel centres of the square map onto the photo with one affine warp (bilinear: the
    # segmenter works at 256 px and does not need an anti-aliased crop).
    warp = np.array([[1.0 / scale, 0.0, left + 0.5 / scale - 0.5], [0.0, 1.0 / scale, top + 0.5 / scale - 0.5]])
    crop = cv2.warpAffine(np.ascontiguousarray(image[..., :3]), warp, (size, size),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    with _SEGMENTER_LOCK:
        if _SEGMENTER is None:
            import mediapipe as mp  # lazily: it loads TensorFlow Lite
            _SEGMENTER = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        mask = _SEGMENTER.process(crop).segmentation_mask
    return np.array(mask, dtype=np.float32)


#: The hair is sampled along rays out of the upper face oval, up to 40 % of the face height
#: beyond it, every 1 %.
_HAIR_RAY = np.arange(0.0, 0.405, 0.01)


def hair_colour(image: np.ndarray, landmarks: np.ndarray, skin_tone: np.ndarray) -> np.ndarray:
    """(3,) float RGB of the person's hair, or ``skin_tone`` if the head looks shaved.

    landmarks (478, 2+) image frame; skin_tone (3,) the face's median colour.  The photo is
    sampled along rays out of the face oval's points above the eyes that point within 50
    degrees of straight up (``_HAIR_RAY``; over the temples hair thins to skin and background).
    Samples count only where MediaPipe's person segmentation, shrunk by about 4 % of the face
    height, says they show the person, so a background next to the head is never taken for
    hair.  Along each ray the hair starts at the first two samples in a row more than 45 RGB
    levels from the skin before them (a running average that starts at the forehead's own skin,
    just inside the top of the oval, and follows slow changes such as a bald scalp's shading);
    from there on every sample is hair, highlights included (blond strands can be as light as
    skin).  The colour is the mode of the hair samples: three rounds of a median over those
    within 60 levels of the last estimate, so the few samples of a bright background the
    segmentation keeps, or of skin through thin hair, do not pale it.  With hair on fewer than
    a quarter of the rays, the head is taken as shaved and the cap keeps the skin's colour.
    Where the segmentation does not take the face for a person, or leaves too little above it
    (drawings), every sample counts but those near the background's colour (read 60-90 % of
    the face height out), and a ray's hair must be 4 % of the face height deep (a drawing's
    ink outline is thinner).
    """
    height, width = image.shape[:2]
    tone_in = np.asarray(skin_tone, dtype=np.float64)
    points = np.asarray(landmarks, dtype=np.float64)[:, :2]
    oval = points[FACE_OVAL]
    face_height = float(np.linalg.norm(points[152] - points[10]))
    if not np.isfinite(face_height) or face_height < 4.0:
        return tone_in
    centre = oval.mean(axis=0)
    eye_line = 0.5 * (points[33, 1] + points[263, 1])
    outward = oval - centre
    outward /= np.maximum(np.linalg.norm(outward, axis=1, keepdims=True), 1e-9)
    up = (oval[:, 1] < eye_line) & (outward[:, 1] < -np.cos(np.radians(50.0)))
    upper, outward = oval[up], outward[up]
    if not len(upper):
        return tone_in
    rays = upper[:, None] + outward[:, None] * (_HAIR_RAY[None, :, None] * face_height)
    # The forehead's skin: 4-8 % inside the oval along the same rays.
    inside = (upper[:, None] - outward[:, None] * (np.array([0.04, 0.06, 0.08])[None, :, None] * face_height))
    inside = inside.reshape(-1, 2)
    xy = np.rint(inside).astype(np.int64)
    ok = (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
    tone = np.median(image[xy[ok, 1], xy[ok, 0], :3].astype(np.float64), axis=0) if ok.any() else tone_in
    # The person's mask in a square 2.4 face heights wide around the head.  Its edge is soft and
    # a few per cent of the face height wide: shrink the person by 4 cells (about 4 %).
    side = 2.4 * face_height
    left, top = centre[0] - side / 2, points[10, 1] - 0.8 * face_height
    mask = person_probability(image, left, top, side) > 0.5
    cells = mask.shape[0]
    person = cv2.erode(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0

    def cell(points_xy):
        return np.clip(np.floor((points_xy - (left, top)) / side * cells).astype(np.int64), 0, cells - 1)

    xy = np.rint(rays).astype(np.int64)
    in_image = (xy[..., 0] >= 0) & (xy[..., 0] < width) & (xy[..., 1] >= 0) & (xy[..., 1] < height)
    at = cell(rays.reshape(-1, 2))
    shown = person[at[:, 1], at[:, 0]].reshape(rays.shape[:2]) & in_image
    background = None
    face_at = cell(inside)
    if np.mean(mask[face_at[:, 1], face_at[:, 0]]) < 0.5 or np.mean(shown.sum(axis=1) >= 4) < 0.25:
        # A drawing or a photo the segmenter does not take for a person, or whose hair it cuts
        # away (a drawing's blue hair): keep every sample but the background's colour, read
        # 60-90 % of the face height out along the same rays, where no head reaches.
        shown = in_image
        out = upper[:, None] + outward[:, None] * (np.arange(0.6, 0.905, 0.05)[None, :, None] * face_height)
        out = np.rint(out.reshape(-1, 2)).astype(np.int64)
        out = out[(out[:, 0] >= 0) & (out[:, 0] < width) & (out[:, 1] >= 0) & (out[:, 1] < height)]
        if len(out):
            background = np.median(image[out[:, 1], out[:, 0], :3].astype(np.float64), axis=0)
    found, counted = [], 0
    for ray, ok in zip(xy, shown):
        if ok.sum() < 4:
            continue
        counted += 1
        colour = image[ray[ok, 1], ray[ok, 0], :3].astype(np.float64)
        if background is not None:
            colour = colour[np.linalg.norm(colour - background, axis=1) > 40.0]
            if len(colour) < 2:
                continue
        # Skin changes slowly along the ray (shading as a bald scalp turns from the light), hair
        # starts with a step: compare each sample with a running average of the skin before it.
        far = np.zeros(len(colour), dtype=bool)
        reference = tone.copy()
        for k, sample in enumerate(colour):
            far[k] = np.linalg.norm(sample - reference) > 45.0
            if not far[k]:
                reference += 0.3 * (sample - reference)
        starts = np.flatnonzero(far[:-1] & far[1:])
        # Without the segmentation, at least 4 % of the face height of it: a drawing's outline,
        # with the background past it dropped, is thinner.
        if len(starts) and len(colour) - starts[0] >= (2 if background is None else 4):
            found.append(colour[starts[0]:])
    if not counted or len(found) < 0.25 * counted:
        return tone_in
    samples = np.concatenate(found)
    estimate = np.median(samples, axis=0)
    for _ in range(3):
        near = samples[np.linalg.norm(samples - estimate, axis=1) < 60.0]
        if len(near) < 8:
            break
        estimate = np.median(near, axis=0)
    return estimate


def bake_head(image: np.ndarray, camera_vertices: np.ndarray, skin, mirror: np.ndarray, face_mask: np.ndarray,
              landmarks: np.ndarray, regions: dict, size: int = 1024) -> np.ndarray:
    """The whole head's atlas: the photo where the face is seen, the person's skin elsewhere.

    camera_vertices (N, 3) the fitted skin (welded vertices) in the camera frame; skin: the
    template's skin part (its UV vertices and faces); mirror (N,) the welded mirror map;
    face_mask, landmarks: as for :func:`bake_skin`; regions: the template's skin masks
    ("scalp", "mouth_interior").  Texels the photo does not show take a colour diffused over
    the head's surface (not across the atlas, so charts never bleed into each other) from the
    seen skin toward the person's median skin tone; the scalp gets the hair colour read above
    the forehead, with a soft hairline; the mouth interior a flat colour.
    Returns (size, size, 3) uint8.
    """
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    welded = np.asarray(skin.uv_welded_ids)
    count = len(camera_vertices)
    split_mirror, laplacian, smooth_scalp, averaging = _head_layout(skin, np.asarray(mirror), regions, count)
    texels, _, texel_bary, texel_corners = _uv_texels(skin.uvs, skin.uv_faces, size)
    interpolation = _texel_interpolation(skin.uvs, skin.uv_faces, size)
    # Per chart texel (the atlas outside the charts is filled at the end): photo colour and seen.
    photo, known = bake_skin(image, np.asarray(camera_vertices)[welded], skin.uv_faces, skin.uvs, split_mirror,
                             face_mask, size=size, keep_unseen=True)
    # How far the photo can be trusted where a shape opens up skin it shows only as a thin band
    # (the upper lid tucked under the brow, stretched over the eye by a blink).
    facing = facing_weight(skin.faces, camera_vertices, averaging, FACING_RINGS)
    reliable = photo_reliability(skin, camera_vertices) * facing
    texel_reliable = interpolation @ reliable[welded].astype(np.float32)
    # Per welded vertex: the mean photo colour of its seen texels (each texel counts for the
    # corner nearest it, by its reliability), where there are enough and the vertex is reliable.
    vertex_of_texel = welded[texel_corners[known, np.argmax(texel_bary[known], axis=1)]]
    seen_colour = photo[known]
    seen_weight = texel_reliable[known].astype(float)
    sums = np.zeros((count, 3))
    hits = np.bincount(vertex_of_texel, weights=seen_weight, minlength=count)
    for c in range(3):
        sums[:, c] = np.bincount(vertex_of_texel, weights=seen_colour[:, c] * seen_weight, minlength=count)
    seen = (hits >= 2) & (reliable >= 0.5)
    tone = np.median(seen_colour, axis=0) if known.any() else np.array([200.0, 160.0, 140.0])
    # Screened harmonic fill: smooth across the surface, relaxing to the skin tone far from the photo.
    free = np.flatnonzero(~seen)
    fixed = np.flatnonzero(seen)
    colours = np.tile(tone, (count, 1))
    colours[fixed] = sums[fixed] / hits[fixed, None]
    if len(free):
        screen = 0.02
        rows = laplacian[free]
        system = (rows[:, free] + screen * sp.identity(len(free))).tocsc()
        rhs = -rows[:, fixed] @ colours[fixed] + screen * tone[None]
        solve = spla.factorized(system)
        colours[free] = np.column_stack([solve(rhs[:, c]) for c in range(3)])
    # Scalp: the hair colour with a soft edge (the region's weight smoothed over a few rings).
    hair = hair_colour(image, landmarks, tone)
    colours = colours * (1.0 - smooth_scalp[:, None]) + hair[None] * smooth_scalp[:, None]
    mouth = np.asarray(regions.get("mouth_interior", np.zeros(count, bool)), dtype=bool)
    colours[mouth] = MOUTH_INTERIOR_RGB
    # One pass bakes the fill colours and how much the hair cap / mouth interior cover the photo.
    cover = np.maximum(smooth_scalp, mouth.astype(float))
    baked = interpolation @ np.column_stack([colours, cover])[welded].astype(np.float32)
    fill, cover_map = baked[:, :3], np.clip(baked[:, 3], 0.0, 1.0)
    # The photo fades into the fill over about three rings of vertices inside the skin it covers
    # (inside the face mask, visible, facing the camera), so its outer edge shows no step in
    # colour or detail.  Not around the skin the shapes stretch (lids, inner lips): that has its
    # own ramp, and feathering it would wash out the lid and lip lines.
    covered = (np.bincount(vertex_of_texel, minlength=count) >= 2) & (facing >= 0.5)
    feather = covered.astype(float)
    for _ in range(3):
        feather = averaging @ feather
    t = np.clip(2.0 * feather - 1.0, 0.0, 1.0)
    blend = interpolation @ (reliable * t * t * (3.0 - 2.0 * t))[welded].astype(np.float32)
    photo_weight = known.astype(np.float32) * blend * (1.0 - cover_map)
    chart = photo * photo_weight[:, None]
    fill *= 1.0 - photo_weight[:, None]
    chart += fill
    # Rounded per chart texel, then spread: outside the charts each texel copies its nearest
    # chart texel, so mipmaps and seams stay skin-coloured (the nearest-texel map depends only
    # on the atlas, so it is computed once).
    np.rint(chart, out=chart)
    chart = np.clip(chart, 0, 255, out=chart).astype(np.uint8)
    return chart[_nearest_chart_texel(skin.uvs, skin.uv_faces, size)].reshape(size, size, 3)


#: Shapes that only ever act together with others: mouthClose closes the lips of an open jaw
#: (on its own it pushes them through each other, stretching the lips as no face does).
_SHOWN_WITH = {"mouthClose": {"jawOpen": 1.0}}
#: Photo reliability ramps from 1 to 0 as a shape magnifies the photo's pixels of a surface
#: point from RELIABLE_STRETCH to UNRELIABLE_STRETCH times (docs/pipeline.md, "Texture").
RELIABLE_STRETCH = 2.0
UNRELIABLE_STRETCH = 3.0

_EXPOSURES: dict = {}


def shape_exposure(skin) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle of the skin (``skin.faces``): how many times the largest of its shapes at
    weight 1 enlarges its area seen from the front (at least 1), and its unit normal at rest.

    A shape that opens up skin the rest pose folds away or turns from the view (the upper lid
    under the brow in a blink, the inner lips in jawOpen) makes its triangles' frontal area
    grow several times; the photo shows them at rest.  Computed once per template (its arrays
    are read-only) and read-only.
    """
    from .templates import ARKIT_SHAPE_NAMES

    sources = (skin.vertices, skin.faces, skin.shape_deltas)
    key = tuple(id(a) for a in sources)
    hit = lookup(_EXPOSURES, key, sources)
    if hit is not None:
        return hit
    vertices = np.asarray(skin.vertices, dtype=np.float64)
    faces = np.asarray(skin.faces, dtype=np.int64)
    deltas = np.asarray(skin.shape_deltas, dtype=np.float64)

    def normals(points):
        corners = points[faces]
        return np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])

    rest = normals(vertices)
    rest_area = np.maximum(np.linalg.norm(rest, axis=1), 1e-30)
    # A triangle turned away at rest counts with a tenth of its area, so exposing it is a
    # large but finite stretch.
    rest_front = np.maximum(rest[:, 2], 0.1 * rest_area)
    companions = {}
    if len(deltas) == len(ARKIT_SHAPE_NAMES):
        companions = {ARKIT_SHAPE_NAMES.index(name): [(ARKIT_SHAPE_NAMES.index(other), weight)
                                                      for other, weight in with_.items()]
                      for name, with_ in _SHOWN_WITH.items()}
    stretch = np.ones(len(faces))
    for k, delta in enumerate(deltas):
        delta = delta.copy()
        for other, weight in companions.get(k, ()):
            delta += weight * deltas[other]
        # Only the triangles the shape moves (most shapes are local); only the frontal area.
        moves = (delta[:, 0] != 0) | (delta[:, 1] != 0) | (delta[:, 2] != 0)
        touched = np.flatnonzero(moves[faces[:, 0]] | moves[faces[:, 1]] | moves[faces[:, 2]])
        if not len(touched):
            continue
        a, b, c = (vertices + delta)[faces[touched]].transpose(1, 0, 2)
        front = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
        stretch[touched] = np.maximum(stretch[touched], front / rest_front[touched])
    value = (stretch, rest / rest_area[:, None])
    for array in value:
        array.setflags(write=False)
    remember(_EXPOSURES, key, sources, value)
    return value


def photo_reliability(skin, camera_vertices: np.ndarray) -> np.ndarray:
    """(N,) float in [0, 1] per skin vertex: how far its photo colour can be trusted under
    the rig's shapes.

    A texel's photo colour stands for the patch of surface it covers at the fitted pose.  Where
    a shape stretches that patch several times (:func:`shape_exposure`), a thin band of photo
    pixels is drawn over a large area: the upper lid, compressed into the crease under the
    brow in the photo, carries the crease's shadow, brow hairs or glasses frames down over the
    closed eye.  The magnification is the shape's frontal stretch times how much more
    foreshortened the photo sees the triangle than the template's rest seen from the photo's
    direction (the fit may fold the lid further than the template; limited to a factor 1/2..2,
    so unmoved skin always stays below :data:`RELIABLE_STRETCH`).  Per vertex, the mean over
    its triangles, ramped smoothly from 1 (at :data:`RELIABLE_STRETCH`) to 0 (at
    :data:`UNRELIABLE_STRETCH`).
    """
    stretch, rest_normals = shape_exposure(skin)
    faces = np.asarray(skin.faces, dtype=np.int64)
    camera = np.asarray(camera_vertices, dtype=np.float64)
    rest = np.asarray(skin.vertices, dtype=np.float64)
    # The photo's viewing direction in the template's frame: the rotation of the best
    # similarity from the template's rest to the fitted skin in the camera frame.
    covariance = (rest - rest.mean(axis=0)).T @ (camera - camera.mean(axis=0))
    u, _, vt = np.linalg.svd(covariance)
    flip = np.sign(np.linalg.det(u @ vt)) or 1.0
    rotation = (u @ np.diag([1.0, 1.0, flip]) @ vt).T      # template -> camera
    view = rotation[2]                                      # the camera's +z in the template frame
    corners = camera[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    cosine = normals[:, 2] / np.maximum(np.linalg.norm(normals, axis=1), 1e-30)
    foreshortening = np.clip((rest_normals @ view) / np.maximum(cosine, 1e-6), 0.5, 2.0)
    magnification = stretch * foreshortening
    per_vertex = np.bincount(faces.ravel(), weights=np.repeat(magnification, 3), minlength=len(camera))
    per_vertex /= np.maximum(np.bincount(faces.ravel(), minlength=len(camera)), 1)
    t = np.clip((UNRELIABLE_STRETCH - per_vertex) / (UNRELIABLE_STRETCH - RELIABLE_STRETCH), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


#: The photo's weight on a surface point ramps from 0 to 1 as the cosine between its normal and
#: the line of sight grows from GRAZING_COSINE to FACING_COSINE (docs/pipeline.md, "Texture").
GRAZING_COSINE = 0.35
FACING_COSINE = 0.6
#: ... of the normal averaged over this many one-rings (about 2 cm on the face).
FACING_RINGS = 8


def facing_weight(faces: np.ndarray, camera_vertices: np.ndarray, averaging=None, rings: int = 0) -> np.ndarray:
    """(N,) float in [0, 1] per vertex: how squarely the photo sees the surface there.

    Near the silhouette one photo pixel covers a long strip of surface, the fit's small errors
    move the strip onto the background, and the light that grazes an edge (a rim light along
    the jaw, a window's reflection on the cheek) is no part of the skin's colour.  Per vertex,
    the area-weighted normal, averaged over ``rings`` one-rings with the (N, N) ``averaging``
    operator (the surface's broad orientation: a crease such as a nostril's rim or a lid's margin
    turns from the camera only locally, and the photo shows it well), and its cosine to the
    view axis (+z of the camera frame), ramped smoothly from 0 at :data:`GRAZING_COSINE` to 1
    at :data:`FACING_COSINE`.
    """
    summed = vertex_normals(np.asarray(camera_vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64))
    for _ in range(rings if averaging is not None else 0):
        summed = averaging @ summed
    cosine = summed[:, 2] / np.maximum(np.linalg.norm(summed, axis=1), 1e-30)
    t = np.clip((cosine - GRAZING_COSINE) / (FACING_COSINE - GRAZING_COSINE), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


_HEADS: dict = {}


def _head_layout(skin, mirror: np.ndarray, regions: dict, count: int):
    """What :func:`bake_head` derives from the template alone, computed once per template:
    the mirror map on the UV vertices, the skin's graph Laplacian (CSR), the scalp weight
    smoothed over three rings and the one-ring averaging operator (CSR) that smooths it.  Keyed by the arrays it reads; cached only when they are
    read-only (a template's), like :func:`_layout_cached`."""
    import scipy.sparse as sp

    scalp = np.asarray(regions.get("scalp", np.zeros(count, bool)), dtype=bool)
    welded, faces = np.asarray(skin.uv_welded_ids), np.asarray(skin.faces)
    sources = (welded, faces)
    # The mirror map and scalp mask are small and the template keeps them writable: keyed by content.
    key = tuple(id(a) for a in sources) + (count, mirror.tobytes(), scalp.tobytes())
    hit = lookup(_HEADS, key, sources)
    if hit is not None:
        return hit
    first_copy = np.full(count, -1, np.int64)
    first_copy[welded[::-1]] = np.arange(len(welded))[::-1]
    split_mirror = first_copy[mirror[welded]]
    laplacian = _mesh_laplacian(faces, count)
    averaging = (sp.diags(1.0 / np.maximum(np.asarray((laplacian != 0).sum(axis=1)).ravel(), 1))
                 @ abs(laplacian).sign()).tocsr()
    smooth_scalp = scalp.astype(float)
    for _ in range(3):
        smooth_scalp = averaging @ smooth_scalp
    value = (split_mirror, laplacian, smooth_scalp, averaging)
    for array in (split_mirror, smooth_scalp, laplacian.data, laplacian.indices, laplacian.indptr,
                  averaging.data, averaging.indices, averaging.indptr):
        array.setflags(write=False)
    remember(_HEADS, key, sources, value)
    return value


def _nearest_chart_texel(uvs, faces, size: int) -> np.ndarray:
    """(size * size,) for every texel of the atlas, the position in :func:`_uv_texels`'s list
    of the nearest texel inside a chart (itself for a chart texel); cached per template."""
    def compute():
        from scipy.ndimage import distance_transform_edt
        triangle, _ = uv_raster(uvs, faces, size)
        _, (rows, cols) = distance_transform_edt(triangle < 0, return_indices=True)
        position = np.full(size * size, -1, np.int64)
        position[_uv_texels(uvs, faces, size)[0]] = np.arange(int((triangle >= 0).sum()))
        return position[(rows * size + cols).reshape(-1)]
    return _layout_cached(uvs, faces, size, "nearest", compute)


def iris_colour(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Median RGB of the visible iris ring of both eyes: (3,) uint8.

    landmarks (478, 2+) image frame with the iris points 468-477.  Uses pixels inside the iris
    circle, outside the pupil (inner 40% of the radius), inside the eyelid opening, and drops
    the brightest 10% (specular highlights).  Falls back to a neutral brown if too few pixels.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if len(landmarks) < 478:
        return np.array([92, 64, 45], dtype=np.uint8)
    height, width = image.shape[:2]
    samples = []
    for contour, iris in zip(_EYE_CONTOURS, _IRISES):
        centre = landmarks[iris[0], :2]
        radius = np.mean(np.linalg.norm(landmarks[iris[1:], :2] - centre, axis=1))
        x0, y0 = np.maximum(np.floor(centre - radius).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(centre + radius).astype(int) + 1, [width, height])
        if x1 <= x0 or y1 <= y0:
            continue
        opening = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        cv2.fillPoly(opening, [np.round((landmarks[contour, :2] - [x0, y0]) * 16).astype(np.int32)], 1, shift=4)
        ys, xs = np.mgrid[y0:y1, x0:x1]
        distance = np.hypot(xs + 0.5 - centre[0], ys + 0.5 - centre[1])
        ring = (distance <= radius) & (distance >= 0.4 * radius) & opening.astype(bool)
        samples.append(image[y0:y1, x0:x1][ring].reshape(-1, 3))
    pixels = np.concatenate(samples) if samples else np.zeros((0, 3))
    if len(pixels) < 8:
        return np.array([92, 64, 45], dtype=np.uint8)
    brightness = pixels.astype(np.float64).sum(axis=1)
    pixels = pixels[brightness <= np.quantile(brightness, 0.9)]
    return np.median(pixels, axis=0).round().astype(np.uint8)


def eyeball_texture(vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, centre: np.ndarray,
                    iris_angle: float, iris_rgb: np.ndarray, size: int = 256) -> np.ndarray:
    """Procedural eyeball texture in the eye part's own UV layout: (size, size, 3) uint8.

    vertices (N, 3) the eyeball in the template frame, looking toward +Z from ``centre``;
    iris_angle: the iris's angular radius in radians.  Each texel is coloured by the angle
    between its surface point and the optical axis: pupil (inner 40%), iris with a darker
    limbal ring, then sclera.  Texels outside the chart are diffused.
    """
    triangle, bary = uv_raster(uvs, faces, size)
    texels = np.flatnonzero(triangle.reshape(-1) >= 0)
    points = np.einsum("kj,kjc->kc", bary.reshape(-1, 3)[texels].astype(np.float64),
                       np.asarray(vertices, dtype=np.float64)[np.asarray(faces)[triangle.reshape(-1)[texels]]])
    direction = points - centre
    angle = np.arccos(np.clip(direction[:, 2] / np.maximum(np.linalg.norm(direction, axis=1), 1e-12), -1, 1))
    t = angle / max(iris_angle, 1e-6)
    iris = np.asarray(iris_rgb, dtype=np.float32)
    sclera = np.array([236, 230, 222], dtype=np.float32)
    pupil = np.array([12, 10, 10], dtype=np.float32)
    limbus = 0.45 * iris
    # Smooth radial profile: pupil -> iris (lighter toward the pupil) -> limbal ring -> sclera.
    colour = np.where((t < 0.4)[:, None], pupil,
             np.where((t < 0.85)[:, None], iris * (1.15 - 0.3 * ((t - 0.4) / 0.45))[:, None],
             np.where((t < 1.0)[:, None], limbus, sclera)))
    atlas = np.zeros((size * size, 3), dtype=np.float32)
    known = np.zeros(size * size, dtype=bool)
    atlas[texels] = colour
    known[texels] = True
    atlas = bfs_diffuse(atlas.reshape(size, size, 3), known.reshape(size, size))
    return np.clip(np.rint(atlas), 0, 255).astype(np.uint8)


def encode_png(rgb: np.ndarray) -> bytes:
    """Deterministic PNG bytes of an (H, W, 3) uint8 RGB image (OpenCV, fixed compression level 1:
    the 1024 atlas encodes ~5x faster than at the default level for ~25% more bytes)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise InvalidInputError("PNG encoding failed")
    return data.tobytes()
