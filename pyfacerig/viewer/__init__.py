"""`pyfacerig view ASSET.glb`: look at an avatar in the browser, served from 127.0.0.1.

A small threaded HTTP server (standard library only) serves one page, the asset, its JSON
sidecar and the textures inside the GLB.  The page's JavaScript is three.js 0.187 (MIT; its
LICENSE is beside it), copied from npm into ``static/three`` by ``tools/refresh_viewer_js.py``:
nothing is fetched from the network, so the page works offline.

Routes (all GET):
  /                     the viewer page (static/index.html)
  /static/<file>        the page's own files and three.js
  /asset.glb            the asset as given
  /api/info.json        file name and size, the shape groups, the textures, the sidecar
  /api/texture/<i>      the i-th image embedded in the GLB, as stored (PNG/JPEG)
"""
from __future__ import annotations

import json
import mimetypes
import struct
import sys
import threading
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

from ..errors import InvalidInputError

STATIC_DIR = Path(__file__).parent / "static"

#: ARKit's own grouping of the 52 shapes (Apple's ARFaceAnchor.BlendShapeLocation docs list
#: them as left eye, right eye, mouth and jaw, eyebrows, cheeks, nose, tongue); jaw and mouth
#: are kept apart here because a technical artist checks the jaw pivot on its own.
SHAPE_GROUPS = (
    ("Eye left", lambda name: name.startswith("eye") and name.endswith("Left")),
    ("Eye right", lambda name: name.startswith("eye") and name.endswith("Right")),
    ("Jaw", lambda name: name.startswith("jaw")),
    ("Mouth", lambda name: name.startswith("mouth")),
    ("Brows", lambda name: name.startswith("brow")),
    ("Cheeks", lambda name: name.startswith("cheek")),
    ("Nose", lambda name: name.startswith("nose")),
    ("Tongue", lambda name: name.startswith("tongue")),
)


def shape_groups(names) -> list:
    """[(group, [names in asset order])] for the ARKit groups that occur, then "Other"."""
    groups = {title: [] for title, _ in SHAPE_GROUPS}
    other = []
    for name in names:
        for title, belongs in SHAPE_GROUPS:
            if belongs(name):
                groups[title].append(name)
                break
        else:
            other.append(name)
    result = [(title, members) for title, members in groups.items() if members]
    return result + ([("Other", other)] if other else [])


def read_glb(path) -> tuple[dict, bytes]:
    """(JSON chunk as a dict, BIN chunk bytes) of a GLB file; InvalidInputError if it is not one."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    if len(data) < 20 or data[:4] != b"glTF":
        hint = " (view shows .glb files: build with --format glb)" if path.suffix.lower() != ".glb" else ""
        raise InvalidInputError(f"{str(path)!r} is not a binary glTF (.glb) file{hint}")
    version, length = struct.unpack_from("<II", data, 4)
    json_length, json_type = struct.unpack_from("<II", data, 12)
    if version != 2 or length != len(data) or json_type != 0x4E4F534A or 20 + json_length > len(data):
        raise InvalidInputError(f"{str(path)!r} is a truncated or corrupt GLB (glTF 2.0 binary)")
    try:
        document = json.loads(data[20:20 + json_length])
    except ValueError:
        raise InvalidInputError(f"{str(path)!r}: the GLB's JSON chunk does not parse") from None
    binary = b""
    offset = 20 + json_length
    if offset + 8 <= len(data):
        bin_length, bin_type = struct.unpack_from("<II", data, offset)
        if bin_type == 0x004E4942:
            binary = data[offset + 8:offset + 8 + bin_length]
    return document, binary


def glb_images(document: dict, binary: bytes) -> list:
    """[(name, mime type, bytes)] for every image stored in the GLB's binary chunk."""
    images = []
    for index, image in enumerate(document.get("images", [])):
        view = document.get("bufferViews", [])[image["bufferView"]] if "bufferView" in image else None
        if view is None:
            continue
        start = view.get("byteOffset", 0)
        images.append((image.get("name") or f"image {index}", image.get("mimeType", "image/png"),
                       binary[start:start + view["byteLength"]]))
    return images


def _target_names(document: dict) -> list:
    names = []
    for mesh in document.get("meshes", []):
        for name in (mesh.get("extras") or {}).get("targetNames", []):
            if name not in names:
                names.append(name)
    return names


class AssetSite:
    """Everything the page needs about one asset, read once when the server starts."""

    def __init__(self, asset):
        self.asset = Path(asset)
        document, binary = read_glb(self.asset)
        self.glb = self.asset.read_bytes()
        self.images = glb_images(document, binary)
        sidecar_path = self.asset.with_suffix(".json")
        sidecar = None
        if sidecar_path.is_file():
            try:
                sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                sidecar = {"error": f"{sidecar_path.name} is not readable JSON"}
        names = _target_names(document)
        self.info = {
            "name": self.asset.name,
            "bytes": len(self.glb),
            "sidecar_name": sidecar_path.name if sidecar is not None else None,
            "sidecar": sidecar,
            "shape_groups": shape_groups(names),
            "clips": [animation.get("name", f"clip {i}") for i, animation in enumerate(document.get("animations", []))],
            "textures": [{"index": i, "name": name, "mime": mime, "bytes": len(data)}
                         for i, (name, mime, data) in enumerate(self.images)],
        }

    def route(self, path: str) -> Optional[tuple[str, bytes]]:
        """(content type, body) for a request path, or None for 404."""
        path = path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            return "text/html; charset=utf-8", (STATIC_DIR / "index.html").read_bytes()
        if path == "/asset.glb":
            return "model/gltf-binary", self.glb
        if path == "/api/info.json":
            return "application/json", json.dumps(self.info).encode("utf-8")
        if path.startswith("/api/texture/"):
            index = path.rsplit("/", 1)[1]
            if index.isdigit() and int(index) < len(self.images):
                _, mime, data = self.images[int(index)]
                return mime, data
            return None
        if path.startswith("/static/"):
            file = (STATIC_DIR / path[len("/static/"):]).resolve()
            if STATIC_DIR.resolve() in file.parents and file.is_file():  # no ../ out of static/
                kind = "text/javascript" if file.suffix in (".js", ".mjs") else \
                    (mimetypes.guess_type(file.name)[0] or "application/octet-stream")
                if kind.startswith("text/"):
                    kind += "; charset=utf-8"
                return kind, file.read_bytes()
        return None


def make_server(asset, port: int = 0, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A server for ``asset`` bound to ``host:port`` (port 0: a free one); call serve_forever()."""
    site = AssetSite(asset)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 -- http.server's naming
            found = site.route(self.path)
            if found is None:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            kind, body = found
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # keep the terminal for the URL, not one line per request
            pass

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise InvalidInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    server.daemon_threads = True
    server.site = site
    return server


def serve_asset(asset, port: int = 0, open_browser: bool = False, console=None) -> int:
    """Serve ``asset`` until interrupted; print the URL (and open it if asked). Returns 0."""
    server = make_server(asset, port=port)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    line = f"viewing {Path(asset).name} at {url}  (Ctrl+C to stop)"
    if console is not None:
        console.print(line, markup=False, highlight=False)
    else:
        print(line)
    sys.stdout.flush()  # a script reading our stdout through a pipe needs the URL now
    if open_browser:
        threading.Timer(0.3, webbrowser.open, args=(url,)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
