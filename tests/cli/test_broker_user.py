"""Who the embedded broker runs as, and the directory and binary it runs from."""

from __future__ import annotations

import pwd
import stat
from pathlib import Path

import pytest

from compute.cli.broker_user import (
    BrokerUser,
    install_executable,
    prepare_directory,
    resolve_broker_user,
)
from compute.cli.supervisor import ServiceError
from tests.capabilities import ROOT, requires
from tests.unprivileged import as_a_user

as_root = requires(ROOT, "root (only root switches the broker's user)")


@as_root
@pytest.mark.parametrize("setting", ["nobody", "65534"])
def test_root_names_the_broker_an_unprivileged_user(setting: str) -> None:
    nobody = pwd.getpwnam("nobody")

    assert resolve_broker_user(setting) == BrokerUser("nobody", nobody.pw_uid, nobody.pw_gid)


@as_root
@pytest.mark.parametrize("setting", ["root", "0", "no-such-user-here"])
def test_root_refuses_a_privileged_or_unknown_broker_user(setting: str) -> None:
    with pytest.raises(ServiceError):
        resolve_broker_user(setting)


def test_a_user_runs_the_broker_as_itself() -> None:
    assert as_a_user(lambda: resolve_broker_user("nobody")) is None


@as_root
def test_the_directory_becomes_the_brokers_and_private(tmp_path: Path) -> None:
    user = resolve_broker_user("nobody")
    directory = tmp_path / "redis"
    directory.mkdir(mode=0o755)

    prepare_directory(directory, user)

    info = directory.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (user.uid, user.gid, 0o700)


def test_a_link_in_place_of_the_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "redis").symlink_to(tmp_path / "elsewhere")

    with pytest.raises(ServiceError, match="must be a directory"):
        prepare_directory(tmp_path / "redis", None)


def test_the_binary_is_copied_over_a_planted_link_not_through_it(tmp_path: Path) -> None:
    source = tmp_path / "redis-server"
    source.write_bytes(b"\x7fELF the real one")
    directory = tmp_path / "redis"
    directory.mkdir()
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    (directory / "redis-server").symlink_to(victim)

    copy = install_executable(str(source), directory)

    assert copy == directory / "redis-server"
    assert not copy.is_symlink() and copy.read_bytes() == source.read_bytes()
    assert stat.S_IMODE(copy.stat().st_mode) == 0o755
    assert victim.read_bytes() == b"untouched"
    assert [path.name for path in directory.iterdir()] == ["redis-server"]
