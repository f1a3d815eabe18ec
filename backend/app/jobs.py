"""Every job the workers run, by name, as `app/models.py` lists every model.

The worker finds a job by the name it was dispatched under in `JOBS`, which the CLI
hands to it (`queue work --jobs` names another registry). Add each new job below; a
job missing here lands in `failed_jobs` as an unknown name, and stops nothing else.
"""

from app.auth.jobs import send_password_reset
from app.essentials.notifications.jobs import announce, deliver_notification, deliver_to_many
from app.essentials.queue.jobs import JobRegistry
from app.schedule import SCHEDULE

# SCHEDULE.job runs the recurring tasks of app/schedule.py.
JOBS = JobRegistry(
    [send_password_reset, deliver_notification, deliver_to_many, announce, SCHEDULE.job]
)
