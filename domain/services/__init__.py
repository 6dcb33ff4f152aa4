"""The application layer: every use of an order, over the domain's `decide`.

Placing and cancelling (the API), the four execution steps (the Dramatiq actors),
and the jobs over waiting and stuck orders (the scheduler) live here, written
against the ports in `domain.ports` only: no I/O library is imported, so each
service runs unchanged over Postgres and Redis in production and over the
in-memory adapters in unit tests. Entry points stay thin: they parse, call one
service, and render.
"""
