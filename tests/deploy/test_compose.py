"""docker-compose.yml: Compose spec structure, pinned images, ports, volumes, health, profiles, Besu flags."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.deploy.helpers import (
    BUILT_IMAGE_PREFIX,
    COMPOSE_FILE,
    DOCKERFILE,
    REPO_ROOT,
    active_services,
    documented_variables,
    environment,
    profiles_of,
    published_ports,
    script_of,
    volume_mounts,
)

TOP_LEVEL_KEYS = {"name", "services", "volumes", "networks", "configs", "secrets", "include", "version"}
SERVICE_KEYS = {
    "build", "command", "container_name", "depends_on", "entrypoint", "environment", "env_file", "expose",
    "healthcheck", "image", "networks", "ports", "profiles", "pull_policy", "restart", "stop_grace_period",
    "stop_signal", "user", "volumes", "working_dir", "read_only", "security_opt", "cap_drop", "tmpfs", "logging",
}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
PROFILES = (None, "consortium")
DEFAULT_STACK = {"anvil", "deployer", "certificate-service", "postgres"}
GENERATED_MOUNT = "/consortium"


def _is_one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "no")) == "no"


def _built_here(service: dict[str, Any]) -> bool:
    return "build" in service


def _dockerfile_has_healthcheck() -> bool:
    return any(line.startswith("HEALTHCHECK ") for line in DOCKERFILE.read_text().splitlines())


def _has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck")
    if check is not None:
        return not check.get("disable", False) and bool(check.get("test"))
    return _built_here(service) and _dockerfile_has_healthcheck()


def _besu_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: svc for name, svc in services.items()
        if str(svc.get("image", "")).startswith("hyperledger/besu:") and name.startswith("besu-")
    }


def _generated_dir_target(service: dict[str, Any]) -> str | None:
    for kind, source, target in volume_mounts(service):
        if kind == "bind" and Path(REPO_ROOT, source).resolve() == (REPO_ROOT / "consortium" / "generated"):
            return target
    return None


def test_top_level_follows_the_compose_spec(compose: dict[str, Any]) -> None:
    unknown = {key for key in compose if not key.startswith("x-")} - TOP_LEVEL_KEYS
    assert not unknown, f"not Compose spec top-level elements: {unknown}"
    assert "version" not in compose, "the Compose spec ignores `version`; leave it out"
    assert isinstance(compose["volumes"], dict)


def test_every_service_is_well_formed(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name), name
        unknown = set(service) - SERVICE_KEYS
        assert not unknown, f"{name}: unexpected keys {unknown}"
        assert "image" in service or "build" in service, name
        assert str(service.get("restart", "no")) in {"no", "always", "on-failure", "unless-stopped"}, name
        for key in ("command", "entrypoint"):
            assert isinstance(service.get(key, []), list), f"{name}.{key}: use the exec (list) form"


def test_profiles_split_the_quick_start_from_the_consortium(services: dict[str, dict[str, Any]]) -> None:
    assert set(active_services(services, None)) == DEFAULT_STACK
    used = set().union(*(profiles_of(s) for s in services.values()))
    assert used == {"consortium"}
    consortium_only = set(active_services(services, "consortium")) - DEFAULT_STACK
    assert {"consortium-init", "besu-rpc", "consortium-deployer", "consortium-service", "consortium-postgres"} <= (
        consortium_only
    )
    assert len([n for n in consortium_only if n.startswith("besu-validator")]) >= 4


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, service in services.items():
        image = str(service.get("image", ""))
        assert image, f"{name}: name the image (built images too), so no service runs an untagged image"
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag and tag, f"{name}: {image} has no tag"
        assert tag != "latest" and "latest" not in tag.split("-"), f"{name}: {image} is not pinned"
        assert re.search(r"\d", tag), f"{name}: {image}: a version tag, not a floating name"
        if _built_here(service):
            assert image == f"{BUILT_IMAGE_PREFIX}{version}", f"{name}: built image tagged with the project version"


def test_anvil_image_matches_the_npm_pin(services: dict[str, dict[str, Any]]) -> None:
    package = json.loads((REPO_ROOT / "package.json").read_text())
    anvil_version = package["dependencies"]["@foundry-rs/anvil-linux-amd64"]
    assert services["anvil"]["image"] == f"ghcr.io/foundry-rs/foundry:v{anvil_version}"


@pytest.mark.parametrize("profile", PROFILES)
def test_host_ports_are_unique_and_local(services: dict[str, dict[str, Any]], profile: str | None) -> None:
    seen: dict[int, str] = {}
    for name, service in active_services(services, profile).items():
        for host_ip, port in published_ports(service):
            assert host_ip == "127.0.0.1", f"{name}: publish on 127.0.0.1 only (a reverse proxy fronts it)"
            assert port not in seen, f"host port {port}: {seen.get(port)} and {name}"
            seen[port] = name


def test_named_volumes_are_declared_used_and_keep_state(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose["volumes"])
    used = {source for s in services.values() for kind, source, _ in volume_mounts(s) if kind == "volume"}
    assert used == declared
    targets = {name: {source: target for kind, source, target in volume_mounts(s) if kind == "volume"}
               for name, s in services.items()}
    # Chain state, databases and issuer keys (pki/ in the data dir) survive `docker compose down/up`.
    anvil_state = next(a for a in services["anvil"]["command"] if a.startswith("--state="))
    assert any(anvil_state.removeprefix("--state=").startswith(t + "/") for t in targets["anvil"].values())
    for db in ("postgres", "consortium-postgres"):
        assert "/var/lib/postgresql/data" in targets[db].values(), db
    for service_name, deployer_name in (("certificate-service", "deployer"),
                                        ("consortium-service", "consortium-deployer")):
        data_dir = environment(services[service_name])["TRACECHAIN_DATA_DIR"]
        volume = next(src for src, tgt in targets[service_name].items() if tgt == data_dir)
        assert targets[deployer_name].get(volume) == data_dir, "deployer and service share the data dir"
        assert environment(services[deployer_name])["TRACECHAIN_DATA_DIR"] == data_dir
    for name in _besu_services(services):
        assert "/data" in targets[name].values(), name
    assert len({next(iter(targets[n])) for n in _besu_services(services)}) == len(_besu_services(services))


def test_long_running_services_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if _is_one_shot(service):
            continue
        assert _has_healthcheck(service), f"{name} needs a healthcheck"
        check = service.get("healthcheck")
        if check is not None:
            assert check["test"][0] in {"CMD", "CMD-SHELL"}, name


def test_depends_on_uses_conditions_within_the_same_profile(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs the long form with conditions"
        for dependency, spec in depends.items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            condition = spec["condition"]
            assert condition in CONDITIONS, f"{name} → {dependency}: {condition}"
            target = services[dependency]
            if condition == "service_healthy":
                assert _has_healthcheck(target), f"{name} waits for {dependency}'s health, which has no check"
            if condition == "service_completed_successfully":
                assert _is_one_shot(target), f"{name} waits for {dependency} to exit, but it restarts"
            assert profiles_of(target) <= profiles_of(service) or not profiles_of(target), (
                f"{name} depends on {dependency} of another profile"
            )
    assert services["certificate-service"]["depends_on"]["deployer"]["condition"] == "service_completed_successfully"
    assert services["consortium-service"]["depends_on"]["consortium-deployer"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["consortium-deployer"]["depends_on"]["besu-rpc"]["condition"] == "service_healthy"


def test_service_environment_is_documented(services: dict[str, dict[str, Any]]) -> None:
    documented = documented_variables((REPO_ROOT / "docs" / "interfaces.md").read_text(encoding="utf-8"))
    readme = REPO_ROOT / "README.md"
    readme_vars = documented_variables(readme.read_text(encoding="utf-8")) if readme.exists() else set()
    assert "TRACECHAIN_RPC_URL" in documented
    for name, service in services.items():
        if not _built_here(service):
            continue
        env = set(environment(service))
        assert env, name
        assert env <= documented, f"{name}: undocumented in docs/interfaces.md: {env - documented}"
        if readme_vars:
            assert env <= readme_vars, f"{name}: missing from README's table: {env - readme_vars}"


def test_each_stack_points_the_service_at_its_own_chain(services: dict[str, dict[str, Any]]) -> None:
    assert environment(services["certificate-service"])["TRACECHAIN_RPC_URL"] == "http://anvil:8545"
    assert environment(services["deployer"])["TRACECHAIN_RPC_URL"] == "http://anvil:8545"
    assert "--port=8545" in services["anvil"]["command"] and "--host=0.0.0.0" in services["anvil"]["command"]
    assert environment(services["consortium-service"])["TRACECHAIN_RPC_URL"] == "http://besu-rpc:8545"
    assert environment(services["consortium-deployer"])["TRACECHAIN_RPC_URL"] == "http://besu-rpc:8545"
    for name in ("certificate-service", "consortium-service"):
        env = environment(services[name])
        assert env["TRACECHAIN_HTTP_HOST"] == "0.0.0.0"
        assert env["TRACECHAIN_DATABASE_URL"].startswith("postgresql+psycopg://")
        published = published_ports(services[name])
        assert len(published) == 1
        assert env["TRACECHAIN_PUBLIC_URL"] == f"http://127.0.0.1:{published[0][1]}"
    assert "@postgres:5432/" in environment(services["certificate-service"])["TRACECHAIN_DATABASE_URL"]
    assert "@consortium-postgres:5432/" in environment(services["consortium-service"])["TRACECHAIN_DATABASE_URL"]


def test_besu_nodes_enforce_registry_permissioning(services: dict[str, dict[str, Any]]) -> None:
    besu = _besu_services(services)
    assert len([n for n in besu if n.startswith("besu-validator")]) >= 4 and "besu-rpc" in besu
    for name, service in besu.items():
        assert profiles_of(service) == {"consortium"}, name
        assert service["entrypoint"] in (["/bin/bash", "-c"], ["bash", "-c"]), name
        assert _generated_dir_target(service) == GENERATED_MOUNT, name
        script = script_of(service)
        assert f'registry="$(cat {GENERATED_MOUNT}/registry-address)"' in script, name
        flags = set(re.findall(r"(--[a-zA-Z0-9-]+)(?:=(\S+))?", script))
        flag_map = {flag: value for flag, value in flags}
        assert flag_map["--permissions-accounts-contract-enabled"] == "true", name
        assert flag_map["--permissions-accounts-contract-address"] == '"$registry"', name
        assert flag_map["--min-gas-price"] == "0", name
        assert flag_map["--genesis-file"] == f"{GENERATED_MOUNT}/genesis.json", name
        assert flag_map["--static-nodes-file"] == f"{GENERATED_MOUNT}/static-nodes.json", name
        assert flag_map["--permissions-nodes-config-file-enabled"] == "true", name
        assert flag_map["--permissions-nodes-config-file"] == f"{GENERATED_MOUNT}/permissions_config.toml", name
        assert flag_map["--Xdns-enabled"] == "true", "enode URLs name compose hosts"
        assert "BESU_RPC_HTTP_API" in environment(service), name
    assert "ADMIN" not in environment(besu["besu-rpc"])["BESU_RPC_HTTP_API"].split(","), "RPC node: no admin API"


def test_generator_hosts_are_the_compose_service_names(
    services: dict[str, dict[str, Any]], generated_consortium: Any
) -> None:
    besu = _besu_services(services)
    hosts = {node.enode(30303).rsplit("@", 1)[1] for node in generated_consortium.nodes}
    assert hosts == {f"{name}:30303" for name in besu}
    init_script = script_of(services["consortium-init"])
    for node in generated_consortium.nodes:
        assert node.name in init_script, f"consortium-init does not install {node.name}'s key"


def test_keys_reach_the_containers_through_the_init_job(services: dict[str, dict[str, Any]]) -> None:
    init = services["consortium-init"]
    assert _is_one_shot(init) and init["user"] == "root"
    assert _generated_dir_target(init) == GENERATED_MOUNT
    for kind, _source, _target in volume_mounts(init):
        assert kind in {"bind", "volume"}
    for name in _besu_services(services):
        depends = services[name]["depends_on"]["consortium-init"]["condition"]
        assert depends == "service_completed_successfully", name
    dockerfile_uid = re.search(r"--uid (\d+)", DOCKERFILE.read_text()).group(1)  # type: ignore[union-attr]
    assert f"-o {dockerfile_uid} -g {dockerfile_uid}" in script_of(init), "deployer key owned by the image user"
    for name, service in services.items():
        for mount in service.get("volumes") or []:
            if isinstance(mount, dict) and mount["type"] == "bind":
                assert mount.get("read_only") is True, f"{name}: the generated files are mounted read-only"
                assert mount.get("bind", {}).get("create_host_path") is False, name


def test_consortium_deployer_refuses_an_unexpected_registry_address(services: dict[str, dict[str, Any]]) -> None:
    deployer = services["consortium-deployer"]
    assert _generated_dir_target(deployer) == GENERATED_MOUNT
    script = script_of(deployer)
    assert "tracechain deploy" in script
    assert f'--expect-registry "$(cat {GENERATED_MOUNT}/registry-address)"' in script
    assert "TRACECHAIN_DEPLOYER_KEY" in script and "export TRACECHAIN_DEPLOYER_KEY" in script
    assert services["deployer"]["command"] == ["tracechain", "deploy"]


def _compose_command() -> list[str] | None:
    """A Compose v2 client that works here: `docker compose` or a standalone `docker-compose` v2."""
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for command in candidates:
        try:
            result = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if result.returncode == 0 and re.match(r"v?2\.", result.stdout.strip()):
            return command
    return None


@pytest.mark.parametrize("profile", PROFILES)
def test_docker_compose_config_accepts_the_file(profile: str | None) -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("no Docker Compose v2 client here (`docker compose` / `docker-compose`); static checks only")
    args = [*command, "-f", str(COMPOSE_FILE)]
    if profile:
        args += ["--profile", profile]
    result = subprocess.run([*args, "config", "-q"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 0, result.stderr


def test_generated_files_stay_out_of_git(generator: ModuleType) -> None:
    assert generator.DEFAULT_OUT == REPO_ROOT / "consortium" / "generated"
    assert "consortium/generated/" in (REPO_ROOT / ".gitignore").read_text().splitlines()


def test_operator_docs_match_the_compose_file(services: dict[str, dict[str, Any]]) -> None:
    docs = (REPO_ROOT / "docs" / "consortium.md").read_text(encoding="utf-8")
    assert services["besu-rpc"]["image"] in docs, "docs/consortium.md names the pinned Besu release"
    for name in ("certificate-service", "consortium-service", "besu-rpc"):
        port = published_ports(services[name])[0][1]
        assert f"127.0.0.1:{port}" in docs, f"{name}'s port {port} in docs/consortium.md"
    for command in ("docker compose up -d", "docker compose --profile consortium up -d",
                    "python scripts/generate_consortium.py", "qbft_proposeValidatorVote", "transactionAllowed"):
        assert command in docs, command
