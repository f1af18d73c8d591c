"""The endpoint that trades a password for an API token, and the token's OpenAPI description."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from portal.models import ApiToken
from portal.tokens import token_issue, token_revoke


class HashedTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.api.authentication.HashedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Token <secret>"}


class LoginThrottle(AnonRateThrottle):
    rate = "20/min"  # password guessing costs time


class TokenCreateView(APIView):
    """Trade a username and password for a new API token (shown once; it expires)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    @extend_schema(
        request=AuthTokenSerializer,
        responses={
            201: inline_serializer(
                "TokenCreated", {"token": serializers.CharField(), "expires_at": serializers.DateTimeField()}
            )
        },
    )
    def post(self, request):
        given = AuthTokenSerializer(data=request.data, context={"request": request})
        given.is_valid(raise_exception=True)
        user = given.validated_data["user"]
        token, secret = token_issue(user=user, name=request.data.get("name", "") or "api")
        return Response({"token": secret, "expires_at": token.expires_at}, status=status.HTTP_201_CREATED)


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "expires_at"]


class ApiTokenViewSet(mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    """The caller's own API tokens: list them (never their secrets) and revoke one by deleting it."""

    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        return ApiToken.objects.filter(user=self.request.user)

    def perform_destroy(self, instance: ApiToken) -> None:
        token_revoke(actor=self.request.user, token=instance)
