"""The layer catalogue, the PostGIS schema and its migrations, and database access."""
