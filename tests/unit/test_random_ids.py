"""Pooled random ids: the right shape, never repeated across threads or a fork."""

from __future__ import annotations

import os
import threading

from hermes_gateway.random_ids import token_hex


def test_ids_are_hex_of_the_asked_length_and_do_not_repeat() -> None:
    ids = [token_hex(8) for _ in range(20_000)]  # several 4 KB blocks
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
    assert len(set(ids)) == len(ids)
    assert len(token_hex(5000)) == 10_000  # larger than a block


def test_threads_do_not_share_a_block() -> None:
    seen: list[list[str]] = []

    def make() -> None:
        seen.append([token_hex(6) for _ in range(1000)])

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for ids in seen for i in ids]
    assert len(set(every)) == 4000


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    token_hex(3)  # the parent has a partly used block
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, "".join(token_hex(8) for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 1000).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent = "".join(token_hex(8) for _ in range(10))
    assert len(child) == 160 and child != parent
