"""The official MCP Python SDK against our two servers.

Its `OAuthClientProvider` performs the whole MCP authorization: 401 -> protected resource
metadata (RFC 9728) -> authorization server metadata (RFC 8414) -> dynamic registration
(RFC 7591) -> PKCE S256 -> authorization (our login and consent pages, walked by a
headless handler) -> RFC 9207 `iss` check -> token request with `resource` (RFC 8707).
Then it uses the memory tools over Streamable HTTP (/mcp) and over the legacy SSE
transport (/mcp/sse), each with its own OAuth run.

Env: E2E_MCP_URL, E2E_ISSUER, E2E_USERNAME, E2E_PASSWORD.
Prints one JSON object per line on stdout; exits non-zero on any failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import traceback
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, TokenStorage
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REDIRECT_URI = "http://127.0.0.1:9/python/callback"


def report(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"environment variable {name} is not set")
    return value


class Forms(HTMLParser):
    """The forms of a page: action, method, named inputs and named buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get").upper(), "fields": {}, "buttons": []})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")
        elif tag == "button" and self.forms and a.get("name"):
            self.forms[-1]["buttons"].append((a["name"], a.get("value", "")))
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


class HeadlessUser:
    """The person at the browser: opens the authorization URL, signs in with a password,
    approves the consent page and hands the redirect back to the SDK."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self.result: AuthorizationCodeResult | None = None
        self.authorization_urls: list[str] = []
        self.pages: list[str] = []

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorization_urls.append(authorization_url)
        query = parse_qs(urlparse(authorization_url).query)
        for required in ("client_id", "redirect_uri", "state", "code_challenge", "resource"):
            assert required in query, f"the SDK's authorization URL has no {required}: {authorization_url}"
        assert query["code_challenge_method"] == ["S256"], "PKCE S256"
        self.result = None
        async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as http:
            url, method, data, headers = authorization_url, "GET", None, {}
            for _ in range(20):
                response = await http.request(method, url, data=data, headers=headers)
                if response.is_redirect:
                    location = urljoin(url, response.headers["location"])
                    if location.startswith(REDIRECT_URI):
                        params = parse_qs(urlparse(location).query)
                        assert "code" in params, f"no code in the redirect: {location}"
                        self.result = AuthorizationCodeResult(
                            code=params["code"][0],
                            state=params.get("state", [None])[0],
                            iss=params.get("iss", [None])[0],
                        )
                        return
                    url, method, data, headers = location, "GET", None, {}
                    continue
                parser = Forms()
                parser.feed(response.text)
                self.pages.append(parser.title)
                origin = "{0.scheme}://{0.netloc}".format(urlparse(url))
                login = next((f for f in parser.forms if "password" in f["fields"] and "csrf" in f["fields"]), None)
                consent = next((f for f in parser.forms if any(n == "decision" for n, _ in f["buttons"])), None)
                if login is not None:
                    data = {**login["fields"], "username": self.username, "password": self.password}
                    form = login
                elif consent is not None:
                    data = {**consent["fields"], "decision": "approve"}
                    form = consent
                else:
                    raise AssertionError(f"unexpected page {response.status_code} at {url}: {response.text[:400]}")
                url, method, headers = urljoin(url, form["action"]), form["method"], {"origin": origin}
            raise AssertionError("too many hops")

    async def callback_handler(self) -> AuthorizationCodeResult:
        assert self.result is not None, "the authorization did not reach the redirect URI"
        return self.result


class MemoryStorage(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def oauth(server_url: str, user: HeadlessUser, storage: MemoryStorage, name: str) -> OAuthClientProvider:
    return OAuthClientProvider(
        server_url=server_url,
        client_metadata=OAuthClientMetadata(
            client_name=name,
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="client_secret_post",
        ),
        storage=storage,
        redirect_handler=user.redirect_handler,
        callback_handler=user.callback_handler,
    )


def structured(result: Any, tool: str) -> dict[str, Any]:
    assert not result.is_error, f"{tool} failed: {result.content}"
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    assert len(texts) == 1, f"{tool}: exactly one text content item (ChatGPT's shape), got {result.content}"
    from_text = json.loads(texts[0])
    if result.structured_content is not None:
        assert result.structured_content == from_text, f"{tool}: structuredContent equals the JSON text"
    return from_text


async def exercise(client: Client, transport: str, marker: str) -> dict[str, Any]:
    tools = await client.list_tools()
    names = {t.name for t in tools.tools}
    for needed in ("add_memories", "search", "fetch", "search_memory"):
        assert needed in names, f"{transport}: tool {needed} missing from {sorted(names)}"

    text = f"My favourite e2e marker is {marker}; it was saved over {transport}."
    added = structured(await client.call_tool("add_memories", {"text": text, "categories": ["e2e"]}), "add_memories")
    assert added["memory"] == text, f"add_memories returned {added}"
    memory_id = added["id"]

    found = structured(await client.call_tool("search", {"query": marker}), "search")
    assert set(found) == {"results"}, f"search shape: {found}"
    hit = next((r for r in found["results"] if r["id"] == memory_id), None)
    assert hit is not None, f"search did not find the added memory: {found}"
    assert set(hit) == {"id", "title", "url"}, f"search result shape (ChatGPT): {hit}"
    assert hit["url"].startswith("http"), f"search result url: {hit}"

    fetched = structured(await client.call_tool("fetch", {"id": memory_id}), "fetch")
    assert {"id", "title", "text", "url", "metadata"} <= set(fetched), f"fetch shape (ChatGPT): {fetched}"
    assert fetched["id"] == memory_id and fetched["text"] == text, f"fetch returned {fetched}"
    assert fetched["url"] == hit["url"], "fetch and search agree on the url"

    searched = structured(await client.call_tool("search_memory", {"query": marker, "limit": 5}), "search_memory")
    match = next((r for r in searched["results"] if r["id"] == memory_id), None)
    assert match is not None and match["memory"] == text, f"search_memory: {searched}"
    assert marker in match["snippet"].replace("*", ""), f"search_memory snippet: {match}"
    return {"memory_id": memory_id, "tools": sorted(names), "protocol_version": client.protocol_version}


async def main() -> None:
    mcp_url = env("E2E_MCP_URL").rstrip("/")
    issuer = env("E2E_ISSUER").rstrip("/")
    username, password = env("E2E_USERNAME"), env("E2E_PASSWORD")
    marker = f"py{int(time.time() * 1000) % 10**9}"
    timeout = httpx2.Timeout(30, read=60)

    # Streamable HTTP: the SDK discovers, registers and authorizes on the first 401.
    user = HeadlessUser(username, password)
    storage = MemoryStorage()
    provider = oauth(mcp_url, user, storage, "e2e python sdk (streamable http)")
    async with httpx2.AsyncClient(auth=provider, timeout=timeout) as http:
        async with Client(streamable_http_client(mcp_url, http_client=http), mode="legacy") as client:
            result = await exercise(client, "streamable-http", marker)
    assert len(user.authorization_urls) == 1, "one authorization"
    assert urlparse(user.authorization_urls[0]).netloc == urlparse(issuer).netloc, "authorized at our issuer"
    query = parse_qs(urlparse(user.authorization_urls[0]).query)
    assert query["resource"] == [mcp_url], f"resource indicator {query['resource']}"
    assert user.result is not None and user.result.iss == issuer, "RFC 9207 iss in the redirect"
    assert storage.client_info is not None and storage.client_info.client_id, "registered dynamically"
    assert storage.tokens is not None and storage.tokens.refresh_token, "tokens with a refresh token"
    report(
        verified="python mcp SDK: OAuth (401, RFC 9728, RFC 8414, DCR, PKCE, iss, resource) and the tools over Streamable HTTP",
        pages=user.pages,
        client_id=storage.client_info.client_id,
        scope=storage.tokens.scope,
        **result,
    )

    # The same tokens in the SDK's default `auto` mode: it probes `server/discover` and uses
    # the newest era both sides speak.
    async with httpx2.AsyncClient(auth=provider, timeout=timeout) as http:
        async with Client(streamable_http_client(mcp_url, http_client=http)) as client:
            auto = await exercise(client, "streamable-http (auto)", marker + "a")
    assert len(user.authorization_urls) == 1, "the stored token was reused"
    report(verified="python mcp SDK: auto protocol negotiation and the tools over Streamable HTTP", **auto)

    # Legacy SSE (/mcp/sse), with a fresh client and its own OAuth run.
    sse_user = HeadlessUser(username, password)
    sse_storage = MemoryStorage()
    sse_url = f"{mcp_url}/sse"
    sse_provider = oauth(sse_url, sse_user, sse_storage, "e2e python sdk (sse)")
    async with Client(sse_client(sse_url, auth=sse_provider, timeout=30, sse_read_timeout=60), mode="legacy") as client:
        sse_result = await exercise(client, "sse", marker + "s")
        # The memory added over Streamable HTTP belongs to the same user.
        fetched = structured(await client.call_tool("fetch", {"id": result["memory_id"]}), "fetch")
        assert marker in fetched["text"], "the same user's memory is visible over SSE"
    assert len(sse_user.authorization_urls) == 1, "one authorization for SSE"
    assert sse_storage.client_info is not None
    assert sse_storage.client_info.client_id != storage.client_info.client_id, "a second registration"
    report(
        verified="python mcp SDK: OAuth and the tools over the legacy SSE transport",
        pages=sse_user.pages,
        **sse_result,
    )


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(), timeout=240))
    except BaseException as error:  # noqa: BLE001 - report everything, then fail
        traceback.print_exc()
        report(failed=f"{type(error).__name__}: {error}")
        sys.exit(1)
    report(done=True)
