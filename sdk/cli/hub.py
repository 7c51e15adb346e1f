"""``ganzoo push``: publish a converted model folder to the Hugging Face Hub."""

from __future__ import annotations

import click

from .common import emit_json, friendly_errors


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)  # pragma: no cover


@click.command("push")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--repo-id", required=True, help="Target Hub repository, org/name.")
@click.option("--private", is_flag=True, help="Create the repository as private.")
@click.option("--revision", default=None, help="Branch to commit to (default main).")
@click.option("--message", "commit_message", default=None, help="Commit message.")
@click.option("--dry-run", is_flag=True, help="Validate and list what would be uploaded; no network.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly_errors
def push_cmd(folder: str, repo_id: str, private: bool, revision: str | None, commit_message: str | None,
             dry_run: bool, as_json: bool) -> None:
    """Validate FOLDER (config, strict weights, model card) and upload it to the Hub as REPO_ID."""
    from zoo.hub import push_folder

    report = push_folder(folder, repo_id, private=private, dry_run=dry_run, commit_message=commit_message,
                         revision=revision)
    if as_json:
        emit_json(report)
        return
    verb = "would upload" if dry_run else "uploaded"
    click.echo(f"{verb} to {report['repo_id']} ({'private' if private else 'public'}, {report['revision']}):")
    for f in report["files"]:
        click.echo(f"  {f['path']:<20} {_size(f['size_bytes']):>10}")
    click.echo(f"  {'total':<20} {_size(report['total_bytes']):>10}")
    if not dry_run:
        click.echo(f"commit: {report['commit_url']}")
