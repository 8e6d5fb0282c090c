"""Login throttling glue for django-axes."""


def axes_username(request, credentials) -> str | None:
    """The login email, normalised, so every spelling of an address shares one failure count.

    Our login form posts the email as `username`; without this axes would look
    for an `email` field, record failures without a user name and never lock the
    account itself. Lower-casing matches how log-in treats case.
    """
    value = (credentials or {}).get("username") or request.POST.get("username") or ""
    return value.strip().lower() or None
