"""Bearer JWT authentication exactly as API.md says.

HS256 with ``JWT_SECRET`` by default (RS256 with a JWKS URL may be configured instead); the audience
must match ``JWT_AUDIENCE``; ``exp`` is required; ``alg: none`` and any algorithm other than the
configured one are refused. The claims a service stores are bounded as every service stores
them: ``sub`` and ``company_id`` at most 100 characters, ``email`` at most 320, none with control
characters (or a lone surrogate, which cannot be stored as UTF-8); a token beyond that is
refused like any other bad token. Every failure is a 401 problem; a wrong role is a 403.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

import jwt
import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt.algorithms import HMACAlgorithm

from te_shared.errors import Forbidden, Unauthorized
from te_shared.text import MAX_COMPANY_ID, MAX_EMAIL, MAX_USER_ID, text_problem

# The short local default `dev-secret` would warn on every token; production secrets are long, and
# the service logs a warning at start-up while the dev default is in use (te_shared.service).
warnings.filterwarnings("ignore", category=jwt.warnings.InsecureKeyLengthWarning)


class _SecretCheckedOnce(HMACAlgorithm):
    """HS256 whose secret is checked once, not on every token.

    PyJWT prepares the key for each token it verifies: it refuses a secret that is a PEM, SSH
    or DER public key or certificate, or a JSON key (an algorithm-confusion guard), trying to
    parse the secret as each of them. A service has one configured secret, so the same checks
    ran on the same text for every request: three raised and caught parse errors, about a
    tenth of a refused sign-up's CPU. The checks and their refusals are PyJWT's own; only
    their outcome for a secret that passed is remembered."""

    def prepare_key(self, key: str | bytes) -> bytes:
        return _prepared_secret(key)


@lru_cache(maxsize=8)
def _prepared_secret(key: str | bytes) -> bytes:
    """The secret as PyJWT prepares it (raises PyJWT's ``InvalidKeyError`` for a key that is
    not a shared secret; a refusal is not remembered)."""
    return HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(key)


if not isinstance(jwt.get_algorithm_by_name("HS256"), _SecretCheckedOnce):
    # PyJWT's public registry: jwt.decode and jwt.encode use it for HS256 from here on
    jwt.unregister_algorithm("HS256")
    jwt.register_algorithm("HS256", _SecretCheckedOnce(HMACAlgorithm.SHA256))

_bearer = HTTPBearer(auto_error=False, description="A JWT issued by the platform.")


class Role(StrEnum):
    ADMIN = "admin"
    USER = "user"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's user, company and role."""

    user_id: str
    company_id: str
    role: Role
    email: str | None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class JWTConfig:
    secret: str
    audience: str
    algorithm: str = "HS256"
    jwks_url: str | None = None
    leeway_seconds: int = 10


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True)


#: tokens already verified, by (configuration, the token's exact text): their principal and
#: ``exp``; least recently used dropped first
_verified: OrderedDict[tuple[JWTConfig, str], tuple[Principal, float]] = OrderedDict()
VERIFIED_CAPACITY = 4096


def decode_token(token: str, config: JWTConfig, *, now: float | None = None) -> Principal:
    """Validate a token and return its principal; raise :class:`Unauthorized` on any defect.

    A token verified before (the same text, signature included, under the same configuration)
    is not verified again until its ``exp`` (with the leeway) has passed: a user's requests
    carry the same token for its lifetime, and checking it again cost a tenth of a sign-up's
    CPU. Nothing a token says can change without changing its text."""
    now = time.time() if now is None else now
    key = (config, token)
    hit = _verified.get(key)
    if hit is not None:
        principal, expires = hit
        if now < expires + config.leeway_seconds:
            _verified.move_to_end(key)
            return principal
        del _verified[key]
        raise Unauthorized("The bearer token has expired.", code="token_expired")
    principal, expires = _verify(token, config)
    _verified[key] = (principal, expires)
    while len(_verified) > VERIFIED_CAPACITY:
        _verified.popitem(last=False)
    return principal


_MALFORMED = "The bearer token is malformed."
_OTHER_ALGORITHM = "The bearer token is signed with an algorithm that is not accepted."


