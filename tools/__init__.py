"""Tools beside the service, run from the repository root with `python -m tools.<name>.run`
(the Makefile's `bench`, `fuzz` and `faults` targets); `servers` is what they share."""
