"""Development tooling, shipped for `make demo` and `make bench`: local broker, bench, samples."""
