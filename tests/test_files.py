"""ffnn._files: checked output paths, atomic writes, and the safetensors reader's header checks."""

import os
import stat

import numpy as np
import pytest

from ffnn._files import (MAX_CONTAINERS, MAX_HEADER, FileFormatError, Outputs, SafetensorsFile, atomic_write,
                         check_outputs, parse_json, printable, read_arrays, write_arrays)

from .hostile import raw_safetensors


# --- outputs ---------------------------------------------------------------------------------------

def test_special_files_folders_and_empty_names_are_refused(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, fragment in ((fifo, "special file"), ("/dev/null", "special file"), ("", "empty"),
                           (str(tmp_path) + "/", "names a folder"), (tmp_path, "is a folder"),
                           (tmp_path / "no" / "m", "does not exist"), (tmp_path / ("x" * 300), "too long")):
        with pytest.raises(OSError, match=fragment):
            check_outputs([("--out", path)])
        with pytest.raises(OSError):
            atomic_write(path, b"data")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_an_output_that_is_an_input_or_another_output_is_refused(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,y\n1,2\n")
    os.link(data, tmp_path / "hard.csv")
    os.symlink(data, tmp_path / "soft.csv")
    for out in (data, tmp_path / "hard.csv", tmp_path / "soft.csv", tmp_path / "." / "d.csv"):
        with pytest.raises(OSError, match="same file as the input DATA"):
            check_outputs([("--out", out)], inputs=[("DATA", data)])
    with pytest.raises(OSError, match="--plot .* is the same file as --out"):
        check_outputs([("--out", tmp_path / "m"), ("--plot", tmp_path / "m")])
    ok = check_outputs([("--checkpoint", tmp_path / "c")], inputs=[("--resume", tmp_path / "c")],
                       allow={("--checkpoint", "--resume")})
    assert ok == {"--checkpoint": str(tmp_path / "c")}
    assert data.read_text() == "a,y\n1,2\n"


def test_writes_go_through_symlinks_and_keep_modes(tmp_path):
    target = tmp_path / "target.bin"
    link = tmp_path / "link.bin"
    os.symlink(target.name, link)
    atomic_write(link, b"one")
    assert os.path.islink(link) and target.read_bytes() == b"one"
    umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "new.bin", b"x")
        assert stat.S_IMODE(os.stat(tmp_path / "new.bin").st_mode) == 0o644
        os.chmod(target, 0o640)
        atomic_write(link, b"two")
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o640 and target.read_bytes() == b"two"
    finally:
        os.umask(umask)


def test_temporary_files_are_removed_on_failure_and_stale_ones_later(tmp_path, monkeypatch):
    dest = tmp_path / "m.safetensors"
    dest.write_bytes(b"old")
    stale = tmp_path / ".m.safetensors.999999999.0123abcd.ffnn-tmp"  # no such process
    stale.write_bytes(b"left by a killed save")
    mine = tmp_path / f".other.{os.getpid()}.0123abcd.ffnn-tmp"
    mine.write_bytes(b"not this name's")

    def fail(*a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match=r"could not write output file .*No space left on device"):
        atomic_write(dest, b"new")
    monkeypatch.undo()
    assert dest.read_bytes() == b"old" and not stale.exists() and mine.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([dest.name, mine.name])
    with pytest.raises(KeyboardInterrupt):
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(KeyboardInterrupt))
        atomic_write(dest, b"new")
    monkeypatch.undo()
    assert dest.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == sorted([dest.name, mine.name])


