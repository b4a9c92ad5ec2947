"""Use cases of the service: each takes a session and plain values, no HTTP."""
