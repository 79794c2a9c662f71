"""Demo data for trying the product: `python server.py seed-demo`. Never run against real data."""

from __future__ import annotations

from datetime import date

from models.accounts import Role, User
from models.families import EhcpStage
from resolvers import accounts, families
from resolvers.services import Services

DEMO_PASSWORD = "demo-password-123"

DEMO_ACCOUNTS = [
    ("family@demo.senvault.test", "Sam Taylor (demo family)", Role.FAMILY),
    ("advocate@demo.senvault.test", "Priya Shah (demo advocate)", Role.ADVOCATE),
]
DEMO_ADMIN = ("admin@demo.senvault.test", "Demo Admin")


async def seed(services: Services) -> list[str]:
    """Create the demo accounts if they are missing; returns lines describing how to sign in."""
    lines: list[str] = []
    for email, name, role in DEMO_ACCOUNTS:
        if await User.exists(email_key=email):
            continue
        signed_in = await accounts.sign_up(services, email, DEMO_PASSWORD, name, role)
        if role is Role.FAMILY:
            viewer = await accounts.authenticate(services, signed_in.token)
            await families.add_child(
                services,
                viewer,
                display_name="Alex",
                date_of_birth=date(2016, 3, 14),
                ehcp_stage=EhcpStage.ASSESSING,
                local_authority="Leeds",
            )
            await families.add_child(
                services,
                viewer,
                display_name="Jo",
                date_of_birth=date(2019, 9, 2),
                ehcp_stage=EhcpStage.NOT_REQUESTED,
                local_authority="Leeds",
            )
    if not await User.exists(email_key=DEMO_ADMIN[0]):
        await accounts.create_admin(services, DEMO_ADMIN[0], DEMO_PASSWORD, DEMO_ADMIN[1])
    lines.append(f"Demo accounts (password for each: {DEMO_PASSWORD}):")
    for email, name, role in DEMO_ACCOUNTS:
        lines.append(f"  {role.value.lower():9} {email}  ({name})")
    lines.append(f"  admin     {DEMO_ADMIN[0]}")
    return lines
