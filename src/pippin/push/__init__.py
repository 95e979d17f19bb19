"""The MDM push certificate and the APNs client that wakes devices (seed step 1; reference section 5)."""
