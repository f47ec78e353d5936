from django.db import migrations

from consent import db_guards


def install(apps, schema_editor):
    db_guards.install(schema_editor)


def uninstall(apps, schema_editor):
    db_guards.uninstall(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("consent", "0001_initial")]

    operations = [migrations.RunPython(install, uninstall)]
