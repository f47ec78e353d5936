"""Part of moving the label models into labels, state only: see labels 0002_label_models_move_in."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_label_models_move_out_indexes'),
        ('consent', '0011_bulk_change_models_move_out'),
        ('labels', '0002_label_models_move_in'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(
                    name='Delegation',
                ),
                migrations.DeleteModel(
                    name='Label',
                ),
                migrations.DeleteModel(
                    name='LabelMembership',
                ),
            ],
        ),
    ]
