"""The set-up the Agents SDK scripts share: the two lines the README shows (send the SDK's
traces to agentrace instead of OpenAI), and the model, any OpenAI-compatible server through Chat
Completions. Imported by agents_sdk_client.py and agents_sdk_mcp_client.py.
"""

import os

from openai import AsyncOpenAI

from agents import set_default_openai_api, set_default_openai_client, set_trace_processors
from agents.tracing.processors import BackendSpanExporter, BatchTraceProcessor


def send_traces_to_agentrace() -> None:
    exporter = BackendSpanExporter(
        endpoint=os.environ["AGENTRACE_INGEST_URL"],
        api_key=os.environ.get("AGENTRACE_TOKEN", "local"),
    )
    set_trace_processors([BatchTraceProcessor(exporter)])
    set_default_openai_client(
        AsyncOpenAI(base_url=os.environ["MODEL_URL"], api_key="sk-test-key"),
        use_for_tracing=False,
    )
    set_default_openai_api("chat_completions")
