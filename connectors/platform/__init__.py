"""The platform database sink: schema, the SQLite and PostgreSQL back ends, the sink, verify."""
