"""Eyeballs and teeth, built procedurally and fitted onto the MakeHuman helpers by the generator.

All sizes are adult averages in metres; every part is built mirror-symmetric
(x -> -x) so Left/Right shapes mirror exactly.
"""
from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------- eyeballs
EYE_LATITUDES = 20          # rings from the front pole to the back
EYE_LONGITUDES = 32
EYE_UV_SPAN = np.pi         # polar angle that maps to the UV disk's rim



def pole_capped_sphere_faces(n_lat: int, n_lon: int) -> np.ndarray:
    """(F, 3) int32 triangles of a latitude/longitude sphere: vertex 0 is the front pole,
    then n_lat - 1 rings of n_lon vertices, then the back pole.  Winding is not fixed here;
    callers orient the faces outward for their own shape."""
    ring = lambda i: 1 + i * n_lon                                # noqa: E731
    back_pole = 1 + (n_lat - 1) * n_lon
    faces = []
    for j in range(n_lon):
        jn = (j + 1) % n_lon
        faces.append((0, ring(0) + j, ring(0) + jn))
        for i in range(n_lat - 2):
            a, b, c, d = ring(i) + j, ring(i) + jn, ring(i + 1) + j, ring(i + 1) + jn
            faces += [(a, c, d), (a, d, b)]
        faces.append((ring(n_lat - 2) + j, back_pole, ring(n_lat - 2) + jn))
    return np.asarray(faces, dtype=np.int32)

