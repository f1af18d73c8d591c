"""Names of libvirt objects carry the deployment, and a deployment only ever claims its own."""

from __future__ import annotations

import pytest
from pytest_django.fixtures import Settings

from provisioning import naming
from provisioning.drivers import DomainTags
from provisioning.drivers.domain_xml import DISK_FORMATS, validate_name

SHA = "ab" * 32
OTHER_SHA = "cd" * 32
LONGEST_DEPLOYMENT = "a" * naming.DEPLOYMENT_MAX_LENGTH


def tags(deployment: str = "lab-1", project_id: int = 4, stack_id: int = 5, instance_id: int = 6) -> DomainTags:
    return DomainTags(deployment=deployment, project_id=project_id, stack_id=stack_id, instance_id=instance_id)


@pytest.fixture
def deployment(settings: Settings) -> str:
    settings.DEPLOYMENT_NAME = "lab-1"
    return "lab-1"


# --- bad input ----------------------------------------------------------------------------------

BAD_DEPLOYMENTS = [
    "",
    "Portal",
    "portal_b",
    "-portal",
    "portal-",
    "por--tal",
    "portal.b",
    "portal b",
    "pörtal",
    "portal\n",
    "x'/><evil/>",
    LONGEST_DEPLOYMENT + "a",
]


@pytest.mark.parametrize("bad", BAD_DEPLOYMENTS)
def test_invalid_deployment_names_are_refused(settings: Settings, bad: str) -> None:
    settings.DEPLOYMENT_NAME = bad

    with pytest.raises(ValueError, match=r"deployment name .* must be at most 16 lowercase letters"):
        naming.deployment()
    with pytest.raises(ValueError, match="deployment name"):
        naming.domain_name(instance_id=1, role="web")
    with pytest.raises(ValueError, match="deployment name"):
        naming.base_volume_name(SHA, "qcow2")
    with pytest.raises(ValueError, match="deployment name"):
        naming.parse_overlay_volume_name("portal-p1-s2-i3.qcow2")


@pytest.mark.parametrize("bad", BAD_DEPLOYMENTS)
def test_an_overlay_name_is_never_made_for_an_invalid_deployment(deployment: str, bad: str) -> None:
    with pytest.raises(ValueError, match="deployment name"):
        naming.overlay_volume_name(tags(deployment=bad))


@pytest.mark.parametrize(
    "name",
    [
        "portal-b-p1-s2-i3.qcow2",  # "portal" is a prefix of that deployment's name
        "other-p1-s2-i3.qcow2",
        "xportal-p1-s2-i3.qcow2",
        "PORTAL-p1-s2-i3.qcow2",
        "portal-p1-s2-i3.raw",
        "portal-p1-s2-i3.qcow2.bak",
        "portal-p1-s2.qcow2",
        "portal-px-s2-i3.qcow2",
        "portal-p-s2-i3.qcow2",
        "portal-p1-s2-i3-p4-s5-i6.qcow2",
        f"portal-base-{SHA[:32]}.qcow2",
        "",
    ],
)
def test_other_names_are_not_claimed_as_overlays(settings: Settings, name: str) -> None:
    settings.DEPLOYMENT_NAME = "portal"

    assert naming.parse_overlay_volume_name(name) is None


def test_a_longer_deployment_does_not_claim_the_names_of_its_prefix(settings: Settings) -> None:
    settings.DEPLOYMENT_NAME = "portal-b"

    assert naming.parse_overlay_volume_name("portal-p1-s2-i3.qcow2") is None
    assert naming.parse_overlay_volume_name("portal-b-p1-s2-i3.qcow2") == tags("portal-b", 1, 2, 3)


