import os

import pytest

# tests never read the operator's SERVER_* settings
for _name in [n for n in os.environ if n.startswith("SERVER_")]:
    del os.environ[_name]


def pytest_configure(config):
    os.environ.setdefault("PYTHONUNBUFFERED", "1")


@pytest.fixture
def anyio_backend():  # pragma: no cover - keeps plugin autoload quiet
    return "asyncio"
