"""Jobs (Type 3): one-shot policy runs on an executor's cluster or as local processes."""
