"""Image inspection refuses hostile images before anything uses them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from catalog.images import ImageError, convert_to_qcow2, inspect_image, sniff_format
from tests.catalog.publishing import compressed_bomb

GIB = 1024**3


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def test_plain_qcow2_passes_and_reports_virtual_size(tmp_path):
    image = tmp_path / "ok.qcow2"
    qemu_img("create", "-f", "qcow2", str(image), "64M")
    facts = inspect_image(image, declared_format="qcow2", max_virtual_bytes=GIB, max_converted_bytes=GIB)
    assert facts.virtual_size_bytes == 64 * 1024 * 1024


def test_qcow2_with_backing_file_is_refused(tmp_path):
    image = tmp_path / "evil.qcow2"
    qemu_img("create", "-f", "qcow2", "-F", "raw", "-b", "/etc/passwd", str(image), "1M")
    with pytest.raises(ImageError, match="backing file"):
        inspect_image(image, declared_format="qcow2", max_virtual_bytes=GIB, max_converted_bytes=GIB)


def test_qcow2_with_external_data_file_is_refused(tmp_path):
    image = tmp_path / "evil.qcow2"
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={tmp_path / 'data.raw'}", str(image), "1M")
    with pytest.raises(ImageError, match="external data file"):
        inspect_image(image, declared_format="qcow2", max_virtual_bytes=GIB, max_converted_bytes=GIB)


def test_qcow2_declared_as_raw_is_refused(tmp_path):
    image = tmp_path / "sneaky.img"
    qemu_img("create", "-f", "qcow2", str(image), "1M")
    assert sniff_format(image) == "qcow2"
    with pytest.raises(ImageError, match="says the image is raw, but its header says qcow2"):
        inspect_image(image, declared_format="raw", max_virtual_bytes=GIB, max_converted_bytes=GIB)


def test_virtual_size_over_the_cap_is_refused(tmp_path):
    image = tmp_path / "huge.qcow2"
    qemu_img("create", "-f", "qcow2", str(image), "2T")
    with pytest.raises(ImageError, match="over the limit"):
        inspect_image(image, declared_format="qcow2", max_virtual_bytes=GIB, max_converted_bytes=GIB)


def test_garbage_declared_as_qcow2_is_refused(tmp_path):
    image = tmp_path / "garbage.qcow2"
    image.write_bytes(b"QFI\xfb" + b"\xff" * 100)
    with pytest.raises(ImageError, match=r"qemu-img info failed: .*Unsupported qcow2 version"):
        inspect_image(image, declared_format="qcow2", max_virtual_bytes=GIB, max_converted_bytes=GIB)


def test_raw_converts_to_qcow2(tmp_path):
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\0" * 1024 * 1024)
    out = tmp_path / "disk.qcow2"
    convert_to_qcow2(raw, source_format="raw", destination=out, max_bytes=GIB)
    assert sniff_format(out) == "qcow2"


MIB = 1024**2


def test_a_compressed_bomb_is_measured_and_refused_before_it_is_converted(tmp_path):
    bomb = compressed_bomb(tmp_path)
    assert bomb.stat().st_size < MIB  # passes any download cap
    with pytest.raises(ImageError, match=r"would take 6\d{7} bytes once converted, over the limit of 16777216"):
        inspect_image(bomb, declared_format="qcow2", max_virtual_bytes=GIB, max_converted_bytes=16 * MIB)
    facts = inspect_image(bomb, declared_format="qcow2", max_virtual_bytes=GIB, max_converted_bytes=GIB)
    assert 64 * MIB <= facts.converted_bytes < 65 * MIB


def test_conversion_itself_cannot_write_past_its_cap(tmp_path):
    # Should a measurement ever be wrong, the converter still stops at the file size limit.
    bomb = compressed_bomb(tmp_path, size_mib=32)
    out = tmp_path / "out.qcow2"
    with pytest.raises(ImageError, match="more than 8388608 bytes"):
        convert_to_qcow2(bomb, source_format="qcow2", destination=out, max_bytes=8 * MIB)
    assert not out.exists()


def test_a_relative_name_never_reaches_qemu_img(tmp_path, monkeypatch):
    # qemu-img reads "json:{...}" (and "nbd:", "http:" ...) as a description of what to open,
    # not as a file name: that file would be checked, while qemu-img opens something else.
    monkeypatch.chdir(tmp_path)
    name = 'json:{"file.driver":"null-co","file.size":"1048576"}'
    (tmp_path / name).write_bytes(b"\0" * 1024)
    with pytest.raises(ImageError, match="absolute path"):
        inspect_image(Path(name), declared_format="raw", max_virtual_bytes=GIB, max_converted_bytes=GIB)
    with pytest.raises(ImageError, match="absolute path"):
        convert_to_qcow2(Path(name), source_format="raw", destination=tmp_path / "out.qcow2", max_bytes=GIB)


def test_an_overlay_is_rebased_by_its_header_only(tmp_path):
    import json

    from catalog.images import rebase_overlay

    base = tmp_path / "base.qcow2"
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(base), "16M"], check=True, capture_output=True)
    subprocess.run(
        ["qemu-img", "create", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(overlay)],
        check=True,
        capture_output=True,
    )
    rebase_overlay(overlay, backing_path="/elsewhere/pool/base.qcow2", backing_format="qcow2")
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "-U", "--output=json", str(overlay)], check=True, capture_output=True, text=True
        ).stdout
    )
    assert info["backing-filename"] == "/elsewhere/pool/base.qcow2"
    with pytest.raises(ImageError, match="absolute path"):
        rebase_overlay(overlay, backing_path="json:{}", backing_format="qcow2")
