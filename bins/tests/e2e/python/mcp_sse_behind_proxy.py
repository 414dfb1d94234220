"""The seed's ChatGPT connector, played by the official MCP Python SDK, through a proxy that
lets only the seed's four public paths of the MCP host through.

The seed configures ChatGPT with server URL `https://mcp.example/mcp/sse` (the legacy SSE
transport), authentication OAuth and scopes `openid email profile`, and puts Cloudflare
Access in front of the MCP host with a bypass for `/openapi.json`, `/mcp/sse`,
`/api/v1/memories/*` and `/health` only. The driver (bins/tests/e2e_proxy.rs) starts nginx
that way; here the SDK's `OAuthClientProvider` does the whole MCP authorization over it
(401 -> RFC 9728 metadata -> RFC 8414 metadata -> DCR at the OIDC host -> PKCE -> sign-in
-> token with `resource`) and the SSE transport runs the tools. Every request the SDK sends
is recorded, and every one to the MCP host must be under one of the four paths.

Scopes. The SDK (mcp 2.3.0, `get_client_metadata_scopes`) does not send the scope of its
client metadata: on a 401 it replaces it with the challenge's `scope` parameter, else the
metadata's `scopes_supported` (the MCP specification's scope selection). ChatGPT sends the
scopes configured in its connector. To play ChatGPT, this script pins the SDK's choice to
the configured scopes and reports both what the SDK would have chosen and what it
requested (the `scope` of the authorization URL), and what was granted (the token
response's `scope` and the access token's `scope` claim).

Runs:
1. scopes `openid email profile`: add_memories, search, fetch, search_memory; then the
   REST API with that token (POST/GET /api/v1/memories/, /openapi.json, /health).
2. scopes `memories:read`: the reads work; add_memories is refused with an
   `insufficient_scope` challenge; POST /api/v1/memories/ is 403.

Env: E2E_MCP_URL (the proxy's {base}/mcp), E2E_ISSUER (the proxy's OIDC URL),
E2E_USERNAME, E2E_PASSWORD.
Prints one JSON object per line on stdout; exits non-zero on any failure.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
import traceback
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx2
import mcp.client.auth.oauth2 as sdk_oauth2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.sse import sse_client
from mcp.shared.auth import OAuthClientMetadata

from mcp_oauth_client import REDIRECT_URI, HeadlessUser, MemoryStorage, env, report, structured

# The seed: "Server URL: https://mcp.drjlabs.com/mcp/sse / Authentication: OAuth2 /
# Scopes: openid email profile".
SEED_SCOPES = "openid email profile"
# The seed's Cloudflare Access bypass list (path rules cover sub-paths).
PUBLIC_PATHS = ("/openapi.json", "/mcp/sse", "/api/v1/memories", "/health")


def is_public(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS)


class ConfiguredScopes:
    """Pins the SDK's scope selection to the connector's configured scopes, recording what
    the SDK itself would have chosen."""

    def __init__(self) -> None:
        self.configured = SEED_SCOPES
        self.sdk_choices: list[str | None] = []
        self._sdk_select = sdk_oauth2.get_client_metadata_scopes

    def install(self) -> None:
        def select(*args: Any, **kwargs: Any) -> str | None:
            self.sdk_choices.append(self._sdk_select(*args, **kwargs))
            return self.configured

        # `_auth_flow` looks the function up in its module at call time.
        sdk_oauth2.get_client_metadata_scopes = select


class Recorder:
    """Every request an httpx2 client sends: (method, url)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    async def hook(self, request: httpx2.Request) -> None:
        self.requests.append((request.method, str(request.url)))

    def factory(self, headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None,
                auth: httpx2.Auth | None = None) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            headers=headers,
            timeout=timeout or httpx2.Timeout(30, read=60),
            auth=auth,
            event_hooks={"request": [self.hook]},
        )

    def paths_on(self, netloc: str) -> list[str]:
        return [f"{m} {urlparse(u).path}" for m, u in self.requests if urlparse(u).netloc == netloc]


def claims_of(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified: mcp-server verifies it; this only reads `scope`."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def connect(sse_url: str, scopes: ConfiguredScopes, configured: str, name: str,
                  username: str, password: str):
    """A fresh connector (its own registration and sign-in) with `configured` scopes."""
    scopes.configured = configured
    user = HeadlessUser(username, password)
    storage = MemoryStorage()
    recorder = Recorder()
    provider = OAuthClientProvider(
        server_url=sse_url,
        client_metadata=OAuthClientMetadata(
            client_name=name,
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="client_secret_post",
            scope=configured,
        ),
        storage=storage,
        redirect_handler=user.redirect_handler,
        callback_handler=user.callback_handler,
    )
    transport = sse_client(sse_url, auth=provider, timeout=30, sse_read_timeout=60,
                           httpx_client_factory=recorder.factory)
    return user, storage, recorder, transport


