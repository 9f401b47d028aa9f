"""`mailgw serve`: run every enabled listener, the delivery workers and the scheduler."""

from __future__ import annotations

import logging

import click

from cli.main import Ctx, UserError, pass_ctx
from mailgw.store.db import StoreError


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s mailgw[%(process)d] %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
    # aiosmtpd logs every command line at INFO; our transaction log says what matters.
    aiosmtpd_log = logging.getLogger("mail.log")
    aiosmtpd_log.setLevel(logging.WARNING)
    aiosmtpd_log.addFilter(_NotDeprecationNoise())
    # Alembic narrates every plugin it loads at INFO on each start.
    logging.getLogger("alembic").setLevel(logging.WARNING)


class _NotDeprecationNoise(logging.Filter):
    """aiosmtpd warns about its own deprecated attribute on every AUTH; nothing to act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


@click.command()
@click.option("--processes", type=click.IntRange(min=1), default=None,
              help="Gateway processes (default: gateway.processes, 0 there = one per core).")
@pass_ctx
def serve(ctx: Ctx, processes: int | None) -> None:
    """Run the gateway until SIGTERM or Ctrl-C."""
    from mailgw.server import serve as run

    config = ctx.config
    setup_logging(config.gateway.log_level)
    try:
        run(config, processes)
    except (OSError, StoreError) as exc:
        raise UserError(str(exc)) from None
