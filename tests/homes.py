"""Build a HERMES_HOME that looks used: chats on several platforms, past sessions, API traffic,
tool calls, cron runs, titles, a config with chat platforms turned on.

Why: every other test starts from an empty home, and the failures of issue 13 (restarts that
crash, past sessions that vanish, search hits with the wrong title) only show on a home with
history. Everything is written through our own store API (``SessionStore.import_sessions`` /
``import_messages``, ``CronStore``), so the files are exactly what the gateway would have left,
with times spread over the past instead of "all just now".

Sizes (:data:`SIZES`): ``day`` (a day of use: 40 sessions, ~3,000 messages, built in well under
a second), ``huge`` (1,000 sessions, 200,000 messages) and ``search`` (1,000 sessions,
1,000,000 messages) for the benchmarks. Big homes are built once and kept under
``/tmp/hermes-homes`` keyed by size, seed and builder version (:func:`cached_home`); callers copy
them (:func:`copy_home`) because a running gateway writes to its home.

The manifest (:class:`HomeManifest`) says what is in the home so tests can assert against it:
every session (key, id, platform, title, ended or not, message count), the chats, the API
client names, the cron jobs, and one word that occurs in exactly one message (``search_word``)
with that message's id and session.

Run ``python -m tests.homes huge`` to build (or find) a cached home and print its path.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hermes_cron.jobs import CronStore
from hermes_cron.schedules import parse_schedule
from hermes_gateway.models import SessionSource
from hermes_gateway.store import SessionRecord, SessionStore, StoredMessage, default_db_path
from hermes_gateway.store.migrations import latest_version

#: Bump when what the builder writes changes, so cached homes are rebuilt.
BUILDER_VERSION = 1
#: Where built homes are kept between runs (benches; tests copy the ``day`` home per test).
CACHE_DIR = Path("/tmp/hermes-homes")
#: A port nothing listens on: the config's platforms point here unless a test overrides them
#: (environment variables win over config.yaml), so no start of a built home leaves 127.0.0.1.
DEAD_BASE = "http://127.0.0.1:9"
#: Tokens written to config.yaml: chat platforms are enabled when a token is set.
TELEGRAM_TOKEN = "123456:home-builder-telegram-token"
DISCORD_TOKEN = "home-builder-discord-token"
#: A word no generated text contains; exactly one message of every home has it.
SEARCH_WORD = "quokkaflux"
#: Messages per ``import_messages`` call (one transaction each): big enough that commits are
#: rare, small enough that the Python objects of one batch stay a few tens of MB.
BATCH = 50_000


@dataclass(frozen=True)
class HomeSpec:
    """How big a home is: sessions, messages, and how many days of use they spread over."""

    sessions: int
    messages: int
    days: float


SIZES: dict[str, HomeSpec] = {
    "day": HomeSpec(sessions=40, messages=3_000, days=1.0),
    "huge": HomeSpec(sessions=1_000, messages=200_000, days=90.0),
    "search": HomeSpec(sessions=1_000, messages=1_000_000, days=365.0),
}


@dataclass
class SessionInfo:
    """One stored session, as the manifest lists it."""

    id: str
    key: str
    platform: str
    chat_type: str
    display_name: str
    title: str | None
    ended: bool
    messages: int
    created_at: float
    updated_at: float


@dataclass
class HomeManifest:
    """What a built home holds (see the module docstring)."""

    home: str
    size: str
    sessions: list[SessionInfo] = field(default_factory=list)
    chats: list[str] = field(default_factory=list)
    """Session keys of the chats (not API requests), each with one active session."""
    api_clients: list[str] = field(default_factory=list)
    """The ``user`` names API requests came with (``API client`` when none was given)."""
    cron_jobs: list[str] = field(default_factory=list)
    cron_runs: int = 0
    messages: int = 0
    tool_calls: int = 0
    search_word: str = SEARCH_WORD
    search_message_id: int = 0
    search_session_id: str = ""

    @property
    def home_path(self) -> Path:
        return Path(self.home)

    def by_key(self, key: str) -> list[SessionInfo]:
        """The sessions of one key, newest first (the active one first)."""
        found = [s for s in self.sessions if s.key == key]
        return sorted(found, key=lambda s: s.created_at, reverse=True)

    def session(self, session_id: str) -> SessionInfo:
        return next(s for s in self.sessions if s.id == session_id)

    def active(self, key: str) -> SessionInfo:
        return next(s for s in self.sessions if s.key == key and not s.ended)

    @property
    def ended(self) -> list[SessionInfo]:
        return [s for s in self.sessions if s.ended]

    @property
    def titled(self) -> list[SessionInfo]:
        return [s for s in self.sessions if s.title]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> HomeManifest:
        raw = json.loads(text)
        raw["sessions"] = [SessionInfo(**s) for s in raw["sessions"]]
        return cls(**raw)

    def moved(self, home: Path) -> HomeManifest:
        """The same manifest for a copy of the home at ``home``."""
        copy = HomeManifest.from_json(self.to_json())
        copy.home = str(home)
        return copy


# --------------------------------------------------------------------------------------------
# What the chats are


@dataclass(frozen=True)
class _Chat:
    source: SessionSource
    weight: float
    """Share of the chat sessions this chat gets (a busy DM has more /new than a thread)."""


_TG_USERS = ["Alice", "Bob", "Carol", "Dmitri", "Eve", "Farah", "Goro", "Hana", "Ivo", "Jun"]
_API_CLIENTS = ["ci-bot", "notebook", "API client", "zapier", "grafana", "backup-job"]


def _chats(spec: HomeSpec) -> list[_Chat]:
    """The chats of a home; more people and channels for bigger homes."""
    n_dms = max(3, spec.sessions // 40)
    n_groups = max(1, spec.sessions // 200)
    chats = [
        _Chat(
            SessionSource("local", "operator", "dm", None, "operator", "operator", "Terminal"),
            3.0,
        )
    ]
    for i in range(n_dms):
        name = _TG_USERS[i % len(_TG_USERS)] + ("" if i < len(_TG_USERS) else f" {i}")
        uid = str(1001 + i)
        chats.append(
            _Chat(SessionSource("telegram", uid, "dm", None, uid, name), 2.0 / (1 + i % 4))
        )
    for g in range(n_groups):
        chats.append(
            _Chat(
                SessionSource(
                    "telegram", f"-100{2000 + g}", "group", None, "1001", "Alice", f"Family {g + 1}"
                ),
                1.5,
            )
        )
        chats.append(
            _Chat(
                SessionSource(
                    "discord",
                    f"{9000 + g}",
                    "channel",
                    None,
                    "501",
                    "mika",
                    f"#general-{g + 1} (Lab)",
                ),
                1.5,
            )
        )
        chats.append(
            _Chat(
                SessionSource(
                    "discord",
                    f"{9000 + g}",
                    "thread",
                    f"{9100 + g}",
                    "502",
                    "rune",
                    f"#general-{g + 1} › release (Lab)",
                ),
                1.0,
            )
        )
    return chats


# --------------------------------------------------------------------------------------------
# What people say (deterministic, cheap, varied enough that search queries differ in hit count)

_TOPICS = [
    ("deploy", "the staging deploy failed on the migration step"),
    ("backup", "the nightly backup of the photo library is slow"),
    ("invoice", "send the invoice for October to the accountant"),
    ("garden", "which tomatoes grow well on a north facing balcony"),
    ("python", "why does asyncio gather swallow my exception"),
    ("recipe", "a vegetarian lasagna for eight people"),
    ("travel", "train connections from Vienna to Ljubljana on Friday"),
    ("kernel", "the laptop kernel panics after resume from suspend"),
    ("budget", "summarize the household budget for the quarter"),
    ("docker", "the container keeps restarting with exit code 137"),
    ("music", "a playlist for a long drive through the mountains"),
    ("sql", "an index for the slow report query on orders"),
    ("birthday", "ideas for a birthday present for my sister"),
    ("rust", "lifetime error when returning a reference from a struct"),
    ("weather", "will it rain in Lisbon this weekend"),
    ("nginx", "nginx returns 502 behind the reverse proxy"),
]
_FILLER = (
    "please check again and tell me what you think about it before we continue with the "
    "next part of the plan because yesterday something looked off and I could not find the "
    "reason quickly enough so a second look would help a lot thanks"
).split()
_ANSWERS = [
    "Here is what I found. First, {t}: the usual cause is a configuration mismatch.",
    "Short answer: yes. Longer answer about {t}: it depends on the version you run.",
    "I checked {t} and wrote the steps below; the second one is the important one.",
    "Done. The {t} issue is fixed, and I left a note in the log for later.",
]
_COMMANDS = ["ls -la", "df -h", "git status", "python -V", "uptime", "cat notes.txt"]


def _sentence_pool(rng: random.Random, size: int = 4000) -> list[tuple[str, str]]:
    """(topic, text) pairs; messages are drawn from here so big homes cost no text building.

    Each sentence carries a rare serial word (``ref4711``) so searches for those hit a few
    messages, while topic words hit a sixteenth of the home.
    """
    pool = []
    for i in range(size):
        topic, base = _TOPICS[i % len(_TOPICS)]
        words = rng.sample(_FILLER, k=rng.randint(3, 12))
        pool.append((topic, f"{base} {' '.join(words)} ref{i}"))
    return pool


def _turn(
    rng: random.Random, pool: list[tuple[str, str]], session_id: str, t: float, with_tool: bool
) -> tuple[list[StoredMessage], int]:
    """One exchange: the user asks, maybe a tool runs, the assistant answers."""
    topic, text = pool[rng.randrange(len(pool))]
    out = [StoredMessage("user", text, session_id=session_id, created_at=t)]
    tools = 0
    if with_tool:
        call_id = f"call_{secrets.token_hex(6)}"
        command = rng.choice(_COMMANDS)
        out.append(
            StoredMessage(
                "assistant",
                None,
                tool_calls=[
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {
                            "name": "terminal",
                            "arguments": json.dumps({"command": command}),
                        },
                    }
                ],
                prompt_tokens=400,
                completion_tokens=30,
                session_id=session_id,
                created_at=t + 1,
            )
        )
        output = "\n".join(f"{command} line {n}: {topic} ok" for n in range(rng.randint(1, 16)))
        out.append(
            StoredMessage(
                "tool",
                f"exit 0\n{output}",
                tool_call_id=call_id,
                name="terminal",
                session_id=session_id,
                created_at=t + 2,
            )
        )
        tools += 1
    answer = rng.choice(_ANSWERS).format(t=topic)
    out.append(
        StoredMessage(
            "assistant",
            answer,
            prompt_tokens=500,
            completion_tokens=80,
            session_id=session_id,
            created_at=t + 3,
        )
    )
    return out, tools


# --------------------------------------------------------------------------------------------
# Building


def _session_id(t: float) -> str:
    """Same shape as the store's own ids (``YYYYmmdd-HHMMSS-hex6``)."""
    return f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(t))}-{secrets.token_hex(3)}"


