"""The Avro contracts of the bus: schema store, wire format, compatibility, canonical JSON."""
