"""Public test doubles for code built on vidspan: a scripted video model and a scripted judge.

:class:`~vidspan.testing.mock.MockVideoModel` and :class:`~vidspan.testing.judges.ScriptedJudge` subclass
the real model and judge and fake only the edge (the generation, the network call). vidspan's own test
infrastructure (fake provider servers, tiny checkpoints, generated clips) lives in its ``tests/support/``.
Nothing here is imported by the library itself.
"""
