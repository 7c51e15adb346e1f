"""The ``ganzoo`` command line: one module per command group, thin over the SDK."""

from __future__ import annotations

import sys

import click

from .common import run_main
from .cache import cache_group
from .convert import convert_cmd
from .edit import edit_cmd, interpolate_cmd, mix_cmd
from .hub import push_cmd
from .export import export_cmd
from .generate import generate_cmd
from .models import info_cmd, list_cmd
from .sample import sample_cmd
from .invert import invert_cmd
from .tune import tune_cmd
from .photo import align_cmd, edit_photo_cmd
from .studio import studio_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ganzoo", prog_name="ganzoo")
def cli() -> None:
    """ganzoo: pretrained GANs by name - sample, convert, invert, edit, export."""


# One command (group) a line.
cli.add_command(list_cmd)
cli.add_command(info_cmd)
cli.add_command(convert_cmd)
cli.add_command(sample_cmd)
cli.add_command(edit_cmd)
cli.add_command(mix_cmd)
cli.add_command(interpolate_cmd)
cli.add_command(push_cmd)
cli.add_command(cache_group)
cli.add_command(export_cmd)
cli.add_command(invert_cmd)
cli.add_command(tune_cmd)
cli.add_command(generate_cmd)
cli.add_command(align_cmd)
cli.add_command(edit_photo_cmd)
cli.add_command(studio_cmd)


def main() -> None:
    sys.exit(run_main(cli))
