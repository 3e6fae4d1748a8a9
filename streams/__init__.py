"""The Faust stream workers: validate, deduplicate, enrich and build the archives."""
