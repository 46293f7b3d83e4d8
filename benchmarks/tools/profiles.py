"""Each tool's benchmark profiles, read from the data files beside the tools.

``benchmarks/tools/<tool>/profiles.yaml`` (``local.profiles.yaml`` for the plain runner)
lists what every profile sets (``base``), the settings that carry the shared task
concurrency (``benchmarks/tools/concurrency.yaml``) and, per profile, its knobs, each
with a value, a reason and the tool's documentation page. The services get their
environment from :func:`settings`, the harness runs :func:`default_profiles`, and the
report prints :func:`knob_table`. A bad file fails on load, naming the file and the key.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

TOOLS_DIR = Path(__file__).resolve().parent
CONCURRENCY_FILE = TOOLS_DIR / "concurrency.yaml"
DEFAULTS = "defaults"

Text = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1)]
# Settings are environment variables: their values are strings, quoted in the YAML.
Value = Annotated[str, StringConstraints(strict=True)]
DocUrl = Annotated[str, StringConstraints(strict=True, pattern=r"^https://\S+$")]
SettingName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")]


class ProfilesError(ValueError):
    """A profiles file is missing or invalid; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseSetting(_Strict):
    value: Value
    reason: Text
    doc: DocUrl | None = None


class Knob(_Strict):
    value: Value
    reason: Text
    doc: DocUrl


class Profile(_Strict):
    description: Text
    # A profile that builds on another sets that one's knobs first, then its own.
    extends: str | None = None
    # A labelled variant (a tool-specific trick): run only when asked for by name.
    variant: bool = False
    knobs: dict[SettingName, Knob] = Field(default_factory=dict)


class Concurrency(_Strict):
    """How many tasks of one run the tool runs at once.

    Either ``settings``: the names that get the shared number of ``concurrency.yaml``,
    each with its documentation page (none for orchbench's own variables); or ``slots``:
    a number the tool fixes itself (no setting), explained in ``note``.
    """

    settings: dict[SettingName, DocUrl | None] = Field(default_factory=dict)
    slots: int | None = Field(default=None, ge=1)
    note: Text

    @model_validator(mode="after")
    def _one_source(self) -> Concurrency:
        if bool(self.settings) == (self.slots is not None):
            raise ValueError(
                "give either 'settings' (names that get concurrency.yaml's task_slots) "
                "or 'slots' (a number the tool fixes itself), not both or neither"
            )
        return self


class ToolProfiles(_Strict):
    tool: Text
    docs: DocUrl | None = None
    note: Text | None = None  # e.g. why the tool has no tuning knob
    concurrency: Concurrency
    base: dict[SettingName, BaseSetting] = Field(default_factory=dict)
    profiles: dict[str, Profile]

    @model_validator(mode="after")
    def _consistent(self) -> ToolProfiles:
        if DEFAULTS not in self.profiles:
            raise ValueError(f"profiles: a '{DEFAULTS}' profile is required")
        if self.profiles[DEFAULTS].knobs or self.profiles[DEFAULTS].extends:
            raise ValueError(
                f"profiles.{DEFAULTS}: the tool's own defaults set no knobs (put what every "
                "profile needs under 'base')"
            )
        for name, profile in self.profiles.items():
            if profile.extends is not None and profile.extends not in self.profiles:
                raise ValueError(
                    f"profiles.{name}.extends: no profile {profile.extends!r}; expected one "
                    f"of {', '.join(self.profiles)}"
                )
            _chain(self.profiles, name)  # raises on a cycle
            for knob in profile.knobs:
                if knob in self.base or knob in self.concurrency.settings:
                    raise ValueError(
                        f"profiles.{name}.knobs.{knob}: already set for every profile "
                        "(base or concurrency); a profile may not change it"
                    )
        return self

    @property
    def has_knobs(self) -> bool:
        return any(p.knobs for p in self.profiles.values())


def _chain(profiles: dict[str, Profile], name: str) -> list[str]:
    """``name`` and the profiles it extends, the most basic first."""
    chain = [name]
    while (parent := profiles[chain[0]].extends) is not None:
        if parent in chain:
            raise ValueError(f"profiles.{name}.extends: a cycle ({' -> '.join([*chain, parent])})")
        chain.insert(0, parent)
    return chain


def profiles_file(tool: str) -> Path:
    folder = TOOLS_DIR / tool / "profiles.yaml"
    return folder if folder.parent.is_dir() else TOOLS_DIR / f"{tool}.profiles.yaml"


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfilesError(f"{path}: file not found") from None
    except yaml.YAMLError as err:
        raise ProfilesError(f"{path}: not valid YAML: {err}") from None


def _describe(err: ValidationError) -> str:
    problems = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "<top level>"
        problems.append(f"{where}: {e['msg']}")
    return "; ".join(problems)


def load_profiles_file(path: Path) -> ToolProfiles:
    """Read and validate one profiles file."""
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ProfilesError(f"{path}: expected a mapping at the top level")
    try:
        return ToolProfiles.model_validate(data)
    except ValidationError as err:
        raise ProfilesError(f"{path}: {_describe(err)}") from None


