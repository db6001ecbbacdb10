"""vidspan as an MCP server (``pip install 'vidspan[mcp]'``): tools and resources for agents.

Tools: ``caption``, ``find``, ``search``, ``clip``, ``ask``, ``summarize``, ``point`` and ``count``; every
time is in seconds from the start of the video, every result is JSON (also as structured content). A
long call (captioning, grounding, answering) reports MCP progress notifications as its windows finish.
A failure comes back as an MCP tool error whose text is the same one line the CLI prints.

Resources (with a library): ``vidspan://videos`` lists the indexed videos; ``vidspan://videos/{id}``
holds one video's scene and timed events.

The work runs in a worker thread, so the server keeps answering (progress, other sessions) meanwhile.
"""

# no `from __future__ import annotations`: the SDK reads the tools' annotations (defined in build_server)
import functools
import json
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from vidspan.errors import MissingDependencyError, error_line

__all__ = ["MCPConfig", "build_server"]

INSTRUCTIONS = (
    "vidspan answers what happens in a video and when. Times are seconds from the start of the video. "
    "Use search to find moments in the indexed library, caption to get a video's timeline of events, find "
    "to locate one described moment, ask for a cited answer, summarize for a summary with chapters, and "
    "clip to cut a moment out as its own file."
)


@dataclass(frozen=True, slots=True)
class MCPConfig:
    """What the server's tools use.

    Attributes:
        db: The library (SQLite path or ``postgresql://`` URL) for ``search``, ``ask`` and the resources.
        model: The video model for ``caption``, ``find``, ``ask`` and ``summarize``.
        points_model: The model for ``point`` and ``count`` (default: Molmo2).
        llm: The language model (a judge object or ``BACKEND:MODEL``) for ``ask`` and ``summarize``.
        clips_dir: Where ``clip`` writes (default: a temporary folder for the server's life).
        model_options: Sampling and model options for every model call (``fps``, ``device``...).
    """

    db: str | None = None
    model: Any = None
    points_model: Any = None
    llm: Any = None
    clips_dir: str | None = None
    model_options: dict[str, Any] = field(default_factory=dict)


