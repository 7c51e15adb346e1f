"""Shared CLI plumbing: friendly one-line errors, JSON output, device choice."""

from __future__ import annotations

import errno
import functools
import json
import os
import sys
from typing import Any, Callable

import click
import torch

from zoo.errors import ZooError

# Errors that are the user's input or the machine's (a path, a full disk), printed as one line without a traceback.
USER_ERRORS = (ZooError, ValueError, KeyError, OSError)

# What to do about an OS error on a path, by errno; the path is filled in.
_OS_HINTS = {
    errno.ENOENT: "no such file or folder: {path}; check the path (a folder to write into must exist or be creatable)",
    errno.EEXIST: "{path} already exists, as a file where a folder is needed; choose another path",
    errno.ENOTDIR: "a part of {path} is a file, not a folder; choose another path",
    errno.EISDIR: "{path} is a folder; give a file path",
    errno.EACCES: "permission denied: {path}; choose a location you can write to",
    errno.EPERM: "not permitted: {path}; choose a location you can write to",
    errno.EROFS: "{path} is on a read-only file system; choose a writable location",
    errno.ENOSPC: "no space left on the device for {path}; free some space or choose another location",
}


def os_error_text(e: OSError) -> str:
    """One line for an OS error: its own message when it has one, else what went wrong with which path and what to
    do (``[Errno 17] File exists: 'afile'`` -> "afile already exists, as a file where a folder is needed; ...")."""
    text = str(e)
    if e.errno is None or not text.startswith("[Errno"):
        return text
    path = e.filename2 if e.filename2 is not None and e.errno == errno.EISDIR else e.filename
    hint = _OS_HINTS.get(e.errno)
    if path is None:
        return f"{e.strerror or text}"
    shown = repr(os.fsdecode(path))
    return hint.format(path=shown) if hint else f"{e.strerror}: {shown}"


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn user-input exceptions into ``click.ClickException`` (exit code 1, one line on stderr)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except BrokenPipeError:
            raise
        except USER_ERRORS as e:
            if isinstance(e, OSError):
                msg = os_error_text(e)
            else:
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
    except BrokenPipeError:  # `ganzoo list | head`: the reader left; say nothing more, as other tools do
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141  # 128 + SIGPIPE
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
