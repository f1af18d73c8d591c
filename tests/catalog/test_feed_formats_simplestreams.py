"""simplestreams feeds (Ubuntu's cloud images, LXD/Incus): an index, its products files, and hostile JSON."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from catalog.feed_formats import simplestreams
from catalog.feeds import IDENTIFIER_RE, FeedError, parse_feed, parse_vmcast
from catalog.fetch import FetchError

MIRROR = "https://cloud-images.example.org/releases/"
INDEX_URL = f"{MIRROR}streams/v1/index.json"
PRODUCTS_PATH = "streams/v1/com.ubuntu.cloud:released:download.json"
PRODUCTS_URL = MIRROR + PRODUCTS_PATH


def sha(number: int) -> str:
    return f"{number:064x}"


def ubuntu_version(release: str, serial: str, arch: str, number: int, *, disk: bool = True) -> dict:
    folder = f"server/releases/{release}/release-{serial}"
    items = {
        "root.tar.xz": {
            "ftype": "root.tar.xz",
            "path": f"{folder}/ubuntu-{release}-server-cloudimg-{arch}-root.tar.xz",
            "sha256": sha(number + 1000),
            "size": 400_000_000,
        },
        "lxd.tar.xz": {
            "ftype": "lxd.tar.xz",
            "path": f"{folder}/lxd.tar.xz",
            "sha256": sha(number + 2000),
            "size": 900,
        },
    }
    if disk:
        items["disk1.img"] = {
            "ftype": "disk1.img",
            "md5": "0" * 32,
            "path": f"{folder}/ubuntu-{release}-server-cloudimg-{arch}.img",
            "sha256": sha(number).upper(),  # case is not the checksum
            "size": 600_000_000 + number,
        }
    return {"items": items, "label": "release", "pubname": f"ubuntu-{release}-{arch}-server-{serial}"}


def ubuntu_product(release: str, title: str, arch: str, serials: list[str], *, first: int = 0) -> dict:
    return {
        "aliases": release,
        "arch": arch,
        "os": "ubuntu",
        "release": release,
        "release_codename": release.title(),
        "release_title": title,
        "supported": True,
        "version": title.split()[0],
        "versions": {
            serial: ubuntu_version(release, serial, arch, first + number) for number, serial in enumerate(serials)
        },
    }


def ubuntu_products() -> dict:
    serials = ["20240110", "20240319", "20240223", "20240301"]  # newest three: 0319, 0301, 0223
    jammy = ubuntu_product("jammy", "22.04 LTS", "amd64", serials)
    # The newest serial has no disk image: it does not take one of the three places.
    jammy["versions"]["20240401"] = ubuntu_version("jammy", "20240401", "amd64", 99, disk=False)
    return {
        "content_id": "com.ubuntu.cloud:released:download",
        "datatype": "image-downloads",
        "format": "products:1.0",
        "updated": "Wed, 20 Mar 2024 09:34:02 +0000",
        "products": {
            "com.ubuntu.cloud:server:22.04:amd64": jammy,
            "com.ubuntu.cloud:server:22.04:arm64": ubuntu_product("jammy", "22.04 LTS", "arm64", serials, first=10),
            "com.ubuntu.cloud:server:24.04:amd64": ubuntu_product(
                "noble", "24.04 LTS", "amd64", ["20240423"], first=20
            ),
            "com.ubuntu.cloud:server:24.04:s390x": ubuntu_product(
                "noble", "24.04 LTS", "s390x", ["20240423"], first=30
            ),
        },
    }


def ubuntu_index(*paths: str) -> dict:
    entries = {
        f"entry-{number}": {
            "datatype": "image-downloads",
            "format": "products:1.0",
            "path": path,
            "products": ["com.ubuntu.cloud:server:22.04:amd64"],
            "updated": "Wed, 20 Mar 2024 09:34:02 +0000",
        }
        for number, path in enumerate(paths or (PRODUCTS_PATH,))
    }
    # Clouds' image ids: no downloads, never fetched.
    entries["com.ubuntu.cloud:released:aws"] = {
        "datatype": "image-ids",
        "format": "products:1.0",
        "path": "streams/v1/com.ubuntu.cloud:released:aws.json",
    }
    return {"format": "index:1.0", "index": entries, "updated": "Wed, 20 Mar 2024 09:34:02 +0000"}


def encoded(document: object) -> bytes:
    return json.dumps(document, indent=1).encode()


class Mirror:
    """A stream's files by URL, as ``fetch_more`` reads them; counts what was asked for."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.asked: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.asked.append(url)
        if url not in self.files:
            raise FetchError(f"HTTP 404 for {url}")
        return self.files[url]


