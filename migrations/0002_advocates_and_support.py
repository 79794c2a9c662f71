from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from models.advocates import AdvocateType, Availability, Verification
from models.families import EhcpStage
from models.support import CloseReason, DeclineReason, RelationshipStatus, RequestStatus
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Advocate',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.OneToOneField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='advocate', on_delete=OnDelete.CASCADE)),
                ('display_name', fields.CharField(max_length=100)),
                ('bio', fields.TextField(default='', unique=False)),
                ('advocate_type', fields.CharEnumField(default=AdvocateType.INDEPENDENT, description='INDEPENDENT: INDEPENDENT\nCHARITY: CHARITY\nSENDIASS: SENDIASS\nSOLICITOR: SOLICITOR\nOTHER: OTHER', enum_type=AdvocateType, max_length=16)),
                ('specialisms', fields.CharField(default='', max_length=500)),
                ('areas', fields.TextField(default='', unique=False)),
                ('verification', fields.CharEnumField(default=Verification.UNVERIFIED, description='UNVERIFIED: UNVERIFIED\nPENDING: PENDING\nVERIFIED: VERIFIED\nREJECTED: REJECTED', enum_type=Verification, max_length=16)),
                ('verification_note', fields.TextField(default='', unique=False)),
                ('verification_decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('availability', fields.CharEnumField(default=Availability.ACCEPTING, description='ACCEPTING: ACCEPTING\nLIMITED: LIMITED\nNOT_ACCEPTING: NOT_ACCEPTING', enum_type=Availability, max_length=16)),
                ('capacity', fields.IntField(default=5)),
                ('active_case_count', fields.IntField(default=0)),
                ('capacity_expected_on', fields.DateField(null=True)),
                ('response_sla_hours', fields.IntField(default=48)),
                ('first_message_sla_hours', fields.IntField(default=24)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'advocates', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Thread',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('family', fields.ForeignKeyField('models.Family', source_field='family_id', db_constraint=True, to_field='id', related_name='threads', on_delete=OnDelete.CASCADE)),
                ('advocate', fields.ForeignKeyField('models.Advocate', source_field='advocate_id', db_constraint=True, to_field='id', related_name='threads', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'threads', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Message',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('thread', fields.ForeignKeyField('models.Thread', source_field='thread_id', db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.CASCADE)),
                ('author', fields.ForeignKeyField('models.User', source_field='author_id', db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.CASCADE)),
                ('body', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'messages', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SupportRequest',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('family', fields.ForeignKeyField('models.Family', source_field='family_id', db_constraint=True, to_field='id', related_name='support_requests', on_delete=OnDelete.CASCADE)),
                ('child', fields.ForeignKeyField('models.Child', source_field='child_id', db_constraint=True, to_field='id', related_name='support_requests', on_delete=OnDelete.CASCADE)),
                ('advocate', fields.ForeignKeyField('models.Advocate', source_field='advocate_id', db_constraint=True, to_field='id', related_name='support_requests', on_delete=OnDelete.CASCADE)),
                ('thread', fields.ForeignKeyField('models.Thread', source_field='thread_id', db_constraint=True, to_field='id', related_name='requests', on_delete=OnDelete.CASCADE)),
                ('status', fields.CharEnumField(default=RequestStatus.PENDING, description='PENDING: PENDING\nINFO_REQUESTED: INFO_REQUESTED\nACCEPTED: ACCEPTED\nDECLINED: DECLINED\nWITHDRAWN: WITHDRAWN\nEXPIRED: EXPIRED', enum_type=RequestStatus, max_length=16)),
                ('message', fields.TextField(unique=False)),
                ('support_types', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('child_display_name', fields.CharField(max_length=100)),
                ('child_age_years', fields.IntField()),
                ('ehcp_stage', fields.CharEnumField(description='NOT_REQUESTED: NOT_REQUESTED\nASSESSMENT_REQUESTED: ASSESSMENT_REQUESTED\nASSESSMENT_REFUSED: ASSESSMENT_REFUSED\nASSESSING: ASSESSING\nDRAFT_PLAN: DRAFT_PLAN\nFINAL_PLAN: FINAL_PLAN\nANNUAL_REVIEW: ANNUAL_REVIEW\nTRIBUNAL: TRIBUNAL', enum_type=EhcpStage, max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('respond_by', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('responded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('decline_reason', fields.CharEnumField(null=True, description='NO_CAPACITY: NO_CAPACITY\nOUTSIDE_EXPERTISE: OUTSIDE_EXPERTISE\nOUTSIDE_AREA: OUTSIDE_AREA\nCONFLICT_OF_INTEREST: CONFLICT_OF_INTEREST\nOTHER: OTHER', enum_type=DeclineReason, max_length=32)),
                ('decline_message', fields.TextField(default='', unique=False)),
                ('suggested_alternatives', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('open_key', fields.CharField(null=True, unique=True, max_length=100)),
            ],
            options={'table': 'support_requests', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SupportRelationship',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('family', fields.ForeignKeyField('models.Family', source_field='family_id', db_constraint=True, to_field='id', related_name='relationships', on_delete=OnDelete.CASCADE)),
                ('advocate', fields.ForeignKeyField('models.Advocate', source_field='advocate_id', db_constraint=True, to_field='id', related_name='relationships', on_delete=OnDelete.CASCADE)),
                ('child', fields.ForeignKeyField('models.Child', source_field='child_id', db_constraint=True, to_field='id', related_name='relationships', on_delete=OnDelete.CASCADE)),
                ('request', fields.OneToOneField('models.SupportRequest', source_field='request_id', db_constraint=True, to_field='id', related_name='relationship', on_delete=OnDelete.CASCADE)),
                ('thread', fields.ForeignKeyField('models.Thread', source_field='thread_id', db_constraint=True, to_field='id', related_name='relationships', on_delete=OnDelete.CASCADE)),
                ('status', fields.CharEnumField(default=RelationshipStatus.ACTIVE, description='ACTIVE: ACTIVE\nCLOSED: CLOSED', enum_type=RelationshipStatus, max_length=16)),
                ('opened_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('first_advocate_message_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('closed_by', fields.ForeignKeyField('models.User', source_field='closed_by_id', null=True, db_constraint=True, to_field='id', related_name='closed_relationships', on_delete=OnDelete.SET_NULL)),
                ('close_reason', fields.CharEnumField(null=True, description='RESOLVED: RESOLVED\nNO_LONGER_NEEDED: NO_LONGER_NEEDED\nLEGAL_REPRESENTATION: LEGAL_REPRESENTATION\nCHANGING_ADVOCATE: CHANGING_ADVOCATE\nNOT_WORKING_OUT: NOT_WORKING_OUT\nOTHER: OTHER', enum_type=CloseReason, max_length=32)),
                ('close_note', fields.TextField(default='', unique=False)),
                ('active_key', fields.CharField(null=True, unique=True, max_length=100)),
            ],
            options={'table': 'support_relationships', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
