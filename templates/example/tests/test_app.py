"""Smoke tests run inside the new container before a cutover switches traffic to it."""
import json
import os
import urllib.request


def test_health_answers_ok():
    with urllib.request.urlopen(f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health", timeout=5) as response:
        body = json.load(response)
    assert response.status == 200
    assert body["status"] == "ok"
    assert body["database"] == "ok"
