"""`python -m edgedistill` runs the CLI."""

from edgedistill.cli import main

main()
