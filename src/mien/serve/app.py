"""The FastAPI app: the REST API, server-sent events, and the page.

:func:`create_app` builds it from a :class:`ServeConfig`; :func:`serve` runs it with uvicorn.
The API is documented by the OpenAPI page at ``/docs`` (served from the ``fastapi-offline``
package's copy of Swagger UI, so it works offline too) and in docs/serve.md.
"""
from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from mien._version import __version__
from mien.errors import MienError
from mien.serve.guard import Guard, is_loopback
from mien.serve.jobs import JobRunner
from mien.serve.live import LiveManager
from mien.serve.probe import MAX_PIXELS, UploadRejected, probe, stored_suffix
from mien.serve.store import (
    FINISHED,
    OUTPUT_FILES,
    QUEUED,
    RUNNING,
    Job,
    JobError,
    JobInput,
    JobOptions,
    JobStore,
    new_job_id,
)

STATIC = Path(__file__).parent / "static"
REPORT_CSP = ("sandbox allow-scripts allow-popups; default-src 'none'; img-src data:; "
              "style-src 'unsafe-inline'; script-src 'unsafe-inline'")


@dataclass
class ServeConfig:
    """How a server runs (``mien serve`` flags)."""

    data_dir: Path = Path("mien-serve-data")
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    workers: int = 2  # jobs analysed at once; the rest wait in the queue
    max_queued: int = 100
    max_upload_bytes: int = 2_000_000_000
    max_files: int = 50
    max_pixels: int = MAX_PIXELS
    allow_paths: list[Path] = field(default_factory=list)  # folders whose files jobs may name
    show_faces: bool = False  # sharp (not blurred) faces in thumbnails and reports
    checkpoint_s: float = 10.0  # running jobs checkpoint their rows this often (resume after a crash)
    live_sessions: int = 1
    live_max_seconds: float = 1800.0

    def check(self) -> ServeConfig:
        if not is_loopback(self.host) and not self.token:
            raise MienError(f"--host {self.host} is not loopback: anyone who can reach it could use the "
                            "server, so give it a --token or --token-file")
        if self.token is not None and (len(self.token) < 16 or not re.fullmatch(r"[A-Za-z0-9._~+/=-]+", self.token)):
            raise MienError("the token must be at least 16 characters of letters, digits and ._~+/=- "
                            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe())')")
        if self.workers < 1 or self.max_queued < 1 or self.max_upload_bytes < 1 or self.live_sessions < 0:
            raise MienError("--workers, --max-queued and --max-upload-mb must be positive")
        return self


class StreamRequest(BaseModel):
    source: str = Field(description="camera index (0, 1, ...) or rtsp/rtsps/rtmp/udp/tcp/http/https/srt URL")
    stride: int = 1
    fps: float | None = None
    max_seconds: float | None = Field(None, description="stop after this many seconds (capped by the server)")
    max_frames: int | None = None


def _safe_name(text: str) -> str:
    """A file-name-safe version of a user's name, for Content-Disposition only."""
    stem = Path(text.replace("\\", "/")).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:60].strip("._-") or "mien"


