"""analytics.js served from the pinned npm package (events/cdn.py): the paths Segment's snippet asks for."""

import gzip
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import node_package

REPO = Path(__file__).resolve().parents[2]
NEXT_VERSION = "1.84.3"


@pytest.fixture
def dist():
    return node_package("@segment/analytics-next", NEXT_VERSION) / "dist" / "umd"


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_the_packages_are_pinned_and_not_committed():
    manifest = json.loads((REPO / "package.json").read_text())
    assert manifest["dependencies"] == {"@segment/analytics-next": NEXT_VERSION}
    assert manifest["devDependencies"] == {"@segment/analytics-node": "3.1.0"}
    lock = json.loads((REPO / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/@segment/analytics-next"]["version"] == NEXT_VERSION
    assert lock["node_modules/@segment/analytics-node"]["version"] == "3.1.0"
    ignored = subprocess.run(["git", "check-ignore", "-q", "node_modules/x.js"], cwd=REPO)
    assert ignored.returncode == 0, "node_modules/ must be git-ignored"


def test_analytics_min_js_is_the_standalone_build(client, dist):
    response = client.get("/analytics.js/v1/wk_anything/analytics.min.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert "max-age=300" in response["Cache-Control"] and "public" in response["Cache-Control"]
    assert response["Access-Control-Allow-Origin"] == "*"
    assert _body(response) == (dist / "standalone.js").read_bytes()
    zipped = client.get("/analytics.js/v1/wk_anything/analytics.min.js", HTTP_ACCEPT_ENCODING="gzip, br")
    assert zipped["Content-Encoding"] == "gzip" and "Accept-Encoding" in zipped["Vary"]
    assert gzip.decompress(_body(zipped)) == (dist / "standalone.js").read_bytes()


def test_every_bundle_the_build_names_is_served(client, dist):
    # webpack's chunk map in the build: {id: "name"} and {id: "hash"} joined as name.bundle.hash.js.
    build = (dist / "standalone.js").read_text()
    assert 'analytics-next/bundles/"' in build
    bundles = sorted(p.name for p in dist.glob("*.bundle.*.js"))
    assert {"queryString", "auto-track", "schemaFilter"} <= {name.split(".")[0] for name in bundles}
    for name in bundles:
        assert re.search(re.escape(name.split(".")[2]), build), f"{name}: its hash is not in the build"
        response = client.get(f"/analytics-next/bundles/{name}")
        assert response.status_code == 200, name
        assert response["Content-Type"] == "text/javascript; charset=utf-8"
        assert "immutable" in response["Cache-Control"] and "max-age=31536000" in response["Cache-Control"]
        assert _body(response) == (dist / name).read_bytes()
    assert client.get(f"/analytics-next/bundles/{bundles[0]}.map")["Content-Type"] == "application/json"


@pytest.mark.parametrize("path", [
    "/analytics-next/bundles/nope.bundle.0123abcd.js",
    "/analytics-next/bundles/standalone.js",
    "/analytics-next/bundles/..%2Fstandalone.js",
    "/analytics-next/bundles/../../package.json",
    "/analytics.js/v1/wk_x/index.js",
    "/analytics.js/v1/wk_x/analytics.min.js.gz",
])
def test_only_the_builds_files_are_served(client, dist, path):
    assert client.get(path).status_code == 404


def test_it_only_reads(client, dist):
    assert client.post("/analytics.js/v1/wk_x/analytics.min.js").status_code == 405
    assert client.head("/analytics.js/v1/wk_x/analytics.min.js").status_code == 200


def test_without_the_package_it_says_how_to_install_it(client, settings, tmp_path):
    settings.ANALYTICS_NEXT_DIST = str(tmp_path)
    response = client.get("/analytics.js/v1/wk_x/analytics.min.js")
    assert response.status_code == 404
    assert b"make install" in response.content and b"npm" in response.content
