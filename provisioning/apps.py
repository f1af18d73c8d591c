from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"

    def ready(self) -> None:
        from django.db.models.signals import pre_delete

        from provisioning import allocations
        from provisioning.models import Instance

        # Deleting an instance row (a stack or project deleted by an operator) gives its host back
        # what it held, in the deletion's transaction; a bulk delete sends this for every row too.
        pre_delete.connect(
            lambda sender, instance, **kwargs: allocations.instance_row_deleted(instance),
            sender=Instance,
            weak=False,
            dispatch_uid="provisioning.allocations.instance_row_deleted",
        )
