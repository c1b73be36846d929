"""The MDC as a running service: ``python -m pipeline serve`` (DESIGN §11).

An ASGI app (Starlette on uvicorn) in front of the pipeline, layered at the service level
(it uses `pipeline.service` and the stages below it):

- `pipeline.serve.app`: the routes (uploads, analysis, health, metrics, dashboard, JSON
  API), the token gate and the lifespan;
- `pipeline.serve.writer`: the one writer thread that holds the read-write `Pipeline`,
  fed by a bounded queue, with group commits;
- `pipeline.serve.queries`: the read side, on read-only store connections;
- `pipeline.serve.wire`: the JSON of the answers, shared with clients (the twin's live
  mode);
- `pipeline.serve.metrics`, `pipeline.serve.forecasts`, `pipeline.serve.config`,
  `pipeline.serve.server` (checks, socket, uvicorn).

Threads: the event loop reads each request (the upload body streamed under the size
limit) and never touches the database; uploads and analyses go through one queue to the
writer thread (SQLite has one writer: a second one would only wait for its lock); the
dashboard's and the API's queries run on the loop's worker threads, each with a read-only
connection of a small pool (under WAL, readers see the last commit and never block the
writer).

What an answer to an upload means (``--ack``):

- ``commit``: the upload's readings are committed to the database (the transaction of its
  group); a crash after the answer loses nothing;
- ``receipt``: the upload was authenticated, parsed and written into the open
  transaction, so the answer carries its real outcome (stored, duplicates, or the
  rejection), but the COMMIT follows within ``commit_wait_s`` (or ``commit_every``
  uploads): a crash in between loses it. Each answer carries the upload's receipt number
  and ``committed_through`` (every receipt up to it is committed), so a client can tell.

A rejection is answered at once in both modes. The batch analysis runs on the writer
thread between groups, on a wall-clock timer (``--analyze-every``) at the data clock (the
end of the latest reading stored) or on request (``POST /v1/analyze``).
"""
