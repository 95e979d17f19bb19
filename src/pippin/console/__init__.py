"""The admin console: server-rendered pages over the same services as the CLI and the REST API."""
