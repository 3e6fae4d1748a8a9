"""Sink connectors: archive updates into the public platform."""
