from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.filters import StackFilter
from provisioning import selectors
from provisioning.api.serializers import LeaseSerializer, StackCreateSerializer, StackSerializer
from provisioning.services import launch, lifecycle


class StackViewSet(mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    """Stacks of the caller's projects. Create and delete answer at once; the work runs in the background."""

    serializer_class = StackSerializer
    filterset_class = StackFilter
    conflict_actions = ("create", "destroy", "lease")  # no host with room; a stack not in a state for it

    def get_queryset(self):
        return selectors.stacks_visible_to(self.request.user)

    def _answer(self, stack_id: int, code: int = status.HTTP_200_OK) -> Response:
        return Response(StackSerializer(self.get_queryset().get(pk=stack_id)).data, status=code)

    @extend_schema(request=StackCreateSerializer, responses={202: StackSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:
        given = StackCreateSerializer(data=request.data, context={"request": request})
        given.is_valid(raise_exception=True)
        data = given.validated_data
        if "template" in data:
            stack = launch.stack_launch_template(
                user=request.user,
                project=data["project"],
                name=data["name"],
                template=data["template"],
                lease_seconds=data.get("lease"),
            )
        else:
            stack = launch.stack_launch(
                user=request.user,
                project=data["project"],
                name=data["name"],
                appliance_version=data["appliance_version"],
                lease_seconds=data.get("lease"),
            )
        return self._answer(stack.pk, status.HTTP_202_ACCEPTED)

    @extend_schema(responses={202: StackSerializer})
    def destroy(self, request: Request, *args, **kwargs) -> Response:
        stack = lifecycle.stack_destroy(user=request.user, stack=self.get_object())
        return self._answer(stack.pk, status.HTTP_202_ACCEPTED)

    @extend_schema(request=LeaseSerializer, responses={200: StackSerializer})
    @action(detail=True, methods=["post"])
    def lease(self, request: Request, pk: str | None = None) -> Response:
        """Renew the lease: the stack is destroyed ``lease`` seconds from now."""
        given = LeaseSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        stack = lifecycle.stack_renew_lease(
            user=request.user,
            stack=self.get_object(),
            lease_seconds=given.validated_data["lease"],
            shorten=given.validated_data["shorten"],
        )
        return self._answer(stack.pk)
