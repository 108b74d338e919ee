"""Functions (Type 4): stateful, autoscaled policy deployments and the routing of calls to them."""