def test_a_save_killed_before_its_rename_is_cleaned_up_by_the_next(tmp_path):
    import signal
    import subprocess
    import sys

    dest = tmp_path / "m.bin"
    dest.write_bytes(b"old")
    killed = ("import os, signal, ffnn._files as f\n"
              "os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
              f"f.atomic_write({str(dest)!r}, b'new' * 1000)\n")
    proc = subprocess.run([sys.executable, "-c", killed], timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert dest.read_bytes() == b"old" and len(os.listdir(tmp_path)) == 2  # the old file and a temporary
    atomic_write(dest, b"next")
    assert os.listdir(tmp_path) == ["m.bin"] and dest.read_bytes() == b"next"


def test_names_as_long_as_the_file_system_allows_are_written_and_cleaned_up_after(tmp_path):
    longest = "é" * 126 + "abc"  # 255 bytes in UTF-8: the longest name ext4 and tmpfs allow
    assert len(longest.encode()) == 255
    atomic_write(tmp_path / longest, b"one")
    stale = [n for n in os.listdir(tmp_path) if n.endswith(".ffnn-tmp")]
    assert stale == [] and (tmp_path / longest).read_bytes() == b"one"
    from ffnn._files import _tmp_stem

    left = tmp_path / f"{_tmp_stem(str(tmp_path), longest)}.999999999.0123abcd.ffnn-tmp"  # a killed save's
    assert len(left.name.encode()) <= 255
    left.write_bytes(b"partial")
    atomic_write(tmp_path / longest, b"two")
    assert os.listdir(tmp_path) == [longest] and (tmp_path / longest).read_bytes() == b"two"
    with pytest.raises(OSError, match="too long"):
        atomic_write(tmp_path / (longest + "x"), b"three")


def test_a_read_only_file_is_not_replaced(tmp_path):
    ro = tmp_path / "ro.bin"
    ro.write_bytes(b"keep me")
    os.chmod(ro, 0o444)
    with pytest.raises(PermissionError, match="ro.bin' is read-only; ffnn does not replace it"):
        check_outputs([("--out", ro)])
    with pytest.raises(PermissionError, match="read-only"):
        atomic_write(ro, b"new")
    assert ro.read_bytes() == b"keep me" and stat.S_IMODE(os.stat(ro).st_mode) == 0o444


def test_outputs_are_written_all_or_none(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"old a")
    out = Outputs()
    out.add(a, b"new a", "--out")
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(OSError, match="could not write --metrics .*b': No space left on device"):
        out.add(b, b"new b", "--metrics")
    monkeypatch.undo()
    out.commit()  # nothing is left to commit: the failure discarded the staged model too
    assert a.read_bytes() == b"old a" and os.listdir(tmp_path) == ["a"]
    with pytest.raises(RuntimeError):
        with Outputs() as out:
            out.add(a, b"new a")
            raise RuntimeError("the job failed after staging")
    assert a.read_bytes() == b"old a" and os.listdir(tmp_path) == ["a"]
    with Outputs() as out:
        out.add(a, b"new a")
        out.add(b, b"new b")
        assert a.read_bytes() == b"old a"  # staged, not yet in place
    assert a.read_bytes() == b"new a" and b.read_bytes() == b"new b" and sorted(os.listdir(tmp_path)) == ["a", "b"]


@pytest.mark.parametrize("failing", [2, 3])
def test_a_rename_that_fails_part_way_puts_back_the_ones_done(tmp_path, monkeypatch, failing):
    """The third destination is mounted over, say (EBUSY): the first two, already renamed, are put back."""
    a, c = tmp_path / "a", tmp_path / "c"
    a.write_bytes(b"old a")
    os.chmod(a, 0o640)
    c.write_bytes(b"old c")
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == failing:
            raise OSError(16, "Device or resource busy")
        return real_replace(src, dst)

    out = Outputs()
    for name in ("a", "b", "c"):  # b is new
        out.add(tmp_path / name, b"new " + name.encode(), f"--{name}")
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match=f"could not write --{'bc'[failing - 2]} .*Device or resource busy"):
        out.commit()
    monkeypatch.undo()
    assert a.read_bytes() == b"old a" and c.read_bytes() == b"old c" and stat.S_IMODE(os.stat(a).st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["a", "c"]


@pytest.mark.parametrize("text,fragment", [
    ('{"a": ' + "9" * 310 + "}", "integer of 310 digits is beyond the float range"),
    ('{"a": -' + "9" * 400 + "}", "integer of 400 digits"),
    ("[" + "[]," * MAX_CONTAINERS + "[]]", f"more than {MAX_CONTAINERS} JSON lists and objects"),
    ('{"a": 1, "a": 2}', "the key 'a' appears twice"),
    ('{"a": NaN}', "NaN is not a JSON number"),
    ("[" * 100 + "]" * 100, "nested"),
])
def test_json_in_files_is_bounded(text, fragment):
    with pytest.raises(FileFormatError, match=fragment):
        parse_json(text, "the metadata of f")
    assert parse_json('{"rng": ' + "9" * 39 + "}", "f") == {"rng": int("9" * 39)}  # a 128-bit RNG state


def test_printable_escapes_control_characters():
    assert printable("plain text, ü") == "plain text, ü"
    assert printable("\x1b[31mred\x07") == "\\x1b[31mred\\x07"


# --- reading ---------------------------------------------------------------------------------------

def test_arrays_round_trip_with_a_checksum(tmp_path):
    arrays = {"a": np.arange(6.0).reshape(2, 3), "b": np.arange(3, dtype=np.int32), "e": np.zeros((0, 4))}
    write_arrays(tmp_path / "f", arrays, {"x": 1}, "k")
    got, meta = read_arrays(tmp_path / "f", "k", "test file")
    assert meta == {"x": 1}
    for k in arrays:
        np.testing.assert_array_equal(got[k], arrays[k])
        assert got[k].flags.writeable and got[k].dtype == arrays[k].dtype
    blob = bytearray((tmp_path / "f").read_bytes())
    blob[-1] ^= 1
    (tmp_path / "g").write_bytes(bytes(blob))
    with pytest.raises(FileFormatError, match="do not match the checksum"):
        read_arrays(tmp_path / "g", "k", "test file")


META = {"x": 1}


@pytest.mark.parametrize("tensors,extra,fragment", [
    ({"a": ("F64", [2], 8)}, None, "does not fill its 8 bytes"),
    ({"a": ("F64", [-1], 8)}, None, "invalid shape"),
    ({"a": ("F64", [1], 8), "b": ("F64", [1], 8)}, {"b": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}},
     "overlap"),
    ({"a": ("X9", [1], 8)}, None, "dtype 'X9'"),
    ({}, {"a": 5}, "not described by dtype, shape and data_offsets"),
    ({}, {"a": {"dtype": "F64", "shape": [1]}}, "not described"),
    ({}, {"a": {"dtype": "F64", "shape": [1], "data_offsets": [8, 0]}}, "invalid data_offsets"),
    ({}, {"a": {"dtype": "F64", "shape": [True], "data_offsets": [0, 8]}}, "invalid shape"),
])
def test_malformed_headers_name_the_file(tmp_path, tensors, extra, fragment):
    path = raw_safetensors(tmp_path / "f", tensors, META, key="k", extra=extra)
    with pytest.raises(FileFormatError, match=fragment) as info:
        SafetensorsFile(path, "k", "test file")
    assert str(path) in str(info.value)


