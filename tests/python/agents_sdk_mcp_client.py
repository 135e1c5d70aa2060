"""An agent on the real OpenAI Agents SDK that uses a real MCP server (mcp-server-time over
stdio), exporting its traces to agentrace: the SDK's own `mcp_tools` span and its MCP tool call
(a `function` span with `mcp_data`), as agentrace's ingest must read them.

Run by tests/e2e/serve.rs (`real_python_agents_sdk_mcp_*`) with the venv from
ci/python-clients.sh and the server from ci/mcp-servers.sh:

    AGENTRACE_INGEST_URL=http://127.0.0.1:PORT/v1/traces/ingest MODEL_URL=http://127.0.0.1:PORT/v1 \
    MCP_TIME=/path/to/mcp-server-time python agents_sdk_mcp_client.py

Prints {"trace_id": ...}.
"""

import asyncio
import json
import os

from agents import Agent, Runner, trace
from agents.mcp import MCPServerStdio
from agents.tracing import get_trace_provider

from agentrace_sdk import send_traces_to_agentrace

send_traces_to_agentrace()


async def main() -> None:
    async with MCPServerStdio(
        name="time", params={"command": os.environ["MCP_TIME"], "args": []}
    ) as server:
        agent = Agent(
            name="Clock", instructions="Answer with the time tools.", mcp_servers=[server]
        )
        with trace("Python MCP") as t:
            await Runner.run(agent, "What time is it in UTC?")
    get_trace_provider().force_flush()
    print(json.dumps({"trace_id": t.trace_id}))


asyncio.run(main())
