from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from models.families import EhcpStage
from models.vault import AccessEndReason, EvidenceCategory, VaultScope
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_advocates_and_support')]

    initial = False

    operations = [
        ops.CreateModel(
            name='EhcpCase',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('child', fields.OneToOneField('models.Child', source_field='child_id', db_constraint=True, to_field='id', related_name='ehcp_case', on_delete=OnDelete.CASCADE)),
                ('family', fields.ForeignKeyField('models.Family', source_field='family_id', db_constraint=True, to_field='id', related_name='ehcp_cases', on_delete=OnDelete.CASCADE)),
                ('stage', fields.CharEnumField(description='NOT_REQUESTED: NOT_REQUESTED\nASSESSMENT_REQUESTED: ASSESSMENT_REQUESTED\nASSESSMENT_REFUSED: ASSESSMENT_REFUSED\nASSESSING: ASSESSING\nDRAFT_PLAN: DRAFT_PLAN\nFINAL_PLAN: FINAL_PLAN\nANNUAL_REVIEW: ANNUAL_REVIEW\nTRIBUNAL: TRIBUNAL', enum_type=EhcpStage, max_length=32)),
                ('local_authority', fields.CharField(default='', max_length=100)),
                ('request_date', fields.DateField(null=True)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'ehcp_cases', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Evidence',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('family', fields.ForeignKeyField('models.Family', source_field='family_id', db_constraint=True, to_field='id', related_name='evidence', on_delete=OnDelete.CASCADE)),
                ('child', fields.ForeignKeyField('models.Child', source_field='child_id', db_constraint=True, to_field='id', related_name='evidence', on_delete=OnDelete.CASCADE)),
                ('title', fields.CharField(max_length=200)),
                ('category', fields.CharEnumField(description='SCHOOL_REPORT: SCHOOL_REPORT\nEP_REPORT: EP_REPORT\nMEDICAL: MEDICAL\nCORRESPONDENCE: CORRESPONDENCE\nEHCP_DOCUMENT: EHCP_DOCUMENT\nOTHER: OTHER', enum_type=EvidenceCategory, max_length=32)),
                ('date', fields.DateField()),
                ('description', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'evidence', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Review',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('relationship', fields.OneToOneField('models.SupportRelationship', source_field='relationship_id', db_constraint=True, to_field='id', related_name='review', on_delete=OnDelete.CASCADE)),
                ('family', fields.ForeignKeyField('models.Family', source_field='family_id', db_constraint=True, to_field='id', related_name='reviews', on_delete=OnDelete.CASCADE)),
                ('advocate', fields.ForeignKeyField('models.Advocate', source_field='advocate_id', db_constraint=True, to_field='id', related_name='reviews', on_delete=OnDelete.CASCADE)),
                ('rating', fields.SmallIntField()),
                ('text', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('hidden_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'reviews', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TimelineEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('family', fields.ForeignKeyField('models.Family', source_field='family_id', db_constraint=True, to_field='id', related_name='timeline', on_delete=OnDelete.CASCADE)),
                ('child', fields.ForeignKeyField('models.Child', source_field='child_id', db_constraint=True, to_field='id', related_name='timeline', on_delete=OnDelete.CASCADE)),
                ('date', fields.DateField()),
                ('title', fields.CharField(max_length=200)),
                ('note', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'timeline_entries', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='VaultGrant',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('relationship', fields.ForeignKeyField('models.SupportRelationship', source_field='relationship_id', db_constraint=True, to_field='id', related_name='vault_grants', on_delete=OnDelete.CASCADE)),
                ('family', fields.ForeignKeyField('models.Family', source_field='family_id', db_constraint=True, to_field='id', related_name='vault_grants', on_delete=OnDelete.CASCADE)),
                ('advocate', fields.ForeignKeyField('models.Advocate', source_field='advocate_id', db_constraint=True, to_field='id', related_name='vault_grants', on_delete=OnDelete.CASCADE)),
                ('scopes', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('child_ids', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_by', fields.ForeignKeyField('models.User', source_field='revoked_by_id', null=True, db_constraint=True, to_field='id', related_name='revoked_grants', on_delete=OnDelete.SET_NULL)),
                ('end_reason', fields.CharEnumField(null=True, description='REVOKED_BY_FAMILY: REVOKED_BY_FAMILY\nRELATIONSHIP_ENDED: RELATIONSHIP_ENDED\nEXPIRED: EXPIRED', enum_type=AccessEndReason, max_length=32)),
                ('end_announced_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'vault_grants', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='VaultAccessLog',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('family', fields.ForeignKeyField('models.Family', source_field='family_id', db_constraint=True, to_field='id', related_name='access_log', on_delete=OnDelete.CASCADE)),
                ('actor', fields.ForeignKeyField('models.User', source_field='actor_id', db_constraint=True, to_field='id', related_name='vault_reads', on_delete=OnDelete.CASCADE)),
                ('grant', fields.ForeignKeyField('models.VaultGrant', source_field='grant_id', null=True, db_constraint=True, to_field='id', related_name='reads', on_delete=OnDelete.SET_NULL)),
                ('scope', fields.CharEnumField(description='EVIDENCE: EVIDENCE\nTIMELINE: TIMELINE\nEHCP_CASE: EHCP_CASE', enum_type=VaultScope, max_length=16)),
                ('child_id', fields.BigIntField(null=True)),
                ('what', fields.CharField(max_length=200)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'vault_access_log', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
