"""Logs, metrics and traces: `middleware.install_observability` puts them on an app."""
