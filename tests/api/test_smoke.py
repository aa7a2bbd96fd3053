from __future__ import annotations

from tests.conftest import ApiClient, create_function


def test_function_create_and_get(api: ApiClient) -> None:
    function = create_function(api, cpus=2)
    response = api.get(f"/functions/{function['id']}")
    assert response.status_code == 200
    assert response.json()["cpus"] == 2.0
