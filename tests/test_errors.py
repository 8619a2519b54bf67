"""Every public error class of the package derives from TendermatchError and says when it
is raised; callers that catch the built-in base (ValueError, RuntimeError) still catch it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import tendermatch
from tendermatch.errors import TendermatchError


def _package_errors() -> list[type[BaseException]]:
    found = {}
    for module_info in pkgutil.walk_packages(tendermatch.__path__, prefix="tendermatch."):
        if module_info.name.endswith("__main__"):  # runs the CLI
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (inspect.isclass(value) and issubclass(value, BaseException) and not name.startswith("_")
                    and value.__module__.startswith("tendermatch.")):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


def test_every_public_error_derives_from_the_one_base_and_says_when_it_is_raised():
    errors = _package_errors()
    assert len(errors) >= 15, [error.__name__ for error in errors]
    for error in errors:
        assert issubclass(error, TendermatchError), f"{error.__module__}.{error.__name__}"
        own_doc = error.__dict__.get("__doc__") or ""
        assert own_doc.strip(), f"{error.__name__} does not say when it is raised"


def test_the_built_in_bases_still_catch_them():
    from tendermatch.crawler.parsers.common import ParseError
    from tendermatch.store import StoreError, StoreFullError
    from tendermatch.worker.config import ConfigError

    assert issubclass(ParseError, ValueError) and issubclass(ConfigError, ValueError)
    assert issubclass(StoreFullError, StoreError) and issubclass(StoreError, RuntimeError)
    try:
        raise ConfigError("tendermatch.toml: [digest] schedule: not a cron expression")
    except TendermatchError as error:
        assert str(error).startswith("tendermatch.toml:")
