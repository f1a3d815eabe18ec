"""Background jobs: declare with `@job`, dispatch through `Queue`, run with `Worker`.

- `jobs`: the `@job` decorator, `JobMessage`, `JobRegistry`, `JobContext`;
- `queue`: `Queue`, the dispatching and managing front, and `create_queue`;
- `backend`: `QueueBackend`, the seam a broker backend implements;
- `database`: the `database` backend (`QUEUE_BACKEND=database`, the default);
- `broker`, `redis_broker`, `rabbitmq_broker`: the broker backends (`QUEUE_BACKEND=redis`,
  `rabbitmq`), ready and running jobs in the broker, the rest in the auth database;
- `failures`, `batches`, `workers`: `failed_jobs`, `job_batches` and `queue_workers`,
  shared by every backend;
- `worker`: the worker process's loop, heartbeats, recovery and shutdown;
- `router`, `admin`: the JSON endpoints under /api/v1/queue and the /admin/queue page.
"""
