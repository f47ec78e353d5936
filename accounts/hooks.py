"""Ordered hook registries through which higher apps take part in account-wide flows.

accounts is the lowest app, yet deleting an account or exporting its data
touches every app. Instead of importing upward, accounts runs whatever the
other apps registered here from their AppConfig.ready():

- `erasure_steps`: what each app does when an account is deleted, in order,
  inside the deletion's one transaction;
- `export_sections`: what each app puts into the "download my data" archive;
- `notice_sender`: how an account notice (export ready, account deleted)
  reaches the outbox (the notifications app).

Adding an export section is one line in the owning app's ready()::

    export_sections.register(ExportSection("api/usage.json", usage_rows, order=70, description="..."))

where ``usage_rows(user)`` returns anything JSON can hold; a generator is
written as a JSON array, row by row, so a large section never sits in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import User


class _Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def order(self) -> int: ...


class Registry[T: _Named]:
    """Items kept in (order, name) order; a second item with the same name is a wiring mistake."""

    def __init__(self, what: str):
        self._what = what
        self._items: dict[str, T] = {}

    def register(self, item: T) -> T:
        existing = self._items.get(item.name)
        if existing is not None and existing != item:
            raise ImproperlyConfigured(f"Two {self._what} are named {item.name!r}.")
        self._items[item.name] = item
        return item

    def unregister(self, name: str) -> None:
        self._items.pop(name, None)

    def __iter__(self) -> Iterator[T]:
        return iter(sorted(self._items.values(), key=lambda item: (item.order, item.name)))

    def names(self) -> list[str]:
        return [item.name for item in self]


# --- Account deletion ------------------------------------------------------------------------


@dataclass
class AccountDeletion:
    """What every erasure step gets: whose account, who is deleting it, and a summary to fill in.

    `actor` is the account holder (settings page), a staff member (admin) or
    None (the system: a shell or a script calling user.delete()). Steps add
    what they did to `summary`, which the farewell notice and the admin's
    message show.
    """

    user: User
    actor: User | None
    via: str
    request: HttpRequest | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    def note(self, line: str) -> None:
        """One line of the farewell notice, in the order the steps ran."""
        self.summary.setdefault("lines", []).append(line)


@dataclass(frozen=True)
class ErasureStep:
    name: str
    run: Callable[[AccountDeletion], None]
    order: int
    # Says what the step will do, for the confirmation pages (settings and admin).
    describe: Callable[[User], str | None] | None = None


erasure_steps: Registry[ErasureStep] = Registry("erasure steps")


# --- Data export ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportSection:
    """One file of the archive: `name` is its path inside the zip."""

    name: str
    build: Callable[[User], Any]
    order: int
    description: str


export_sections: Registry[ExportSection] = Registry("export sections")


# --- Notices --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountNotice:
    """An email about the account, rendered by accounts, delivered through the outbox."""

    to_email: str
    subject: str
    text: str
    html: str
    dedupe_key: str
    # None once the account is gone (the farewell notice).
    recipient_id: int | None


_notice_sender: list[Callable[[AccountNotice], None]] = []


def set_notice_sender(sender: Callable[[AccountNotice], None]) -> None:
    _notice_sender[:] = [sender]


def send_notice(notice: AccountNotice) -> None:
    """Queue the notice in the caller's transaction; without a sender nothing could reach the person."""
    if not _notice_sender:
        raise ImproperlyConfigured("No account notice sender is registered (the notifications app registers one).")
    _notice_sender[0](notice)


__all__ = [
    "AccountDeletion",
    "AccountNotice",
    "ErasureStep",
    "ExportSection",
    "Registry",
    "erasure_steps",
    "export_sections",
    "send_notice",
    "set_notice_sender",
]


# The deletion service, registered by AccountsConfig.ready(): User.delete() and the queryset's delete()
# go through it without accounts.models importing accounts.services (which imports the models).
AccountDeleter = Callable[..., Any]
_account_deleter: list[AccountDeleter] = []


def register_account_deleter(deleter: AccountDeleter) -> None:
    _account_deleter[:] = [deleter]


def delete_through_service(user: User) -> None:
    """Delete one account the one way (accounts.services.delete_account), with the system as the actor."""
    if not _account_deleter:
        raise ImproperlyConfigured("accounts.services.delete_account is not registered: is accounts installed?")
    _account_deleter[0](user=user, actor=None, via="system")
