"""``riskatlas serve``: the API and the web pages."""

from __future__ import annotations

import typer


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8000, help="Port to listen on"),
    workers: int = typer.Option(1, help="Worker processes"),
) -> None:
    """Serve the API and the web pages."""
    import uvicorn

    uvicorn.run("services.web.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="info")
