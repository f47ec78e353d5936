"""Part of moving the label models into labels, state only: see labels 0002_label_models_move_in."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_account_deletion_and_data_export'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveIndex(
                    model_name='delegation',
                    name='accounts_delegation_label_idx',
                ),
                migrations.RemoveConstraint(
                    model_name='delegation',
                    name='accounts_delegation_one_open',
                ),
                migrations.RemoveField(
                    model_name='labelinvitation',
                    name='label',
                ),
                migrations.RemoveField(
                    model_name='labelinvitation',
                    name='accepted_by',
                ),
                migrations.RemoveField(
                    model_name='labelinvitation',
                    name='invited_by',
                ),
                migrations.RemoveConstraint(
                    model_name='labelmembership',
                    name='accounts_membership_label_user_unique',
                ),
                migrations.RemoveField(
                    model_name='delegation',
                    name='artist',
                ),
                migrations.RemoveField(
                    model_name='delegation',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='delegation',
                    name='label',
                ),
                migrations.DeleteModel(
                    name='LabelInvitation',
                ),
                migrations.RemoveField(
                    model_name='labelmembership',
                    name='label',
                ),
                migrations.RemoveField(
                    model_name='labelmembership',
                    name='user',
                ),
            ],
        ),
    ]
