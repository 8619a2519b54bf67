"""The console's pages: login, Oversigt, Udbud, Virksomheder, Udsendelser, Kørsler, Ikke
nået and the access log, each list also as CSV and Excel. A page reads the store through
``ConsoleApp.in_store`` (a thread) and renders a template; bad parameters are 400s.

E-mail addresses are personal data: only the staff role sees them, on pages and in
exports; a staff user's look at an enterprise's page or export of addresses is logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from ...store import NoticeFilter
from . import auth
from .app import STATIC, ConsoleApp, Handler
from .export import to_csv, to_xlsx
from .formatting import code_text, format_amount, local_today, parse_moment, reasons_for
from .http import BadRequest, Forbidden, NotFound, Request, Response, TooManyAttempts, cookie_header, safe_next
from .nearmiss import near_miss_index

PAGE_SIZE = 50
EXPORT_MAX = 10_000
STAGES = ("planning", "competition", "result", "change", "dir-awa-pre", "cont-modif")
KINDS = ("tender", "agreement")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


# -- parameters --------------------------------------------------------------------------------


def _text(request: Request, name: str, *, longest: int = 200) -> str:
    value = request.query.get(name, "").strip()
    if len(value) > longest:
        raise BadRequest(f"»{name}« må højst være {longest} tegn.")
    return value


def _choice(request: Request, name: str, choices: tuple[str, ...]) -> str:
    value = request.query.get(name, "")
    if value and value not in choices:
        raise BadRequest(f"»{name}« skal være en af: {', '.join(choices)}.")
    return value


def _day(request: Request, name: str) -> str:
    value = request.query.get(name, "").strip()
    if not value:
        return ""
    try:
        if not _DAY.fullmatch(value):
            raise ValueError(value)
        date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"»{name}« skal være en dato som 2025-03-03.") from None
    return value


def _number(request: Request, name: str, *, default: int, lowest: int, highest: int) -> int:
    value = request.query.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or not lowest <= int(value) <= highest:
        raise BadRequest(f"»{name}« skal være et tal fra {lowest} til {highest}.")
    return int(value)


def _export_format(found: re.Match[str]) -> str:
    return (found.groupdict().get("format") or "").lstrip(".")


@dataclass
class Column:
    key: str
    label: str
    personal: bool = False
    kind: str = "text"  # text | time | amount


def _export(app: ConsoleApp, request: Request, name: str, columns: list[Column], rows: list[dict[str, Any]],
            file_format: str) -> Response:
    shown = [column for column in columns if request.staff or not column.personal]
    zone = ZoneInfo(app.settings.timezone)

    def cell(row: dict[str, Any], column: Column) -> Any:
        value = row.get(column.key)
        if column.kind == "time":
            moment = parse_moment(value)
            if isinstance(moment, datetime):
                local = moment.astimezone(zone) if moment.tzinfo else moment
                return local.strftime("%Y-%m-%d %H:%M")
            return value or ""
        if isinstance(value, (list, tuple)):
            return ", ".join(str(item) for item in value)
        return value

    headers = [column.label for column in shown]
    lines = [[cell(row, column) for column in shown] for row in rows]
    stamp = datetime.now(UTC).astimezone(zone).strftime("%Y-%m-%d")
    if file_format == "csv":
        body, content_type = to_csv(headers, lines), "text/csv; charset=utf-8"
    else:
        body = to_xlsx(name, headers, lines)
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(200, body, content_type, [("Content-Disposition", f'attachment; filename="{name}-{stamp}.'
                                                                      f'{file_format}"'),
                                              ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")])


async def _list_page(app: ConsoleApp, request: Request, found: re.Match[str], *, name: str, template: str,
                     columns: list[Column], fetch: Any, context: dict[str, Any]) -> Response:
    """A list page, or its export: ``fetch(store, limit, offset)`` returns (rows, total)."""
    file_format = _export_format(found)
    if file_format:
        rows, _ = await app.in_store(lambda store: fetch(store, EXPORT_MAX, 0))
        if request.staff and any(column.personal for column in columns):
            await app.log_access(request, "export", name)
        return _export(app, request, name, columns, rows, file_format)
    page = _number(request, "side", default=1, lowest=1, highest=100_000)
    rows, total = await app.in_store(lambda store: fetch(store, PAGE_SIZE, (page - 1) * PAGE_SIZE))
    pages = max(1, -(-total // PAGE_SIZE))
    if page > pages and total:
        raise BadRequest(f"Der er kun {pages} sider.")
    query = {key: value for key, value in request.query.items() if key != "side" and value}

    def link(to_page: int) -> str:
        return request.path + "?" + urlencode({**query, "side": to_page})

    exports = {kind: f"{request.path}.{kind}" + ("?" + urlencode(query) if query else "") for kind in ("csv", "xlsx")}
    return app.render(request, template, {**context, "rows": rows, "total": total, "page": page, "pages": pages,
                                          "previous": link(page - 1) if page > 1 else None,
                                          "next": link(page + 1) if page < pages else None, "exports": exports,
                                          "params": request.query})


# -- login, logout, language --------------------------------------------------------------------


def _public(handler: Handler) -> Handler:
    handler.public = True  # type: ignore[attr-defined]
    return handler


def _posting(handler: Handler) -> Handler:
    handler.accepts_post = True  # type: ignore[attr-defined]
    return handler


@_posting
@_public
async def login(app: ConsoleApp, request: Request, found: re.Match[str]) -> Response:
    next_path = safe_next(request.form.get("next") or request.query.get("next"))
    pre = request.cookies.get(auth.LOGIN_COOKIE) or ""
    headers = []
    if not re.fullmatch(r"[A-Za-z0-9_-]{20,100}", pre):
        pre = auth.new_token()
        headers.append(cookie_header(auth.LOGIN_COOKIE, pre, secure=request.secure))
    context = {"next": next_path, "login_csrf": auth.csrf_token(app.settings.cookie_key, pre), "error": None,
               "name": "", "no_users": False}
    if request.method == "POST":
        app.check_csrf(request, auth.LOGIN_COOKIE)
        name, password = request.form.get("navn", "").strip()[:64], request.form.get("adgangskode", "")[:1000]
        address = str((request.scope.get("client") or ("", 0))[0])
        if not app.login_throttle.allowed(address, name):
            raise TooManyAttempts("For mange forkerte forsøg. Vent et kvarter, og prøv så igen.")
        user = await app.in_store(lambda store: store.user(name)) if name else None
        usable = user is not None and not user["disabled"]
        ok = auth.check_password(user["password_hash"] if usable and user else None, password)
        if ok and user:
            token = auth.new_token()
            lifetime = app.session_lifetime
            await app.in_store(lambda store: store.add_session(auth.token_hash(token), user_name=user["name"],
                                                               lifetime=lifetime))
            return Response(303, b"", "text/plain", [("Location", next_path), app.session_cookie(request, token),
                                                     cookie_header(auth.LOGIN_COOKIE, "", secure=request.secure,
                                                                   max_age=0)])
        app.login_throttle.failed(address, name)
        context |= {"error": "Forkert brugernavn eller adgangskode.", "name": name}
        return app.render(request, "login.html", context, status=401, headers=headers)
    if request.user:
        return Response.redirect(next_path)
    context["no_users"] = await app.in_store(lambda store: store.user_count() == 0)
    return app.render(request, "login.html", context, headers=headers)


@_posting
async def logout(app: ConsoleApp, request: Request, found: re.Match[str]) -> Response:
    if request.method != "POST":
        raise BadRequest("Log ud med knappen øverst på siden.")
    app.check_csrf(request, auth.SESSION_COOKIE)
    token = request.cookies.get(auth.SESSION_COOKIE, "")
    await app.in_store(lambda store: store.end_session(auth.token_hash(token)))
    return Response(303, b"", "text/plain", [("Location", "/login"),
                                             cookie_header(auth.SESSION_COOKIE, "", secure=request.secure, max_age=0)])


@_public
async def language(app: ConsoleApp, request: Request, found: re.Match[str]) -> Response:
    chosen = _choice(request, "til", ("da", "en")) or "da"
    return Response(303, b"", "text/plain", [("Location", safe_next(request.query.get("tilbage"))),
                                             cookie_header(auth.LANGUAGE_COOKIE, chosen, secure=request.secure,
                                                           max_age=365 * 86400)])


@_public
async def stylesheet(app: ConsoleApp, request: Request, found: re.Match[str]) -> Response:
    return Response(200, (STATIC / "console.css").read_bytes(), "text/css; charset=utf-8",
                    [("Cache-Control", "max-age=3600")])


# -- Oversigt ------------------------------------------------------------------------------------


def week_start(timezone: str) -> str:
    """Monday 00:00 of this week in ``timezone``, as a UTC timestamp like the store's."""
    local = datetime.now(UTC).astimezone(ZoneInfo(timezone))
    monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return monday.astimezone(UTC).isoformat()


