"""PolicyGrid's default resource allocator: place a job or a function on the healthy executor with the most free
vCPUs (docs/runtime.md §6). An ordinary policy: replace it by registering your own and naming it in the request's
``alloc.resource_allocator_policy_uri`` or in POLICYGRID_RESOURCE_ALLOCATOR_URI.

Input: ``{"mode": "job"|"function", "request": <the submission>, "executors": [<executor records>]}``; each
executor has ``executor_id``, ``executor_status``, ``executor_runtime``, ``executor_hardware_info`` (``vcpus`` or
``cpus``) and ``health`` (the last probe: ``workers``, ``busy``). Output: ``{"executor_id", "replicas"?, "reason"}``,
``executor_id`` null when no executor fits (the reason says why).
"""


def _vcpus(executor):
    info = executor.get("executor_hardware_info") or {}
    for key in ("vcpus", "cpus", "cpu", "cores"):
        value = info.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    health = executor.get("health") or {}
    workers = health.get("workers")
    return float(workers) if isinstance(workers, (int, float)) and workers > 0 else 1.0


def _free(executor):
    health = executor.get("health") or {}
    busy = health.get("busy") if isinstance(health.get("busy"), (int, float)) else 0
    return _vcpus(executor) - busy


class AIOSv1PolicyRule:
    def __init__(self, rule_id, settings, parameters):
        self.rule_id = rule_id
        self.settings = settings
        self.parameters = parameters

    def eval(self, parameters, input_data, context):
        wanted_runtime = parameters.get("runtime") or None
        selector = (input_data.get("request") or {}).get("node_selector") or {}
        candidates = []
        for executor in input_data.get("executors") or []:
            if executor.get("executor_status") != "healthy" or not executor.get("executor_host_uri"):
                continue
            if wanted_runtime and executor.get("executor_runtime") != wanted_runtime:
                continue
            labels = (executor.get("executor_metadata") or {}).get("labels") or {}
            if any(labels.get(key) != value for key, value in selector.items()) and selector:
                if parameters.get("honour_node_selector", True):
                    continue
            candidates.append(executor)
        if not candidates:
            return {"executor_id": None, "reason": "no healthy executor with an address"
                    + (f" and runtime {wanted_runtime}" if wanted_runtime else "") + " matches the request"}
        best = max(candidates, key=lambda e: (_free(e), e.get("executor_id") or ""))
        return {"executor_id": best["executor_id"],
                "reason": f"healthy, most free vCPUs ({_free(best):g} of {_vcpus(best):g})"}

    def management(self, action, data):
        return {"action": action, "state": "stateless"}
