"""Security of the bus: Kafka principals and ACLs (`acl`), field protection (`envelope`, `keys`)."""
