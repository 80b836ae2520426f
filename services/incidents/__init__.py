"""Incidents across borders (DESIGN 11): the directory of agencies, incidents and their status, notices
to the cities of the notify list (in the application, by e-mail and signed webhook, each a CAP 1.2
alert), acknowledgements, and the append-only consultation log.  Row-level security (migration 0012)
decides who sees and does what; this package composes the SQL and the messages."""
