"""One real Synapse for every Matrix test (see :mod:`tests.matrix.synapse`).

The tests here run on the session's event loop (the homeserver is an asyncio subprocess of
that loop, so a test can stop and restart it); each test registers its own bot and users and
makes its own rooms, so they share the server and nothing else. They are marked ``synapse``
and run in CI like the rest (``.ci/run`` installs the ``test`` extra, which brings Synapse).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.fakes.openai_server import FakeOpenAI
from tests.matrix.synapse import Synapse

MATRIX_TESTS = [pytest.mark.synapse, pytest.mark.asyncio(loop_scope="session")]
"""Every test module here sets ``pytestmark = MATRIX_TESTS``."""


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def synapse() -> AsyncIterator[Synapse]:
    server = Synapse()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest_asyncio.fixture(loop_scope="session")
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    """The scripted model, on the session's loop like the tests here."""
    async with FakeOpenAI() as fake:
        yield fake
