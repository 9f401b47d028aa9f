"""`mailgw` entry point: the root group, config loading and the one-line error convention.

Each command group lives in its own module (cli/<group>.py) and is registered in COMMANDS.
A user error (bad config, bad argument, store unreachable) exits 1 with one line, never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from mailgw.config import Config, ConfigError, load

# module name -> attribute holding the click command or group
COMMANDS = (
    ("cli.config_cmd", "config"),
    ("cli.db", "db"),
    ("cli.users", "users"),
    ("cli.serve", "serve"),
    ("cli.queue", "queue"),
    ("cli.policy", "policy"),
    ("cli.dkim", "dkim"),
    ("cli.dns", "dns"),
    ("cli.violations", "violations"),
    ("cli.quarantine", "quarantine"),
    ("cli.audit", "audit"),
    ("cli.directory", "directory"),
)


class UserError(click.ClickException):
    """A problem the operator can fix; printed as one line, exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"mailgw: {self.format_message()}", err=True)


class Ctx:
    """What every command gets: the --config path, loaded on first use."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = load(self.config_path)
            except ConfigError as exc:
                raise UserError(str(exc)) from None
        return self._config


pass_ctx = click.make_pass_decorator(Ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="FILE", default=None,
              help="Configuration file (default: $MAILGW_CONFIG, else ./mailgw.toml, "
                   "else the embedded defaults).")
@click.version_option(package_name="mailgw")
@click.pass_context
def root(ctx: click.Context, config_path: str | None) -> None:
    """mailgw: mail compliance gateway for government mail domains."""
    ctx.obj = Ctx(config_path)


def _register() -> None:
    for module_name, attr in COMMANDS:
        module = importlib.import_module(module_name)
        root.add_command(getattr(module, attr))


_register()


def main() -> None:
    from mailgw.store.db import StoreError

    try:
        root.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("mailgw: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (ConfigError, StoreError) as exc:
        click.echo(f"mailgw: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
