"""Encoder for the binary FBX container, version 7.4 (7400): a tree of named nodes with typed
properties.  It knows nothing about scenes; :mod:`engine_export.fbx` builds the tree.

File layout: 27-byte header (magic + version), the top-level nodes, a 13-byte zero record,
then the footer.  A node is::

    uint32 end_offset      absolute offset of the byte after the node (7.4: 32-bit)
    uint32 property_count
    uint32 property_bytes
    uint8  name_length, name
    properties             one type byte each, then the value
    children               followed by a 13-byte zero record when there are children
                           (or when the node has neither properties nor children)

Property type codes: C bool, Y int16, I int32, L int64, F float32, D float64, S string,
R raw bytes; arrays f/d/i/l/b carry (count, encoding, byte length) and encoding 1 means
zlib-compressed.  Python values map to codes by type: bool C, int I, np.int64 L, float D,
np.float32 F, str S (UTF-8), bytes R, numpy arrays by dtype.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

FBX_VERSION = 7400
HEADER_MAGIC = b"Kaydara FBX Binary  \x00\x1a\x00"
# Fixed file id / creation time / footer id: with these three constants importers built on
# the Autodesk SDK accept a file without a real timestamp (Blender's exporter uses the same).
FILE_ID = b"\x28\xb3\x2a\xeb\xb6\x24\xcc\xc2\xbf\xc8\xb0\x2a\xa9\x2b\xfc\xf1"
CREATION_TIME = "1970-01-01 10:00:00:000"
FOOTER_ID = b"\xfa\xbc\xab\x09\xd0\xc8\xd4\x66\xb1\x76\xfb\x83\x1c\xf7\x26\x7e"
FOOTER_MAGIC = b"\xf8\x5a\x8c\x6a\xde\xf5\xd9\x7e\xec\xe9\x0c\xe3\x75\x8f\x29\x0b"
NULL_RECORD = b"\0" * 13
#: Arrays at least this many bytes long are zlib-compressed (level 6; same bytes every run).
COMPRESS_MIN_BYTES = 128
ARRAY_CODES = {np.dtype(np.float32): b"f", np.dtype(np.float64): b"d", np.dtype(np.int32): b"i",
               np.dtype(np.int64): b"l", np.dtype(np.bool_): b"b"}


class Node:
    """One FBX node: ``Node("Version", 100)`` or ``Node("Layer", 0, children=[...])``."""

    __slots__ = ("name", "props", "children")

    def __init__(self, name: str, *props, children=None):
        self.name = name
        self.props = props
        self.children = list(children or [])

    def add(self, *nodes: "Node") -> "Node":
        self.children.extend(nodes)
        return self


def encode_property(value) -> bytes:
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value.astype(value.dtype.newbyteorder("<"))).tobytes()
        encoding = 0
        if len(data) >= COMPRESS_MIN_BYTES:
            data, encoding = zlib.compress(data, 6), 1
        return ARRAY_CODES[value.dtype] + struct.pack("<III", len(value), encoding, len(data)) + data
    if isinstance(value, (bool, np.bool_)):
        return b"C" + struct.pack("<?", bool(value))
    if isinstance(value, np.int64):
        return b"L" + struct.pack("<q", int(value))
    if isinstance(value, (int, np.int32)):
        return b"I" + struct.pack("<i", int(value))
    if isinstance(value, np.float32):
        return b"F" + struct.pack("<f", float(value))
    if isinstance(value, float):
        return b"D" + struct.pack("<d", value)
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return b"S" + struct.pack("<I", len(raw)) + raw
    if isinstance(value, (bytes, bytearray)):
        return b"R" + struct.pack("<I", len(value)) + bytes(value)
    raise TypeError(f"no FBX property type for {type(value).__name__}")


def encode_node(node: Node, offset: int) -> bytes:
    """Encode ``node`` as it will sit at absolute file ``offset``."""
    name = node.name.encode("ascii")
    props = b"".join(encode_property(p) for p in node.props)
    body = bytearray()
    start = offset + 13 + len(name) + len(props)
    for child in node.children:
        body += encode_node(child, start + len(body))
    if node.children or not node.props:
        body += NULL_RECORD
    end = start + len(body)
    return (struct.pack("<IIIB", end, len(node.props), len(props), len(name)) + name + props
            + bytes(body))


def encode_file(nodes: list) -> bytes:
    out = bytearray(HEADER_MAGIC + struct.pack("<I", FBX_VERSION))
    for node in nodes:
        out += encode_node(node, len(out))
    out += NULL_RECORD
    out += FOOTER_ID + b"\0" * 4
    out += b"\0" * (16 - len(out) % 16)  # align to 16; a full 16 when already aligned
    out += struct.pack("<I", FBX_VERSION) + b"\0" * 120 + FOOTER_MAGIC
    return bytes(out)
