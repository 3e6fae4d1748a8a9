"""The HTTP sink: archive updates posted in batches to a platform's REST API."""
