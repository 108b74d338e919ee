"""The Kubernetes side of executors: cluster credentials, the manifests, create-infra and the runtime's objects."""
