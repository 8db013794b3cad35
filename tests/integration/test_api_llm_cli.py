"""Simon Willison's ``llm`` CLI against the API server, run as users run it: a prompt, a
streamed prompt, ``-c`` to continue, ``--schema``, ``-a`` with an image and ``--functions``.

The model is declared in the CLI's own ``extra-openai-models.yaml`` under a private
``LLM_USER_PATH`` pointing at 127.0.0.1; the CLI runs as a subprocess (it is synchronous), so
the gateway's loop keeps serving it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec
from tests.integration.api_harness import KEY, ApiHarness, start_api

LLM = shutil.which("llm")
pytestmark = [
    pytest.mark.skipif(LLM is None, reason="the llm CLI is not installed"),
    pytest.mark.slow,  # each run of the CLI starts a Python that imports the openai SDK
]
PNG = bytes.fromhex("89504e470d0a1a0a") + b"\x00" * 24


@pytest.fixture
async def api(hermes_home: Path, fake_openai: FakeOpenAI) -> AsyncIterator[ApiHarness]:
    harness = await start_api(hermes_home, fake_openai)
    yield harness
    await harness.stop()


@pytest.fixture
def llm_home(tmp_path: Path, api: ApiHarness) -> Path:
    home = tmp_path / "llm"
    home.mkdir()
    (home / "extra-openai-models.yaml").write_text(
        "- model_id: hermes\n"
        "  model_name: hermes-agent\n"
        f"  api_base: {api.base_url}\n"
        "  api_key_name: hermes\n"
        "  vision: true\n"
        "  supports_schema: true\n"
        "  supports_tools: true\n"
    )
    (home / "keys.json").write_text(json.dumps({"hermes": KEY}))
    return home


async def run_llm(home: Path, *args: str) -> str:
    assert LLM is not None
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "LLM_USER_PATH": str(home),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    proc = await asyncio.create_subprocess_exec(
        LLM,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


async def test_prompt_stream_and_continue_over_an_agent_tool_turn(
    api: ApiHarness, fake_openai: FakeOpenAI, llm_home: Path
) -> None:
    fake_openai.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": "echo from-llm"})]),
        ScriptedReply(text="It printed from-llm.", chunk_size=3),
    )
    assert await run_llm(llm_home, "-m", "hermes", "run echo") == "It printed from-llm."
    tool = fake_openai.requests[1]["messages"][-1]
    assert tool["role"] == "tool" and "from-llm" in tool["content"]

    answer = await run_llm(llm_home, "-c", "--no-stream", "and then?")
    assert answer == "echo: and then?"
    sent = fake_openai.requests[-1]
    # -c: the CLI sent the earlier exchange as the history.
    texts = [m["content"] for m in sent["messages"][1:]]
    assert texts == ["run echo", "It printed from-llm.", "and then?"]


async def test_schema(api: ApiHarness, fake_openai: FakeOpenAI, llm_home: Path) -> None:
    fake_openai.enqueue(ScriptedReply(text='{"name": "Ada", "age": 36}'))
    out = await run_llm(llm_home, "-m", "hermes", "--schema", "name, age int", "a person")
    assert json.loads(out) == {"name": "Ada", "age": 36}
    fmt = fake_openai.requests[-1]["response_format"]
    assert fmt["type"] == "json_schema"
    assert set(fmt["json_schema"]["schema"]["properties"]) == {"name", "age"}


async def test_an_image_attachment(
    api: ApiHarness, fake_openai: FakeOpenAI, llm_home: Path, tmp_path: Path
) -> None:
    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    await run_llm(llm_home, "-m", "hermes", "-a", str(image), "what is this?")
    parts = fake_openai.requests[-1]["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"]
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_functions_the_cli_runs_itself(
    api: ApiHarness, fake_openai: FakeOpenAI, llm_home: Path
) -> None:
    fake_openai.enqueue(
        ScriptedReply(tool_calls=[ToolCallSpec("shout", {"text": "hi"}, id="call_cli")]),
        ScriptedReply(text="The CLI shouted HI."),
    )
    out = await run_llm(
        llm_home,
        "-m",
        "hermes",
        "--functions",
        "def shout(text: str) -> str:\n    return text.upper()",
        "shout hi",
    )
    assert out.endswith("The CLI shouted HI.")
    assert "shout" in [t["function"]["name"] for t in fake_openai.requests[0]["tools"]]
    tool = fake_openai.requests[-1]["messages"][-1]
    assert tool == {"role": "tool", "content": "HI", "tool_call_id": "call_cli"}
