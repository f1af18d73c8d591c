"""API authentication with hashed tokens.

Kept apart from the token endpoint: DRF imports authentication classes while it loads its
settings, so this module must not import DRF's views.
"""

from __future__ import annotations

from rest_framework import authentication, exceptions

from portal.tokens import token_check


class HashedTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Token <secret>``."""

    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("malformed Authorization header: use 'Token <secret>'")
        try:
            secret = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("malformed token") from None
        token = token_check(secret)
        if token is None:
            raise exceptions.AuthenticationFailed("invalid or expired token")
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword
