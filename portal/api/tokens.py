"""The endpoint that trades a password for an API token, and the token's OpenAPI description."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.schema import ErrorSerializer
from portal.api.validation import StrictRequestSerializer
from portal.models import ApiToken
from portal.sign_in_throttle import throttled_wait, wait_message
from portal.tokens import token_issue, token_revoke


class HashedTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.api.authentication.HashedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Token <secret>"}


class TokenRequestSerializer(StrictRequestSerializer, AuthTokenSerializer):
    """A username and password (checked by the sign-in backend, throttled), and a name for the token."""

    name = serializers.CharField(
        required=False, allow_blank=True, max_length=100, help_text="To tell your tokens apart; 'api' if left out"
    )


@extend_schema_view(
    post=extend_schema(summary="Trade a username and password for an API token"),
)
class TokenCreateView(APIView):
    """Trade a username and password for a new API token (shown once; it expires).

    Failed attempts are limited per client address and per account, together with the sign-in
    pages (``portal.sign_in_throttle``, in the authentication backend); over the limit: 429.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []  # the sign-in throttle counts failures only, so it sits in authenticate()

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            201: inline_serializer(
                "TokenCreated", {"token": serializers.CharField(), "expires_at": serializers.DateTimeField()}
            ),
            400: OpenApiResponse(ErrorSerializer, description="missing fields, or a wrong username or password"),
            429: OpenApiResponse(
                ErrorSerializer, description="too many failed sign-ins: wait the seconds in Retry-After"
            ),
        },
    )
    def post(self, request):
        given = TokenRequestSerializer(data=request.data, context={"request": request})
        if not given.is_valid():
            wait = throttled_wait(request)  # the backend was handed this same request
            if wait is not None:
                raise exceptions.Throttled(wait=wait, detail=wait_message(wait))
            raise exceptions.ValidationError(given.errors)
        user = given.validated_data["user"]
        token, secret = token_issue(user=user, name=given.validated_data.get("name") or "api")
        return Response({"token": secret, "expires_at": token.expires_at}, status=status.HTTP_201_CREATED)


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "expires_at"]


@extend_schema_view(
    list=extend_schema(summary="List your API tokens"),
    retrieve=extend_schema(summary="Get one of your API tokens"),
    destroy=extend_schema(summary="Revoke an API token"),
)
class ApiTokenViewSet(mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    """The caller's own API tokens: list them (never their secrets) and revoke one by deleting it."""

    serializer_class = ApiTokenSerializer
    queryset = ApiToken.objects.none()  # tells the schema the model; get_queryset scopes to the caller

    def get_queryset(self):
        return ApiToken.objects.filter(user=self.request.user)

    def perform_destroy(self, instance: ApiToken) -> None:
        token_revoke(actor=self.request.user, token=instance)