def read_index(products: object, *, index: dict | None = None, **options):
    mirror = Mirror({PRODUCTS_URL: products if isinstance(products, bytes) else encoded(products)})
    return parse_feed(encoded(index or ubuntu_index()), url=INDEX_URL, fetch_more=mirror, **options), mirror


def refused(products: object, match: str, **options) -> FeedError:
    with pytest.raises(FeedError, match=match) as caught:
        read_index(products, **options)
    return caught.value


# Hostile input first.


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda p: p.update(products=[]), "has no 'products' object"),
        (lambda p: p["products"].update(bad="a product"), r"item 'bad': the product is not an object with 'versions'"),
        (
            lambda p: jammy(p).update(versions=["20240101"]),
            r"item 'com.ubuntu.cloud:server:22.04:amd64': the product is not",
        ),
        (lambda p: newest(p).update(items="disk1.img"), r"item 'com.ubuntu.cloud:server:22.04:amd64 20240319': not an"),
        (
            lambda p: newest_disk(p).update(size="600000000"),
            r"20240319': size must be a whole number .* not '600000000'",
        ),
        (lambda p: newest_disk(p).update(size=True), r"size must be a whole number .* not 'True'"),
        (lambda p: newest_disk(p).update(size=6.5e8), r"size must be a whole number"),
        (lambda p: newest_disk(p).update(size=-1), r"size must be a whole number"),
        (
            lambda p: newest_disk(p).update(size=2**60),
            r"size must be a whole number from 1 to \d+, not '1152921504606846976'",
        ),
        (lambda p: newest_disk(p).pop("size"), r"20240319': size must be a whole number .*, not none"),
        (lambda p: newest_disk(p).update(sha256=12), r"20240319': no sha256"),
        (lambda p: newest_disk(p).update(sha256="ab" * 31), r"sha256 must be 64 hex digits"),
        (lambda p: newest_disk(p).update(path=["a"]), r"'path' is a JSON list, not text"),
        (lambda p: p.update(datatype="image-ids"), r"lists image-ids, not image-downloads"),
    ],
)
def test_wrong_types_and_values_refuse_the_whole_stream(change, match):
    products = ubuntu_products()
    change(products)
    refused(products, match)


def jammy(products: dict) -> dict:
    return products["products"]["com.ubuntu.cloud:server:22.04:amd64"]


def newest(products: dict) -> dict:
    return jammy(products)["versions"]["20240319"]


def newest_disk(products: dict) -> dict:
    return newest(products)["items"]["disk1.img"]


@pytest.mark.parametrize(
    "path",
    [
        "../../../etc/passwd",
        "server/../../../secret.img",
        "server/./x.img",
        "/etc/passwd",
        "server//x.img",
        "%2e%2e/%2e%2e/etc/passwd",
        "server\\..\\..\\x.img",
        "https://elsewhere.example.net/x.img",
        "javascript:alert(document.cookie)",
        "file:///etc/passwd",
        "x.img?token=1",
        "x.img#fragment",
        "with space.img",
        "",
    ],
)
def test_an_item_path_that_leaves_the_mirror_refuses_the_stream(path):
    products = ubuntu_products()
    newest_disk(products)["path"] = path
    refused(products, r"20240319': path '.*' is not a plain path inside the mirror")


@pytest.mark.parametrize(
    "path",
    ["../streams/v1/x.json", "http://127.0.0.1:9/x.json", "javascript:alert(1)", "/streams/v1/x.json", "a/../../x"],
)
def test_an_index_path_that_leaves_the_mirror_is_refused_before_anything_is_fetched(path):
    mirror = Mirror({})
    with pytest.raises(FeedError, match=r"index entry 'entry-0': path '.*' is not a plain path"):
        parse_feed(encoded(ubuntu_index(path)), url=INDEX_URL, fetch_more=mirror)
    assert mirror.asked == []


