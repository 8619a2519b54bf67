"""Fixtures the reliability suite shares with the suites of the stages it drives: the
sample store and SMTP servers of the digest tests, the worker tests' sites and workers.
Each is defined in a helper module, never in a test module."""

from tests.notifier.delivery import base, servers
from tests.worker.conftest import site
from tests.worker.worker_process import slow_site, spawn

__all__ = ["base", "servers", "site", "slow_site", "spawn"]
