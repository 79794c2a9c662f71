"""Mail to account holders, through one small interface (`Mailer`).

`MAIL_URL` chooses the transport:
- `console://` (the default) or `console://PATH`: each mail is written as an `.eml` file to a
  folder (`./senvault-mail` by default), where the README's demo reads its links; the log says a
  mail was written and where, never to whom or what it says.
- `smtp://user:password@host:port` (STARTTLS when the server offers it) or `smtps://…` (TLS from
  the start), through aiosmtplib.

A mail is sent after the change that asked for it has committed, from a task of its own: the
request never waits on a mail server. A mail server that does not answer, or answers "try again
later" (4xx), is tried again after 2, 10 and 30 seconds; one that refuses for good (5xx), or is still
failing after that, fails only the mail (logged, without its content), which the account holder
can ask for again. Mails are not kept anywhere meanwhile: their links are single-use credentials,
stored elsewhere only as hashes, so a mail still waiting when the server stops is not sent. No
mail's text, and no token, is ever in a log line: the texts carry single-use links.
"""

from __future__ import annotations

import asyncio
import html
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

log = logging.getLogger("senvault.mail")

DEFAULT_FOLDER = "./senvault-mail"
DEFAULT_SENDER = "SEN Evidence Vault <no-reply@senvault.invalid>"
SMTP_TIMEOUT_SECONDS = 30.0
# Waits before each new try of a mail the server could not take now.
RETRY_DELAYS = (2.0, 10.0, 30.0)
# How long a stopping server waits for mails still being sent or waiting to be tried again.
DRAIN_SECONDS = 5.0


def transient(error: Exception) -> bool:
    """Whether a failed send may work if tried again: no answer, or a 4xx "try again later"."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return all(400 <= r.code < 500 for r in error.recipients)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return 400 <= error.code < 500
    return isinstance(error, (OSError, TimeoutError, aiosmtplib.SMTPException))


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    # The plain-text body; the HTML body is made from the same paragraphs.
    paragraphs: tuple[str, ...]
    # A link the mail is about (reset, verify), shown as a button in HTML and in full in text.
    link: str | None = None
    link_label: str = ""


class Mailer(Protocol):
    async def deliver(self, message: EmailMessage) -> None: ...


class ConsoleMailer:
    """Mails as `.eml` files in a folder (created when missing)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def announce(self) -> None:
        """Said when the server starts: the embedded default suits a developer's machine, but in
        production every reset and verification link would sit in a folder instead of reaching
        its owner."""
        log.warning(
            "MAIL_URL is console: mails, with their reset and verification links, are written to the "
            "folder %s, not sent; set MAIL_URL to an SMTP server in production",
            self.folder,
        )

    async def deliver(self, message: EmailMessage) -> None:
        # Named so that their order by name is the order they were written in.
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
        path = self.folder / name
        await asyncio.to_thread(self._write, path, message.as_bytes())
        log.info("mail %r written to %s", message["Subject"], path)

    def _write(self, path: Path, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


class SmtpMailer:
    """Mails through an SMTP server."""

    def __init__(self, host: str, port: int, username: str | None, password: str | None, tls: bool) -> None:
        self.host, self.port, self.username, self.password, self.tls = host, port, username, password, tls

    async def deliver(self, message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.tls,
            # None: STARTTLS when the server offers it (and credentials are sent only then, unless
            # the server takes them in the clear, which aiosmtplib refuses).
            start_tls=None if not self.tls else False,
            timeout=SMTP_TIMEOUT_SECONDS,
        )
        log.info("mail %r sent through %s:%s", message["Subject"], self.host, self.port)


def mailer_for(url: str) -> Mailer:
    """The transport `MAIL_URL` names; anything else stops the server with a clear message."""
    parts = urlsplit(url)
    if parts.scheme == "console":
        folder = (parts.netloc + parts.path) or DEFAULT_FOLDER
        return ConsoleMailer(Path(folder))
    if parts.scheme in ("smtp", "smtps"):
        if not parts.hostname:
            raise ValueError("MAIL_URL needs a host: smtp://user:password@host:port")
        tls = parts.scheme == "smtps"
        return SmtpMailer(
            parts.hostname,
            parts.port or (465 if tls else 587),
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
            tls,
        )
    raise ValueError(f"MAIL_URL must start console:// or smtp:// (or smtps://), not {parts.scheme}://")


def compose(mail: Mail, sender: str) -> EmailMessage:
    """The message: a plain-text body and an HTML alternative, with every value escaped."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain="senvault")
    text = list(mail.paragraphs)
    if mail.link:
        text.insert(1, f"{mail.link_label}:\n{mail.link}")
    text.append("SEN Evidence Vault")
    # 8bit, not quoted-printable: a link stays whole on its line for anyone reading the raw mail.
    message.set_content("\n\n".join(text) + "\n", cte="8bit")
    body = [f"<p>{html.escape(p)}</p>" for p in mail.paragraphs]
    if mail.link:
        button = (
            f'<p><a href="{html.escape(mail.link, quote=True)}" style="font-weight:bold">'
            f"{html.escape(mail.link_label)}</a></p>"
        )
        body.insert(1, button)
    message.add_alternative(
        '<!doctype html><html><body style="font-family:sans-serif">'
        + "".join(body)
        + "<p>SEN Evidence Vault</p></body></html>",
        subtype="html",
        cte="8bit",
    )
    return message


class Outgoing:
    """Sends mails from tasks of their own, after the change that asked for them has committed."""

    def __init__(
        self, mailer: Mailer, sender: str = DEFAULT_SENDER, retry_delays: tuple[float, ...] = RETRY_DELAYS
    ) -> None:
        self.mailer = mailer
        self.sender = sender
        self.retry_delays = retry_delays
        self._tasks: set[asyncio.Task[None]] = set()

    def send_soon(self, mail: Mail) -> None:
        task = asyncio.get_running_loop().create_task(self._send(compose(mail, self.sender)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, message: EmailMessage) -> None:
        subject = message["Subject"]
        waits = iter(self.retry_delays)
        while True:
            try:
                await self.mailer.deliver(message)
                return
            except (OSError, aiosmtplib.SMTPException, TimeoutError) as error:
                wait = next(waits, None) if transient(error) else None
                if wait is None:
                    log.error("could not send mail %r (%s); the account holder can ask for it again",
                              subject, type(error).__name__)  # fmt: skip
                    return
                log.warning("could not send mail %r now (%s); trying again in %.0f s",
                            subject, type(error).__name__, wait)  # fmt: skip
                await asyncio.sleep(wait)

    async def drain(self) -> None:
        """Wait a little for the mails being sent (the server stopping); give up on the rest."""
        if not self._tasks:
            return
        pending = list(self._tasks)
        _, late = await asyncio.wait(pending, timeout=DRAIN_SECONDS)
        for task in late:
            task.cancel()
        if late:
            log.error(
                "%d mail(s) not sent as the server stopped; the account holders can ask again", len(late)
            )
            await asyncio.gather(*late, return_exceptions=True)
