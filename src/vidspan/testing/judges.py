"""A scripted judge for tests and documentation examples: the real judge with only the network faked.

:class:`ScriptedJudge` subclasses :class:`~vidspan.judge.base.CachedJudge` and overrides only ``_call``,
the one HTTP exchange. Everything above it (the disk cache, usage and cost accounting, JSON parsing with
:func:`~vidspan.judge.base.parse_json_reply`, re-asks with a moved ``retry`` index, consensus samples) is
the code users run, so a test of an evaluation through this judge tests the evaluation and the judge.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from vidspan.judge.base import CachedJudge, JudgeError, JudgeReply, JudgeRequest, JudgeSettings

if TYPE_CHECKING:
    from vidspan.judge.cache import JudgeCache

Reply = str | JudgeReply | BaseException
Responder = Callable[[JudgeRequest], Reply] | Iterable[Reply]


class ScriptedJudge(CachedJudge):
    """A judge whose replies come from a script instead of an API; every request sent is kept.

    Args:
        responder: Either ``responder(request) -> reply`` or a sequence of replies used in turn, one per
            call that reaches the network (cache hits take none). A reply is the reply text, a full
            :class:`~vidspan.judge.base.JudgeReply`, or an exception to raise as the transport failure
            (a callable may also raise one itself). A queue that runs out raises :class:`JudgeError`.
        model: The judge's model name (part of its identity, so of run headers and cache keys).
        backend: The backend name recorded in the judge's settings.
        cache: As for :class:`CachedJudge`, except that the default is ``False`` (no cache), so a fresh
            judge asks everything again; pass a path to test the real disk cache.
        prompt_tokens, completion_tokens, cost_usd: Usage reported with every text reply (``None``: none;
            without ``cost_usd`` the cost is estimated from the model's price, as for a real backend).

    Attributes:
        requests: Every :class:`JudgeRequest` that reached ``_call``, in order (cache hits are not in it).
    """

    def __init__(
        self,
        responder: Responder,
        *,
        model: str = "scripted-1",
        backend: str = "scripted",
        cache: JudgeCache | str | os.PathLike[str] | None | bool = False,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        cost_usd: float | None = None,
    ):
        super().__init__(JudgeSettings(backend=backend, model=model), cache=cache)
        if callable(responder):
            self._respond: Callable[[JudgeRequest], Reply] = responder
            self._queue: deque[Reply] | None = None
        elif isinstance(responder, (str, bytes, JudgeReply)):
            raise TypeError(
                f"Invalid responder: {responder!r}. It must be a callable or a sequence of replies "
                "(wrap a single reply in a list)."
            )
        else:
            self._queue = deque(responder)
            self._queued = len(self._queue)
            self._respond = self._next_in_queue
        self._usage_per_reply = {
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "cost_usd": cost_usd,
        }  # fmt: skip
        self._lock = threading.Lock()
        self.requests: list[JudgeRequest] = []

    def _next_in_queue(self, request: JudgeRequest) -> Reply:
        assert self._queue is not None
        with self._lock:
            if not self._queue:
                raise JudgeError(
                    f"The scripted judge {self.name} has no reply left for request {len(self.requests)}: "
                    f"it was given {self._queued}."
                )
            return self._queue.popleft()

    def _call(self, request: JudgeRequest) -> JudgeReply:
        with self._lock:
            self.requests.append(request)
        reply = self._respond(request)
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, JudgeReply):
            return replace(reply, cached=False)
        if not isinstance(reply, str):
            raise TypeError(
                f"Invalid scripted reply: {reply!r}. It must be a str, a JudgeReply or an exception."
            )
        return JudgeReply(reply, **self._usage_per_reply)