def build_server(config: MCPConfig, *, log_level: str = "INFO") -> Any:
    """The :class:`mcp.server.mcpserver.MCPServer` with vidspan's tools (and resources with a library)."""
    try:
        from mcp.server.mcpserver import Context, MCPServer
        from mcp.server.mcpserver.exceptions import ToolError
        from pydantic import Field
    except ImportError as exc:
        raise MissingDependencyError(
            f"The MCP server needs the mcp SDK ({exc.name or exc}). "
            "Install it with: pip install 'vidspan[mcp]'"
        ) from exc
    import anyio
    import anyio.from_thread
    import anyio.to_thread

    from vidspan import __version__

    server = MCPServer(name="vidspan", version=__version__, instructions=INSTRUCTIONS, log_level=log_level)
    clips = Path(config.clips_dir) if config.clips_dir else Path(tempfile.mkdtemp(prefix="vidspan-clips-"))
    model_lock = threading.Lock()

    async def run(
        ctx: Context | None, work: Callable[..., Any], *, progress: bool = True, uses_model: bool = True
    ) -> Any:
        """``work(progress=...)`` in a worker thread: its progress as MCP notifications, its errors as tool
        errors."""

        def report(done: int, total: int, message: str) -> None:
            if ctx is not None:
                anyio.from_thread.run(functools.partial(ctx.report_progress, done, total, message))

        call = functools.partial(work, progress=report) if progress else work

        def exclusive() -> Any:  # one model call at a time: the loaded model is shared by every session
            with model_lock:
                return call()

        try:
            return await anyio.to_thread.run_sync(exclusive if uses_model else call)
        except ToolError:
            raise
        except Exception as exc:  # the tool boundary: the CLI's one line
            raise ToolError(error_line(exc)) from exc

    def need(value: Any, what: str, option: str) -> Any:
        if value is None:
            raise ToolError(f"This server has no {what}: start it with {option}.")
        return value

    Video = Annotated[str, Field(description="Path of a video file on the server's machine.")]
    Seconds = Annotated[float, Field(ge=0, description="Seconds from the start of the video.")]
    options = dict(config.model_options)

    @server.tool(
        description="Describe a video: a scene paragraph and a timeline of events with start and end "
        "times in seconds. Long videos are captioned in windows (about 2 minutes each); progress is "
        "reported per window."
    )
    async def caption(video: Video, ctx: Context) -> dict[str, Any]:
        import vidspan

        result = await run(
            ctx, lambda progress: vidspan.caption(video, config.model, progress=progress, **options)
        )
        return {
            "video": video,
            "model": result.model,
            "scene": result.scene,
            "events": [e.to_dict() for e in result.events],
            "format_ok": result.format_ok,
        }

    @server.tool(
        description="Find when a described moment happens in a video: its start and end in seconds, "
        "or found=false when the model gives no time range."
    )
    async def find(
        video: Video,
        query: Annotated[str, Field(min_length=1, description="The moment, e.g. 'a person opens the door'.")],
        ctx: Context,
    ) -> dict[str, Any]:
        import vidspan

        hit = await run(
            ctx, lambda progress: vidspan.find(video, query, config.model, progress=progress, **options)
        )
        span = hit.span
        return {
            "video": video,
            "query": query,
            "found": span is not None,
            "start": span.start if span else None,
            "end": span.end if span else None,
            "score": hit.score,
            "raw": hit.raw,
        }

    @server.tool(
        description="Search the indexed video library for moments matching a query (by words and by "
        "meaning). Each hit has the video, start and end in seconds, a score and the event's caption."
    )
    async def search(
        query: Annotated[str, Field(min_length=1, description="What to look for.")],
        limit: Annotated[int, Field(ge=1, le=100, description="Most hits (1 to 100).")] = 10,
        path_glob: Annotated[str | None, Field(description="Only videos whose path or name matches.")] = None,
        start: Annotated[
            float | None, Field(ge=0, description="Only events ending after this second.")
        ] = None,
        end: Annotated[
            float | None, Field(ge=0, description="Only events starting before this second.")
        ] = None,
    ) -> dict[str, Any]:
        db = need(config.db, "library", "--db")

        def work() -> list[Any]:
            from vidspan.library.open import open_index

            with open_index(db, create=False) as index:
                return index.search(query, limit=limit, path_glob=path_glob, start=start, end=end)

        hits = await run(None, work, progress=False, uses_model=False)
        return {"query": query, "hits": [h.to_dict() for h in hits]}

    @server.tool(
        description="Cut the part of a video from start to end seconds into its own MP4 file on the "
        "server; returns the file's path. precise=true re-encodes for a frame-exact start."
    )
    async def clip(video: Video, start: Seconds, end: Seconds, precise: bool = False) -> dict[str, Any]:
        if end <= start:
            raise ToolError(f"Invalid range: end ({end:g} s) must be after start ({start:g} s).")

        def work() -> Path:
            from vidspan.video.cut import cut_clip

            clips.mkdir(parents=True, exist_ok=True)
            name = f"{Path(video).stem}_{start:08.2f}-{end:08.2f}{'_precise' if precise else ''}.mp4"
            return cut_clip(video, start, end, clips / name, precise=precise, overwrite=True)

        path = await run(None, work, progress=False, uses_model=False)
        return {"path": str(path), "video": video, "start": start, "end": end}

    @server.tool(
        description="Answer a question about a video (captioned now) or, without video, about the "
        "indexed library, citing moments as [start–end] seconds. Every citation is checked against "
        "the video's duration and the retrieved moments; supported=false when none holds."
    )
    async def ask(
        question: Annotated[str, Field(min_length=1, description="The question.")],
        ctx: Context,
        video: Annotated[str | None, Field(description="A video file; leave out to ask the library.")] = None,
    ) -> dict[str, Any]:
        from vidspan.answer import ask as ask_video

        llm = need(config.llm, "language model", "--llm")
        db = need(config.db, "library", "--db (or pass video)") if video is None else None
        answer = await run(
            ctx,
            lambda progress: ask_video(
                question, llm=llm, video=video, db=db, model=config.model, progress=progress, **options
            ),
        )
        return answer.to_dict()

    @server.tool(
        description="Summarise a long video window by window, then as a whole, with chapter titles "
        "and their start times in seconds."
    )
    async def summarize(video: Video, ctx: Context) -> dict[str, Any]:
        from vidspan.answer.summarize import summarize as summarize_video

        llm = need(config.llm, "language model", "--llm")
        result = await run(
            ctx,
            lambda progress: summarize_video(
                video, llm=llm, model=config.model, progress=progress, **options
            ),
        )
        return result.to_dict()

    @server.tool(
        description="Point at every object matching a query in a video (Molmo2-style): each point "
        "has a time in seconds and x, y in pixels of the displayed video."
    )
    async def point(
        video: Video, query: Annotated[str, Field(min_length=1, description="The objects, e.g. 'red cars'.")]
    ) -> dict[str, Any]:
        import vidspan

        result = await run(None, lambda: vidspan.point(video, query, config.points_model), progress=False)
        return result.to_dict()

    @server.tool(
        description="Count the objects matching a query in a video (Molmo2-style), with the points "
        "counted (time in seconds, x and y in pixels)."
    )
    async def count(
        video: Video, query: Annotated[str, Field(min_length=1, description="The objects, e.g. 'people'.")]
    ) -> dict[str, Any]:
        import vidspan

        result = await run(None, lambda: vidspan.count(video, query, config.points_model), progress=False)
        return result.to_dict()

    if config.db is not None:
        _add_resources(server, config.db)
    return server


