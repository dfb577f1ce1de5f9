"""Checks every request passes before the app sees it: the Host header, the token, the body size.

- **Host.** Bound to loopback, the server answers only requests addressed to ``localhost``,
  ``127.0.0.1`` or ``[::1]``: a web page elsewhere that points a DNS name at 127.0.0.1 (DNS
  rebinding) gets 421, not the jobs.
- **Token.** When the server has a token (required for a non-loopback ``--host``), every request
  carries it: ``Authorization: Bearer TOKEN``, an ``X-Mien-Token`` header, or the ``mien_token``
  cookie. Opening ``/?token=TOKEN`` once in a browser sets that cookie (HttpOnly, SameSite=Strict,
  so other sites cannot send it) and redirects to ``/``; the token then leaves the address bar.
- **Headers.** Every response says ``nosniff`` and ``no-referrer``; the page and its files also
  carry a Content-Security-Policy that allows nothing from elsewhere and no inline script.
- **Body size.** A request whose body is, or turns out to be, larger than the limit gets 413
  before the upload fills the disk.
"""
from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from fastapi import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
PAGE_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
COOKIE = "mien_token"


def is_loopback(host: str) -> bool:
    import ipaddress

    if host.strip("[]") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(value: str) -> str:
    if value.startswith("["):  # [::1]:8765
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class BodyTooLarge(HTTPException):
    """Raised while reading a body past the limit; FastAPI's HTTPException, so that its form
    parsing passes it on as a 413 instead of turning it into "error parsing the body"."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request is larger than this server takes ({_mb(limit)})")


class Guard:
    """ASGI middleware applying the three checks above."""

    def __init__(self, app: ASGIApp, *, token: str | None, loopback_only: bool, max_body: int) -> None:
        self.app = app
        self.token = token
        self.loopback_only = loopback_only
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.loopback_only and not is_loopback(_host_name(headers.get("host", "localhost"))):
            await _reply(send, 421, "this server answers only requests for localhost/127.0.0.1")
            return
        if self.token is not None:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = query.get("token", [None])[0]
            if given is not None and scope["method"] == "GET" and self._valid(given):
                await _set_cookie_and_redirect(send, given, scope.get("path", "/"))
                return
            if not self._valid(self._presented(headers)):
                await _reply(send, 401, "this server needs its token: send 'Authorization: Bearer TOKEN', "
                                        "or open /?token=TOKEN once in the browser")
                return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await _reply(send, 413, f"the request is larger than this server takes ({_mb(self.max_body)})")
            return
        await self._call_bounded(scope, receive, send)

    def _valid(self, given: str | None) -> bool:
        return given is not None and self.token is not None and hmac.compare_digest(
            given.encode("utf-8"), self.token.encode("utf-8"))

    @staticmethod
    def _presented(headers: dict[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        if "x-mien-token" in headers:
            return headers["x-mien-token"].strip()
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is no token
            return None
        return cookie[COOKIE].value if COOKIE in cookie else None

    async def _call_bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the body as it arrives; past the limit, stop reading and answer 413."""
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        page = scope.get("path", "") == "/" or scope.get("path", "").startswith("/static/")

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                if page:
                    extra += [(b"content-security-policy", PAGE_CSP.encode()), (b"x-frame-options", b"DENY")]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as exc:
            if not started:
                await _reply(send, 413, str(exc.detail))


def _mb(n: int) -> str:
    return f"{n / 1_000_000:g} MB"


async def _reply(send: Send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _set_cookie_and_redirect(send: Send, token: str, path: str) -> None:
    cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", (path or "/").encode("latin-1")), (b"set-cookie", cookie.encode("latin-1")),
                            (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
