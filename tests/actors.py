"""Who the tests act as when they call a use case directly (interfaces build their own actors)."""

from __future__ import annotations

from pippin.admin.audit import Actor, Interface

TEST_ACTOR = Actor(name="tester", interface=Interface.cli, source="test-host")
