"""Policies: PolicyRule versions, their assets (package storage) and, later, approvals and releases."""
