"""Devices as admins see them: one derived state, and one query engine for the CLI, the API and the console."""
