from django.apps import AppConfig


class NoticesConfig(AppConfig):
    """Telling people before anything of theirs is lost: notifications, mail, webhooks, extend links."""

    name = "notices"

    def ready(self) -> None:
        from notices.services import notify_stack_event
        from provisioning.signals import stack_life_event

        stack_life_event.connect(
            lambda sender, stack, event, moment, **kwargs: notify_stack_event(stack=stack, event=event, moment=moment),
            weak=False,
            dispatch_uid="notices.notify_stack_event",
        )
