"""The README's and docs/api.md's API examples are what the server really returns
(scripts/api_examples.py writes them); the configuration table (docs/configuration.md) is what the code says."""

import sys
from pathlib import Path

from .conftest import ADMIN_KEY, SAMPLE

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import api_examples  # noqa: E402


def test_examples_match_a_live_server(server_process, files):
    (files.root / "sample_games.csv").write_bytes(files.root.joinpath("sample.csv").read_bytes())
    server = server_process().start()
    readme, api = api_examples.blocks(api_examples.run(server.base, ADMIN_KEY, files.url("sample_games.csv"), SAMPLE))
    hint = "run `python scripts/api_examples.py` and review the diff"
    assert api.strip() == api_examples.block_of(api_examples.API_DOC), f"docs/api.md drifted: {hint}"
    assert readme.strip() == api_examples.block_of(api_examples.README), f"README.md's examples drifted: {hint}"


def test_every_route_has_an_example(client):
    documented = {(m.upper(), p) for p, ops in client.get("/openapi.json").json()["paths"].items() for m in ops}
    shown = {(m, p.split("?")[0]) for m, p, _, _ in api_examples.REQUESTS}
    templated = {(m, p.replace("/1", "/{upload_id}").replace("/20200", "/{app_id}").replace("/alice", "/{name}"))
                 for m, p in shown}
    assert documented <= templated, documented - templated


def test_readme_configuration_table_is_current():
    from gamelens.settings import settings_table

    text = (api_examples.ROOT / "docs" / "configuration.md").read_text()
    block = text[text.index("<!-- settings:start -->") + 23:text.index("<!-- settings:end -->")].strip()
    assert block == settings_table(), "run `gamelens settings-doc` and paste it into docs/configuration.md"


def test_the_readme_is_short():
    assert len(api_examples.README.read_text().splitlines()) < 400