def test_a_number_with_too_many_digits_refuses_the_file_before_any_conversion():
    text = encoded(ubuntu_products()).replace(b'"size": 400000000', b'"size": ' + b"9" * 5000, 1)
    refused(text, r"the products file '.*' holds a number of more than 20 digits")


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_numbers_json_does_not_allow_are_refused(constant):
    text = encoded(ubuntu_products()).replace(b'"size": 400000000', b'"size": ' + constant, 1)
    refused(text, f"holds '{constant.decode()}', which is no number JSON allows")


def test_deep_nesting_is_refused_as_such():
    with pytest.raises(FeedError, match="nests its JSON too deeply"):
        parse_feed(b"[" * 100_000 + b"]" * 100_000, url=INDEX_URL)
    deep = b'{"format": "products:1.0", "products": {"p": {"junk": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}}"
    with pytest.raises(FeedError, match="nests its JSON too deeply"):
        parse_feed(deep, url=PRODUCTS_URL)


def test_a_serial_named_twice_is_refused_not_read_as_the_last_one():
    text = encoded(ubuntu_products())
    first = text.index(b'"20240319"')
    twice = text[:first] + b'"20240319": {"items": {}}, ' + text[first:]
    refused(twice, r"holds the key '20240319' twice in one object")


def test_a_hundred_thousand_products_are_refused_by_the_item_limit(settings):
    settings.FEED_MAX_BYTES = 64 * 1024 * 1024
    disk = {"ftype": "disk1.img", "path": "x.img", "sha256": sha(1), "size": 1}
    many = {
        "format": "products:1.0",
        "products": {f"p{n}": {"arch": "amd64", "versions": {"1": {"items": {"d": disk}}}} for n in range(100_000)},
    }
    with pytest.raises(FeedError, match=r"^the stream has at least 100000 VM disk images .* more than the 500"):
        parse_feed(encoded(many), url=PRODUCTS_URL)


def test_a_hundred_thousand_products_of_another_arch_leave_nothing_to_read(settings):
    settings.FEED_MAX_BYTES = 64 * 1024 * 1024
    disk = {"ftype": "disk1.img", "path": "x.img", "sha256": sha(1), "size": 1}
    many = {
        "format": "products:1.0",
        "products": {f"p{n}": {"arch": "arm64", "versions": {"1": {"items": {"d": disk}}}} for n in range(100_000)},
    }
    with pytest.raises(FeedError, match="the stream has no items the portal can use: no x86_64"):
        parse_feed(encoded(many), url=PRODUCTS_URL)


def test_an_index_naming_too_many_products_files_is_refused_before_fetching_any():
    paths = [f"streams/v1/part-{number}.json" for number in range(simplestreams.MAX_PRODUCTS_FILES + 1)]
    mirror = Mirror({})
    with pytest.raises(FeedError, match=r"names 21 products files of image-downloads, more than the 20"):
        parse_feed(encoded(ubuntu_index(*paths)), url=INDEX_URL, fetch_more=mirror)
    assert mirror.asked == []


def test_a_products_file_over_the_size_limit_is_refused(settings):
    settings.FEED_MAX_BYTES = 4096
    refused(ubuntu_products(), r"the products file '.*' is over the limit of 4096 bytes")


def test_a_products_file_that_is_an_index_is_not_followed():
    looping = ubuntu_index()  # names itself as its products file
    with pytest.raises(FeedError, match=r"is a JSON object of format 'index:1.0', not a simplestreams products"):
        read_index(looping)


def test_what_the_mirror_refuses_to_serve_refuses_the_feed_with_its_reason_and_no_password():
    mirror = Mirror({})
    url = "https://mirror:s3cret@cloud-images.example.org/releases/streams/v1/index.json"
    with pytest.raises(FeedError, match=r"^HTTP 404 for https://\*\*\*@cloud-images") as caught:
        parse_feed(encoded(ubuntu_index()), url=url, fetch_more=mirror)
    assert "s3cret" not in str(caught.value)
    # The fetch itself gets the credentials: they are the mirror's.
    assert mirror.asked == [f"https://mirror:s3cret@cloud-images.example.org/releases/{PRODUCTS_PATH}"]


