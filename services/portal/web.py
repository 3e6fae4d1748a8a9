"""The portal's web plumbing: sessions in the platform database behind an HttpOnly cookie, a
CSRF token per session checked on every POST, login throttling, security headers, Chinese
error pages, and the current user of a request.

Sessions: the cookie holds a random token; the database holds only its SHA-256, the user, the
CSRF token and the stated purpose of personal-data reads. The cookie is Secure over HTTPS (or
always, `CREDITBUS_PORTAL_SECURE_COOKIES=always`), SameSite=Strict, and named `__Host-...`
when Secure. The login form has its own double-submit CSRF cookie.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp_jinja2
from aiohttp import web
from creditbus.services.portal.accounts import LoginThrottle
from creditbus.services.portal.config import PortalConfig
from creditbus.services.portal.store import Account, PortalStore, Session, now_ms

from creditbus.audit import PURPOSE_MAX_CHARS
from creditbus.catalog import Catalog
from creditbus.errors import CreditbusError

log = logging.getLogger(__name__)
T = TypeVar("T")

COOKIE = "cb_portal"
SECURE_COOKIE = "__Host-cb_portal"
LOGIN_CSRF_COOKIE = "cb_login_csrf"
CSRF_FIELD = "csrf_token"
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")

ERRORS_ZH = {
    400: "请求无效。",
    403: "无权执行此操作。",
    404: "未找到该页面或记录。",
    405: "不支持该请求方式。",
    413: "上传的文件过大。",
    429: "登录尝试过于频繁，请稍后再试。",
    500: "服务内部错误。",
    503: "服务暂不可用，请稍后再试。",
}


@dataclass
class Portal:
    """What every handler needs."""

    config: PortalConfig
    catalog: Catalog
    store: PortalStore
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="portal-db"))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking work (database, hashing) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)


PORTAL_KEY: web.AppKey[Portal] = web.AppKey("portal", Portal)
READS_KEY: web.AppKey[Any] = web.AppKey("reads", object)
"""creditbus.services.portal.personal.PersonalReads"""
SETTINGS_KEY: web.AppKey[Any] = web.AppKey("settings", object)
JOBS_KEY: web.AppKey[dict[str, Any]] = web.AppKey("jobs", dict)
"""submission id -> uploads.Progress of the jobs this process runs"""
UPLOAD_DIR_KEY: web.AppKey[Any] = web.AppKey("upload_dir", object)


@dataclass(frozen=True)
class User:
    account: Account
    session: Session

    @property
    def is_office(self) -> bool:
        return self.account.role == "office"


class PortalError(CreditbusError):
    """A refusal shown as the Chinese error page with `status_code`."""

    def __init__(self, status: int, message: str | None = None) -> None:
        self.status_code = status
        self.message = message or ERRORS_ZH.get(status, "请求无法完成。")
        super().__init__(self.message)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def client_address(request: web.Request, config: PortalConfig) -> str:
    if config.trust_proxy:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded.strip():
            return forwarded.split(",")[0].strip()
    return request.remote or "-"


def is_https(request: web.Request, config: PortalConfig) -> bool:
    if config.trust_proxy:
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        if proto:
            return proto == "https"
    return request.secure


def secure_cookie(request: web.Request, config: PortalConfig) -> bool:
    if config.secure_cookies == "always":
        return True
    if config.secure_cookies == "never":
        return False
    return is_https(request, config)


def cookie_name(request: web.Request, config: PortalConfig) -> str:
    return SECURE_COOKIE if secure_cookie(request, config) else COOKIE


async def current_user(request: web.Request) -> User | None:
    if "user" in request:
        return request["user"]  # type: ignore[no-any-return]
    portal = request.app[PORTAL_KEY]
    token = request.cookies.get(SECURE_COOKIE) or request.cookies.get(COOKIE)
    user = None
    if token:
        session = await portal.run(portal.store.session, token_hash(token))
        if session is not None:
            account = await portal.run(portal.store.account, session.username)
            if account is not None and not account.disabled:
                user = User(account, session)
    request["user"] = user
    return user


async def require_user(request: web.Request, role: str | None = None) -> User:
    user = await current_user(request)
    if user is None:
        raise web.HTTPSeeOther("/login")
    if role is not None and user.account.role != role:
        raise PortalError(403)
    return user


async def start_session(request: web.Request, response: web.StreamResponse,
                        account: Account) -> None:
    portal = request.app[PORTAL_KEY]
    token = secrets.token_urlsafe(32)
    expires = now_ms() + int(portal.config.session_hours * 3600 * 1000)
    await portal.run(portal.store.create_session, Session(
        token_hash(token), account.username, secrets.token_urlsafe(32), None, expires))
    response.set_cookie(cookie_name(request, portal.config), token, httponly=True,
                        samesite="Strict", secure=secure_cookie(request, portal.config),
                        path="/", max_age=int(portal.config.session_hours * 3600))


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    portal = request.app[PORTAL_KEY]
    user = await current_user(request)
    if user is not None:
        await portal.run(portal.store.delete_session, user.session.session_hash)
    for name in (COOKIE, SECURE_COOKIE):
        response.del_cookie(name, path="/")


async def check_csrf(request: web.Request, form: Any) -> User:
    """The user of a POST whose form carries the session's CSRF token; 403 otherwise."""
    user = await require_user(request)
    given = str(form.get(CSRF_FIELD, "")) if form is not None else ""
    if not given or not hmac.compare_digest(given, user.session.csrf_token):
        raise PortalError(403, "请求校验失败（CSRF 令牌无效），操作未执行。请返回页面刷新后重试。")
    return user


def check_purpose(text: Any) -> str:
    purpose = " ".join(str(text or "").split())
    if not purpose:
        raise PortalError(400, "查询个人信息须说明查询目的。")
    if len(purpose) > PURPOSE_MAX_CHARS:
        raise PortalError(400, f"查询目的不得超过 {PURPOSE_MAX_CHARS} 个字符。")
    return purpose


def render(request: web.Request, template: str, context: dict[str, Any],
           status: int = 200) -> web.Response:
    user: User | None = request.get("user")
    base = {"user": user, "csrf_token": user.session.csrf_token if user else "",
            "catalog": request.app[PORTAL_KEY].catalog}
    return aiohttp_jinja2.render_template(template, request, {**base, **context},
                                          status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except PortalError as exc:
        return render(request, "error.html", {"status": exc.status_code,
                                              "message": exc.message}, status=exc.status_code)
    except web.HTTPRedirection:
        raise
    except web.HTTPException as exc:
        if exc.status_code < 400:
            raise
        return render(request, "error.html",
                      {"status": exc.status_code,
                       "message": ERRORS_ZH.get(exc.status_code, "请求无法完成。")},
                      status=exc.status_code)
    except Exception:
        log.exception("portal request %s %s failed", request.method, request.path)
        return render(request, "error.html", {"status": 500, "message": ERRORS_ZH[500]},
                      status=500)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    portal = request.app[PORTAL_KEY]
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    if is_https(request, portal.config):
        response.headers["Strict-Transport-Security"] = "max-age=31536000"


def format_ms(ms: int | None) -> str:
    """Epoch milliseconds as Beijing time text."""
    if not ms:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000 + 8 * 3600))
