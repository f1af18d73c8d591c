"""The API's docs page: Swagger UI from the portal's own static files, nothing fetched from elsewhere."""

from __future__ import annotations

import re

from django.urls import reverse

# Every address the page itself names: src=, href= and url(...) in its markup.
_ADDRESSES = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""")


def _addresses(text: str) -> list[str]:
    return [first or second for first, second in _ADDRESSES.findall(text)]


def test_the_docs_page_has_a_name_the_layout_links_to():
    assert reverse("api:api-docs") == "/api/v1/docs/"


def test_the_docs_page_loads_only_local_static_assets(client, member):
    client.force_login(member)
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    addresses = _addresses(html)
    assert any(address.endswith("swagger-ui-bundle.js") for address in addresses)
    addresses = [address for address in addresses if not address.startswith("#")]  # links within the page
    for address in addresses:
        assert address.startswith("/"), f"{address} is not on this server"
        assert not address.startswith("//"), f"{address} is on another server"
    assert "<script>" not in html  # the start-up script is a file too (?script), so a CSP needs no inline
    for address in addresses:
        asset = client.get(address)
        assert asset.status_code == 200, address
        body = b"".join(asset.streaming_content) if asset.streaming else asset.content
        assert body, address


def test_the_docs_start_up_script_points_at_the_local_schema_and_no_validator(client, member):
    client.force_login(member)
    script = client.get("/api/v1/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    text = script.content.decode()
    assert '"/api/v1/schema/"' in text
    # Swagger UI would otherwise send the schema's address to validator.swagger.io for a badge.
    assert '"validatorUrl": null' in text
    assert "https://" not in text
    assert "http://" not in text
