"""Graphs (Type 5): DAGs of functions, their runs, and the run engine."""
