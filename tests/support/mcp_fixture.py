"""An MCP stdio server with the faults the tests need, on the official Python SDK (mcp 2.x,
installed by ci/mcp-servers.sh in the venv of mcp-server-time).

Tools: `traceparent` (the `params._meta.traceparent` the call came with), `fail` (a result with
isError), `broken` (a JSON-RPC error), `hang` (never answers), `die` (the process exits mid-call, after a line on stderr),
`add` (a structured result). `--stderr-and-exit` writes to stderr and exits before speaking
MCP; `--tool NAME` adds a tool of that name (for name clashes); `--http PORT` serves streamable
HTTP on 127.0.0.1:PORT/mcp instead of stdio (`header` then answers a request header).
"""

import os
import sys
import time

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError

server = MCPServer("fixture")


@server.tool(description="The traceparent this call arrived with.")
def traceparent(ctx: Context) -> str:
    meta = ctx.request_context.meta
    value = None
    if meta is not None:
        value = meta.get("traceparent") if hasattr(meta, "get") else getattr(meta, "traceparent", None)
        if value is None and hasattr(meta, "model_extra"):
            value = (meta.model_extra or {}).get("traceparent")
    return value or "none"


@server.tool(description="Always fails.")
def fail(reason: str) -> str:
    raise ToolError(f"cannot do it: {reason}")


@server.tool(description="Answers with a JSON-RPC error instead of a result.")
def broken() -> str:
    raise MCPError(-32000, "backend index is corrupt")


@server.tool(description="Never answers.")
def hang() -> str:
    time.sleep(3600)
    return "late"


@server.tool(description="Exits the server mid-call.")
def die() -> str:
    print("fixture: going down on purpose", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool(description="Adds two numbers.", structured_output=True)
def add(a: int, b: int) -> dict[str, int]:
    return {"sum": a + b}


@server.tool(description="The value of a request header (HTTP), or `none`.")
def header(name: str, ctx: Context) -> str:
    headers = ctx.headers or {}
    return headers.get(name.lower(), headers.get(name, "none"))


@server.tool(description="The server's process id.")
def pid() -> str:
    return str(os.getpid())


@server.tool(description="The server's working directory.")
def cwd() -> str:
    return os.getcwd()


@server.tool(description="The value of an environment variable, or `unset`.")
def env(name: str) -> str:
    return os.environ.get(name, "unset")


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--stderr-and-exit" in args:
        print("fixture: missing configuration FIXTURE_CONFIG", file=sys.stderr, flush=True)
        sys.exit(1)
    if "--tool" in args:
        extra = args[args.index("--tool") + 1]
        server.add_tool(lambda: "extra", name=extra, description="An extra tool.")
    if "--http" in args:
        port = int(args[args.index("--http") + 1])
        server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        server.run("stdio")
