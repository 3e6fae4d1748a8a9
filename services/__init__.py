"""Platform-side services: the query service and the reports (and the portal)."""