@pytest.mark.parametrize(
    ("document", "match"),
    [
        (b"[1, 2, 3]", r"^a JSON list, not an RSS feed nor a simplestreams index:1.0 or products:1.0 file"),
        (b'{"format": "index:2.0"}', r"^a JSON object of format 'index:2.0', not an RSS feed"),
        (b'{"format": ["index:1.0"]}', r"^a JSON object with no format, not an RSS feed"),
        (b'{"feed": "<rss version=\\"2.0\\"/>"}', r"^a JSON object with no format"),
        (b'{"format": "index:1.0", "index": []}', r"the simplestreams index has no 'index' object"),
        (b'{"format": "index:1.0", "index": {"a": 3}}', r"index entry 'a' is a JSON number, not an object"),
        (b'{"format": "index:1.0", "index": {}}', r"the simplestreams index has no items"),
        (b'{"format": "products:1.0", "products": {}}', r"the stream has no items the portal can use"),
        (b'{"format": "products:1.0",', r"^the feed is not well-formed JSON: .* \(line 1\)"),
        (b'\xef\xbb\xbf  {"format": "index:3"}', r"format 'index:3'"),
        (b'{"format": "\xff\xfe"}', r"the feed is not UTF-8 text"),
    ],
)
def test_json_that_is_no_stream_says_what_it_is(document, match):
    with pytest.raises(FeedError, match=match):
        parse_feed(document, url=INDEX_URL, fetch_more=Mirror({}))


def test_an_index_without_a_way_to_fetch_its_products_files_is_refused():
    with pytest.raises(FeedError, match="a simplestreams index, whose products files this import cannot fetch"):
        parse_feed(encoded(ubuntu_index()), url=INDEX_URL)


def test_a_stream_read_without_its_url_is_refused():
    with pytest.raises(FeedError, match="read relative to its own URL, and none was given"):
        parse_vmcast(encoded(ubuntu_products()))


def test_two_products_that_slug_alike_are_refused_as_duplicates():
    products = ubuntu_products()
    products["products"]["com.ubuntu.cloud-server-22.04-amd64"] = copy.deepcopy(jammy(products))
    refused(products, r"appliance 'com.ubuntu.cloud-server-22.04-amd64' version '20240319' appears twice")


# What is read.


def test_an_ubuntu_index_gives_the_newest_three_amd64_disk_images_of_each_product():
    parsed, mirror = read_index(ubuntu_products())
    assert mirror.asked == [PRODUCTS_URL]  # the clouds' image ids are not fetched
    assert parsed.format == "simplestreams"
    assert parsed.title == "com.ubuntu.cloud:released:download"
    assert [(item.appliance, item.version) for item in parsed.items] == [
        ("com.ubuntu.cloud-server-22.04-amd64", "20240319"),
        ("com.ubuntu.cloud-server-22.04-amd64", "20240301"),
        ("com.ubuntu.cloud-server-22.04-amd64", "20240223"),
        ("com.ubuntu.cloud-server-24.04-amd64", "20240423"),
    ]
    newest_item = parsed.items[0]
    assert newest_item.url == f"{MIRROR}server/releases/jammy/release-20240319/ubuntu-jammy-server-cloudimg-amd64.img"
    assert newest_item.sha256 == sha(1)  # lowercase
    assert newest_item.size_bytes == 600_000_001
    assert newest_item.title == "Ubuntu 22.04 LTS (jammy)"
    assert (newest_item.disk_format, newest_item.package, newest_item.checksum_source) == ("qcow2", "disk", "feed")
    assert newest_item.arch == "x86_64"
    assert newest_item.published == datetime(2024, 3, 19, tzinfo=UTC)
    assert all(IDENTIFIER_RE.match(item.appliance) for item in parsed.items)


def test_a_url_pointing_straight_at_a_products_file_needs_no_index():
    parsed = parse_feed(encoded(ubuntu_products()), url=PRODUCTS_URL)
    assert len(parsed.items) == 4
    assert parsed.items[0].url.startswith(MIRROR + "server/releases/")


def test_a_products_file_outside_streams_v1_is_read_relative_to_its_folder():
    parsed = parse_feed(encoded(ubuntu_products()), url="https://images.example.org/mirror/products.json?sig=1")
    assert parsed.items[0].url.startswith("https://images.example.org/mirror/server/releases/")