@pytest.mark.parametrize(
    ("sha", "disk_format", "message"),
    [
        ("abc", "qcow2", "invalid sha256"),
        ("zz" * 32, "qcow2", "invalid sha256"),
        (SHA + "0", "qcow2", "invalid sha256"),
        (f" {SHA[1:]}", "qcow2", "invalid sha256"),
        (SHA, "exe", "invalid disk format"),
        (SHA, "QCOW2", "invalid disk format"),
        (SHA, "qcow2'/>", "invalid disk format"),
        (SHA, "", "invalid disk format"),
    ],
)
def test_bad_base_volume_requests_are_refused(deployment: str, sha: str, disk_format: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        naming.base_volume_name(sha, disk_format)


# --- names carry the deployment -----------------------------------------------------------------


def test_overlay_names_carry_the_deployment_and_round_trip(deployment: str) -> None:
    owner = tags(deployment, project_id=41, stack_id=42, instance_id=43)
    name = naming.overlay_volume_name(owner)

    assert name == "lab-1-p41-s42-i43.qcow2"
    assert naming.parse_overlay_volume_name(name) == owner


def test_two_deployments_sharing_a_pool_each_claim_only_their_own(settings: Settings) -> None:
    ours = naming.overlay_volume_name(tags("portal"))
    theirs = naming.overlay_volume_name(tags("portal-b"))
    assert ours != theirs

    settings.DEPLOYMENT_NAME = "portal"
    assert [naming.parse_overlay_volume_name(name) for name in (ours, theirs)] == [tags("portal"), None]
    settings.DEPLOYMENT_NAME = "portal-b"
    assert [naming.parse_overlay_volume_name(name) for name in (ours, theirs)] == [None, tags("portal-b")]


def test_instance_tags_carry_this_deployment(deployment: str) -> None:
    assert naming.instance_tags(project_id=7, stack_id=8, instance_id=9) == tags(deployment, 7, 8, 9)


def test_domains_are_ours_only_when_their_metadata_names_this_deployment(deployment: str) -> None:
    assert naming.is_ours(tags(deployment)) is True
    assert naming.is_ours(tags("lab")) is False
    assert naming.is_ours(tags("lab-1-b")) is False
    assert naming.is_ours(None) is False


def test_base_volume_names_are_keyed_by_content(deployment: str) -> None:
    name = naming.base_volume_name(SHA.upper(), "raw")

    assert name == f"lab-1-base-{SHA[:32]}.raw"
    assert naming.base_volume_name(SHA, "raw") == name  # the same image under either spelling
    assert naming.base_volume_name(OTHER_SHA, "raw") != name
    assert naming.base_volume_name(SHA, "qcow2") != name
    assert naming.parse_overlay_volume_name(name) is None  # the cache is never taken for an orphan overlay


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("web", "lab-1-i12-web"),
        ("Web Server", "lab-1-i12-web-server"),
        ("db_primary", "lab-1-i12-db-primary"),
        ("x'/><evil/>", "lab-1-i12-x-evil"),
        ("über", "lab-1-i12-ber"),
        ("--", "lab-1-i12-vm"),
        ("", "lab-1-i12-vm"),
    ],
)
def test_domain_names_carry_the_deployment_and_a_sanitised_role(deployment: str, role: str, expected: str) -> None:
    assert naming.domain_name(instance_id=12, role=role) == expected


def test_a_long_role_is_cut_to_a_valid_domain_name(deployment: str) -> None:
    name = naming.domain_name(instance_id=12, role="a-" * 40)

    assert name.startswith("lab-1-i12-a-a-")
    assert len(name) <= 63
    assert not name.endswith("-")


# --- every name is a valid libvirt name ---------------------------------------------------------

BIG_ID = 10**11 - 1  # the largest ids the names are sized for


@pytest.mark.parametrize("name", ["0", "lab-1", LONGEST_DEPLOYMENT])
def test_every_name_passes_libvirt_name_validation(settings: Settings, name: str) -> None:
    settings.DEPLOYMENT_NAME = name
    names = [
        naming.overlay_volume_name(tags(name, BIG_ID, BIG_ID, BIG_ID)),
        naming.overlay_volume_name(tags(name, 0, 0, 0)),
        *(naming.base_volume_name(SHA, disk_format) for disk_format in sorted(DISK_FORMATS)),
        naming.domain_name(instance_id=BIG_ID, role="application-server-" * 4),  # cut at 63
        naming.domain_name(instance_id=1, role="--"),
    ]

    for made in names:
        assert validate_name("object", made) == made