async def overview(app: ConsoleApp, request: Request, found: re.Match[str]) -> Response:
    since = week_start(app.settings.timezone)
    numbers = await app.in_store(lambda store: store.console_overview(since=since))
    return app.render(request, "overview.html", {"n": numbers, "since": since})


# -- Udbud ---------------------------------------------------------------------------------------

NOTICE_COLUMNS = [Column("id", "Id"), Column("shown_title", "Titel"), Column("buyer_name", "Ordregiver"),
                  Column("kind_text", "Type"), Column("stage_text", "Fase"), Column("status_text", "Status"),
                  Column("deadline", "Frist", kind="time"), Column("published", "Offentliggjort", kind="time"),
                  Column("value_amount", "Værdi"), Column("value_currency", "Valuta"),
                  Column("matched", "Matchede virksomheder"), Column("told", "Fortalt til (virksomheder)")]


def shown_title(row: dict[str, Any]) -> str:
    """The title in Danish where the notice has one: its own if written in Danish, else TED's Danish title."""
    if row.get("language") in (None, "da") or not row.get("title_da"):
        return str(row.get("title") or row.get("title_da") or "")
    return str(row["title_da"])


def _notice_filter(request: Request) -> NoticeFilter:
    search = _text(request, "q")
    if 0 < len(search) < 3:
        raise BadRequest("Søg med mindst 3 tegn (søgningen finder også ord inde i sammensatte ord).")
    region = _text(request, "omraade", longest=5)
    if region and not re.fullmatch(r"[A-Za-z]{2}[0-9A-Za-z]{0,3}", region):
        raise BadRequest("»omraade« skal være en NUTS-kode som DK01 eller DK011.")
    reached = {"ja": "yes", "nej": "no"}.get(_choice(request, "naaet", ("ja", "nej")), "")
    return NoticeFilter(search=search, buyer=_text(request, "ordregiver"), kind=_choice(request, "type", KINDS),
                        stage=_choice(request, "fase", STAGES), deadline_from=_day(request, "frist_fra"),
                        deadline_to=_day(request, "frist_til"), region=region, reached=reached)


