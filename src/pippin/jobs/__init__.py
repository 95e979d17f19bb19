"""Periodic work that `pippin serve` runs beside the web apps: named jobs, each domain registering its own."""
