"""Test data builders (factory-boy)."""

from __future__ import annotations

import hashlib

import factory
from django.contrib.auth import get_user_model

from catalog.models import Appliance, ApplianceVersion, CachedImage, Feed, ImageDelivery, image_source_key
from portal.models import Membership, Project, Role
from provisioning.models import Host


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"project-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MEMBER


class FeedFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feed

    url = factory.Sequence(lambda n: f"https://feeds.example.org/{n}.xml")
    title = factory.Sequence(lambda n: f"Feed {n}")
    project = None


class CachedImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CachedImage

    sha256 = factory.Sequence(lambda n: hashlib.sha256(str(n).encode()).hexdigest())
    source_format = "qcow2"


class ApplianceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Appliance

    feed = factory.SubFactory(FeedFactory)
    identifier = factory.Sequence(lambda n: f"appliance-{n}")
    title = factory.Sequence(lambda n: f"Appliance {n}")
    role = "web"


class ApplianceVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApplianceVersion
        skip_postgeneration_save = True

    appliance = factory.SubFactory(ApplianceFactory)
    version = "1.0.0"
    image_url = "https://feeds.example.org/image.qcow2"
    size_bytes = 1024
    disk_format = "qcow2"
    min_ram_mib = 128
    min_vcpus = 1
    service_port = 80
    image = factory.SubFactory(CachedImageFactory)

    @factory.post_generation
    def delivered(self, create: bool, extracted: bool | None, **kwargs: object) -> None:
        """``delivered=True``: the version's own URL has delivered its image (what lets it use the cached bytes)."""
        if create and extracted:
            ImageDelivery.objects.create(
                version=self, source=image_source_key(self.image_url), status=ImageDelivery.Status.DELIVERED
            )


class HostFactory(factory.django.DjangoModelFactory):
    """A host row that looks already registered; use services.host_register to go through the driver."""

    class Meta:
        model = Host

    name = factory.Sequence(lambda n: f"host-{n}")
    uri = "test:///default"
    domain_type = Host.DomainType.QEMU
    storage_pool = "default-pool"
    storage_pool_path = "/default-pool"
    cpus = 16
    memory_mib = 65536
    healthy = True