def describe_grant(user: HeadlessUser, storage: MemoryStorage, scopes: ConfiguredScopes,
                   mcp_base: str, issuer: str) -> dict[str, Any]:
    assert len(user.authorization_urls) == 1, f"one authorization, got {len(user.authorization_urls)}"
    url = urlparse(user.authorization_urls[0])
    assert url.netloc == urlparse(issuer).netloc, f"authorized at the OIDC host: {url.netloc}"
    query = parse_qs(url.query)
    requested = query.get("scope", [""])[0]
    assert query["resource"] == [f"{mcp_base}/mcp"], f"resource indicator {query['resource']}"
    assert storage.tokens is not None and storage.client_info is not None
    claims = claims_of(storage.tokens.access_token)
    return {
        "sdk_would_request": scopes.sdk_choices[-1] if scopes.sdk_choices else None,
        "requested": requested,
        "granted_in_token_response": storage.tokens.scope,
        "scope_claim": claims.get("scope"),
        "aud": claims.get("aud"),
        "client_id": storage.client_info.client_id,
        "pages": user.pages,
    }


def check_public_only(recorder: Recorder, mcp_netloc: str, oidc_netloc: str) -> list[str]:
    on_mcp = recorder.paths_on(mcp_netloc)
    outside = [p for p in on_mcp if not is_public(p.split(" ", 1)[1])]
    assert not outside, f"the SDK requested paths outside the four public ones: {outside}"
    others = {urlparse(u).netloc for _, u in recorder.requests} - {mcp_netloc, oidc_netloc}
    assert not others, f"requests to unexpected hosts: {others}"
    return on_mcp


