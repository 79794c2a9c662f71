from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from models.notifications import NotificationKind
from models.tickets import SlaClockKind, TicketOutcome, TicketStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0003_vault_grants_reviews')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ChecklistTemplate',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('advocate', fields.ForeignKeyField('models.Advocate', source_field='advocate_id', db_constraint=True, to_field='id', related_name='checklist_templates', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=100)),
                ('items', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'checklist_templates', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Ticket',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('advocate', fields.ForeignKeyField('models.Advocate', source_field='advocate_id', db_constraint=True, to_field='id', related_name='tickets', on_delete=OnDelete.CASCADE)),
                ('family', fields.ForeignKeyField('models.Family', source_field='family_id', db_constraint=True, to_field='id', related_name='tickets', on_delete=OnDelete.CASCADE)),
                ('request', fields.OneToOneField('models.SupportRequest', source_field='request_id', db_constraint=True, to_field='id', related_name='ticket', on_delete=OnDelete.CASCADE)),
                ('relationship', fields.OneToOneField('models.SupportRelationship', source_field='relationship_id', null=True, db_constraint=True, to_field='id', related_name='ticket', on_delete=OnDelete.SET_NULL)),
                ('status', fields.CharEnumField(default=TicketStatus.NEW, description='NEW: NEW\nWAITING_ON_FAMILY: WAITING_ON_FAMILY\nFAMILY_REPLIED: FAMILY_REPLIED\nACTIVE: ACTIVE\nCLOSED: CLOSED\nRESOLVED: RESOLVED', enum_type=TicketStatus, max_length=24)),
                ('next_sla_due_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('next_sla_at_risk_from', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_family_message_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_advocate_message_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('outcome', fields.CharEnumField(null=True, description='RESOLVED: RESOLVED\nREFERRED_ELSEWHERE: REFERRED_ELSEWHERE\nNO_FURTHER_ACTION: NO_FURTHER_ACTION\nFAMILY_DISENGAGED: FAMILY_DISENGAGED\nOTHER: OTHER', enum_type=TicketOutcome, max_length=24)),
                ('resolution_note', fields.TextField(default='', unique=False)),
                ('resolved_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'tickets', 'app': 'models', 'indexes': [Index(fields=['advocate_id', 'status']), Index(fields=['advocate_id', 'next_sla_due_at', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ChecklistItem',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ticket', fields.ForeignKeyField('models.Ticket', source_field='ticket_id', db_constraint=True, to_field='id', related_name='checklist_items', on_delete=OnDelete.CASCADE)),
                ('text', fields.CharField(max_length=500)),
                ('position', fields.IntField()),
                ('done', fields.BooleanField(default=False)),
                ('done_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('done_by', fields.ForeignKeyField('models.User', source_field='done_by_id', null=True, db_constraint=True, to_field='id', related_name='ticked_items', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'checklist_items', 'app': 'models', 'indexes': [Index(fields=['ticket_id', 'position'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SlaClock',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ticket', fields.ForeignKeyField('models.Ticket', source_field='ticket_id', db_constraint=True, to_field='id', related_name='sla_clocks', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='FIRST_RESPONSE: FIRST_RESPONSE\nFIRST_MESSAGE: FIRST_MESSAGE', enum_type=SlaClockKind, max_length=24)),
                ('target_hours', fields.IntField()),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('at_risk_from', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('at_risk_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('breached_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('met_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('stopped_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'sla_clocks', 'app': 'models', 'unique_together': (('ticket_id', 'kind'),), 'indexes': [Index(fields=['met_at', 'stopped_at', 'due_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TicketNote',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ticket', fields.ForeignKeyField('models.Ticket', source_field='ticket_id', db_constraint=True, to_field='id', related_name='notes', on_delete=OnDelete.CASCADE)),
                ('author', fields.ForeignKeyField('models.User', source_field='author_id', db_constraint=True, to_field='id', related_name='ticket_notes', on_delete=OnDelete.CASCADE)),
                ('body', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'ticket_notes', 'app': 'models', 'indexes': [Index(fields=['ticket_id', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddIndex(
            model_name='Message',
            index=Index(fields=['thread_id', 'id']),
        ),
        ops.AddIndex(
            model_name='Message',
            index=Index(fields=['thread_id', 'author_id', 'id']),
        ),
        ops.AlterField(
            model_name='Notification',
            name='kind',
            field=fields.CharEnumField(description='NEW_SIGN_IN: NEW_SIGN_IN\nNEW_SUPPORT_REQUEST: NEW_SUPPORT_REQUEST\nSUPPORT_REQUEST_ACCEPTED: SUPPORT_REQUEST_ACCEPTED\nSUPPORT_REQUEST_DECLINED: SUPPORT_REQUEST_DECLINED\nINFORMATION_REQUESTED: INFORMATION_REQUESTED\nSUPPORT_REQUEST_WITHDRAWN: SUPPORT_REQUEST_WITHDRAWN\nSUPPORT_REQUEST_EXPIRED: SUPPORT_REQUEST_EXPIRED\nMESSAGE_RECEIVED: MESSAGE_RECEIVED\nRELATIONSHIP_ENDED: RELATIONSHIP_ENDED\nACCESS_REVOKED: ACCESS_REVOKED\nVERIFICATION_DECIDED: VERIFICATION_DECIDED\nSLA_AT_RISK: SLA_AT_RISK\nSLA_BREACHED: SLA_BREACHED', enum_type=NotificationKind, max_length=40),
        ),
    ]
