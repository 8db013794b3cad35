"""A 500-mail inbox answered end to end: each mail exactly once, and how long it took.

The whole production path runs against real servers on 127.0.0.1: Dovecot (IMAP, started
here with its own config, the mails delivered into its Maildir before the gateway starts)
and an aiosmtpd sink (SMTP) that counts the answers. The gateway fetches the unseen mails,
hands each to the runner (stored before it is marked seen), the agent answers through a
scripted OpenAI-compatible server that replies at once, and every answer goes out as a
reply over SMTP. Each mail starts its own thread, so each costs one full turn.

Prints the time from start to the last answer, mails/s, answers per mail (must be exactly
1 for every mail), and then the same for mails arriving one by one while the gateway
runs (IDLE wake-up to answer, p50/p95). It asserts nothing.
Run: ``python bench/email_throughput.py [--mails 500] [--live 20]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._config import bench_config
from hermes_tui.assembly import build_gateway
from tests.fakes.openai_server import FakeOpenAI
from tests.integration.email_servers import PASSWORD, Dovecot, SmtpSink, make_mail

AGENT = "agent@example.org"
SENDERS = [f"user{i}@example.org" for i in range(10)]


async def run(mails: int, live: int) -> None:
    logging.basicConfig(level=logging.ERROR)
    dovecot = Dovecot()
    dovecot.start()
    try:
        ids = [f"<bench{n}@example.org>" for n in range(mails)]
        for n, mid in enumerate(ids):
            sender = SENDERS[n % len(SENDERS)]
            dovecot.deliver(
                AGENT, make_mail(sender, AGENT, f"Question {n}", f"body {n}", message_id=mid)
            )
        async with FakeOpenAI() as model, SmtpSink() as sink:
            config = bench_config(
                model.base_url,
                EMAIL_ADDRESS=AGENT,
                EMAIL_PASSWORD=PASSWORD,
                EMAIL_IMAP_HOST="127.0.0.1",
                EMAIL_IMAP_PORT=str(dovecot.port),
                EMAIL_SMTP_HOST="127.0.0.1",
                EMAIL_SMTP_PORT=str(sink.port),
            )
            config.platforms.email.tls = False
            gateway = build_gateway(config)
            started = time.monotonic()
            runner = await gateway.start(local=False)
            try:
                await sink.wait_for(lambda: len(sink.replies) >= mails, 600)
                elapsed = time.monotonic() - started
                await runner.wait_idle(30)
                counts = Counter(sink.replies)
                turns = len(model.requests)
                latencies: list[float] = []
                for n in range(live):
                    mid = f"<live{n}@example.org>"
                    sent = time.monotonic()
                    dovecot.deliver(
                        AGENT, make_mail(SENDERS[0], AGENT, f"Live {n}", "hi", message_id=mid)
                    )
                    await sink.wait_for(lambda mid=mid: sink.replies[mid] > 0, 30)
                    latencies.append(time.monotonic() - sent)
            finally:
                await gateway.stop()
    finally:
        dovecot.close()
    once = sum(1 for mid in ids if counts.get(mid) == 1)
    print(f"Email: a {mails}-mail inbox, Dovecot IMAP + aiosmtpd on 127.0.0.1, zero-latency model")
    print(f"  answered            {len(counts)} mails in {elapsed:.2f} s (start to last answer)")
    print(f"  throughput          {mails / elapsed:.1f} mails/s")
    print(
        f"  answered once       {once} / {mails}   (twice or more: {sum(1 for c in counts.values() if c > 1)})"
    )
    print(f"  model turns         {turns}")
    if latencies:
        ms = sorted(x * 1000 for x in latencies)
        p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
        print(
            f"  one mail, live      p50 {statistics.median(ms):.0f} ms   p95 {p95:.0f} ms   (delivery to answer, IDLE)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mails", type=int, default=500)
    parser.add_argument("--live", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.mails, args.live))


if __name__ == "__main__":
    main()