def write_config(
    home: Path, *, telegram_base: str = DEAD_BASE, discord_base: str = DEAD_BASE
) -> None:
    """config.yaml with Telegram and Discord enabled (tokens set), pointed at 127.0.0.1."""
    (home / "config.yaml").write_text(
        "platforms:\n"
        "  telegram:\n"
        f"    token: {TELEGRAM_TOKEN!r}\n"
        f"    base_url: {telegram_base + '/bot'!r}\n"
        f"    base_file_url: {telegram_base + '/file/bot'!r}\n"
        "    allowed_users: ['1001', '1002', '1003']\n"
        "  discord:\n"
        f"    token: {DISCORD_TOKEN!r}\n"
        f"    api_base: {discord_base + '/api/v10'!r}\n"
        f"    gateway_url: {discord_base.replace('http', 'ws') + '/'!r}\n"
        "    allowed_users: ['501', '502']\n"
    )


def build_home(home: Path, size: str = "day", *, seed: int = 13) -> HomeManifest:
    """Fill ``home`` (created if missing, expected empty) and return its manifest.

    Deterministic for a seed, except session ids' random suffix and tool call ids. Runs its
    own event loop (the store is async): call it from synchronous code only.
    """
    home.mkdir(parents=True, exist_ok=True)
    write_config(home)
    manifest = asyncio.run(_fill(home, size, seed))
    (home / "home-manifest.json").write_text(manifest.to_json())
    return manifest