def _add_resources(server: Any, db: str) -> None:
    """``vidspan://videos`` and ``vidspan://videos/{video_id}`` over the library ``db``."""
    from mcp.server.mcpserver.exceptions import ResourceError

    from vidspan.library.open import open_index

    @server.resource(
        "vidspan://videos",
        name="videos",
        mime_type="application/json",
        description="The indexed videos: id, path, duration in seconds, number of events.",
    )
    def videos() -> str:
        with open_index(db, create=False) as index:
            rows = [
                {
                    "id": v.id,
                    "uri": f"vidspan://videos/{v.id}",
                    "path": v.path,
                    "duration": v.duration_seconds,
                    "num_events": v.num_events,
                    "model": v.model,
                }
                for v in index.videos()
            ]
        return json.dumps({"videos": rows}, ensure_ascii=False)

    @server.resource(
        "vidspan://videos/{video_id}",
        name="video",
        mime_type="application/json",
        description="One indexed video: its scene and its events with start and end in seconds.",
    )
    def video(video_id: str) -> str:
        if not video_id.isdigit():
            raise ResourceError(f"Invalid video id {video_id!r}: it must be a number from vidspan://videos.")
        with open_index(db, create=False) as index:
            found = index.video(int(video_id))
            if found is None:
                raise ResourceError(f"No video {video_id} in the library.")
            events = [
                {"start": e.start, "end": e.end, "description": e.description} for e in index.events(found.id)
            ]
        return json.dumps(
            {
                "id": found.id,
                "path": found.path,
                "duration": found.duration_seconds,
                "scene": found.scene,
                "events": events,
            },
            ensure_ascii=False,
        )


def serve(
    config: MCPConfig,
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    quiet: bool = False,
) -> None:
    """Run the server on stdio or streamable HTTP (``http://host:port/mcp``) until interrupted; ``quiet``
    keeps the SDK's INFO lines (one per failed tool call) off stderr."""
    server = build_server(config, log_level="WARNING" if quiet else "INFO")
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=host, port=port)