async def notices(app: ConsoleApp, request: Request, found: re.Match[str]) -> Response:
    filters = _notice_filter(request)
    order = {"frist": "deadline", "": "published", "nyeste": "published"}[
        _choice(request, "sortering", ("frist", "nyeste"))]
    today = local_today(app.settings.timezone).isoformat()
    language_now = request.language

    def fetch(store: Any, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        rows, total = store.console_notices(filters, today=today, limit=limit, offset=offset, order=order)
        for row in rows:
            row["shown_title"] = shown_title(row)
            for key in ("kind", "stage", "status"):
                row[f"{key}_text"] = code_text(row[key], language=language_now)
        return rows, total

    return await _list_page(app, request, found, name="udbud", template="notices.html", columns=NOTICE_COLUMNS,
                            fetch=fetch, context={"kinds": KINDS, "stages": STAGES})


async def notice(app: ConsoleApp, request: Request, found: re.Match[str]) -> Response:
    notice_id = found["id"]
    found_notice = await app.in_store(lambda store: store.console_notice(notice_id))
    if found_notice is None:
        raise NotFound(f"Der er intet udbud med id »{notice_id}«.")
    record = found_notice["record"]
    ui = request.language
    for told in found_notice["told"]:
        told["shown_reasons"] = reasons_for(told["reasons"], told["facts"], language=ui, prefer_stored=True)
        told["moved"] = (told["told_deadline"] and found_notice["deadline"]
                         and told["told_deadline"] != found_notice["deadline"])
    for matched in found_notice["matched_untold"]:
        matched["shown_reasons"] = reasons_for(matched["reasons"], matched["facts"], language=ui, prefer_stored=False)
    title = shown_title({"title": found_notice["title"], "title_da": (record.get("titles") or {}).get("da"),
                         "language": record.get("language")})
    return app.render(request, "notice.html", {"notice": found_notice, "record": record, "shown_title": title,
                                               "link": _public_link(record.get("url"))})


def _public_link(url: Any) -> str | None:
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


# -- Virksomheder ----------------------------------------------------------------------------------

ENTERPRISE_COLUMNS = [Column("id", "Id"), Column("name", "Virksomhed"), Column("emails", "E-mail", personal=True),
                      Column("language", "Sprog"), Column("regions", "Områder"), Column("keywords", "Søgeord"),
                      Column("max_value", "Største kontrakt"), Column("matches", "Aktuelle match"),
                      Column("sent", "Udsendelser sendt"), Column("last_sent", "Seneste udsendelse", kind="time"),
                      Column("unsubscribed", "Afmeldinger")]


async def enterprises(app: ConsoleApp, request: Request, found: re.Match[str]) -> Response:
    search = _text(request, "q")
    without = _choice(request, "uden_match", ("1",)) == "1"
    return await _list_page(
        app, request, found, name="virksomheder", template="enterprises.html", columns=ENTERPRISE_COLUMNS,
        fetch=lambda store, limit, offset: store.console_enterprises(search=search, without_match=without,
                                                                     limit=limit, offset=offset), context={})


async def enterprise(app: ConsoleApp, request: Request, found: re.Match[str]) -> Response:
    profile_id = found["id"]
    months = _number(request, "maaneder", default=3, lowest=1, highest=120)
    since = (datetime.now(UTC) - timedelta(days=round(months * 30.44))).replace(microsecond=0).isoformat()
    profile = await app.in_store(lambda store: store.console_enterprise(profile_id, since=since))
    if profile is None:
        raise NotFound(f"Der er ingen virksomhed med id »{profile_id}«.")
    await app.log_access(request, "enterprise", profile_id)
    ui = request.language
    for delivery in profile["deliveries"]:
        for item in delivery["told"]:
            item["shown_reasons"] = reasons_for(item["reasons"], item["facts"], language=ui, prefer_stored=True)
    for match in profile["matches"]:
        match["shown_reasons"] = reasons_for(match["reasons"], match["facts"], language=ui, prefer_stored=False)
    return app.render(request, "enterprise.html", {"profile": profile, "months": months,
                                                   "profile_words": profile_words(profile, language=ui)})


RESERVED_GROUPS = {"res-ws": "beskyttede værksteder og social integration",
                   "res-pub-ser": "organisationer med en public service-mission"}


def profile_words(profile: dict[str, Any], *, language: str) -> str:
    """The profile as one or two plain sentences (Danish; the English switch gets the same facts)."""
    da = language == "da"
    keywords = ", ".join(profile["keywords"][:12]) or ("(ingen søgeord)" if da else "(no keywords)")
    parts = [f"{profile['name']} {'vil høre om udbud om' if da else 'wants to hear about tenders for'} {keywords}"]
    if profile["cpv"]:
        parts.append(f" (CPV {', '.join(profile['cpv'])})")
    if profile["regions"]:
        parts.append(f", {'udført i' if da else 'performed in'} {', '.join(profile['regions'])}")
    if profile.get("max_value"):
        parts.append(f", {'op til' if da else 'up to'} {format_amount(profile['max_value'], language=language)}")
    text = "".join(parts).rstrip(".") + "."
    if profile["reserved_eligible"]:
        groups = ", ".join(RESERVED_GROUPS.get(code, code) for code in profile["reserved_eligible"])
        text += (f" Kan byde på udbud forbeholdt {groups}." if da else f" Qualifies for tenders reserved for {groups}.")
    digest_language = {"da": "dansk", "en": "engelsk"} if da else {"da": "Danish", "en": "English"}
    text += (" Får udsendelser på " if da else " Receives digests in ") + \
        digest_language.get(profile.get("language") or "da", str(profile.get("language"))) + "."
    return text


# -- Udsendelser og Kørsler -------------------------------------------------------------------------

DELIVERY_COLUMNS = [Column("id", "Id"), Column("period", "Uge"), Column("enterprise", "Virksomhed"),
                    Column("email", "E-mail", personal=True), Column("state", "Tilstand"),
                    Column("items", "Udbud"), Column("changed", "Ændrede"), Column("subject", "Emne"),
                    Column("attempts", "Forsøg"), Column("created_at", "Oprettet", kind="time"),
                    Column("sent_at", "Sendt", kind="time"), Column("error", "Svar fra serveren")]
RUN_COLUMNS = [Column("id", "Id"), Column("job", "Job"), Column("source", "Kilde"),
               Column("started", "Startet", kind="time"), Column("finished", "Sluttet", kind="time"),
               Column("outcome", "Resultat"), Column("counts", "Tal"), Column("error", "Fejl")]


async def deliveries(app: ConsoleApp, request: Request, found: re.Match[str]) -> Response:
    state = _choice(request, "tilstand", ("sent", "pending", "failed"))
    period = _text(request, "uge", longest=8)
    if period and not re.fullmatch(r"\d{4}-W\d{2}", period):
        raise BadRequest("»uge« skal være en ISO-uge som 2026-W49.")
    return await _list_page(
        app, request, found, name="udsendelser", template="deliveries.html", columns=DELIVERY_COLUMNS,
        fetch=lambda store, limit, offset: store.console_deliveries(state=state, period=period, limit=limit,
                                                                    offset=offset), context={})


def run_counts(run: dict[str, Any]) -> str:
    stats = run.get("stats") or {}
    keys = ("matches", "matched_notices") if run["job"] == "match" else (
        ("planned", "sent", "failed", "pending") if run["job"] == "digest" else
        ("fetched", "new", "updated", "rejected", "errors"))
    names = {"matches": "match", "matched_notices": "åbne udbud", "planned": "planlagt", "sent": "sendt",
             "failed": "fejlet", "pending": "venter", "fetched": "hentet", "new": "nye", "updated": "opdateret",
             "rejected": "afvist", "errors": "fejl"}
    return ", ".join(f"{stats[key]} {names[key]}" for key in keys if isinstance(stats.get(key), int))


async def runs(app: ConsoleApp, request: Request, found: re.Match[str]) -> Response:
    job = _choice(request, "job", ("crawl", "match", "digest", "ingest", "reparse"))
    outcome = _choice(request, "resultat", ("ok", "partial", "failed", "interrupted", "running"))

    def fetch(store: Any, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        rows, total = store.console_runs(job=job, outcome=outcome, limit=limit, offset=offset)
        for row in rows:
            row["counts"] = run_counts(row)
        return rows, total

    return await _list_page(app, request, found, name="koersler", template="runs.html", columns=RUN_COLUMNS,
                            fetch=fetch, context={})


# -- Ikke nået ---------------------------------------------------------------------------------------

UNREACHED_COLUMNS = [Column("id", "Id"), Column("shown_title", "Titel"), Column("buyer_name", "Ordregiver"),
                     Column("deadline", "Frist", kind="time"), Column("value_amount", "Værdi"),
                     Column("cpv", "CPV"), Column("nuts", "Område (NUTS)"), Column("closest_text", "Tættest på")]


async def unreached(app: ConsoleApp, request: Request, found: re.Match[str]) -> Response:
    buyers = app.settings.own_buyers
    today = local_today(app.settings.timezone).isoformat()

    def fetch(store: Any, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        rows, total = store.console_unreached(buyers=buyers, today=today, limit=limit, offset=offset)
        index = near_miss_index(store) if rows else None
        for row in rows:
            row["shown_title"] = shown_title(row)
            row["closest"] = index.closest(row) if index else []
            row["closest_text"] = "; ".join(f"{item['name']}: {item['why']}" for item in row["closest"])
        return rows, total

    return await _list_page(app, request, found, name="ikke-naaet", template="unreached.html",
                            columns=UNREACHED_COLUMNS, fetch=fetch, context={"buyers": buyers})


# -- Adgangslog ----------------------------------------------------------------------------------------


async def access_log(app: ConsoleApp, request: Request, found: re.Match[str]) -> Response:
    if not request.staff:
        raise Forbidden("Adgangsloggen er kun for medarbejdere med rollen staff.")
    rows = await app.in_store(lambda store: store.access_log(limit=500))
    return app.render(request, "access_log.html", {"rows": rows, "days": app.settings.access_log_days})


def _route(pattern: str, handler: Handler) -> tuple[re.Pattern[str], Handler]:
    return re.compile(pattern), handler


_EXPORT = r"(?P<format>\.csv|\.xlsx)?"
ROUTES: list[tuple[re.Pattern[str], Handler]] = [
    _route(r"/", overview),
    _route(r"/login", login),
    _route(r"/logout", logout),
    _route(r"/sprog", language),
    _route(r"/konsol\.css", stylesheet),
    _route(rf"/udbud{_EXPORT}", notices),
    _route(r"/udbud/(?P<id>.{1,300})", notice),  # an id may hold "/" (a feed item's URL)
    _route(rf"/virksomheder{_EXPORT}", enterprises),
    _route(r"/virksomheder/(?P<id>.{1,300})", enterprise),
    _route(rf"/udsendelser{_EXPORT}", deliveries),
    _route(rf"/koersler{_EXPORT}", runs),
    _route(rf"/ikke-naaet{_EXPORT}", unreached),
    _route(r"/adgangslog", access_log),
]

__all__ = ["ROUTES", "quote"]
