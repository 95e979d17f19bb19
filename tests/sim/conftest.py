"""Fixtures for the simulator's tests: a shared simulator per module, MDM servers with tokens, DEP clients."""

from tests.sim.apple import apple, client, server, shared_sim

__all__ = ["apple", "client", "server", "shared_sim"]
