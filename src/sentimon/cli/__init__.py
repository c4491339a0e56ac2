"""The `sentimon` command."""
