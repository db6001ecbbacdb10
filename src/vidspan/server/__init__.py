"""Serve vidspan models over HTTP: an OpenAI-compatible chat API (standard library only)."""

from vidspan.server.openai_api import OpenAICompatServer, RequestError, serve

__all__ = ["OpenAICompatServer", "RequestError", "serve"]
