"""Helpers for the hostile-input tests: raw safetensors files, header rewrites, file snapshots, and
JSON values to put anywhere in a file's metadata."""

import hashlib
import json
import os
import struct

from hypothesis import strategies as st


def raw_safetensors(path, tensors, meta, *, key="ffnn", data=None, extra=None):
    """Write a safetensors file by hand: ``tensors`` maps name -> (dtype, shape, nbytes)."""
    header, offset = {}, 0
    for name, (dtype, shape, nbytes) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    header["__metadata__"] = {key: meta if isinstance(meta, str) else json.dumps(meta)}
    header.update(extra or {})
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.write(b"\0" * offset if data is None else data)
    return path


def split(blob):
    """(header dict, data bytes) of a safetensors file's bytes."""
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def join(header, data):
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def edit_meta(blob, key, change, keep_checksum=False, rehash=False):
    """The file's bytes with ``change(meta)`` applied to the JSON document under ``key``, and the
    checksum beside it removed (as a hand that edits a file would), unless ``keep_checksum``; with
    ``rehash``, a new checksum of the edited file instead (so that the edit reaches the schema with
    the checksum switched on, as from a tool that writes files)."""
    header, data = split(blob)
    meta = json.loads(header["__metadata__"][key])
    meta = change(meta) or meta
    header["__metadata__"][key] = json.dumps(meta)
    if rehash:
        from safetensors.numpy import load

        from ffnn._files import tensor_digest

        header["__metadata__"][f"{key}.sha256"] = tensor_digest(load(blob), header["__metadata__"][key])
    elif not keep_checksum:
        header["__metadata__"].pop(f"{key}.sha256", None)
    return join(header, data)


def snapshot(folder):
    """SHA-256 of every regular file under ``folder``, by relative path."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            p = os.path.join(root, name)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    out[os.path.relpath(p, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


def json_values(*, int_bits, text_size, max_leaves):
    """A hypothesis strategy for any JSON value: null, bools, integers up to ±2**int_bits (beyond the
    int64 range), floats, short text, and lists and objects of them."""
    scalars = (st.none() | st.booleans() | st.integers(-2**int_bits, 2**int_bits) | st.floats(allow_nan=False)
               | st.text(max_size=text_size))
    return st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                        max_leaves=max_leaves)


def json_paths(value, prefix=()):
    """Every path (a tuple of keys and indices) into a JSON value, the empty one first."""
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, child in items:
        yield from json_paths(child, prefix + (k,))


def mutate_json(doc, data, values):
    """``doc`` (a JSON document, changed in place) with one value somewhere in it replaced by one of
    ``values``, deleted, or given a field it does not have; hypothesis's ``data`` draws which."""
    path = data.draw(st.sampled_from([p for p in json_paths(doc) if p]))
    node = doc
    for k in path[:-1]:
        node = node[k]
    actions = ["replace", *(["delete"] if isinstance(node, dict) else []),
               *(["add"] if isinstance(node[path[-1]], dict) else [])]
    action = data.draw(st.sampled_from(actions))
    if action == "replace":
        node[path[-1]] = data.draw(values)
    elif action == "delete":
        del node[path[-1]]
    else:
        node[path[-1]][data.draw(st.text(max_size=5))] = data.draw(values)
    return doc
