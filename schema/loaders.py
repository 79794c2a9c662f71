"""Per-request dataloaders (per event on websockets), over the batch functions in resolvers/."""

from __future__ import annotations

from strawberry.dataloader import DataLoader

from models.accounts import User
from models.families import Child, Family
from resolvers import loaders


class Loaders:
    def __init__(self) -> None:
        self.user: DataLoader[int, User | None] = DataLoader(loaders.users_by_id)
        self.family: DataLoader[int, Family | None] = DataLoader(loaders.families_by_id)
        self.family_by_user: DataLoader[int, Family | None] = DataLoader(loaders.families_by_user_id)
        self.children: DataLoader[int, list[Child]] = DataLoader(loaders.children_by_family_id)