def create_app(config: ServeConfig) -> FastAPI:
    """The app, with its job store under ``config.data_dir``, workers and live sessions."""
    config.check()
    store = JobStore(config.data_dir)
    runner = JobRunner(store, workers=config.workers, max_queued=config.max_queued,
                       show_faces=config.show_faces, checkpoint_s=config.checkpoint_s)
    live = LiveManager(store, max_sessions=config.live_sessions, max_seconds=config.live_max_seconds,
                       show_faces=config.show_faces)
    allowed_roots = [p.resolve() for p in config.allow_paths]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runner.start()
        try:
            yield
        finally:
            await run_in_threadpool(live.stop_all)
            await run_in_threadpool(runner.stop)

    app = FastAPIOffline(
        title="mien serve", version=__version__, lifespan=lifespan, redoc_url=None,
        description="Measure facial expressions in videos and images: upload files, follow the jobs, "
                    "download the per-face-per-frame table and the HTML report, or analyse a live "
                    "stream. mien identifies no one and infers no emotion, intent or trait.",
    )
    app.state.store, app.state.runner, app.state.live, app.state.config = store, runner, live, config

    @app.exception_handler(JobError)
    async def job_error(_: Request, exc: JobError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # one line, like every other error: "stride: Input should be a valid integer"
        parts = [f"{'.'.join(str(x) for x in e.get('loc', ()) if x not in ('body', 'query', 'path'))}: "
                 f"{e.get('msg', 'invalid')}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(parts) or "invalid request"}, status_code=422)

    @app.exception_handler(MienError)
    async def mien_error(_: Request, exc: MienError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    # ---------------------------------------------------------------------- page
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/server", summary="What this server accepts")
    async def server_info() -> dict[str, Any]:
        return {"mien": __version__, "workers": config.workers, "max_queued": config.max_queued,
                "max_upload_bytes": config.max_upload_bytes, "max_files": config.max_files,
                "server_paths": bool(allowed_roots), "live_sessions": config.live_sessions,
                "live_max_seconds": config.live_max_seconds, "faces_blurred": not config.show_faces,
                "queued": store.count(QUEUED), "running": store.count(RUNNING)}

    # ---------------------------------------------------------------------- jobs
    def save_upload(upload: UploadFile, dest: Path) -> None:
        with dest.open("wb") as out:
            shutil.copyfileobj(upload.file, out, 1 << 20)

    def server_input(text: str, index: int) -> JobInput:
        if not allowed_roots:
            raise UploadRejected("this server takes no server-side paths (start it with --allow-path DIR)", 403)
        try:
            real = Path(text).expanduser().resolve(strict=True)
        except (OSError, RuntimeError):
            raise UploadRejected(f"{text}: no such file on the server", 404) from None
        if not any(real.is_relative_to(root) for root in allowed_roots) or not real.is_file():
            raise UploadRejected(f"{text}: not a file inside the folders this server allows", 403)
        info = probe(real, real.name, config.max_pixels)
        return JobInput(name=real.name, path=str(real), kind=info.kind, size=real.stat().st_size,
                        width=info.width, height=info.height, duration_s=info.duration_s,
                        frames=info.frames, server_path=True)

    def prepare_inputs(job_id: str, uploads: list[UploadFile], paths: list[str],
                       events: UploadFile | None) -> tuple[list[JobInput], bool]:
        inputs_dir = store.inputs_dir(job_id)
        inputs_dir.mkdir(parents=True)
        inputs: list[JobInput] = []
        for index, upload in enumerate(uploads):
            name = (upload.filename or f"upload {index + 1}").replace("\x00", "")[:255]
            # A folder per input, and a file name reduced to [A-Za-z0-9._-]: the user's name is never a path.
            dest = inputs_dir / f"{index:02d}" / f"{_safe_name(name)}{stored_suffix(name)}"
            dest.parent.mkdir()
            save_upload(upload, dest)
            info = probe(dest, name, config.max_pixels)
            inputs.append(JobInput(name=name, path=str(dest), kind=info.kind, size=dest.stat().st_size,
                                   width=info.width, height=info.height, duration_s=info.duration_s,
                                   frames=info.frames))
        for index, text in enumerate(paths):
            inputs.append(server_input(text, index))
        has_events = False
        if events is not None and (events.filename or events.size):
            from mien.reporting import load_events

            dest = store.job_dir(job_id) / "events.csv"
            save_upload(events, dest)
            try:
                load_events(dest)
            except MienError as exc:
                raise UploadRejected(f"events: {str(exc).replace(str(dest), events.filename or 'events')}",
                                     400) from None
            has_events = True
        return inputs, has_events

    @app.post("/api/jobs", status_code=201, summary="Upload videos/images and queue their analysis")
    async def create_job(
        files: Annotated[list[UploadFile] | None, File(description="one or more videos or images")] = None,
        path: Annotated[list[str] | None, Form(description="server-side file(s), when the server allows them")] = None,
        stride: Annotated[int, Form(description="analyse every N-th frame")] = 1,
        fps: Annotated[float | None, Form(description="analyse at most this many frames per second")] = None,
        detect_every: Annotated[int, Form(description="full-frame face detection every K analysed frames")] = 3,
        prior_strength: Annotated[float | None, Form(description="class-prior strength 0..1")] = None,
        annotate: Annotated[bool, Form(description="also write an annotated video (one video per job)")] = False,
        blur_faces: Annotated[bool, Form(description="blur every face in the annotated video")] = False,
        events: Annotated[UploadFile | None, File(description="events CSV (time_s[,end_s],label) for the report")] = None,
    ) -> dict[str, str]:
        uploads = [f for f in files or [] if f.filename or f.size]
        paths = [p for p in path or [] if p.strip()]
        if not uploads and not paths:
            raise HTTPException(400, "no files: send one or more videos or images in the multipart field 'files'")
        if len(uploads) + len(paths) > config.max_files:
            raise HTTPException(400, f"{len(uploads) + len(paths)} files; this server takes at most "
                                     f"{config.max_files} per job")
        options = JobOptions(stride=stride, fps=fps, detect_every=detect_every, prior_strength=prior_strength,
                             annotate=annotate, blur_faces=blur_faces).check()
        if annotate and len(uploads) + len(paths) > 1:
            raise HTTPException(400, "annotate takes one video per job; send the videos as separate jobs")
        if store.count(QUEUED) >= config.max_queued:
            raise HTTPException(503, f"the queue is full ({config.max_queued} jobs waiting); try again later")
        job_id = new_job_id()
        try:
            inputs, has_events = await run_in_threadpool(prepare_inputs, job_id, uploads, paths, events)
        except UploadRejected as exc:
            shutil.rmtree(store.job_dir(job_id), ignore_errors=True)
            raise HTTPException(exc.status, str(exc)) from None
        except BaseException:
            shutil.rmtree(store.job_dir(job_id), ignore_errors=True)
            raise
        job = Job(id=job_id, kind="files", status=QUEUED, created=time.time(), inputs=inputs,
                  options=options, events=has_events)
        try:
            runner.submit(job)
        except JobError:
            shutil.rmtree(store.job_dir(job_id), ignore_errors=True)
            raise
        return {"id": job_id}

    @app.get("/api/jobs", summary="All jobs, newest first")
    async def list_jobs() -> dict[str, Any]:
        return {"jobs": [runner.live_progress(j).to_api() for j in store.all()]}

    @app.get("/api/jobs/{job_id}", summary="One job: status, progress, frames/s, ETA, errors, outputs")
    async def get_job(job_id: str) -> dict[str, Any]:
        store.job_dir(job_id)  # 404 for a malformed id
        return runner.live_progress(store.get(job_id)).to_api()

    @app.get("/api/jobs/{job_id}/events", summary="Server-sent events: the job each time it changes, until it ends")
    async def job_events(job_id: str, request: Request) -> StreamingResponse:
        store.job_dir(job_id)
        store.get(job_id)

        async def events() -> AsyncIterator[str]:
            last, beat = "", time.monotonic()
            while not await request.is_disconnected():
                try:
                    job = runner.live_progress(store.get(job_id))
                except JobError:
                    yield "event: deleted\ndata: {}\n\n"
                    return
                data = json.dumps(job.to_api())
                if data != last:
                    yield f"data: {data}\n\n"
                    last, beat = data, time.monotonic()
                elif time.monotonic() - beat > 15:
                    yield ": keep-alive\n\n"
                    beat = time.monotonic()
                if job.status in FINISHED:
                    return
                await asyncio.sleep(0.3)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    def output_route(name: str) -> None:
        media_type = OUTPUT_FILES[name]

        async def download(job_id: str) -> FileResponse:
            store.job_dir(job_id)  # 404 for a malformed id
            job = store.get(job_id)
            if name not in job.outputs:
                why = {QUEUED: "is waiting in the queue", RUNNING: "is still running"}.get(job.status)
                raise HTTPException(404, f"job {job_id} {why}" if why else
                                    f"job {job_id} has no {name} (status {job.status})")
            stem = _safe_name(job.inputs[0].name) if job.inputs else "mien"
            inline = name in ("report", "thumbnail.jpg", "annotated.mp4")
            filename = f"{stem}.report.html" if name == "report" else f"{stem}.{name}"
            headers = {"Cache-Control": "no-store"}
            if name == "report":
                # The report runs in a sandbox (an opaque origin): its scripts draw and toggle charts
                # but can reach neither this server's API nor its cookie.
                headers["Content-Security-Policy"] = REPORT_CSP
            return FileResponse(store.output_path(job_id, name), media_type=media_type, filename=filename,
                                content_disposition_type="inline" if inline else "attachment", headers=headers)

        app.add_api_route(f"/api/jobs/{{job_id}}/{name}", download, methods=["GET"],
                          summary={"report": "The HTML report", "thumbnail.jpg": "A face of the job, blurred",
                                   "annotated.mp4": "The annotated video, when the job asked for it"}
                          .get(name, f"The job's {name}"), response_class=FileResponse)

    for name in OUTPUT_FILES:
        output_route(name)

    @app.delete("/api/jobs/{job_id}", summary="Remove a job and every file of it (stops it if running)")
    async def delete_job(job_id: str) -> dict[str, str]:
        store.job_dir(job_id)
        job = store.get(job_id)
        if job.kind == "stream" and job.status == RUNNING:
            await run_in_threadpool(live.stop, job_id)
        elif job.status == RUNNING:
            await run_in_threadpool(runner.cancel, job_id)
        await run_in_threadpool(store.delete, job_id)
        return {"deleted": job_id}

    # ---------------------------------------------------------------------- live
    @app.post("/api/streams", status_code=201, summary="Start a live analysis of a camera or stream URL")
    async def start_stream(body: StreamRequest) -> dict[str, str]:
        options = JobOptions(stride=body.stride, fps=body.fps, max_seconds=body.max_seconds,
                             max_frames=body.max_frames)
        job = await run_in_threadpool(live.start, body.source, options)
        return {"id": job.id}

    @app.get("/api/streams/{job_id}", summary="A live analysis: its job and the latest frame's faces")
    async def get_stream(job_id: str) -> dict[str, Any]:
        session = live.get(job_id)
        return {"job": store.get(job_id).to_api(), "latest": session.latest()}

    @app.get("/api/streams/{job_id}/events", summary="Server-sent events: each analysed frame's faces and latency")
    async def stream_events(job_id: str, request: Request) -> StreamingResponse:
        session = live.get(job_id)

        async def events() -> AsyncIterator[str]:
            seq = -1
            while not await request.is_disconnected():
                latest = session.latest()
                if latest["seq"] != seq:
                    seq = latest["seq"]
                    yield f"data: {json.dumps(latest)}\n\n"
                if session.finished.is_set():
                    yield f"event: end\ndata: {json.dumps(store.get(job_id).to_api())}\n\n"
                    return
                await asyncio.sleep(0.05)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.delete("/api/streams/{job_id}", summary="Stop a live analysis (its results are kept as a job)")
    async def stop_stream(job_id: str) -> dict[str, Any]:
        await run_in_threadpool(live.stop, job_id)
        return store.get(job_id).to_api()

    app.add_middleware(Guard, token=config.token, loopback_only=is_loopback(config.host),
                       max_body=config.max_upload_bytes)
    return app


@contextmanager
def running_server(config: ServeConfig) -> Iterator[str]:
    """Run the app with uvicorn in a background thread (for tests and benchmarks); yield its URL."""
    import threading

    import uvicorn

    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(app, host=config.host, port=config.port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="mien-serve-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise MienError(f"the server did not start on {config.host}:{config.port}")
        time.sleep(0.05)
    try:
        yield f"http://{config.host}:{config.port}"
    finally:
        server.should_exit = True
        thread.join(60)


def _check_port_free(host: str, port: int) -> None:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe_socket:
        try:
            probe_socket.bind((host, port))
        except OSError as exc:
            raise MienError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); is another server "
                            "running there? choose another --port") from None


def serve(config: ServeConfig) -> None:
    """Run the app with uvicorn until Ctrl-C."""
    import uvicorn

    _check_port_free(config.host, config.port)
    app = create_app(config)
    shown = f"[{config.host}]" if ":" in config.host else config.host
    print(f"mien serve: http://{shown}:{config.port}/  (API docs at /docs; jobs in {config.data_dir}; "
          "Ctrl-C stops)", flush=True)
    # open event streams (a page following a job) get 10 s to close before the jobs are stopped
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", timeout_graceful_shutdown=10)
