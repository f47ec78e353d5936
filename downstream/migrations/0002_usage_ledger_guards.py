from django.db import migrations

from downstream import db_guards


class Migration(migrations.Migration):
    dependencies = [("downstream", "0001_initial")]

    operations = [migrations.RunPython(db_guards.install, db_guards.uninstall)]
