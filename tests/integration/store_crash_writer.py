"""Helper process for test_store_crash: append messages forever, print each acknowledged id.

Usage: ``python store_crash_writer.py DB_PATH``. Prints ``READY <session id>`` once, then one
line per ``append_messages`` call with the ids it returned, flushed only after the call
returned, i.e. after COMMIT. The test kills this process with SIGKILL at some point and checks
that every printed id survived.
"""

from __future__ import annotations

import asyncio
import sys

from hermes_gateway.store import SessionStore, StoredMessage

KEY = "local:dm:crash"


async def main(path: str) -> None:
    store = await SessionStore.open(path)
    session = await store.get_active_session(KEY) or await store.create_session(
        KEY, platform="local", chat_type="dm", chat_id="crash"
    )
    print(f"READY {session.id}", flush=True)
    i = 0
    while True:
        # A few KiB per turn so the WAL grows and checkpoints happen while we get killed.
        body = f"turn {i} " + "lorem ipsum dolor " * (50 + i % 200)
        ids = await store.append_messages(
            session.id,
            [
                StoredMessage("user", f"question {i} {body}", prompt_tokens=1),
                StoredMessage("assistant", f"answer {i} {body}", completion_tokens=1),
            ],
        )
        await store.kv_set("crash.last", str(i))
        print(" ".join(map(str, ids)), flush=True)
        i += 1


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
