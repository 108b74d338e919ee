"""One node per registered function of each existing graph's graph_function_ids."""
from django.db import migrations


def fill(apps, schema_editor):
    Graph = apps.get_model("graphs", "Graph")
    GraphNode = apps.get_model("graphs", "GraphNode")
    Function = apps.get_model("functions", "Function")
    functions = dict(Function.objects.values_list("function_id", "pk"))
    nodes = []
    for graph_pk, ids in Graph.objects.values_list("pk", "graph_function_ids").iterator():
        wanted = dict.fromkeys(i for i in (ids if isinstance(ids, list) else []) if isinstance(i, str) and i in functions)
        nodes += [GraphNode(graph_id=graph_pk, function_id=functions[i]) for i in wanted]
    GraphNode.objects.bulk_create(nodes, batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("graphs", "0002_graphnode_graph_functions_and_more"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
