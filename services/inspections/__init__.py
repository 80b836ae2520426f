"""Joint inspections and enforcement (issue 12, DESIGN 11): tasks, records synced from the phone,
findings, photos, enforcement cases, a site's history and the monthly reports.

Every read and write runs on a connection of the application role that presents the caller's verified
context, so row-level security (migration 0014) decides what each city sees and writes.
"""
