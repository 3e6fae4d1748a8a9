"""A local Apache Kafka (KRaft) assembled from Maven Central, for development and tests."""
