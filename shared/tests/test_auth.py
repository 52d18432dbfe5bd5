"""The JWT dependency refuses every bad token API.md names; roles hold. (Tenant scoping is each
service's own: its queries filter by the token's company, proven by its cross-company 404 tests.)"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from jwt.algorithms import HMACAlgorithm

from te_shared import auth
from te_shared.auth import AdminPrincipal, CurrentPrincipal, JWTConfig, make_token
from te_shared.errors import Unauthorized, install_error_handlers

SECRET = "dev-secret"


def make_app() -> FastAPI:
    app = FastAPI()
    app.state.jwt_config = JWTConfig(secret=SECRET, audience="training-events")
    install_error_handlers(app)

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, str | None]:
        return {
            "user_id": principal.user_id,
            "company_id": principal.company_id,
            "role": principal.role.value,
            "email": principal.email,
        }

    @app.get("/admin")
    async def admin(principal: AdminPrincipal) -> dict[str, str]:
        return {"ok": principal.user_id}

    return app


@pytest.fixture
async def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=make_app())
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def good(**overrides: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "sub": "u1",
        "company_id": "acme",
        "role": "user",
        "email": "u1@acme.io",
        "aud": "training-events",
        "exp": int(time.time()) + 600,
    }
    claims.update(overrides)
    return claims


def unsigned(claims: dict[str, object]) -> str:
    def b64(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def rs256_token() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(good(), key, algorithm="RS256")


class TestTokenValidation:
    async def test_valid_token_gives_principal(self, client: httpx.AsyncClient) -> None:
        token = jwt.encode(good(), SECRET, algorithm="HS256")
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        assert response.json() == {
            "user_id": "u1",
            "company_id": "acme",
            "role": "user",
            "email": "u1@acme.io",
        }

    @pytest.mark.parametrize(
        ("token", "code"),
        [
            (None, "missing_token"),
            ("not-a-jwt", "invalid_token"),
            (
                jwt.encode(good(exp=int(time.time()) - 120), SECRET, algorithm="HS256"),
                "token_expired",
            ),
            (jwt.encode(good(), "another-secret", algorithm="HS256"), "invalid_token"),
            (unsigned(good()), "invalid_token"),
            (jwt.encode(good(aud="someone-else"), SECRET, algorithm="HS256"), "invalid_token"),
            (jwt.encode({k: v for k, v in good().items() if k != "exp"}, SECRET), "invalid_token"),
            (jwt.encode(good(company_id=""), SECRET, algorithm="HS256"), "invalid_token"),
            (jwt.encode(good(role="root"), SECRET, algorithm="HS256"), "invalid_token"),
            (jwt.encode(good(), SECRET, algorithm="HS512"), "invalid_token"),
            (rs256_token(), "invalid_token"),
        ],
        ids=[
            "missing",
            "malformed",
            "expired",
            "wrong-signature",
            "alg-none",
            "wrong-audience",
            "no-exp",
            "no-company",
            "bad-role",
            "other-hmac-alg",
            "rs256-when-hs256",
        ],
    )
    async def test_bad_tokens_get_401_problem(
        self, client: httpx.AsyncClient, token: str | None, code: str
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await client.get("/me", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
        body = response.json()
        assert body["status"] == 401
        assert body["code"] == code

    async def test_basic_scheme_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/me", headers={"Authorization": "Basic dTpw"})
        assert response.status_code == 401


class TestRoles:
    async def test_user_on_admin_endpoint_gets_403(self, client: httpx.AsyncClient) -> None:
        token = make_token(secret=SECRET, company_id="acme", user_id="u1", role="user")
        response = await client.get("/admin", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 403
        assert response.json()["code"] == "admin_required"

    async def test_admin_passes(self, client: httpx.AsyncClient) -> None:
        token = make_token(secret=SECRET, company_id="acme", user_id="a1", role="admin")
        response = await client.get("/admin", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200


class TestClaimSizes:
    """The claims services store are bounded as they store them (sub and company_id at most 100
    characters, email at most 320) and hold no control characters: a validly signed token
    beyond that is a 401 ``invalid_token``, never a 500 from the database."""

    @pytest.mark.parametrize(
        "claims",
        [
            {"sub": "u" * 101},
            {"company_id": "c" * 101},
            {"email": "e" * 311 + "@acme.io.x"},  # 321 characters
            {"sub": "u1\x00"},
            {"sub": "u\n1"},
            {"company_id": "acme\x7f"},
            {"email": "u1@acme.io\r\nX-Injected: 1"},
            {"sub": "u\ud8001"},  # a lone surrogate cannot be stored as UTF-8
            {"sub": "   "},
        ],
        ids=[
            "sub-101",
            "company-101",
            "email-321",
            "sub-nul",
            "sub-newline",
            "company-del",
            "email-crlf",
            "sub-surrogate",
            "sub-blank",
        ],
    )
    async def test_oversized_or_control_claims_get_401(
        self, client: httpx.AsyncClient, claims: dict[str, object]
    ) -> None:
        token = jwt.encode(good(**claims), SECRET, algorithm="HS256")
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "invalid_token"

    async def test_claims_at_the_limits_are_accepted(self, client: httpx.AsyncClient) -> None:
        email = "e" * 312 + "@acme.io"
        assert len(email) == 320
        token = jwt.encode(
            good(sub="u" * 100, company_id="c" * 100, email=email), SECRET, algorithm="HS256"
        )
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        assert response.json()["email"] == email


class TestVerifiedTokens:
    """A token verified once is not verified again until it expires: the same text, under the
    same configuration, only; an expired one is refused from the cache too."""

    CONFIG = JWTConfig(secret=SECRET, audience="training-events", leeway_seconds=0)

    def test_the_same_token_is_verified_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        token = jwt.encode(good(sub="cached-1"), SECRET, algorithm="HS256")
        calls: list[str] = []
        real = jwt.decode

        def counted(*args: object, **kwargs: object) -> object:
            calls.append("decode")
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(jwt, "decode", counted)
        first = auth.decode_token(token, self.CONFIG)
        again = auth.decode_token(token, self.CONFIG)
        assert first == again
        assert first.user_id == "cached-1"
        assert calls == ["decode"]

    def test_a_cached_token_past_its_expiry_is_refused(self) -> None:
        exp = int(time.time()) + 60
        token = jwt.encode(good(sub="cached-2", exp=exp), SECRET, algorithm="HS256")
        assert auth.decode_token(token, self.CONFIG).user_id == "cached-2"
        with pytest.raises(Unauthorized) as refused:
            auth.decode_token(token, self.CONFIG, now=exp + 1)
        assert refused.value.code == "token_expired"

    def test_another_text_or_configuration_is_verified_in_full(self) -> None:
        token = jwt.encode(good(sub="cached-3"), SECRET, algorithm="HS256")
        assert auth.decode_token(token, self.CONFIG).user_id == "cached-3"
        head, payload, signature = token.split(".")
        forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        forged["role"] = "admin"
        body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
        with pytest.raises(Unauthorized):
            auth.decode_token(f"{head}.{body}.{signature}", self.CONFIG)
        other = JWTConfig(secret="another-secret", audience="training-events")
        with pytest.raises(Unauthorized):
            auth.decode_token(token, other)


class TestParsedOnce:
    """With a shared secret the token is parsed once, by the decode; the refusals still say
    what was wrong with it."""

    CONFIG = JWTConfig(secret=SECRET, audience="training-events")

    def test_an_hs256_token_is_not_parsed_for_its_header_first(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def header_read(*_: object) -> object:
            raise AssertionError("the header was parsed apart")

        monkeypatch.setattr(jwt, "get_unverified_header", header_read)
        token = jwt.encode(good(sub="once-1"), SECRET, algorithm="HS256")
        assert auth.decode_token(token, self.CONFIG).user_id == "once-1"

    @pytest.mark.parametrize(
        ("token", "detail"),
        [
            ("not-a-jwt", "The bearer token is malformed."),
            ("a.b.c", "The bearer token is malformed."),
            (unsigned(good()), "signed with an algorithm that is not accepted"),
            (jwt.encode(good(), SECRET, algorithm="HS512"), "not accepted"),
            (jwt.encode(good(), "another-secret", algorithm="HS256"), "Signature verification"),
        ],
        ids=["not-a-jwt", "not-base64-json", "alg-none", "other-hmac-alg", "wrong-signature"],
    )
    def test_each_refusal_says_why(self, token: str, detail: str) -> None:
        with pytest.raises(Unauthorized) as refused:
            auth.decode_token(token, self.CONFIG)
        assert refused.value.code == "invalid_token"
        assert detail in str(refused.value.detail)


class TestSecretCheckedOnce:
    """PyJWT checks that an HS256 secret is no public key (the algorithm-confusion guard):
    once per secret now, not once per token, and a public key is still refused every time."""

    def test_many_tokens_check_the_secret_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        checks: list[str | bytes] = []
        real = HMACAlgorithm.prepare_key

        def counted(self: HMACAlgorithm, key: str | bytes) -> bytes:
            checks.append(key)
            return real(self, key)

        monkeypatch.setattr(HMACAlgorithm, "prepare_key", counted)
        auth._prepared_secret.cache_clear()
        config = JWTConfig(secret="checked-once-secret", audience="training-events")
        for n in range(3):
            token = jwt.encode(good(sub=f"once-{n}"), config.secret, algorithm="HS256")
            assert auth.decode_token(token, config).user_id == f"once-{n}"
        assert checks == ["checked-once-secret"]

    def test_a_public_key_as_the_secret_is_refused_every_time(self) -> None:
        public = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        config = JWTConfig(secret=public.decode(), audience="training-events")
        # signed with the public key as an HMAC secret, as an attacker who knows it would
        for n in range(2):
            head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
            body = base64.urlsafe_b64encode(json.dumps(good(sub=f"forged-{n}")).encode())
            signing_input = head + b"." + body.rstrip(b"=")
            mac = hmac.new(public, signing_input, hashlib.sha256).digest()
            forged = signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")
            with pytest.raises(Unauthorized) as refused:
                auth.decode_token(forged.decode(), config)
            assert refused.value.code == "invalid_token"
            assert "asymmetric key" in str(refused.value.detail)
