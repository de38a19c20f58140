"""``tiercare plan``: the planning engine's commands (access, raster, locate, scenario)."""

from __future__ import annotations

import typer

from tiercare.planning import access_cli, locate_cli, raster_cli

app = typer.Typer(
    help="Planning engine: travel time, coverage, accessibility and location-allocation.",
    no_args_is_help=True,
)

# --- command registrations (one line each: app.command("name")(module.function)) ---
app.command("raster")(raster_cli.raster)
app.command("access")(access_cli.access)
app.command("locate")(locate_cli.locate)
app.command("locate-tiers")(locate_cli.locate_tiers)