def eyeball(centre: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sphere with its pole looking along +Z; UVs are an azimuthal map around that pole.

    (u, v) = (0.5 + rho cos phi, 0.5 - rho sin phi) with rho = theta / (2 pi), theta the
    angle from the gaze axis and phi the angle around it, so the iris and pupil are
    concentric disks centred at (0.5, 0.5) of UV radius theta_iris / (2 pi); no seam
    crosses the visible front (only the unseen back pole is pinched).
    Returns vertices (N, 3), faces (F, 3) int32 (outward), uvs (N, 2).
    """
    thetas = np.linspace(0.0, np.pi, EYE_LATITUDES + 1)[1:-1]
    phis = np.linspace(0.0, 2.0 * np.pi, EYE_LONGITUDES, endpoint=False)
    th, ph = np.meshgrid(thetas, phis, indexing="ij")
    dirs = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], -1).reshape(-1, 3)
    dirs = np.vstack([[0.0, 0.0, 1.0], dirs, [0.0, 0.0, -1.0]])
    theta_all = np.concatenate([[0.0], th.ravel(), [np.pi]])
    phi_all = np.concatenate([[0.0], ph.ravel(), [0.0]])
    rho = 0.5 * theta_all / EYE_UV_SPAN
    uvs = np.stack([0.5 + rho * np.cos(phi_all), 0.5 - rho * np.sin(phi_all)], 1)
    uvs[-1] = (0.5, 1.0)     # the back pole is never seen; any point on the rim will do
    faces = pole_capped_sphere_faces(EYE_LATITUDES, EYE_LONGITUDES)
    assert len(dirs) == faces.max() + 1
    vertices = centre + radius * dirs
    # make the winding face outward
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    outward = np.einsum("ij,ij->i", np.cross(b - a, c - a), a - centre) > 0
    if not outward.all():
        faces = faces[:, [0, 2, 1]]
    return vertices, faces, uvs.astype(np.float64)


def mirror_part(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mirror image (x -> -x) of a mesh, vertex order kept, winding reversed."""
    return vertices * [-1.0, 1.0, 1.0], faces[:, [0, 2, 1]].copy()


# --------------------------------------------------------------------------- sweep helper
def _sweep(path: np.ndarray, frames_y: np.ndarray, frames_n: np.ndarray,
           profile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed tube: profile (P, 2) (n, y) swept along path (S, 3); ends capped by fans.

    frames_n: (S, 3) unit outward normal of the sweep (horizontal), frames_y: (S, 3) up.
    Profile coordinates may vary per station: profile has shape (S, P, 2).
    """
    s_count, p_count = profile.shape[0], profile.shape[1]
    verts = (path[:, None, :] + profile[:, :, 0:1] * frames_n[:, None, :]
             + profile[:, :, 1:2] * frames_y[:, None, :]).reshape(-1, 3)
    faces = []
    for s in range(s_count - 1):
        for p in range(p_count):
            q = (p + 1) % p_count
            a, b = s * p_count + p, s * p_count + q
            c, d = (s + 1) * p_count + p, (s + 1) * p_count + q
            faces += [(a, b, d), (a, d, c)]
    start = len(verts)
    caps = np.vstack([verts[:p_count].mean(0), verts[-p_count:].mean(0)])
    verts = np.vstack([verts, caps])
    last = (s_count - 1) * p_count
    for p in range(p_count):
        q = (p + 1) % p_count
        faces.append((start, q, p))
        faces.append((start + 1, last + p, last + q))
    return verts, np.asarray(faces, dtype=np.int32)


def _orient_outward(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Flip the whole winding if the signed volume is negative (closed meshes)."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    volume = np.einsum("ij,ij->i", a, np.cross(b, c)).sum()
    return faces if volume > 0 else faces[:, [0, 2, 1]].copy()


# --------------------------------------------------------------------------- teeth
# Mesio-distal crown widths (m) from the midline back: central incisor, lateral incisor,
# canine, two premolars, two molars (upper arch; the lower arch is narrower).
UPPER_TOOTH_WIDTHS = (0.0085, 0.0066, 0.0076, 0.0069, 0.0066, 0.0102, 0.0092)
LOWER_TOOTH_WIDTHS = (0.0054, 0.0059, 0.0068, 0.0070, 0.0071, 0.0110, 0.0104)


def _arch(front: np.ndarray, half_width: float, depth: float, widths, stations_per_tooth: int):
    """Points along a dental arch z = front_z - depth * |x / half_width|^2.6, by arc length."""
    xs = np.linspace(-half_width, half_width, 2001)
    zs = front[2] - depth * np.abs(xs / half_width) ** 2.6      # U-shaped: flat front, steep sides
    seg = np.hypot(np.diff(xs), np.diff(zs))
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    arc -= arc[1000]                                   # 0 at the midline
    edges = np.concatenate([[0.0], np.cumsum(widths)])
    total = min(edges[-1], arc[-1])
    # stations: per tooth, a few stations; tooth boundaries get a notch
    s_values, notch = [], []
    for side in (-1.0, 1.0):
        for k in range(len(widths)):
            a, b = edges[k], min(edges[k + 1], total)
            for t in np.linspace(0.0, 1.0, stations_per_tooth, endpoint=False):
                s_values.append(side * (a + t * (b - a)))
                notch.append(t == 0.0)
        s_values.append(side * total)
        notch.append(True)
    s_values, notch = np.asarray(s_values), np.asarray(notch)
    order = np.argsort(s_values, kind="stable")
    s_values, notch = s_values[order], notch[order]
    keep = np.concatenate([[True], np.diff(s_values) > 1e-9])
    s_values, notch = s_values[keep], notch[keep]
    x = np.interp(s_values, arc, xs)
    z = np.interp(s_values, arc, zs)
    path = np.stack([x, np.full_like(x, front[1]), z], 1)
    tangent = np.gradient(path, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    up = np.tile([0.0, 1.0, 0.0], (len(x), 1))
    outward = np.cross(tangent, up)
    outward *= np.sign(outward[len(x) // 2, 2])       # toward the lips at the front
    frac = np.abs(s_values) / total                   # 0 at the midline, 1 at the back molar
    return path, up, outward, notch, frac


def teeth(front: np.ndarray, upper: bool) -> tuple[np.ndarray, np.ndarray]:
    """One dental arch as a closed swept crown band with a notch between neighbouring teeth.

    front: midline point of the incisal edge, at the labial (front) face of the incisors.
    The crown hangs down from the gum line (upper) or stands up (lower).
    """
    widths = UPPER_TOOTH_WIDTHS if upper else LOWER_TOOTH_WIDTHS
    half_width, depth = (0.027, 0.040) if upper else (0.024, 0.036)
    path, up, outward, notch, frac = _arch(front, half_width, depth, widths, 4)
    height = (0.0105 - 0.0035 * frac) if upper else (0.0095 - 0.0025 * frac)
    thick = 0.0045 + 0.0060 * frac                    # incisors thin, molars thick
    sign = 1.0 if upper else -1.0                     # gum side along +y (upper) or -y (lower)
    # rounded-rectangle profile (outward offset n, height offset y) from the incisal edge
    angles = np.linspace(0.0, 2.0 * np.pi, 16, endpoint=False)
    c, s = np.cos(angles), np.sin(angles)
    blob_n = np.sign(c) * np.abs(c) ** 0.4            # squarish cross-section
    blob_y = np.sign(s) * np.abs(s) ** 0.4
    profile = np.zeros((len(path), len(angles), 2))
    shrink = np.where(notch, 0.78, 1.0)               # interdental notch
    profile[:, :, 0] = (0.5 * thick * shrink)[:, None] * blob_n[None] - 0.5 * thick[:, None]
    profile[:, :, 1] = sign * (0.5 * height)[:, None] * (1.0 + blob_y[None] * shrink[:, None])
    verts, faces = _sweep(path, up, outward, profile)
    return verts, _orient_outward(verts, faces)
