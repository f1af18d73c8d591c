"""The tar reader's limits: what a hostile archive meets before any member is written."""

from __future__ import annotations

import io
import tarfile

import pytest

from catalog.packages import PackageError
from catalog.packages.safe_tar import MAX_EXTENDED_HEADER_BYTES, MAX_MEMBERS, member_name, read_members
from tests.catalog.package_builders import Entry, regular, write_tar


def names_in(archive: bytes, *, max_total_bytes: int = 2**30) -> list[str]:
    return [member.name for member, _data in read_members(io.BytesIO(archive), max_total_bytes=max_total_bytes)]


def archive(tmp_path, entries, **kwargs) -> bytes:
    return write_tar(tmp_path / "t.tar", entries, **kwargs).read_bytes()


@pytest.mark.parametrize(
    ("raw", "read"),
    [("/description.xml", "description.xml"), ("./a//b/./c", "a/b/c"), ("//etc/x", "etc/x"), ("a/", "a")],
)
def test_names_are_read_as_relative_paths(raw, read):
    assert member_name(raw) == read


@pytest.mark.parametrize("raw", ["..", "../x", "a/../b", "/", ".", "./", "a\0b", "x" * 1025, "a/" + "y" * 256])
def test_names_that_could_escape_or_are_unusable_are_refused(raw):
    with pytest.raises(PackageError):
        member_name(raw)


def test_more_than_the_allowed_members_are_refused(tmp_path):
    many = archive(tmp_path, [regular(f"f{i}", b"") for i in range(MAX_MEMBERS + 1)])
    with pytest.raises(PackageError, match=f"more than {MAX_MEMBERS} members"):
        names_in(many)
    assert len(names_in(archive(tmp_path, [regular(f"f{i}", b"") for i in range(MAX_MEMBERS)]))) == MAX_MEMBERS


def test_folders_are_passed_over_but_counted(tmp_path):
    entries = [Entry("disks", kind=tarfile.DIRTYPE), regular("disks/a", b"1")]
    assert names_in(archive(tmp_path, entries)) == ["disks/a"]


def test_long_names_in_pax_and_gnu_headers_are_read_and_bounded(tmp_path):
    long = "d/" * 200 + "disk"  # 404 characters: past ustar's 100, within the limit
    assert names_in(archive(tmp_path, [regular(long, b"x")])) == [long]
    assert names_in(archive(tmp_path, [regular(long, b"x")], tar_format=tarfile.GNU_FORMAT)) == [long]
    too_long = "d/" * 600 + "disk"
    with pytest.raises(PackageError, match="longer than 1024 characters"):
        names_in(archive(tmp_path, [regular(too_long, b"x")]))


def test_an_oversized_extended_header_is_refused_before_it_is_read(tmp_path):
    padding = {"comment": "x" * (MAX_EXTENDED_HEADER_BYTES + 1)}
    with pytest.raises(PackageError, match="extended header of"):
        names_in(archive(tmp_path, [Entry("a", data=b"x", pax=padding)]))


def test_a_global_header_may_not_name_members(tmp_path):
    data = archive(tmp_path, [regular("a", b"x")])
    header = tarfile.TarInfo.create_pax_global_header({"path": "etc/passwd"})
    with pytest.raises(PackageError, match="global header"):
        names_in(header + data)


def test_sizes_adding_up_past_the_cap_are_refused_from_the_headers(tmp_path):
    entries = [regular("a", b"x" * 600), regular("b", b"x" * 600)]
    with pytest.raises(PackageError, match="add up to more than 1000 bytes"):
        names_in(archive(tmp_path, entries), max_total_bytes=1000)


def test_truncated_and_garbage_archives_are_refused(tmp_path):
    whole = archive(tmp_path, [regular("a", b"x" * 5000)])
    with pytest.raises(PackageError, match="truncated"):
        names_in(whole[:3000])
    with pytest.raises(PackageError, match="not a tar archive"):
        names_in(b"<html>not found</html>".ljust(1024, b" "))


def test_a_folder_claiming_data_is_refused(tmp_path):
    folder = tarfile.TarInfo("disks")
    folder.type = tarfile.DIRTYPE
    folder.size = 512
    block = folder.tobuf(format=tarfile.USTAR_FORMAT)
    with pytest.raises(PackageError, match="claims to hold data"):
        names_in(block + bytes(512) + bytes(1024))


def test_an_unknown_entry_kind_is_refused(tmp_path):
    odd = Entry("volume", kind=b"V", data=b"")
    with pytest.raises(PackageError, match="unknown type"):
        names_in(archive(tmp_path, [odd], tar_format=tarfile.GNU_FORMAT))
