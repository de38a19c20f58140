"""``python -m tiercare`` runs the command line."""

from tiercare.cli import app

app()
