"""Work a request starts and the server finishes after answering: a claimed sync, due profile assignments.

The API and the console both start these ("Sync now", "Retry due"); the request commits its claim first, and
the work then runs with the server's own clients and clock, so it behaves the same whichever interface asked.
"""

from __future__ import annotations

from fastapi import BackgroundTasks

from pippin.dep import assignment_runner, sync_and_assign
from pippin.server.resources import ServerResources


def run_sync_after_response(background: BackgroundTasks, resources: ServerResources, *, run_id: int) -> None:
    """Carry out a claimed sync run once the answer is sent (the API's and the console's "Sync now")."""
    background.add_task(
        sync_and_assign.run_sync_and_assign,
        resources.session_factory,
        run_id=run_id,
        settings=resources.settings,
        box=resources.secret_box,
        open_client=resources.open_dep_client,
        clock=resources.clock,
        raise_unexpected=False,
    )


def send_due_assignments_after_response(
    background: BackgroundTasks, resources: ServerResources, *, token_id: int | None = None
) -> None:
    """Send the due profile assignments (of one token, or all) to Apple once the answer is sent: after an
    assignment, an edit that made a new revision, or a retry, from the API and the console alike."""
    background.add_task(
        assignment_runner.run_due_assignments,
        resources.session_factory,
        settings=resources.settings,
        box=resources.secret_box,
        open_client=resources.open_dep_client,
        clock=resources.clock,
        token_id=token_id,
    )
