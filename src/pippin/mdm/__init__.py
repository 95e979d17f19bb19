"""The MDM protocol's device side: authenticating devices, their check-ins, and the enrollments they keep."""
