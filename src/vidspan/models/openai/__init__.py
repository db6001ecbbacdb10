"""The OpenAI chat-completions wire format, from both ends: a model client and a small server.

- :mod:`~vidspan.models.openai.wire`: the messages both ends (and the OpenAI-compatible judge) build and read;
- :class:`OpenAICompatModel`: a video model behind any compatible server (vLLM, SGLang);
- :class:`OpenAICompatServer` / :func:`serve`: any vidspan model behind that API (standard library only).
"""

from vidspan.models.openai.client import INPUT_MODES, OpenAICompatModel
from vidspan.models.openai.server import OpenAICompatServer, RequestError, serve

__all__ = ["INPUT_MODES", "OpenAICompatModel", "OpenAICompatServer", "RequestError", "serve"]
