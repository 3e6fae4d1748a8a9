"""Kafka helpers shared by every process: the local broker, topic administration."""
