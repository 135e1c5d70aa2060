"""A small multi-agent program on the real OpenAI Agents SDK, exporting its traces to agentrace.

Run by tests/e2e/serve.rs (`real_python_agents_sdk_*`) with the venv from ci/python-clients.sh:

    AGENTRACE_INGEST_URL=http://127.0.0.1:PORT/v1/traces/ingest \
    MODEL_URL=http://127.0.0.1:PORT/v1 GROUP_ID=conv_1 python agents_sdk_client.py

A triage agent hands off to a billing agent, a summary agent runs after them, all inside one
`trace()` with a group id and metadata and a `custom_span()`. Prints {"trace_id": ...}.
"""

import asyncio
import json
import os

from agents import Agent, Runner, custom_span, trace
from agents.tracing import get_trace_provider

from agentrace_sdk import send_traces_to_agentrace

send_traces_to_agentrace()

billing = Agent(name="Billing Agent", instructions="Answer billing questions in one sentence.")
triage = Agent(
    name="Triage Agent",
    instructions="Hand billing questions to the Billing Agent.",
    handoffs=[billing],
)
summary = Agent(name="Summary Agent", instructions="Summarise the answer in five words.")


async def main() -> None:
    group = os.environ["GROUP_ID"]
    with trace(
        "Python Support Conversation", group_id=group, metadata={"customer_id": "cust_42"}
    ) as t:
        with custom_span("Load customer", data={"customer_id": "cust_42", "tier": "gold"}):
            await asyncio.sleep(0.01)
        first = await Runner.run(triage, "I was charged twice for order ORD-7.")
        await Runner.run(summary, str(first.final_output))
    get_trace_provider().force_flush()
    print(json.dumps({"trace_id": t.trace_id}))


asyncio.run(main())