async def main() -> None:
    mcp_url = env("E2E_MCP_URL").rstrip("/")
    issuer = env("E2E_ISSUER").rstrip("/")
    username, password = env("E2E_USERNAME"), env("E2E_PASSWORD")
    mcp_base = mcp_url.removesuffix("/mcp")
    sse_url = f"{mcp_base}/mcp/sse"
    mcp_netloc, oidc_netloc = urlparse(mcp_base).netloc, urlparse(issuer).netloc
    marker = f"proxy{int(time.time() * 1000) % 10**9}"
    scopes = ConfiguredScopes()
    scopes.install()

    # 1. The seed's configuration.
    user, storage, recorder, transport = await connect(
        sse_url, scopes, SEED_SCOPES, "e2e chatgpt-like connector (sse, seed scopes)", username, password)
    async with Client(transport, mode="legacy") as client:
        text = f"The proxy e2e marker is {marker}."
        added = structured(await client.call_tool("add_memories", {"text": text}), "add_memories")
        memory_id = added["id"]
        found = structured(await client.call_tool("search", {"query": marker}), "search")
        hit = next((r for r in found["results"] if r["id"] == memory_id), None)
        assert hit is not None and set(hit) == {"id", "title", "url"}, f"search: {found}"
        fetched = structured(await client.call_tool("fetch", {"id": memory_id}), "fetch")
        assert fetched["text"] == text and fetched["url"] == hit["url"], f"fetch: {fetched}"
        searched = structured(await client.call_tool("search_memory", {"query": marker}), "search_memory")
        assert any(r["id"] == memory_id for r in searched["results"]), f"search_memory: {searched}"
    grant = describe_grant(user, storage, scopes, mcp_base, issuer)
    assert grant["requested"] == SEED_SCOPES, f"the connector requested {grant['requested']!r}"
    assert grant["aud"] == f"{mcp_base}/mcp", f"aud {grant['aud']}"
    granted = (grant["scope_claim"] or "").split()
    assert "memories:write" in granted and "memories:read" in granted, (
        f"a token for `{SEED_SCOPES}` must carry the memory scopes: got {grant['scope_claim']!r}")
    paths = check_public_only(recorder, mcp_netloc, oidc_netloc)
    report(
        verified="seed configuration: SSE connector with scopes 'openid email profile' through the four public paths",
        memory_id=memory_id,
        mcp_host_requests=paths,
        **grant,
    )
    seed_token = storage.tokens.access_token

    # The REST API with the same token, as the seed's OpenAPI-based action uses it.
    async with httpx2.AsyncClient(timeout=30) as http:
        openapi = await http.get(f"{mcp_base}/openapi.json")
        assert openapi.status_code == 200, f"/openapi.json: {openapi.status_code}"
        discovery_url = openapi.json()["components"]["securitySchemes"]["oidc"]["openIdConnectUrl"]
        assert discovery_url == f"{issuer}/.well-known/openid-configuration", discovery_url
        discovery = await http.get(discovery_url)
        assert discovery.status_code == 200 and discovery.json()["issuer"] == issuer, "the OIDC host is public"
        health = await http.get(f"{mcp_base}/health")
        assert health.status_code == 200 and health.json()["status"] == "ok", f"/health: {health.text}"
        bearer = {"authorization": f"Bearer {seed_token}"}
        anonymous = await http.get(f"{mcp_base}/api/v1/memories/")
        assert anonymous.status_code == 401, f"no token: {anonymous.status_code}"
        assert "resource_metadata=" in anonymous.headers["www-authenticate"]
        created = await http.post(f"{mcp_base}/api/v1/memories/", headers=bearer,
                                  json={"text": f"Saved over REST behind the proxy ({marker})."})
        assert created.status_code == 201, f"POST /api/v1/memories/: {created.status_code} {created.text}"
        rest_id = created.json()["id"]
        listed = await http.get(f"{mcp_base}/api/v1/memories/", headers=bearer)
        assert listed.status_code == 200, f"GET /api/v1/memories/: {listed.status_code}"
        ids = {item["id"] for item in listed.json()["items"]}
        assert {rest_id, memory_id} <= ids, f"both memories listed: {ids}"
        one = await http.get(f"{mcp_base}/api/v1/memories/{memory_id}", headers=bearer)
        assert one.status_code == 200, f"GET /api/v1/memories/{{id}}: {one.status_code}"
    report(
        verified="REST through the proxy: /openapi.json names the OIDC host, /health, POST and GET /api/v1/memories/",
        rest_memory_id=rest_id,
        listed=len(ids),
    )

    # 2. Read-only: `memories:read`.
    user, storage, recorder, transport = await connect(
        sse_url, scopes, "memories:read", "e2e chatgpt-like connector (sse, read only)", username, password)
    async with Client(transport, mode="legacy") as client:
        fetched = structured(await client.call_tool("fetch", {"id": memory_id}), "fetch")
        assert marker in fetched["text"], f"read-only fetch: {fetched}"
        found = structured(await client.call_tool("search", {"query": marker}), "search")
        assert any(r["id"] == memory_id for r in found["results"]), f"read-only search: {found}"
        structured(await client.call_tool("search_memory", {"query": marker}), "search_memory")
        refused = await client.call_tool("add_memories", {"text": "must not be stored"})
        assert refused.is_error, f"add_memories with memories:read must fail: {refused}"
        challenges = (refused.meta or {}).get("mcp/www_authenticate") or []
        assert len(challenges) == 1, f"one challenge in _meta: {refused.meta}"
        challenge = challenges[0]
        assert 'error="insufficient_scope"' in challenge and 'scope="memories:write"' in challenge, challenge
        assert f'resource_metadata="{mcp_base}/mcp/sse/' in challenge, f"the challenge stays under /mcp/sse: {challenge}"
    grant = describe_grant(user, storage, scopes, mcp_base, issuer)
    assert grant["requested"] == "memories:read", f"requested {grant['requested']!r}"
    granted = (grant["scope_claim"] or "").split()
    assert "memories:read" in granted and "memories:write" not in granted, f"granted {grant['scope_claim']!r}"
    paths = check_public_only(recorder, mcp_netloc, oidc_netloc)
    async with httpx2.AsyncClient(timeout=30) as http:
        bearer = {"authorization": f"Bearer {storage.tokens.access_token}"}
        denied = await http.post(f"{mcp_base}/api/v1/memories/", headers=bearer, json={"text": "no"})
        assert denied.status_code == 403, f"read-only REST write: {denied.status_code}"
        assert 'error="insufficient_scope"' in denied.headers["www-authenticate"], denied.headers
        listed = await http.get(f"{mcp_base}/api/v1/memories/", headers=bearer)
        assert listed.status_code == 200, f"read-only REST list: {listed.status_code}"
        texts = [item["content"] for item in listed.json()["items"]]
        assert "must not be stored" not in texts and "no" not in texts, "nothing was written"
    report(
        verified="read-only connector: reads work, add_memories is refused with insufficient_scope",
        challenge=challenge,
        mcp_host_requests=paths,
        **grant,
    )


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(), timeout=240))
    except BaseException as error:  # noqa: BLE001 - report everything, then fail
        traceback.print_exc()
        report(failed=f"{type(error).__name__}: {error}")
        sys.exit(1)
    report(done=True)
