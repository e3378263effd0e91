"""Bearer-key checks shared by the local SendGrid and Stripe servers."""

from __future__ import annotations

import hmac

_SCHEME = "Bearer "


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for none or another scheme."""
    return authorization[len(_SCHEME) :] if authorization.startswith(_SCHEME) else None


def is_key(token: str | None, key: str) -> bool:
    """Whether ``token`` is ``key``, compared in constant time (None: no)."""
    return token is not None and hmac.compare_digest(token.encode(), key.encode())
