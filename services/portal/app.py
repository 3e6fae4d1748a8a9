"""The web portal (`creditbus portal`): one aiohttp application, server-rendered Chinese pages.

Units (单位账号) download templates, upload files and follow each row's outcome, see their
submissions and their records, request a retraction, and keep their row of the progress
table. The credit office (信用办) sees the progress table live and exports it, the rejections
of every unit, looks up a person's archive and reads the audit trail. docs/portal.md.
"""

from __future__ import annotations

import logging
import socket
import tempfile
import time
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from creditbus.services.portal import deadletters, office, unit
from creditbus.services.portal.accounts import LoginThrottle, check_password
from creditbus.services.portal.config import PortalConfig
from creditbus.services.portal.personal import PersonalReads
from creditbus.services.portal.store import PortalStore
from creditbus.services.portal.web import (
    CSRF_FIELD,
    JOBS_KEY,
    LOGIN_CSRF_COOKIE,
    PORTAL_KEY,
    READS_KEY,
    SETTINGS_KEY,
    UPLOAD_DIR_KEY,
    Portal,
    PortalError,
    client_address,
    current_user,
    end_session,
    errors_middleware,
    format_ms,
    render,
    secure_cookie,
    security_headers,
    start_session,
)
from creditbus.services.query.auditor import AuditLog
from creditbus.services.query.store import ArchiveStore

from creditbus import metrics
from creditbus.catalog import Catalog, default_catalog
from creditbus.kafka.clientconf import confluent_config
from creditbus.settings import Settings
from creditbus.topics import audit_topic

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent


# -- log in and out ---------------------------------------------------------------------------

async def home(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    if user is None:
        raise web.HTTPSeeOther("/login")
    raise web.HTTPSeeOther("/office" if user.is_office else "/unit")


async def login_page(request: web.Request, *, message: str = "",
                     status: int = 200) -> web.StreamResponse:
    import secrets

    portal = request.app[PORTAL_KEY]
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", {"login_csrf": token, "message": message},
                      status=status)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict",
                        secure=secure_cookie(request, portal.config), path="/login")
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    return await login_page(request)


async def login(request: web.Request) -> web.StreamResponse:
    import hmac

    portal = request.app[PORTAL_KEY]
    form = await request.post()
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    given = str(form.get(CSRF_FIELD, ""))
    if not cookie or not given or not hmac.compare_digest(cookie, given):
        raise PortalError(403, "请求校验失败（CSRF 令牌无效），请刷新登录页后重试。")
    username = str(form.get("username", "")).strip()[:64]
    password = str(form.get("password", ""))[:256]
    remote = client_address(request, portal.config)
    if portal.throttle.blocked(username, remote):
        log.warning("login throttled for %s from %s", username, remote)
        return await login_page(request, message="登录失败次数过多，请 5 分钟后再试。",
                                status=429)
    account = await portal.run(check_password, portal.store, username, password)
    if account is None:
        portal.throttle.failed(username, remote)
        return await login_page(request, message="用户名或密码错误。", status=401)
    portal.throttle.succeeded(username)
    response = web.HTTPSeeOther("/office" if account.role == "office" else "/unit")
    await start_session(request, response, account)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    from creditbus.services.portal.web import check_csrf

    await check_csrf(request, await request.post())
    response = web.HTTPSeeOther("/login")
    await end_session(request, response)
    raise response


async def healthz(request: web.Request) -> web.Response:
    portal = request.app[PORTAL_KEY]
    try:
        version = await portal.run(portal.store.schema_version)
    except Exception:  # any driver error: not ready  # noqa: BLE001
        version = None
    return web.json_response({"status": "ok" if version else "degraded", "schema": version},
                             status=200 if version else 503)


# -- the application --------------------------------------------------------------------------

def create_app(portal: Portal, reads: PersonalReads, settings: Settings) -> web.Application:
    app = web.Application(middlewares=[errors_middleware],
                          client_max_size=portal.config.max_upload_bytes + 1024 * 1024)
    app[PORTAL_KEY] = portal
    app[READS_KEY] = reads
    app[SETTINGS_KEY] = settings
    app[JOBS_KEY] = {}
    upload_dir = Path(tempfile.mkdtemp(prefix="creditbus-portal-uploads-"))
    app[UPLOAD_DIR_KEY] = upload_dir
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                               autoescape=jinja2.select_autoescape(default=True))
    env.filters["ms"] = format_ms
    app[aiohttp_jinja2.static_root_key] = "/static"
    app.on_response_prepare.append(security_headers)
    r = app.router
    r.add_get("/", home)
    r.add_get("/login", login_form)
    r.add_post("/login", login)
    r.add_post("/logout", logout)
    r.add_get("/healthz", healthz)
    r.add_static("/static/", HERE / "static", append_version=True)
    unit.add_routes(r)
    office.add_routes(r)
    deadletters.add_routes(r)

    async def started(_app: web.Application) -> None:
        metrics.PROCESS_UP.labels("portal").set(1)
        metrics.PROCESS_STARTED.labels("portal").set(time.time())

    async def cleanup(_app: web.Application) -> None:
        metrics.PROCESS_UP.labels("portal").set(0)
        reads.audit.close()
        portal.executor.shutdown(wait=False)
        portal.store.close()
        reads.archives.close()
        for leftover in upload_dir.glob("*"):
            leftover.unlink(missing_ok=True)
        upload_dir.rmdir()

    app.on_startup.append(started)
    app.on_cleanup.append(cleanup)
    return app


def build(settings: Settings, config: PortalConfig,
          catalog: Catalog | None = None) -> tuple[Portal, PersonalReads]:
    """The portal of a deployment: catalog, database, audit producer."""
    catalog = catalog or default_catalog(settings.catalog_dir)
    store = PortalStore(settings.database_url)
    portal = Portal(config, catalog, store, LoginThrottle())
    audit = AuditLog(confluent_config(settings), audit_topic(settings.topic_prefix))
    reads = PersonalReads(catalog, ArchiveStore(settings.database_url), store, audit,
                          settings.person_key_secret)
    return portal, reads


def serve(app: web.Application, sock: socket.socket) -> None:
    """Serve on the bound `sock` until SIGINT or SIGTERM (HTTPS: a reverse proxy's job)."""
    host, port = sock.getsockname()[:2]
    log.info("portal on http://%s:%d", host, port)
    web.run_app(app, sock=sock, print=None,
                access_log=logging.getLogger("creditbus.portal.access"))
