"""A client generated from /api/schema/ (openapi-python-client, pinned in requirements.txt) on a live server.

A sync job's generated client must handle the error statuses (a 404, a 401) as typed
`Error` objects instead of raising UnexpectedStatus, and page with the cursor.
Run on a chosen port with `--liveserver=127.0.0.1:8114` (the default picks a free one).
"""

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from accounts.models import ApiKeyKind
from accounts.services import api_key_create
from scoring import engine, services

from .conftest import add_counts, make_account, make_model, make_users

pytestmark = pytest.mark.django_db(transaction=True)


def _generate(schema_url: str, where) -> str:
    # The venv's own script when the venv is not on PATH.
    tool = shutil.which("openapi-python-client") or str(Path(sys.executable).parent / "openapi-python-client")
    out = where / "client"
    subprocess.run(  # noqa: S603 - our own pinned tool and a temporary path
        [tool, "generate", "--url", schema_url, "--output-path", str(out), "--meta", "none"],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    sys.path.insert(0, str(where))
    return "client"


def test_a_generated_client_handles_404_401_and_pages(live_server, tenant, acts, tmp_path):
    account = make_account(tenant, "acme")
    users = make_users(tenant, *[f"u{i}" for i in range(5)], account=account)
    today = tenant.today()
    add_counts(tenant, [(u, acts["Logged in"], today, 1 + i) for i, u in enumerate(users.values())])
    model = make_model(tenant, {acts["Logged in"]: 1})
    services.scoring_model_publish(model=model, backfill_days=1)
    engine.compute_day(model, today)
    read_key = api_key_create(tenant=tenant, kind=ApiKeyKind.READ, name="sync")[1]

    package = _generate(f"{live_server.url}/api/schema/?format=json", tmp_path)
    try:
        root = importlib.import_module(package)
        users_list = importlib.import_module(f"{package}.api.default.users_list")
        users_retrieve = importlib.import_module(f"{package}.api.default.users_retrieve")
        error_model = importlib.import_module(f"{package}.models.error").Error
    except ModuleNotFoundError:
        # The tag decides the module folder: find the operations wherever they were put.
        api_root = importlib.import_module(f"{package}.api")
        names = [p.name for p in Path(api_root.__path__[0]).iterdir() if p.is_dir()]
        tag = next(n for n in names if (tmp_path / "client" / "api" / n / "users_list.py").exists())
        users_list = importlib.import_module(f"{package}.api.{tag}.users_list")
        users_retrieve = importlib.import_module(f"{package}.api.{tag}.users_retrieve")
        error_model = importlib.import_module(f"{package}.models.error").Error
        root = importlib.import_module(package)

    client = root.AuthenticatedClient(base_url=live_server.url, token=read_key, raise_on_unexpected_status=True)
    missing = users_retrieve.sync(user_id="nobody", client=client)
    assert isinstance(missing, error_model) and missing.code == "not_found"

    anonymous = root.Client(base_url=live_server.url, raise_on_unexpected_status=True)
    refused = users_retrieve.sync_detailed(user_id="u1", client=anonymous)
    assert refused.status_code == 401 and isinstance(refused.parsed, error_model)
    assert refused.parsed.code == "not_authenticated"

    bad = users_list.sync(client=client, page_size=0)
    assert isinstance(bad, error_model) and bad.field == "page_size"

    seen, cursor = [], None
    while True:
        page = users_list.sync(client=client, page_size=2, **({"cursor": cursor} if cursor else {}))
        seen += [row.user_id for row in page.results]
        if not page.next_:
            break
        cursor = page.next_.split("cursor=")[1].split("&")[0]
    assert seen == ["u4", "u3", "u2", "u1", "u0"]
