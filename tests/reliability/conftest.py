"""Fixtures the reliability suite shares with the suites of the stages it drives: the
sample store and SMTP servers of the digest tests, the worker tests' sites and workers."""

from tests.notifier.test_smtp_delivery import base, servers  # noqa: F401
from tests.worker.conftest import site  # noqa: F401
from tests.worker.test_worker_process import slow_site, spawn  # noqa: F401
