"""The activity log: who changed what, when, in the auth database's `activity_log`.

- `models`: `ActivityEntry`, one row per change or event (spatie's laravel-activitylog);
- `recording`: `Auditable`, the mixin whose changes are recorded at each flush, the
  guard on bulk statements, and `activity(...)`, the builder of entries by hand;
- `service`: reading pages of entries, and `prune`;
- `router`: `GET /api/v1/activity`, for holders of `activity:read`.
"""
