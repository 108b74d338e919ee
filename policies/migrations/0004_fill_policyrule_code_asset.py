"""Point existing policies whose code is an uploaded asset's URL at that asset."""
from django.db import migrations


def fill(apps, schema_editor):
    PolicyRule = apps.get_model("policies", "PolicyRule")
    Asset = apps.get_model("policies", "Asset")
    for public_url, pk in Asset.objects.exclude(public_url="").values_list("public_url", "pk").iterator():
        PolicyRule.objects.filter(code=public_url).update(code_asset_id=pk)


class Migration(migrations.Migration):
    dependencies = [
        ("policies", "0003_policyrule_code_asset"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
