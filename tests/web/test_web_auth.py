"""Sign-in, sessions, CSRF, roles and security headers of the reviewer UI."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from webkit import PASSWORD, csrf_of, hold, login, post_form

from sendguard.api.auth import SESSION_COOKIE
from sendguard.config import Config
from sendguard.guard import Guard
from sendguard.review.service import ReviewService
from sendguard.store.base import Store

PAGES = ["/held", "/held.csv", "/held/abc", "/report", "/report.csv", "/audit", "/admin/users"]
POSTS = [
    "/logout",
    "/held/abc/release",
    "/held/abc/cancel",
    "/admin/users",
    "/admin/users/rita/disable",
    "/admin/users/rita/password",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_redirects_to_sign_in_without_a_session(client: TestClient, path: str) -> None:
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("path", POSTS)
def test_every_form_redirects_to_sign_in_without_a_session(client: TestClient, path: str) -> None:
    r = client.post(path, data={"csrf": "x", "reason": "other"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login"


def test_sign_in_sets_a_hardened_cookie_and_is_audited(client: TestClient, store: Store) -> None:
    r = login(client, "rita")
    assert r.status_code == 303
    assert r.headers["location"] == "/held"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # [web] secure_cookies is off here
    page = client.get("/held")
    assert page.status_code == 200
    assert "rita (reviewer)" in page.text
    (entry,) = store.audit_entries(event="login")
    assert entry.actor == "rita"
    assert entry.details["outcome"] == "success"
    assert PASSWORD not in str(entry.details)


def test_wrong_password_is_refused_and_audited_without_the_password(
    client: TestClient, store: Store
) -> None:
    r = login(client, "rita", "not the password")
    assert r.status_code == 401
    assert "Wrong user name or password" in r.text
    assert client.get("/held", follow_redirects=False).status_code == 303
    r = login(client, "nobody", "secret words")
    assert r.status_code == 401
    entries = store.audit_entries(event="login")
    assert [(e.actor, e.details["reason"]) for e in entries] == [
        ("rita", "bad-password"),
        ("(unknown user)", "unknown-user"),
    ]
    assert all("not the password" not in str(e.details) for e in entries)


def test_a_disabled_user_cannot_sign_in_and_their_session_ends(
    client: TestClient, store: Store
) -> None:
    assert login(client, "rita").status_code == 303
    assert client.get("/held").status_code == 200
    store.disable_user("rita", actor="adam")
    assert client.get("/held", follow_redirects=False).status_code == 303
    assert login(client, "rita").status_code == 401


def test_failed_sign_ins_are_limited_per_user_name(client: TestClient, store: Store) -> None:
    for _ in range(5):
        assert login(client, "rita", "wrong").status_code == 401
    r = login(client, "rita")  # the right password, but too late
    assert r.status_code == 429
    assert "Too many failed sign-ins" in r.text
    assert store.audit_entries(event="login")[-1].details["reason"] == "throttled"
    assert login(client, "adam").status_code == 303  # others at the same address are not


def test_failed_sign_ins_are_limited_per_address(
    tmp_path_factory: pytest.TempPathFactory, store: Store, review: ReviewService, guard: Guard
) -> None:
    from webkit import make_client, write_config

    extra = 'login_max_failures_per_address = 3\ntrusted_proxies = ["10.9.0.0/16"]'
    cfg = write_config(tmp_path_factory.mktemp("limits"), 25, extra)
    with make_client(cfg, store, review, guard, peer=("10.9.1.2", 40000)) as c:

        def attempt(user: str, password: str, client: str) -> int:
            c.cookies.clear()
            form = c.get("/login")
            data = {"username": user, "password": password, "csrf": csrf_of(form)}
            headers = {"X-Forwarded-For": f"203.0.113.9, {client}"}
            return c.post("/login", data=data, headers=headers, follow_redirects=False).status_code

        for user in ("rita", "adam", "apatel"):
            assert attempt(user, "wrong", "192.0.2.1") == 401
        assert attempt("bjones", PASSWORD, "192.0.2.1") == 429  # that address is limited
        assert attempt("bjones", PASSWORD, "192.0.2.2") == 303  # behind the same proxy
    entries = store.audit_entries(event="login")
    assert entries[0].details["address"] == "192.0.2.1"


def test_sign_in_form_needs_its_csrf_value(client: TestClient) -> None:
    form = client.get("/login")
    data = {"username": "rita", "password": PASSWORD}
    assert client.post("/login", data=data).status_code == 403
    assert client.post("/login", data=data | {"csrf": "forged"}).status_code == 403
    assert client.post("/login", data=data | {"csrf": "é"}).status_code == 403  # not a 500
    client.cookies.clear()  # the form's value is bound to the pre-session cookie
    r = client.post("/login", data=data | {"csrf": csrf_of(form)}, follow_redirects=False)
    assert r.status_code == 403


def test_sign_in_never_redirects_to_another_site(client: TestClient) -> None:
    def sign_in(target: str) -> str:
        client.cookies.clear()
        form = client.get("/login")
        data = {"username": "rita", "password": PASSWORD, "csrf": csrf_of(form), "next": target}
        r = client.post("/login", data=data, follow_redirects=False)
        assert r.status_code == 303
        return str(r.headers["location"])

    for target in (
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "",
    ):
        assert sign_in(target) == "/held"
    assert sign_in("/report?since=2026-01-01") == "/report?since=2026-01-01"
    client.cookies.clear()
    assert 'value="/held"' in client.get("/login?next=//evil.example/x").text


def test_sign_out_ends_the_session_even_for_a_copied_cookie(
    client: TestClient, store: Store
) -> None:
    login(client, "rita")
    copied = client.cookies.get(SESSION_COOKIE)
    assert copied
    r = post_form(client, "/logout", "/held")
    assert r.status_code == 303
    client.cookies.set(SESSION_COOKIE, copied)
    assert client.get("/held", follow_redirects=False).status_code == 303
    assert store.audit_entries(event="logout")[0].actor == "rita"


def test_a_forged_or_tampered_session_cookie_is_refused(client: TestClient) -> None:
    login(client, "apatel")
    genuine = client.cookies.get(SESSION_COOKIE)
    assert genuine
    payload, mac = genuine.split(".")
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, payload + "." + ("B" if mac[0] == "A" else "A") + mac[1:])
    assert client.get("/held", follow_redirects=False).status_code == 303
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, "e30.x")
    assert client.get("/held", follow_redirects=False).status_code == 303


def test_idle_and_old_sessions_end(
    config: Config, store: Store, review: ReviewService, guard: Guard
) -> None:
    from webkit import make_client

    now = [1_000_000.0]
    with make_client(config, store, review, guard, clock=lambda: now[0]) as c:
        login(c, "rita")
        now[0] += config.web.session_idle_timeout - 10
        assert c.get("/held").status_code == 200  # used: the idle clock restarts
        now[0] += config.web.session_idle_timeout - 10
        assert c.get("/held").status_code == 200
        now[0] += config.web.session_idle_timeout + 1
        assert c.get("/held", follow_redirects=False).status_code == 303
        login(c, "rita")
        for _ in range(int(config.web.session_max_age // 1000) + 1):
            now[0] += 1000
            c.get("/held")
        assert c.get("/held", follow_redirects=False).status_code == 303


def test_a_new_password_ends_existing_sessions(client: TestClient, store: Store) -> None:
    from webkit import password_hash

    login(client, "rita")
    assert client.get("/held").status_code == 200
    store.set_password("rita", password_hash("another long password"), actor="adam")
    assert client.get("/held", follow_redirects=False).status_code == 303


def test_pages_carry_security_headers(client: TestClient, store: Store) -> None:
    login(client, "rita")
    hold_id = hold(store)
    for path in ("/login", "/held", f"/held/{hold_id}", "/report"):
        r = client.get(path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["cache-control"] == "no-store"
    css = client.get("/static/sendguard.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "content-security-policy" not in client.get("/healthz").headers


def test_secure_cookies_when_configured(
    tmp_path_factory: pytest.TempPathFactory, store: Store, review: ReviewService, guard: Guard
) -> None:
    from webkit import make_client, write_config

    cfg = write_config(tmp_path_factory.mktemp("secure"), 25, "secure_cookies = true")
    with make_client(cfg, store, review, guard) as c:
        form = c.get("/login")
        assert all("Secure" in v for v in form.headers.get_list("set-cookie"))


def test_a_trusted_proxy_header_signs_in_only_from_trusted_proxies(
    tmp_path_factory: pytest.TempPathFactory, store: Store, review: ReviewService, guard: Guard
) -> None:
    from webkit import make_client, write_config

    extra = 'trusted_user_header = "X-Remote-User"\ntrusted_proxies = ["10.9.0.0/16"]'
    cfg = write_config(tmp_path_factory.mktemp("proxy"), 25, extra)
    as_adam = {"X-Remote-User": "adam"}
    with make_client(cfg, store, review, guard, peer=("10.9.1.2", 40000)) as c:
        r = c.get("/admin/users", headers=as_adam)
        assert r.status_code == 200
        assert "adam (admin)" in r.text
        assert "Sign out" not in r.text  # the proxy owns the session
        page = c.get("/admin/users", headers=as_adam)
        r = c.post(
            "/admin/users/rita/disable",
            data={"csrf": csrf_of(page)},
            headers=as_adam,
        )
        assert r.status_code == 200
        assert "rita is disabled" in r.text
        unknown = c.get("/held", headers={"X-Remote-User": "mallory"}, follow_redirects=False)
        assert unknown.status_code == 303
    with make_client(cfg, store, review, guard, peer=("10.8.1.2", 40000)) as c:
        r = c.get("/held", headers=as_adam, follow_redirects=False)
        assert r.status_code == 303  # not from a trusted proxy: the header is ignored