def _verify(token: str, config: JWTConfig) -> tuple[Principal, float]:
    """The full check: signature, algorithm, audience, expiry, claims.

    With a shared secret (HS256) the token is parsed once, by the decode, which accepts only
    that algorithm; reading the header first parsed and base64-checked the whole token twice,
    a third of a first request's token check. With a JWKS the header comes first: it names the
    key."""
    key: Any
    if config.algorithm == "HS256":
        key = config.secret
    else:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized(_MALFORMED, code="invalid_token") from exc
        if header.get("alg") != config.algorithm:
            raise Unauthorized(_OTHER_ALGORITHM, code="invalid_token")
        if not config.jwks_url:
            raise Unauthorized("RS256 tokens need a configured JWKS URL.", code="invalid_token")
        try:
            key = _jwks_client(config.jwks_url).get_signing_key_from_jwt(token).key
        except jwt.PyJWTError as exc:
            raise Unauthorized("The token's signing key is unknown.", code="invalid_token") from exc
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[config.algorithm],
            audience=config.audience,
            leeway=config.leeway_seconds,
            options={"require": ["exp", "sub", "aud"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The bearer token has expired.", code="token_expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise Unauthorized(
            "The bearer token is for another audience.", code="invalid_token"
        ) from exc
    except jwt.InvalidAlgorithmError as exc:
        raise Unauthorized(_OTHER_ALGORITHM, code="invalid_token") from exc
    except jwt.InvalidSignatureError as exc:
        raise Unauthorized(f"The bearer token is not valid: {exc}.", code="invalid_token") from exc
    except jwt.DecodeError as exc:
        raise Unauthorized(_MALFORMED, code="invalid_token") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"The bearer token is not valid: {exc}.", code="invalid_token") from exc
    company_id, role, sub = claims.get("company_id"), claims.get("role"), claims.get("sub")
    if not isinstance(company_id, str) or not company_id.strip():
        raise Unauthorized("The bearer token has no company_id.", code="invalid_token")
    if not isinstance(sub, str) or not sub.strip():
        raise Unauthorized("The bearer token has no subject.", code="invalid_token")
    try:
        parsed_role = Role(str(role))
    except ValueError as exc:
        raise Unauthorized("The bearer token has no valid role.", code="invalid_token") from exc
    email = claims.get("email")
    email = email if isinstance(email, str) else None
    _check_claim("sub", sub, MAX_USER_ID)
    _check_claim("company_id", company_id, MAX_COMPANY_ID)
    if email is not None:
        _check_claim("email", email, MAX_EMAIL)
    principal = Principal(user_id=sub, company_id=company_id, role=parsed_role, email=email)
    return principal, float(claims["exp"])


def _check_claim(name: str, value: str, max_length: int) -> None:
    """A claim the services store: at most ``max_length`` characters, no control characters."""
    problem = text_problem(value, max_length=max_length, min_length=0)
    if problem is not None:
        raise Unauthorized(
            f"The bearer token's {name} claim is not valid: {problem}.", code="invalid_token"
        )


def make_token(
    *,
    secret: str,
    company_id: str,
    user_id: str,
    role: str = "user",
    email: str | None = None,
    audience: str = "training-events",
    ttl_seconds: int = 3600,
    **extra: Any,
) -> str:
    """Issue an HS256 token (local development and tests)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "company_id": company_id,
        "role": role,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": str(uuid.uuid4()),
        **extra,
    }
    if email is not None:
        claims["email"] = email
    return jwt.encode(claims, secret, algorithm="HS256")


def get_jwt_config(request: Request) -> JWTConfig:
    config = getattr(request.app.state, "jwt_config", None)
    if not isinstance(config, JWTConfig):  # pragma: no cover - wiring error
        raise RuntimeError("app.state.jwt_config is not set")
    return config


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("A bearer token is required.", code="missing_token")
    principal = decode_token(credentials.credentials, get_jwt_config(request))
    request.state.principal = principal
    structlog.contextvars.bind_contextvars(company_id=principal.company_id)
    return principal


async def admin_principal(
    principal: Annotated[Principal, Depends(current_principal)],
) -> Principal:
    if not principal.is_admin:
        raise Forbidden("This action needs the admin role.", code="admin_required")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
AdminPrincipal = Annotated[Principal, Depends(admin_principal)]


async def principal_of(request: Request) -> Principal:
    """:func:`current_principal` outside dependency solving: a route's own handler that
    answers before its dependencies run (the 401s are the same)."""
    return await current_principal(request, await _bearer(request))
