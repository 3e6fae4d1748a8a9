"""`creditbus bench`: end-to-end throughput, latency and backfill against the raw limit."""
