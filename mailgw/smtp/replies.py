"""Every SMTP reply the gateway gives, as named constants: one vocabulary, mapped in one place.

Texts are ASCII: Vietnamese without diacritics, then English. A test checks each code against its
enhanced status code class (tests/smtp/test_replies.py).
"""

from __future__ import annotations

# Success
ACCEPTED = "250 2.0.0 Ok: queued as {queue_id}"
SENDER_OK = "250 2.1.0 Ok"
RECIPIENT_OK = "250 2.1.5 Ok"
AUTH_OK = "235 2.7.0 Xac thuc thanh cong / Authentication successful"

# Client must fix something (permanent)
AUTH_REQUIRED = "530 5.7.0 Can dang nhap truoc khi gui / Authentication required"
AUTH_INVALID = "535 5.7.8 Sai ten dang nhap hoac mat khau / Authentication credentials invalid"
SENDER_NOT_OWNED = ("553 5.7.1 Ban khong duoc gui voi dia chi nay / "
                    "Sender address not owned by the authenticated user")
HEADER_FROM_NOT_OWNED = ("550 5.7.1 Dia chi From khong thuoc ve ban / "
                         "Header From address not owned by the sender")
TWO_FROM = ("550 5.7.1 Thu co nhieu truong From / "
            "Message has more than one From header field")
NO_FROM = "550 5.6.0 Thu thieu truong From / Message has no From header field"
BAD_ADDRESS = "553 5.1.3 Dia chi khong hop le / Invalid address: {why}"
BAD_SENDER_SYNTAX = "501 5.1.7 Dia chi nguoi gui khong hop le / Bad sender address syntax: {why}"
RELAY_DENIED = "550 5.7.1 Khong cho phep chuyen tiep / Relaying denied"
TOO_MANY_RECIPIENTS = "452 4.5.3 Qua nhieu nguoi nhan / Too many recipients"
BAD_ARGUMENT = ("501 5.5.2 Lenh chua ky tu khong hop le / "
                "Syntax error: control characters in command arguments")
TOO_MANY_COMMANDS = "421 4.7.0 Qua nhieu lenh trong phien / Too many commands, closing connection"
TOO_MANY_CONNECTIONS = "421 4.7.0 Qua nhieu ket noi / Too many connections, try again later"
MESSAGE_TOO_BIG = "552 5.3.4 Thu vuot qua dung luong cho phep / Message size exceeds fixed limit"
LINE_TOO_LONG = ("500 5.5.2 Thu co dong qua dai / "
                 "Line too long (RFC 5321 4.5.3.1.6)")
UNPARSABLE = "550 5.6.0 Thu khong dung dinh dang / Malformed message: {why}"
# Policy rejection: the rule's ASCII text ("<vi> / <en>") and the violation reference.
POLICY_REJECTED = "550 5.7.1 {text} (ref {ref})"
DMARC_REJECT = ("550 5.7.1 Thu bi tu choi theo chinh sach DMARC cua ten mien gui / "
                "Rejected by the DMARC policy of the sender's domain")

# Protocol errors: the client sent commands out of order or without TLS (aiosmtpd's own texts,
# reworded by the edge: mailgw.smtp.edge._REWORDED).
STARTTLS_FIRST = ("530 5.7.0 Can bat ma hoa STARTTLS truoc / "
                  "Must issue a STARTTLS command first")
NO_SECURITY = ("554 5.7.0 Lenh bi tu choi vi chua ma hoa / "
               "Command refused due to lack of security")
HELO_FIRST = "503 5.5.1 Can gui lenh {helo} truoc / Send {helo} first"
NESTED_MAIL = "503 5.5.1 Da co lenh MAIL trong giao dich nay / Nested MAIL command"
NEED_MAIL = "503 5.5.1 Can lenh MAIL truoc / Need MAIL command"
NEED_RCPT = "503 5.5.1 Can lenh RCPT truoc / Need RCPT command"
ALREADY_AUTHENTICATED = "503 5.5.1 Da dang nhap roi / Already authenticated"
COMMAND_TOO_LONG = "500 5.5.2 Lenh qua dai / Command line too long"
BAD_SYNTAX = "500 5.5.2 Lenh sai cu phap / Bad syntax"
MAIL_PARAMS_UNKNOWN = ("555 5.5.4 Tham so MAIL FROM khong duoc ho tro / "
                       "MAIL FROM parameters not recognized or not implemented")
RCPT_PARAMS_UNKNOWN = ("555 5.5.4 Tham so RCPT TO khong duoc ho tro / "
                       "RCPT TO parameters not recognized or not implemented")
BAD_BODY_PARAM = ("501 5.5.4 BODY chi nhan 7BIT hoac 8BITMIME / "
                  "BODY can only be one of 7BIT, 8BITMIME")
TLS_UNAVAILABLE = "454 4.7.0 Tam thoi khong ma hoa duoc / TLS not available"
COMMAND_UNKNOWN = "500 5.5.1 Lenh khong duoc ho tro / Command not recognized"

# Try again later (temporary): our own trouble is never a 5xx
INTERNAL_ERROR = ("451 4.3.0 Loi tam thoi cua he thong, vui long gui lai sau / "
                  "Temporary internal error, please retry (ref {ref})")
STORE_UNAVAILABLE = ("451 4.3.0 Loi tam thoi cua he thong, vui long gui lai sau / "
                     "Temporary storage failure, please retry (ref {ref})")
INSPECTION_TIMEOUT = ("451 4.3.0 Chua kiem tra xong noi dung thu, vui long gui lai sau / "
                      "Content inspection timed out, please retry (ref {ref})")
AUTH_UNAVAILABLE = ("454 4.7.0 Tam thoi khong kiem tra duoc mat khau / "
                    "Temporary authentication failure, try again later")
LOW_DISK = ("452 4.3.1 He thong tam thoi het dung luong / "
            "Insufficient system storage, please retry later")
RATE_LIMITED = ("450 4.7.1 Gui qua nhieu thu, vui long thu lai sau / "
                "Sending rate limit exceeded, try again later")
DNS_TEMPFAIL = ("451 4.4.3 Tam thoi khong tra cuu duoc DNS de xac thuc nguoi gui, vui long "
                "gui lai sau / Temporary DNS failure checking the sender, please retry")


def format_reply(template: str, **values: str) -> str:
    """Fill a template; values are made single-line ASCII so that nothing breaks the reply."""
    safe = {k: _ascii_line(v) for k, v in values.items()}
    return template.format(**safe)


def _ascii_line(text: str) -> str:
    clean = "".join(c if 32 <= ord(c) < 127 else "?" for c in str(text))
    return clean[:200]


ALL = {name: value for name, value in globals().items()
       if name.isupper() and isinstance(value, str)}
