"""Background jobs: declare with `@job`, dispatch through `Queue`, run with `Worker`.

- `jobs`: the `@job` decorator, `JobMessage`, `JobRegistry`, `JobContext`;
- `queue`: `Queue`, the dispatching and managing front, and `create_queue`;
- `backend`: `QueueBackend`, the seam a broker backend implements;
- `database`: the `database` backend (`QUEUE_BACKEND=database`, the default);
- `failures`, `batches`: `failed_jobs` and `job_batches`, shared by every backend;
- `worker`: the worker process's loop, heartbeats, recovery and shutdown;
- `router`, `admin`: the JSON endpoints under /api/v1/queue and the /admin/queue page.
"""
