"""The production stack publishes only nginx: gunicorn never faces clients (docker-compose.yml)."""
import yaml

from testsupport.factories import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def published(service: dict) -> list[str]:
    return [str(port) for port in service.get("ports", [])]


def test_only_nginx_is_published_beyond_loopback():
    public = {name for name, service in COMPOSE["services"].items()
              if any(not port.startswith("127.0.0.1:") for port in published(service))}
    assert public == {"nginx"}
    assert published(COMPOSE["services"]["web"]) == []


def test_nginx_serves_the_repository_config_and_the_web_trusts_exactly_one_proxy():
    nginx = COMPOSE["services"]["nginx"]
    assert any("deploy/nginx.conf.template" in volume for volume in nginx["volumes"])
    assert nginx["environment"]["WEB_UPSTREAM"] == "web:8000"
    assert COMPOSE["services"]["web"]["environment"]["TRUSTED_PROXIES"] == "1"
    # the web keeps the shared settings (merged from the x-app anchor), e.g. the Redis rate-limit storage
    assert COMPOSE["services"]["web"]["environment"]["RATELIMIT_STORAGE_URI"].startswith("redis://")
