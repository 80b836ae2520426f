"""Spatial services as SQL, the FastAPI application and the command line."""
