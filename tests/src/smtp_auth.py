#!/usr/bin/env python3
"""A mail relay as an organisation runs one: SMTP with STARTTLS required and AUTH required over
TLS (aiosmtpd, Debian's python3-aiosmtpd), delivering into a Maildir.
Usage: smtp_auth.py PORT CERT KEY MAILDIR USER PASSWORD"""
import asyncio
import mailbox
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

port, cert, key, maildir, user, password = sys.argv[1:7]


def authenticate(server, session, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password:
        return AuthResult(success=True)
    return AuthResult(success=False, handled=False)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
controller = Controller(
    Mailbox(maildir),
    hostname="127.0.0.1",
    port=int(port),
    server_kwargs={
        "tls_context": context,
        "require_starttls": True,
        "authenticator": authenticate,
        "auth_required": True,
        "auth_require_tls": True,
    },
)
controller.start()
try:
    asyncio.get_event_loop().run_forever()
except KeyboardInterrupt:
    pass
