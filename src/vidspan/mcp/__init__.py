"""vidspan for agents: an MCP server (``vidspan mcp``) with caption, find, search, clip, ask, summarize,
point and count tools, and the library's videos as resources."""

from vidspan.mcp.server import MCPConfig, build_server, serve

__all__ = ["MCPConfig", "build_server", "serve"]
