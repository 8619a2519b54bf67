"""The config's sections as typed dicts: what each key of a validated section holds (after
``config.parse_config`` applied the defaults and resolved the paths). The settings
registries in ``config.py`` say what a key means and how it is checked; these say its
type to mypy. tests/worker/test_config.py keeps the two the same."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict


class WorkerSection(TypedDict):
    timezone: str
    misfire_grace: int
    stop_grace: float
    watch: float
    log_level: str
    log_file: Path | None  # resolved against the config's folder
    log_max_mb: float
    log_backups: int


class CrawlerSection(TypedDict):
    user_agent: str
    download_delay: float
    concurrent_requests_per_domain: int
    retry_times: int
    max_document_mb: float
    retry_after_max: float


class MatcherSection(TypedDict):
    profiles: Path  # resolved against the config's folder
    min_relevance: float
    keep: int
    rates: dict[str, float]


class DigestSection(TypedDict):
    schedule: str
    sender: str
    base_url: str
    outbox: Path  # resolved against the config's folder
    send_empty: bool
    max_message_kb: int


class SmtpSection(TypedDict):
    host: str
    port: int
    security: str
    username_env: str | None
    password_env: str | None
    timeout: float
    retries: int
    retry_delay: float


class ServeSection(TypedDict):
    host: str
    port: int
    title: str
    password_hash_env: str | None
    sql_time_limit_ms: int
    session_hours: float
    access_log_days: int
    own_buyers: list[str]
    tls_certificate: str | None
    tls_key: str | None
    trusted_proxy: str | None
    datasette_without_login: bool
