"""Executors: PolicyExecutor records, health probes, infrastructure and the Type 2 proxy."""
