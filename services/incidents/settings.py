"""Where notices go out: the SMTP server, the sender, the public address of the ack links, the worker."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DeliverySettings(BaseSettings):
    """Settings of the delivery of notices (environment ``RISKATLAS_DELIVERY_*``).

    Without ``smtp_host`` e-mails stay queued (shown undelivered, with the reason) until one is set.
    """

    model_config = SettingsConfigDict(env_prefix="RISKATLAS_DELIVERY_", extra="ignore")

    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "riskatlas-duty@localhost"
    public_url: str = "http://127.0.0.1:8000"     # base of the one-time acknowledgement links
    sender_id: str = "riskatlas.nanjing-metro"    # CAP <sender>
    timeout_s: float = Field(default=10.0, gt=0)  # per SMTP conversation or webhook request
    batch: int = Field(default=50, ge=1)          # deliveries a worker takes per round
    worker: bool = True                           # run the worker inside the web app
    poll_s: float = Field(default=5.0, gt=0)      # the worker also wakes on NOTIFY riskatlas_delivery
