"""What a partner sees of personal data: enough to recognise, not enough to contact."""

from __future__ import annotations


def mask_email(email: str | None) -> str | None:
    """`jane.doe@example.com` → `j•••@example.com`."""
    if not email or "@" not in email:
        return None if not email else "•••"
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}"


def mask_phone(phone: str | None) -> str | None:
    """`+442079460018` → `+44•••••••18`."""
    if not phone:
        return None
    return phone[:3] + "•" * max(len(phone) - 5, 1) + phone[-2:]
