"""Image inspection refuses hostile images before anything uses them."""

from __future__ import annotations

import subprocess

import pytest

from catalog.images import ImageError, convert_to_qcow2, inspect_image, sniff_format

GIB = 1024**3


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def test_plain_qcow2_passes_and_reports_virtual_size(tmp_path):
    image = tmp_path / "ok.qcow2"
    qemu_img("create", "-f", "qcow2", str(image), "64M")
    facts = inspect_image(image, declared_format="qcow2", max_virtual_bytes=GIB)
    assert facts.virtual_size_bytes == 64 * 1024 * 1024


def test_qcow2_with_backing_file_is_refused(tmp_path):
    image = tmp_path / "evil.qcow2"
    qemu_img("create", "-f", "qcow2", "-F", "raw", "-b", "/etc/passwd", str(image), "1M")
    with pytest.raises(ImageError, match="backing file"):
        inspect_image(image, declared_format="qcow2", max_virtual_bytes=GIB)


def test_qcow2_with_external_data_file_is_refused(tmp_path):
    image = tmp_path / "evil.qcow2"
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={tmp_path / 'data.raw'}", str(image), "1M")
    with pytest.raises(ImageError, match="external data file"):
        inspect_image(image, declared_format="qcow2", max_virtual_bytes=GIB)


def test_qcow2_declared_as_raw_is_refused(tmp_path):
    image = tmp_path / "sneaky.img"
    qemu_img("create", "-f", "qcow2", str(image), "1M")
    assert sniff_format(image) == "qcow2"
    with pytest.raises(ImageError, match="says the image is raw, but its header says qcow2"):
        inspect_image(image, declared_format="raw", max_virtual_bytes=GIB)


def test_virtual_size_over_the_cap_is_refused(tmp_path):
    image = tmp_path / "huge.qcow2"
    qemu_img("create", "-f", "qcow2", str(image), "2T")
    with pytest.raises(ImageError, match="over the limit"):
        inspect_image(image, declared_format="qcow2", max_virtual_bytes=GIB)


def test_garbage_declared_as_qcow2_is_refused(tmp_path):
    image = tmp_path / "garbage.qcow2"
    image.write_bytes(b"QFI\xfb" + b"\xff" * 100)
    with pytest.raises(ImageError, match=r"qemu-img info failed: .*Unsupported qcow2 version"):
        inspect_image(image, declared_format="qcow2", max_virtual_bytes=GIB)


def test_raw_converts_to_qcow2(tmp_path):
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\0" * 1024 * 1024)
    out = tmp_path / "disk.qcow2"
    convert_to_qcow2(raw, source_format="raw", destination=out)
    assert sniff_format(out) == "qcow2"
