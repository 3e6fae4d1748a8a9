"""The platform database: schema, connections, roles; written by the sink, read by the services."""
