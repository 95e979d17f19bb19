"""The periodic jobs of every domain, run by one job runner for the life of the server.

Each domain registers its own jobs (``dep/scheduled.py``, ``push/scheduled.py``, ``mdm/webhook_jobs.py``, the
command queue's upkeep in ``mdm/command_upkeep.py``; certificate renewal next) and gets the server's injected clients
and clock, like the requests do.
"""

from __future__ import annotations

from pippin.dep.scheduled import dep_jobs
from pippin.jobs.periodic import JobRunner
from pippin.mdm.command_upkeep import command_jobs
from pippin.mdm.webhook_jobs import webhook_jobs
from pippin.push.scheduled import push_jobs
from pippin.server.resources import ServerResources


def periodic_jobs(resources: ServerResources) -> JobRunner:
    """Every periodic job for ``resources``; entering the runner starts them, leaving it stops them."""
    settings = resources.settings
    jobs = dep_jobs(
        resources.session_factory,
        settings=settings,
        box=resources.secret_box,
        open_client=resources.open_dep_client,
        clock=resources.clock,
    )
    jobs += push_jobs(
        resources.session_factory,
        settings=settings,
        sender=resources.apns,
        load_identity=resources.load_push_identity,
        record_certificate_refusal=resources.record_push_certificate_refusal,
        clock=resources.clock,
    )
    jobs += webhook_jobs(resources.session_factory, settings=settings, box=resources.secret_box, clock=resources.clock)
    jobs += command_jobs(resources.session_factory, settings=settings, clock=resources.clock)
    # A sync stopping mid-page finishes its call to Apple first, which may take up to the DEP timeout per retry;
    # a batch of pushes finishes its pushes, each within the APNs timeout; a webhook its POST.
    stop_timeout = max(settings.dep_timeout, settings.apns_timeout, settings.webhook_timeout) * 2
    return JobRunner(jobs, clock=resources.clock, stop_timeout=stop_timeout)
