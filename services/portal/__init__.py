"""The web portal of units and the credit office (docs/portal.md)."""
