"""The secret key: never a published default; an instance without one makes and keeps its own."""
import stat

import pytest

import config


def test_an_instance_without_a_secret_key_makes_its_own_and_keeps_it(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path / "instance")
    first, again = config.Config().SECRET_KEY, config.Config().SECRET_KEY
    assert first == again and len(first) >= 40 and first not in config.KNOWN_KEYS
    key_file = tmp_path / "instance" / "secret_key"
    assert key_file.read_text() == first and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path / "other")
    assert config.Config().SECRET_KEY != first  # another instance: another key


@pytest.mark.parametrize("known", sorted(config.KNOWN_KEYS))
def test_a_published_key_is_refused(monkeypatch, known):
    monkeypatch.setenv("SECRET_KEY", known)
    with pytest.raises(ValueError, match="SECRET_KEY"):
        config.Config()
