"""The query service: archives by role, every query audited."""