def test_size_and_shape_checks_come_before_reading(tmp_path):
    path = raw_safetensors(tmp_path / "f", {"a": ("F64", [1000, 1000], 8_000_000)}, META, key="k", data=b"\0" * 8)
    with pytest.raises(FileFormatError, match="truncated: the header promises 8000000 bytes"):
        SafetensorsFile(path, "k", "test file")
    with open(path, "r+b") as f:  # a sparse tail: bigger than the header says
        f.truncate(2**31)
    with pytest.raises(FileFormatError, match="corrupted: the header promises 8000000 bytes"):
        SafetensorsFile(path, "k", "test file")
    with open(tmp_path / "h", "wb") as f:
        f.write((MAX_HEADER + 1).to_bytes(8, "little") + b"{}")
    with pytest.raises(FileFormatError, match="at most"):
        SafetensorsFile(tmp_path / "h", "k", "test file")


@pytest.mark.parametrize("meta,fragment", [
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
    ("[" * 70 + "]" * 70, "nested more than 64"),
    ('{"a": 1, "a": 2}', "appears twice"),
    ('{"a": NaN}', "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
])
def test_malformed_metadata_json(tmp_path, meta, fragment):
    path = raw_safetensors(tmp_path / "f", {}, meta, key="k")
    with pytest.raises(FileFormatError, match=fragment):
        SafetensorsFile(path, "k", "test file")
