import pytest


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # The named actors are created with real passwords; PBKDF2 would make every test slow.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
