"""The tools' profiles files: valid, equal concurrency, real setting names, clear errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from benchmarks.environments import REPO_ROOT
from benchmarks.tools import TOOLS
from benchmarks.tools.profiles import (
    ProfilesError,
    default_profiles,
    load_profiles,
    load_profiles_file,
    load_task_slots,
    profiles_file,
    profiles_of,
    settings,
    task_concurrency,
)
from shared_ml.concurrency import DEFAULT_TASK_CONCURRENCY
from shared_ml.concurrency import task_concurrency as env_concurrency
from shared_ml.spec import PIPELINE

AIRFLOW_CONFIG = (
    REPO_ROOT / ".venvs/airflow/lib/python3.11/site-packages/airflow/config_templates/config.yml"
)
PREFECT_PYTHON = REPO_ROOT / ".venvs/prefect/bin/python"


def knob_names(tool: str) -> set[str]:
    loaded = load_profiles(tool)
    names = set(loaded.base) | set(loaded.concurrency.settings)
    for profile in loaded.profiles.values():
        names |= set(profile.knobs)
    return names


@pytest.mark.parametrize("tool", TOOLS)
def test_every_tool_has_a_valid_profiles_file_with_defaults(tool: str) -> None:
    assert profiles_file(tool).is_file()
    assert "defaults" in profiles_of(tool) and "defaults" in default_profiles(tool)


def test_tools_without_a_knob_run_only_their_defaults() -> None:
    for tool in ("local", "kubeflow"):
        assert profiles_of(tool) == ("defaults",)
        assert load_profiles(tool).note  # says why


def test_the_preload_trick_is_a_labelled_variant_outside_tuned() -> None:
    assert "ORCHBENCH_AIRFLOW_PRELOAD" not in settings("airflow", "tuned")
    assert "tuned+preload" in profiles_of("airflow")
    assert "tuned+preload" not in default_profiles("airflow")
    variant = settings("airflow", "tuned+preload")
    assert settings("airflow", "tuned").items() <= variant.items()  # tuned, plus the preload
    modules = variant["ORCHBENCH_AIRFLOW_PRELOAD"].split(",")
    assert {f"shared_ml.steps.{step}" for step in PIPELINE.step_names} <= set(modules)


def test_concurrency_is_one_number_for_every_tool_that_can_set_it() -> None:
    slots = load_task_slots()
    assert slots == DEFAULT_TASK_CONCURRENCY == env_concurrency({})
    for tool in ("local", "airflow", "prefect"):
        assert task_concurrency(tool) == slots
        carried = load_profiles(tool).concurrency.settings
        assert carried and all(settings(tool, "defaults")[n] == str(slots) for n in carried)
    # kfp.local fixes its own number; the file says so rather than setting anything
    assert load_profiles("kubeflow").concurrency.settings == {}
    assert task_concurrency("kubeflow") == load_profiles("kubeflow").concurrency.slots


@pytest.mark.skipif(not AIRFLOW_CONFIG.is_file(), reason="no airflow environment")
def test_airflow_names_are_options_of_the_installed_airflow() -> None:
    config = yaml.safe_load(AIRFLOW_CONFIG.read_text(encoding="utf-8"))
    for name in knob_names("airflow"):
        if name.startswith("ORCHBENCH_"):
            continue  # orchbench's own variable (the labelled preload variant)
        _, section, option = name.lower().split("__")
        assert option in config.get(section, {}).get("options", {}), name


@pytest.mark.skipif(not PREFECT_PYTHON.is_file(), reason="no prefect environment")
def test_prefect_names_are_settings_of_the_installed_prefect() -> None:
    names = sorted(n for n in knob_names("prefect") if n.startswith("PREFECT_"))
    script = (
        "import json, sys, prefect.settings as s\n"
        "print(json.dumps([n for n in sys.argv[1:] if not hasattr(s, n)]))"
    )
    done = subprocess.run(
        [str(PREFECT_PYTHON), "-c", script, *names], capture_output=True, text=True, check=True
    )
    assert names and json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_every_knob_has_a_documentation_link_of_its_tool() -> None:
    sites = {"airflow": "https://airflow.apache.org/docs/", "prefect": "https://docs.prefect.io/"}
    for tool, site in sites.items():
        for profile in load_profiles(tool).profiles.values():
            for name, knob in profile.knobs.items():
                assert knob.doc.startswith(site), (tool, name)


# --- errors name the file and the key -------------------------------------------------
VALID = {
    "tool": "demo",
    "concurrency": {"settings": {"DEMO_THREADS": None}, "note": "threads"},
    "base": {"DEMO_HOST": {"value": "127.0.0.1", "reason": "local only"}},
    "profiles": {
        "defaults": {"description": "the tool's defaults"},
        "tuned": {
            "description": "faster",
            "knobs": {
                "DEMO_POLL": {"value": "1", "reason": "poll often", "doc": "https://demo.dev/p"}
            },
        },
    },
}


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def changed(path: list[str], value: object) -> dict:
    data = json.loads(json.dumps(VALID))
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


def test_a_valid_file_loads(tmp_path: Path) -> None:
    loaded = load_profiles_file(write(tmp_path, VALID))
    assert loaded.profiles["tuned"].knobs["DEMO_POLL"].value == "1"


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (changed(["profiles", "tuned", "knobs", "DEMO_POLL", "doc"], None), "DEMO_POLL.doc"),
        (changed(["profiles", "tuned", "knobs", "DEMO_POLL", "doc"], "see the docs"), "doc"),
        (changed(["profiles", "tuned", "knobs", "DEMO_POLL", "value"], 1), "DEMO_POLL.value"),
        (changed(["profiles", "tuned", "knobs", "DEMO_POLL", "reason"], ""), "reason"),
        (changed(["profiles", "tuned", "knobs", "DEMO_POLL", "why"], "x"), "DEMO_POLL.why"),
        (changed(["base", "DEMO_HOST", "reason"], None), "base.DEMO_HOST.reason"),
        (changed(["profiles", "defaults"], None), "'defaults' profile is required"),
        (changed(["profiles", "tuned", "extends"], "fast"), "profiles.tuned.extends"),
        (changed(["profiles", "tuned", "extends"], "tuned"), "a cycle"),
        (
            changed(
                ["profiles", "tuned", "knobs", "DEMO_HOST"],
                VALID["profiles"]["tuned"]["knobs"]["DEMO_POLL"],
            ),
            "profiles.tuned.knobs.DEMO_HOST: already set for every profile",
        ),
        (changed(["concurrency", "slots"], 2), "either 'settings'"),
        (changed(["concurrency", "note"], None), "concurrency.note"),
        (
            changed(["profiles", "defaults", "knobs"], VALID["profiles"]["tuned"]["knobs"]),
            "set no knobs",
        ),
    ],
)
def test_a_bad_file_fails_naming_file_and_key(tmp_path: Path, data: dict, where: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ProfilesError) as caught:
        load_profiles_file(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert where in str(caught.value)


def test_unreadable_files_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ProfilesError, match="file not found"):
        load_profiles_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tool: [unclosed\n", encoding="utf-8")
    with pytest.raises(ProfilesError, match=r"bad\.yaml: not valid YAML"):
        load_profiles_file(bad)
    with pytest.raises(ProfilesError, match="expected a mapping at the top level"):
        load_profiles_file(write(tmp_path, ["a", "list"]))
    slots = tmp_path / "concurrency.yaml"
    slots.write_text("task_slots: 0\n", encoding="utf-8")
    with pytest.raises(ProfilesError, match=r"concurrency\.yaml: task_slots: expected a whole"):
        load_task_slots(slots)


def test_an_unknown_profile_names_the_file_and_the_choices() -> None:
    with pytest.raises(ProfilesError, match=r"prefect/profiles\.yaml: no profile 'fast'.*tuned"):
        settings("prefect", "fast")


def test_a_bad_concurrency_variable_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"ORCHBENCH_TASK_CONCURRENCY='0'"):
        env_concurrency({"ORCHBENCH_TASK_CONCURRENCY": "0"})
    assert env_concurrency({"ORCHBENCH_TASK_CONCURRENCY": "2"}) == 2