async def _fill(home: Path, size: str, seed: int) -> HomeManifest:
    """Sessions, messages and cron runs, written through the store."""
    spec = SIZES[size]
    rng = random.Random(seed)
    manifest = HomeManifest(home=str(home), size=size)
    now = time.time()
    start = now - spec.days * 86400

    chats = _chats(spec)
    n_api = round(spec.sessions * 0.28)
    n_chat = spec.sessions - n_api
    # Every chat gets at least one session (its active one); the rest go by weight.
    counts = [1] * len(chats)
    weights = [c.weight for c in chats]
    for i in rng.choices(range(len(chats)), weights=weights, k=max(0, n_chat - len(chats))):
        counts[i] += 1

    # Session start times: each chat's sessions in order, the active (last) one the newest.
    plans: list[tuple[SessionSource, float, bool]] = []  # (source, started, ended)
    for chat, count in zip(chats, counts, strict=True):
        times = sorted(rng.uniform(start, now - 600) for _ in range(count))
        for j, t in enumerate(times):
            plans.append((chat.source, t, j < count - 1))
    n_clients = min(len(_API_CLIENTS), max(3, spec.sessions // 150))
    clients = _API_CLIENTS[:n_clients]
    for _ in range(n_api):
        user = rng.choice(clients)
        sid = secrets.token_hex(8)
        source = SessionSource("api", sid, "dm", None, None if user == "API client" else user, user)
        plans.append((source, rng.uniform(start, now - 600), False))
    plans.sort(key=lambda p: p[1])
    manifest.chats = [c.source.session_key for c in chats]
    manifest.api_clients = clients

    # How many messages each session holds (skewed: a few long conversations, many short).
    shares = [rng.paretovariate(1.5) for _ in plans]
    total_share = sum(shares)
    sizes = [max(2, int(spec.messages * s / total_share)) for s in shares]

    # The end of each session: when the chat's next session started (or now).
    next_start: dict[int, float] = {}
    last_by_key: dict[str, int] = {}
    for i, (source, t, _) in enumerate(plans):
        prev = last_by_key.get(source.session_key)
        if prev is not None:
            next_start[prev] = t
        last_by_key[source.session_key] = i

    records: list[SessionRecord] = []
    titles = iter(range(1, 10**9))
    search_target = next(
        i for i, (s, _, ended) in enumerate(plans) if ended and s.platform == "telegram"
    )
    for i, (source, t, ended) in enumerate(plans):
        end = next_start.get(i, now - 60)
        title = None
        if i == search_target or rng.random() < 0.35:
            title = f"{_TOPICS[i % len(_TOPICS)][0].capitalize()} notes {next(titles)}"
        records.append(
            SessionRecord(
                id=_session_id(t),
                session_key=source.session_key,
                platform=source.platform,
                chat_type=source.chat_type,
                chat_id=source.chat_id,
                thread_id=source.thread_id,
                user_id=source.user_id,
                display_name=source.display_name,
                title=title,
                created_at=t,
                updated_at=t,
                ended_at=end if ended else None,
            )
        )

    pool = _sentence_pool(rng)
    store = await SessionStore.open(default_db_path(home))
    try:
        await store.import_sessions(records)
        batch: list[StoredMessage] = []
        search_msg: StoredMessage | None = None
        writing: asyncio.Future[list[int]] | None = None
        counts_by_id: dict[str, int] = {}
        for i, record in enumerate(records):
            end = next_start.get(i, now - 60)
            want = sizes[i]
            step = max(1.0, (end - record.created_at - 10) / max(1, want))
            t = record.created_at + 1
            written = 0
            while written < want:
                turn, tools = _turn(rng, pool, record.id, t, rng.random() < 0.2)
                if i == search_target and search_msg is None:
                    turn[0].content = f"remember the {SEARCH_WORD} password hint for the router"
                    search_msg = turn[0]
                batch.extend(turn)
                written += len(turn)
                manifest.tool_calls += tools
                t += step * len(turn)
            counts_by_id[record.id] = written
            if len(batch) >= BATCH:
                # The store's thread writes this batch while the next one is made here.
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(store.import_messages(batch))
                batch = []
        if writing is not None:
            await writing
        if batch:
            await store.import_messages(batch)
        assert search_msg is not None and search_msg.id is not None
        manifest.search_message_id = search_msg.id
        manifest.search_session_id = records[search_target].id
        manifest.messages = sum(counts_by_id.values())
        stored = {r.id: r for r in await store.list_sessions(limit=len(records) + 10)}
        for record in records:
            got = stored[record.id]
            manifest.sessions.append(
                SessionInfo(
                    id=record.id,
                    key=record.session_key,
                    platform=record.platform,
                    chat_type=record.chat_type,
                    display_name=record.display_name or "",
                    title=record.title,
                    ended=record.ended_at is not None,
                    messages=counts_by_id[record.id],
                    created_at=record.created_at,
                    updated_at=got.updated_at,
                )
            )
        await _add_cron(store, manifest, chats, now)
    finally:
        await store.close()
    return manifest


async def _add_cron(
    store: SessionStore, manifest: HomeManifest, chats: list[_Chat], now_ts: float
) -> None:
    """Three jobs (local, a Telegram DM's, a paused one) with a few finished runs each."""
    cron = CronStore(store)
    now = datetime.fromtimestamp(now_ts, UTC)
    telegram_dm = next(c.source for c in chats if c.source.platform == "telegram")
    jobs = [
        ("morning brief", "Summarize my calendar", "0 7 * * *", "local", None),
        ("disk check", "Check free disk space", "every 6h", "origin", telegram_dm),
        ("weekly report", "Write the weekly report", "0 9 * * 1", "local", None),
    ]
    for n, (name, prompt, expr, deliver, origin) in enumerate(jobs):
        job = await cron.add(
            name=name,
            prompt=prompt,
            schedule=parse_schedule(expr, tz="UTC", now=now - timedelta(days=3)),
            now=now - timedelta(days=3),
            deliver=deliver,
            origin=origin,
        )
        for r in range(3):
            at = now - timedelta(days=2 - r, hours=n)
            claim = await cron.claim_now(job.id, at, owner="home-builder", lease_s=60)
            await cron.finish_run(
                job.id,
                claim.run.id,
                owner="home-builder",
                now=at + timedelta(seconds=20),
                status="ok" if r != 1 or n != 1 else "error",
                error=None if r != 1 or n != 1 else "model timed out",
                delivery_status="local" if deliver == "local" else "ok",
            )
            manifest.cron_runs += 1
        if name == "weekly report":
            await cron.pause(job.id, now)
        manifest.cron_jobs.append(job.id)


# --------------------------------------------------------------------------------------------
# Caching and copying


def cache_path(size: str, seed: int = 13) -> Path:
    """Where the home of these parameters is kept (the schema version is part of the key)."""
    return CACHE_DIR / f"{size}-s{seed}-b{BUILDER_VERSION}-v{latest_version()}"


def cached_home(size: str, *, seed: int = 13) -> HomeManifest:
    """The cached home of these parameters, built first if missing (do not modify it)."""
    target = cache_path(size, seed)
    manifest_file = target / "home-manifest.json"
    if manifest_file.exists():
        return HomeManifest.from_json(manifest_file.read_text())
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".building-{secrets.token_hex(4)}")
    manifest = build_home(partial, size, seed=seed)
    try:
        partial.rename(target)
    except OSError:  # another process finished first: use theirs
        shutil.rmtree(partial, ignore_errors=True)
        return HomeManifest.from_json(manifest_file.read_text())
    manifest = manifest.moved(target)
    manifest_file.write_text(manifest.to_json())
    return manifest


def copy_home(manifest: HomeManifest, dest: Path) -> HomeManifest:
    """Copy a built home to ``dest`` (which must not exist) and return the moved manifest."""
    shutil.copytree(manifest.home_path, dest)
    moved = manifest.moved(dest)
    (dest / "home-manifest.json").write_text(moved.to_json())
    return moved


def main(argv: list[str]) -> None:
    size = argv[0] if argv else "day"
    started = time.perf_counter()
    manifest = cached_home(size)
    print(
        f"{manifest.home}: {len(manifest.sessions)} sessions, {manifest.messages} messages "
        f"({time.perf_counter() - started:.1f} s)"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
