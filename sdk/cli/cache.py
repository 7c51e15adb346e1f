"""``ganzoo cache list | clear``: what convert-on-first-use has stored, and removing it."""

from __future__ import annotations

import click

from .common import emit_json, friendly_errors


@click.group("cache")
def cache_group() -> None:
    """Inspect or clear ganzoo's cache of converted models (GANZOO_CACHE)."""


@cache_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly_errors
def cache_list(as_json: bool) -> None:
    """List converted models in the cache, with sizes; unfinished downloads are shown as partial."""
    from zoo.download import cached_models, partial_downloads
    from zoo.loading import cache_dir

    models = cached_models()
    partial = [{"path": str(p), "size_bytes": p.stat().st_size} for p in partial_downloads()]
    if as_json:
        emit_json({"cache_dir": str(cache_dir()), "models": models, "partial_downloads": partial})
        return
    click.echo(f"cache: {cache_dir()}")
    if not models and not partial:
        click.echo("(empty)")
    for m in models:
        click.echo(f"  {m['name']:<40} {m['size_bytes'] / 2**20:8.1f} MiB  {m['kind']}")
    for p in partial:
        click.echo(f"  (partial download) {p['path']}  {p['size_bytes'] / 2**20:.1f} MiB")


@cache_group.command("clear")
@click.argument("model", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly_errors
def cache_clear(model: str | None, as_json: bool) -> None:
    """Delete the cache entry MODEL, or everything ganzoo cached when MODEL is omitted.

    MODEL is a name `ganzoo cache list` shows (a registry model or a converted file's key), a path it shows,
    or the upstream checkpoint file whose conversion to delete.
    """
    from zoo.download import cached_models, clear_cache

    removed = clear_cache(model)
    if model is not None and not removed:
        names = ", ".join(str(m["name"]) for m in cached_models()) or "none"
        raise click.ClickException(f"{model!r} is not in the cache (cached: {names}); see `ganzoo cache list`")
    if as_json:
        emit_json({"removed": removed})
    else:
        click.echo(f"removed {len(removed)} item(s)" + (f": {', '.join(removed)}" if removed else ""))