def test_products_files_are_read_in_the_index_order_and_merged():
    second = ubuntu_products()
    second["content_id"] = "com.ubuntu.cloud:daily:download"
    second["products"] = {
        "com.ubuntu.cloud.daily:server:24.10:amd64": second["products"].pop("com.ubuntu.cloud:server:24.04:amd64")
    }
    other = "streams/v1/com.ubuntu.cloud:daily:download.json"
    mirror = Mirror({PRODUCTS_URL: encoded(ubuntu_products()), MIRROR + other: encoded(second)})
    parsed = parse_feed(encoded(ubuntu_index(PRODUCTS_PATH, other)), url=INDEX_URL, fetch_more=mirror)
    assert mirror.asked == [PRODUCTS_URL, MIRROR + other]
    assert parsed.title == "com.ubuntu.cloud:released:download, com.ubuntu.cloud:daily:download"
    assert parsed.items[-1].appliance == "com.ubuntu.cloud.daily-server-24.10-amd64"


def test_serials_are_ordered_as_numbers_and_inherited_values_count():
    disk = {"ftype": "disk1.img", "path": "x.img", "sha256": sha(1), "size": 5}
    products = {
        "format": "products:1.0",
        "arch": "amd64",  # for every product below
        "os": "debian",
        "products": {
            "debian:12": {
                "release_title": "12",
                "release": "bookworm",
                "versions": {
                    serial: {"items": {"d": {**disk, "path": f"{serial}/x.img"}}}
                    for serial in ["20240319.9", "20240319.10", "20240319.2", "20240318.11"]
                },
            }
        },
    }
    parsed = parse_feed(encoded(products), url=PRODUCTS_URL)
    assert [item.version for item in parsed.items] == ["20240319.10", "20240319.9", "20240319.2"]
    assert parsed.items[0].title == "Debian 12 (bookworm)"


def test_lxd_virtual_machine_images_are_read_and_containers_passed_over():
    def version(serial: str, *, vm: bool) -> dict:
        items = {
            "lxd.tar.xz": {
                "ftype": "lxd.tar.xz",
                "path": f"images/ubuntu/{serial}/lxd.tar.xz",
                "sha256": sha(7),
                "size": 9,
            },
            "root.squashfs": {
                "ftype": "squashfs",
                "path": f"images/ubuntu/{serial}/rootfs.squashfs",
                "sha256": sha(8),
                "size": 9,
            },
        }
        if vm:
            items["disk.qcow2"] = {
                "ftype": "disk-kvm.img",
                "path": f"images/ubuntu/jammy/amd64/cloud/{serial}/disk.qcow2",
                "sha256": sha(9),
                "size": 300_000_000,
            }
        return {"items": items}

    products = {
        "content_id": "images",
        "datatype": "image-downloads",
        "format": "products:1.0",
        "products": {
            "ubuntu:jammy:amd64:cloud": {
                "aliases": "ubuntu/jammy/cloud",
                "arch": "amd64",
                "os": "Ubuntu",
                "release": "jammy",
                "release_title": "jammy",
                "variant": "cloud",
                "versions": {"20240320_07:42": version("20240320_07:42", vm=True)},
            },
            "alpine:3.19:amd64:default": {
                "arch": "amd64",
                "os": "Alpine",
                "release": "3.19",
                "versions": {"20240320_13:00": version("20240320_13:00", vm=False)},
            },
        },
    }
    [item] = parse_feed(encoded(products), url="https://images.example.org/streams/v1/images.json").items
    assert (item.appliance, item.version, item.title) == (
        "ubuntu-jammy-amd64-cloud",
        "20240320_07:42",
        "Ubuntu jammy cloud",
    )
    assert item.url == "https://images.example.org/images/ubuntu/jammy/amd64/cloud/20240320_07:42/disk.qcow2"
    assert item.published == datetime(2024, 3, 20, 7, 42, tzinfo=UTC)
    assert item.disk_format == "qcow2"


def test_a_malformed_product_of_another_arch_is_skipped_not_refused():
    products = ubuntu_products()
    products["products"]["com.ubuntu.cloud:server:22.04:arm64"]["versions"] = "broken"
    products["products"]["com.ubuntu.cloud:server:22.04:ppc64el"] = {"arch": "ppc64el", "versions": [1, 2]}
    products["products"]["weird-arch"] = {"arch": ["amd64"], "versions": {}}
    parsed, _mirror = read_index(products)
    assert len(parsed.items) == 4
