"""Shared CLI plumbing: friendly one-line errors, JSON output, device choice."""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

import click
import torch

from zoo.errors import ZooError

# Errors that are the user's input, printed as one line without a traceback.
USER_ERRORS = (ZooError, ValueError, KeyError, FileNotFoundError, FileExistsError, PermissionError,
               NotADirectoryError, IsADirectoryError, ConnectionError)


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn user-input exceptions into ``click.ClickException`` (exit code 1, one line on stderr)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except USER_ERRORS as e:
            msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
            raise click.ClickException(msg.splitlines()[0] if msg else type(e).__name__) from None

    return wrapper


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available on this machine; use --device cpu", param_hint="--device")
    try:
        return torch.device(device)
    except RuntimeError:
        raise click.BadParameter(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto",
                                 param_hint="--device") from None


def progress_printer(quiet: bool) -> Callable[[str], None] | None:
    return None if quiet else (lambda msg: click.echo(f"ganzoo: {msg}", err=True))


def run_main(group: click.Group) -> int:
    try:
        group.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    return 0


def quiet_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--quiet", "-q", is_flag=True, help="No progress output.")(fn)