@cache
def load_profiles(tool: str) -> ToolProfiles:
    """The validated profiles of ``tool`` (local, airflow, prefect, kubeflow)."""
    path = profiles_file(tool)
    loaded = load_profiles_file(path)
    if loaded.tool != tool:
        raise ProfilesError(f"{path}: tool: {loaded.tool!r}, expected {tool!r}")
    return loaded


def load_task_slots(path: Path = CONCURRENCY_FILE) -> int:
    """The one task-concurrency number every tool that can be set gets."""
    data = _read_yaml(path)
    slots = data.get("task_slots") if isinstance(data, dict) else None
    if not isinstance(slots, int) or isinstance(slots, bool) or slots < 1:
        raise ProfilesError(f"{path}: task_slots: expected a whole number of at least 1")
    return slots


@cache
def task_slots() -> int:
    return load_task_slots()


def task_concurrency(tool: str) -> int:
    """How many tasks of one run ``tool`` runs at once, in every profile."""
    fixed = load_profiles(tool).concurrency.slots
    return fixed if fixed is not None else task_slots()


def profiles_of(tool: str) -> tuple[str, ...]:
    """Every profile of ``tool``, labelled variants included."""
    return tuple(load_profiles(tool).profiles)


def default_profiles(tool: str) -> tuple[str, ...]:
    """The profiles the harness runs unless asked for others: all but the variants."""
    return tuple(name for name, p in load_profiles(tool).profiles.items() if not p.variant)


def _profile(tool: str, profile: str) -> Profile:
    profiles = load_profiles(tool)
    if profile not in profiles.profiles:
        raise ProfilesError(
            f"{profiles_file(tool)}: no profile {profile!r}; expected one of "
            f"{', '.join(profiles.profiles)}"
        )
    return profiles.profiles[profile]


def settings(tool: str, profile: str) -> dict[str, str]:
    """The environment a profile sets: base, concurrency, then the profile's knobs (a
    profile that extends another gets that one's knobs first)."""
    _profile(tool, profile)  # a clear error for an unknown profile
    profiles = load_profiles(tool)
    env = {name: s.value for name, s in profiles.base.items()}
    env.update({name: str(task_slots()) for name in profiles.concurrency.settings})
    for name in _chain(profiles.profiles, profile):
        env.update({knob: k.value for knob, k in profiles.profiles[name].knobs.items()})
    return env


def description(tool: str, profile: str) -> str:
    return _profile(tool, profile).description


def _labelled_description(tool: str, profile: str) -> str:
    found = _profile(tool, profile)
    return found.description + (" [labelled variant]" if found.variant else "")


def concurrency_statement(tool: str) -> str:
    """One sentence for the report's conditions: the number and how it is set."""
    profiles = load_profiles(tool)
    slots = task_concurrency(tool)
    how = (
        "set by " + ", ".join(f"{name}={slots}" for name in profiles.concurrency.settings)
        if profiles.concurrency.settings
        else "fixed by the tool, no setting"
    )
    return f"{slots} tasks at once ({how}). {profiles.concurrency.note}"


def knob_table(tool: str, profiles: tuple[str, ...] | list[str] | None = None) -> list[dict]:
    """Rows ``{profile, knob, value, reason, doc}``: the base settings (profile "every
    profile"), the concurrency settings, then the knobs of each profile in ``profiles``
    (default: all) that sets any. A profile that extends another lists its own knobs."""
    loaded = load_profiles(tool)
    every = "every profile"
    rows = [
        {"profile": every, "knob": name, "value": s.value, "reason": s.reason, "doc": s.doc or ""}
        for name, s in loaded.base.items()
    ]
    rows += [
        {
            "profile": every,
            "knob": name,
            "value": str(task_slots()),
            "reason": "the task concurrency every tool gets (benchmarks/tools/concurrency.yaml)",
            "doc": doc or "",
        }
        for name, doc in loaded.concurrency.settings.items()
    ]
    for name in profiles if profiles is not None else profiles_of(tool):
        profile = _profile(tool, name)
        rows += [
            {"profile": name, "knob": knob, "value": k.value, "reason": k.reason, "doc": k.doc}
            for knob, k in profile.knobs.items()
        ]
    return rows


def report_entry(tool: str, profiles: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """What results.json records per tool about its settings, for the report."""
    loaded = load_profiles(tool)
    return {
        "settings_file": str(profiles_file(tool).relative_to(TOOLS_DIR.parent.parent)),
        "has_knobs": loaded.has_knobs,
        "note": loaded.note,
        "concurrency": {
            "slots": task_concurrency(tool),
            "settings": list(loaded.concurrency.settings),
            "statement": concurrency_statement(tool),
        },
        "knobs": knob_table(tool, profiles),
        "profile_descriptions": {name: _labelled_description(tool, name) for name in profiles},
    }
