"""Part of moving the label models (Label, LabelMembership, LabelInvitation, Delegation from accounts;
BulkChange, BulkChangeItem, ConsentProposal from consent) into labels.

State only: each model keeps its table (`Meta.db_table`), its rows, its constraints and
index names, so no row is copied. labels.tests.test_label_models_move checks a database
filled before the move keeps every row and foreign key.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


# Content types follow the models, so admin history and permissions stay attached to them.
MOVED = {
    "accounts": ["label", "labelmembership", "labelinvitation", "delegation"],
    "consent": ["bulkchange", "bulkchangeitem", "consentproposal"],
}


def move_content_types(apps, schema_editor, *, forward=True):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for old_app, models_ in MOVED.items():
        source, target = (old_app, "labels") if forward else ("labels", old_app)
        for model in models_:
            if not ContentType.objects.filter(app_label=target, model=model).exists():
                ContentType.objects.filter(app_label=source, model=model).update(app_label=target)


def move_content_types_back(apps, schema_editor):
    move_content_types(apps, schema_editor, forward=False)


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('consent', '0010_bulk_change_models_move_out_index'),
        ('labels', '0001_artist_invitations'),
        ('tracks', '0004_track_sha256_index'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='Label',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=150)),
                        ('slug', models.SlugField(max_length=80, unique=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        'db_table': 'accounts_label',
                        'ordering': ['name', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='BulkChange',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('edit', 'Bulk edit'), ('csv', 'CSV import'), ('undo', 'Undo')], max_length=16)),
                        ('status', models.CharField(choices=[('draft', 'Previewed'), ('stale', 'Out of date'), ('queued', 'Queued'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed')], default='draft', max_length=16)),
                        ('filter', models.JSONField(blank=True, default=dict)),
                        ('selection', models.JSONField(blank=True, null=True)),
                        ('changes', models.JSONField(blank=True, default=dict)),
                        ('confirmed_purposes', models.JSONField(blank=True, default=list)),
                        ('will_change', models.PositiveIntegerField(default=0)),
                        ('already', models.PositiveIntegerField(default=0)),
                        ('refused', models.PositiveIntegerField(default=0)),
                        ('refused_detail', models.JSONField(blank=True, default=list)),
                        ('applied', models.PositiveIntegerField(default=0)),
                        ('artists_notified', models.PositiveIntegerField(default=0)),
                        ('progress_done', models.PositiveIntegerField(default=0)),
                        ('progress_total', models.PositiveIntegerField(default=0)),
                        ('error', models.TextField(blank=True)),
                        ('drift', models.JSONField(blank=True, default=list)),
                        ('previewed_at', models.DateTimeField(blank=True, null=True)),
                        ('queued_at', models.DateTimeField(blank=True, null=True)),
                        ('claim_token', models.UUIDField(blank=True, null=True)),
                        ('lease_expires_at', models.DateTimeField(blank=True, null=True)),
                        ('lost_count', models.PositiveSmallIntegerField(default=0)),
                        ('resume_after_artist', models.PositiveBigIntegerField(default=0)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('started_at', models.DateTimeField(blank=True, null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('undo_of', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='undone_by', to='labels.bulkchange')),
                        ('label', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='bulk_changes', to='labels.label')),
                    ],
                    options={
                        'db_table': 'consent_bulkchange',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='BulkChangeItem',
                    fields=[
                        ('pk', models.CompositePrimaryKey('bulk_change', 'artist', 'track', 'purpose', blank=True, editable=False, primary_key=True, serialize=False)),
                        ('shown_granted', models.BooleanField()),
                        ('new_granted', models.BooleanField()),
                        ('action', models.CharField(choices=[('change', 'Will change'), ('already', 'Already so'), ('refused', 'Refused')], max_length=8)),
                        ('isrc_key', models.CharField(blank=True, default='', max_length=32)),
                        ('artist', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('bulk_change', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='items', to='labels.bulkchange')),
                        ('purpose', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='consent.purpose')),
                        ('track', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='tracks.track')),
                    ],
                    options={
                        'db_table': 'consent_bulkchangeitem',
                    },
                ),
                migrations.CreateModel(
                    name='Delegation',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('status', models.CharField(choices=[('invited', 'Invited by the label'), ('requested', 'Requested by the artist'), ('active', 'Active'), ('declined', 'Declined'), ('ended', 'Ended')], max_length=16)),
                        ('scopes', models.JSONField(blank=True, default=dict)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('accepted_at', models.DateTimeField(blank=True, null=True)),
                        ('ended_at', models.DateTimeField(blank=True, null=True)),
                        ('artist', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='delegations', to=settings.AUTH_USER_MODEL)),
                        ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('label', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='delegations', to='labels.label')),
                    ],
                    options={
                        'db_table': 'accounts_delegation',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.AlterField(
                    model_name='artistinvitation',
                    name='delegation',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='labels.delegation'),
                ),
                migrations.CreateModel(
                    name='ConsentProposal',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('message', models.TextField(blank=True)),
                        ('status', models.CharField(choices=[('pending', 'Waiting for the artist'), ('accepted', 'Accepted'), ('declined', 'Declined')], default='pending', max_length=16)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('decided_at', models.DateTimeField(blank=True, null=True)),
                        ('artist', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='consent_proposals', to=settings.AUTH_USER_MODEL)),
                        ('proposed_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('purpose', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='consent.purpose')),
                        ('tracks', models.ManyToManyField(related_name='+', to='tracks.track')),
                        ('label', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='proposals', to='labels.label')),
                    ],
                    options={
                        'db_table': 'consent_consentproposal',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.AlterField(
                    model_name='artistinvitation',
                    name='label',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='artist_invitations', to='labels.label'),
                ),
                migrations.CreateModel(
                    name='LabelInvitation',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('email', models.EmailField(max_length=254)),
                        ('role', models.CharField(choices=[('owner', 'Owner'), ('manager', 'Manager')], default='manager', max_length=16)),
                        ('token', models.CharField(max_length=64, unique=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('accepted_at', models.DateTimeField(blank=True, null=True)),
                        ('accepted_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('invited_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('label', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='invitations', to='labels.label')),
                    ],
                    options={
                        'db_table': 'accounts_labelinvitation',
                    },
                ),
                migrations.CreateModel(
                    name='LabelMembership',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('role', models.CharField(choices=[('owner', 'Owner'), ('manager', 'Manager')], default='manager', max_length=16)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('label', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='labels.label')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='label_memberships', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'accounts_labelmembership',
                    },
                ),
                migrations.AddIndex(
                    model_name='delegation',
                    index=models.Index(fields=['label', 'status'], name='accounts_delegation_label_idx'),
                ),
                migrations.AddConstraint(
                    model_name='delegation',
                    constraint=models.UniqueConstraint(condition=models.Q(('ended_at__isnull', True)), fields=('artist', 'label'), name='accounts_delegation_one_open'),
                ),
                migrations.AddIndex(
                    model_name='bulkchange',
                    index=models.Index(fields=['status', 'lease_expires_at'], name='consent_bulk_status_lease_idx'),
                ),
                migrations.AddConstraint(
                    model_name='labelmembership',
                    constraint=models.UniqueConstraint(fields=('label', 'user'), name='accounts_membership_label_user_unique'),
                ),
            ],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
