"""REDIS_URL or REDIS_SENTINELS: what the settings accept, and what they refuse with a message."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from subprocesses import ROOT

from bpm import redis_connection
from bpm.redis_connection import MasterConnection, describe, params_from_environment

DEFAULT = "unix:///srv/var/redis/redis.sock?db=0"
SENTINELS = {"REDIS_SENTINELS": "10.0.0.1:26379, 10.0.0.2:26379", "REDIS_SENTINEL_MASTER": "bpm"}


def params(**environ: str) -> dict:
    return params_from_environment(environ, default_url=DEFAULT)


def refusal(**environ: str) -> str:
    with pytest.raises(ImproperlyConfigured) as refused:
        params(**environ)
    return str(refused.value)


def test_without_redis_url_or_sentinels_the_embedded_redis_is_used():
    assert params() == {"URL": DEFAULT}


def test_redis_url_is_used_as_given():
    assert params(REDIS_URL="redis://:secret@redis.internal:6379/2") == {
        "URL": "redis://:secret@redis.internal:6379/2"
    }


def test_a_redis_url_of_another_scheme_is_refused():
    assert "must start with redis://, rediss:// or unix://" in refusal(REDIS_URL="http://x")


def test_sentinels_give_every_address_the_master_and_the_defaults():
    found = params(**SENTINELS)
    assert found["SENTINELS"] == [("10.0.0.1", 26379), ("10.0.0.2", 26379)]
    assert (found["MASTER_NAME"], found["DB"], found["PASSWORD"]) == ("bpm", 0, None)
    assert found["CONNECTION_KWARGS"]["connection_class"] is MasterConnection
    assert found["SENTINEL_KWARGS"]["password"] is None


def test_sentinel_passwords_and_database_are_passed_on():
    found = params(
        **SENTINELS, REDIS_PASSWORD="master-pw", REDIS_SENTINEL_PASSWORD="sentinel-pw", REDIS_DB="3"
    )
    assert (found["PASSWORD"], found["DB"]) == ("master-pw", 3)
    assert found["SENTINEL_KWARGS"]["password"] == "sentinel-pw"


def test_an_ipv6_sentinel_is_written_in_brackets():
    found = params(REDIS_SENTINELS="[::1]:26379", REDIS_SENTINEL_MASTER="bpm")
    assert found["SENTINELS"] == [("::1", 26379)]


def test_redis_url_and_sentinels_together_are_refused():
    message = refusal(REDIS_URL="redis://localhost:6379/0", **SENTINELS)
    assert "REDIS_URL and REDIS_SENTINELS are both set" in message


def test_sentinels_without_a_master_name_are_refused():
    message = refusal(REDIS_SENTINELS="10.0.0.1:26379")
    assert "REDIS_SENTINEL_MASTER is not" in message


@pytest.mark.parametrize(
    ("value", "entry"),
    [
        ("10.0.0.1", "'10.0.0.1'"),
        ("10.0.0.1:sentinel", "'10.0.0.1:sentinel'"),
        ("10.0.0.1:0", "'10.0.0.1:0'"),
        ("10.0.0.1:65536", "'10.0.0.1:65536'"),
        (":26379", "':26379'"),
        ("10.0.0.1:26379,,10.0.0.2:26379", "''"),
    ],
)
def test_a_sentinel_that_is_not_host_and_port_is_named_in_the_refusal(value: str, entry: str):
    message = refusal(REDIS_SENTINELS=value, REDIS_SENTINEL_MASTER="bpm")
    assert f"{entry} is not host:port" in message


def test_a_sentinel_named_twice_is_refused():
    message = refusal(REDIS_SENTINELS="a:26379,a:26379", REDIS_SENTINEL_MASTER="bpm")
    assert "names a sentinel twice" in message


def test_a_database_that_is_not_a_number_is_refused():
    assert "REDIS_DB='two' must be a database number" in refusal(**SENTINELS, REDIS_DB="two")


def test_sentinel_settings_without_sentinels_are_refused_rather_than_ignored():
    message = refusal(REDIS_URL="redis://localhost:6379/0", REDIS_PASSWORD="pw", REDIS_DB="1")
    assert message.startswith("REDIS_PASSWORD, REDIS_DB only apply with REDIS_SENTINELS")


def test_describe_hides_the_password():
    assert describe({"URL": "redis://:secret@redis:6379/0"}) == "redis://:***@redis:6379/0"
    assert describe(params(**SENTINELS, REDIS_PASSWORD="secret")) == (
        "master 'bpm' (db 0) through Sentinel 10.0.0.1:26379,10.0.0.2:26379"
    )


def test_the_settings_refuse_to_load_with_a_malformed_sentinel_list():
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(REDIS_SENTINELS="10.0.0.1", REDIS_SENTINEL_MASTER="bpm", DEBUG="true")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "REDIS_SENTINELS='10.0.0.1': '10.0.0.1' is not host:port" in result.stderr


def settings_in_subprocess(code: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(DEBUG="true", DJANGO_SETTINGS_MODULE="bpm.settings", **environ)
    program = f"import django; django.setup(); from django.conf import settings; {code}"
    return subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_behind_pgbouncer_prepared_statements_and_server_side_cursors_are_off():
    result = settings_in_subprocess(
        "db = settings.DATABASES['default'];"
        " print(db['OPTIONS']['prepare_threshold'], db['DISABLE_SERVER_SIDE_CURSORS'])",
        DATABASE_URL="postgres://bpm@pgbouncer:6432/bpm?prepare_threshold=5",
        BPM_PGBOUNCER="true",
    )
    assert result.stdout.split() == ["None", "True"], result.stderr


def test_pgbouncer_without_postgresql_is_refused():
    result = settings_in_subprocess("", BPM_PGBOUNCER="true")
    assert "BPM_PGBOUNCER=true needs a postgres:// DATABASE_URL" in result.stderr


def test_a_process_rings_every_doorbell_of_a_queue_on_one_client(settings):
    first = redis_connection.queue("default")
    assert redis_connection.queue("default").connection is first.connection
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:1/0"}}
    assert redis_connection.queue("default").connection is not first.connection
