"""Where platforms that receive webhooks (Twilio SMS, WhatsApp Cloud API) get their HTTP routes.

A webhook platform needs an HTTP server, and the gateway may already run one: the API server's
aiohttp app. Platform packages must not import each other, so neither imports the API server;
instead both meet here, in the core:

* an adapter adds its routes (method, path, handler) to the gateway's one :class:`WebRoutes`
  (``host.web_routes``) when it starts and removes them when it stops;
* the API server, when it runs, serves every route found there (looked up per request, so the
  order in which the adapters start does not matter), before its own routes and its API key;
* a platform whose webhook is not on the API server serves its routes on a small server of its
  own (:class:`OwnSite`), at the host and port Hermes Agent gives it (``SMS_WEBHOOK_PORT``,
  ``WHATSAPP_CLOUD_WEBHOOK_PORT``): :func:`on_api_server` says which.

Hermes Agent always runs one listener per platform. We do the same unless the user turned the
API server on and did not name the platform's own port: then one public port (the API
server's, behind one tunnel or proxy) carries everything. Each handler checks its platform's
own signature; the API key is never asked of a webhook.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "OwnSite",
    "WebRoute",
    "WebRoutes",
    "WebhookListener",
    "missing_server",
    "on_api_server",
]

log = logging.getLogger(__name__)

Handler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]
"""(aiohttp is imported only when a server is built: the runner holds a table at import.)"""

MAX_WEBHOOK_BODY = 4 * 1024 * 1024
"""Largest webhook body an own site reads (Twilio and Meta send a few kilobytes)."""


@dataclass(frozen=True)
class WebRoute:
    """One route a platform serves: ``GET /whatsapp/webhook`` -> its handler."""

    method: str
    path: str
    handler: Handler
    owner: str
    """The platform that added it (removed together when it stops)."""


class WebRoutes:
    """The gateway's table of platform routes (one per gateway, handed out by the host)."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], WebRoute] = {}
        self.served_by: str | None = None
        """The platform serving this table (``api``) while it runs, else None."""
        self._served = asyncio.Event()

    def serve(self, server: str) -> None:
        """``server`` (the API server) now answers these routes."""
        self.served_by = server
        self._served.set()

    def unserve(self, server: str) -> None:
        if self.served_by == server:
            self.served_by = None
            self._served.clear()

    async def wait_served(self, timeout: float) -> bool:
        """Whether a server answers these routes within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._served.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def add(self, owner: str, method: str, path: str, handler: Handler) -> None:
        """Add a route; a path another platform already has is a configuration error."""
        key = (method.upper(), _normal(path))
        existing = self._routes.get(key)
        if existing is not None and existing.owner != owner:
            raise ValueError(
                f"{method.upper()} {path} is already served for {existing.owner}; "
                f"give {owner} another webhook path"
            )
        self._routes[key] = WebRoute(key[0], key[1], handler, owner)

    def remove(self, owner: str) -> None:
        """Remove every route of ``owner`` (it stopped)."""
        for key in [k for k, r in self._routes.items() if r.owner == owner]:
            del self._routes[key]

    def find(self, method: str, path: str) -> WebRoute | None:
        """The route for a request, if a platform serves it (HEAD finds GET routes)."""
        method = method.upper()
        path = _normal(path)
        route = self._routes.get((method, path))
        if route is None and method == "HEAD":
            route = self._routes.get(("GET", path))
        return route

    def of(self, owner: str) -> list[WebRoute]:
        return [r for r in self._routes.values() if r.owner == owner]

    def middleware(self) -> Any:
        """An aiohttp middleware that answers the platform routes (the API server's app)."""
        from aiohttp import web

        @web.middleware
        async def platform_routes(request: web.Request, handler: Handler) -> web.StreamResponse:
            route = self.find(request.method, request.path)
            if route is None:
                return await handler(request)
            return await route.handler(request)

        return platform_routes


def _normal(path: str) -> str:
    path = "/" + path.strip().lstrip("/")
    return path.rstrip("/") or "/"


def on_api_server(api_enabled: bool, own_port: int) -> bool:
    """Whether a platform's webhook goes on the API server: only when the API server runs
    and the platform's own port was not set (0)."""
    return api_enabled and own_port == 0


API_SERVER_WAIT = 30.0
"""Seconds a platform whose webhook rides on the API server waits for it to run."""


async def missing_server(routes: WebRoutes, what: str, variable: str) -> str | None:
    """None once the API server answers the routes; else why the webhook is not reachable
    (the API server failed, e.g. without a valid API_SERVER_KEY), naming the way out."""
    if await routes.wait_served(API_SERVER_WAIT):
        return None
    return (
        f"the API server is not running, so nothing receives the {what} webhook: fix the "
        f"API server (its row says why) or set {variable} to give {what} a listener of its own"
    )


class OwnSite:
    """A platform's own small aiohttp server for its routes (no API server to ride on)."""

    def __init__(self, routes: list[WebRoute], host: str, port: int, label: str) -> None:
        self._routes, self.host, self.port, self.label = routes, host, port, label
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Listen; return the port. A port already in use is an error naming it."""
        from aiohttp import web

        app = web.Application(client_max_size=MAX_WEBHOOK_BODY)
        for route in self._routes:
            app.router.add_route(route.method, route.path, route.handler)
        app.router.add_get("/health", _health)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(
                f"{self.label} cannot listen on {self.host}:{self.port} ({exc.strerror or exc})"
            ) from exc
        self._runner = runner
        server = site._server  # aiohttp keeps the asyncio server here; its port for port 0
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


class WebhookListener:
    """Serves one platform's routes where :func:`on_api_server` says: on the API server
    (then checks that it really runs, see :func:`missing_server`) or on an :class:`OwnSite`.

    Args:
        platform: The platform whose routes (in the gateway's table) are served.
        what: Its name in messages ("SMS").
        port_variable: The setting that gives it a listener of its own (``SMS_WEBHOOK_PORT``).
        report: The adapter's state report (a webhook nothing serves is "failed").
    """

    def __init__(
        self, platform: str, what: str, port_variable: str, report: Callable[[str, str], None]
    ) -> None:
        self.platform, self.what, self.port_variable = platform, what, port_variable
        self._report = report
        self.site: OwnSite | None = None
        self.port = 0
        """Where the webhook listens (the API server's port when it rides on it)."""
        self._confirm: asyncio.Task[None] | None = None

    async def open(
        self,
        routes: WebRoutes,
        *,
        api_enabled: bool,
        api_port: int,
        host: str,
        port: int,
        default_port: int,
        label: str,
    ) -> str:
        """Serve the routes; say where ("on the API server", "on host:port").

        Raises:
            OSError: The own listener's port is taken (its routes are removed again).
        """
        if on_api_server(api_enabled, port):
            self.port = api_port
            self._confirm = asyncio.get_running_loop().create_task(self._confirm_served(routes))
            return "on the API server"
        site = OwnSite(routes.of(self.platform), host, port or default_port, label)
        try:
            self.port = await site.start()
        except OSError:
            routes.remove(self.platform)
            raise
        self.site = site
        return f"on {host}:{self.port}"

    async def close(self, routes: WebRoutes | None) -> None:
        """Stop serving (``routes``: the table to take the routes out of, if bound)."""
        confirm, self._confirm = self._confirm, None
        if confirm is not None:
            confirm.cancel()
        if routes is not None:
            routes.remove(self.platform)
        site, self.site = self.site, None
        if site is not None:
            await site.stop()

    async def _confirm_served(self, routes: WebRoutes) -> None:
        reason = await missing_server(routes, self.what, self.port_variable)
        if reason is not None:
            log.error("%s", reason)
            self._report("failed", reason)


async def _health(request: web.Request) -> web.StreamResponse:
    from aiohttp import web

    return web.Response(text="ok")
