"""Recurring tasks: declared in code with cron expressions, enqueued once per occurrence."""
