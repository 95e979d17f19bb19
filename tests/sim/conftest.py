"""Fixtures for the simulator's tests: a shared simulator per module, MDM servers with tokens, DEP clients, APNs."""

from tests.sim.apns import apns, fresh_apns, shared_apns
from tests.sim.apple import apple, client, server, shared_sim

__all__ = ["apns", "apple", "client", "fresh_apns", "server", "shared_apns", "shared_sim"]
