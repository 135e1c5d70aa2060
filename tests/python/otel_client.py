"""GenAI-instrumented spans from the real OpenTelemetry Python SDK, exported over OTLP/HTTP
(protobuf, gzip) to agentrace serve.

Run by tests/e2e/serve.rs (`real_python_opentelemetry_*`):

    OTLP_URL=http://127.0.0.1:PORT GROUP_ID=conv_2 python otel_client.py

Prints {"trace_id": "<32 hex>"}.
"""

import json
import os

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

provider = TracerProvider(resource=Resource.create({"service.name": "trip-planner"}))
provider.add_span_processor(
    BatchSpanProcessor(
        OTLPSpanExporter(
            endpoint=os.environ["OTLP_URL"].rstrip("/") + "/v1/traces",
            compression=Compression.Gzip,
        )
    )
)
tracer = provider.get_tracer("agentrace-e2e")

with tracer.start_as_current_span(
    "plan trip", attributes={"session.id": os.environ["GROUP_ID"], "metadata.user": "u_7"}
) as root:
    with tracer.start_as_current_span(
        "invoke_agent planner",
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"},
    ):
        with tracer.start_as_current_span(
            "chat gpt-4o-mini",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 5,
            },
        ) as chat:
            chat.add_event("gen_ai.choice", {"index": 0, "finish_reason": "tool_calls"})
        with tracer.start_as_current_span(
            "execute_tool get_weather",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather"},
        ) as tool:
            tool.set_status(Status(StatusCode.ERROR, "weather service down"))
    trace_id = format(root.get_span_context().trace_id, "032x")

provider.shutdown()
print(json.dumps({"trace_id": trace_id}))
