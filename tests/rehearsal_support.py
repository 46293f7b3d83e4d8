"""Pod rehearsal: a task pod's exact command, run on this machine as a kubelet would run it.

What a pod sees and how it is reproduced here (docs/rehearsal.md tells what is not):

- the image: a read-only copy of what the Dockerfile copies to ``/opt/orchbench``, the tool's
  ``.venvs/<tool>`` (locked like the image), the image's ENV and WORKDIR from the Dockerfile;
- the user: uid 50000, gid 0, no other group, capability or new privilege (``setpriv``),
  when run as root; else this process's own user, unprivileged already;
- writable places: fresh folders per pod for its home, ``/tmp`` and its emptyDirs; every
  image path in the pod's env or working directory is translated, an unknown one refused;
- storage: the artifact store's Secret points at moto's S3 on 127.0.0.1, the only thing the
  pods of one rehearsal share.

As root, each pod runs in a private mount namespace: a folder closed to uid 50000 on the
way to the interpreter (``/root`` with ``/root/.pyenv``) and the repository itself are
replaced by empty ones with only the needed children bound back in. Nothing on the
machine changes.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.kubeflow.cluster_env import OPTIONAL_STORE_KEYS, REQUIRED_STORE_KEYS

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO_ROOT / "Dockerfile"
POD_UID = 50000  # every pod's runAsUser (the pod template, the job template, the image)
POD_GID = 0
# Where the image keeps the project (Dockerfile: COPY shared_ml, pipelines, configs there).
IMAGE_CODE_DIR = "/opt/orchbench"
CODE_FOLDERS = ("shared_ml", "pipelines", "configs")
# The keys of the Secret infra copies into every tool's namespace (infra/components/common.py,
# ARTIFACT_SECRET_NAME): the IR maps exactly these, and the infra contract tests keep them
# equal to infra's (infra/components/storage.py, ArtifactStore.env).
STORE_SECRET_KEYS = (*REQUIRED_STORE_KEYS, *OPTIONAL_STORE_KEYS)
# The name of uid 50000 in each image: the official Airflow image's user, else the one the
# Dockerfile's slim stage adds (useradd --uid 50000 ... orchbench).
IMAGE_USERS = {"airflow": "airflow", "*": "orchbench"}
TOOLS_BIN = {"unshare": "/usr/bin/unshare", "setpriv": "/usr/bin/setpriv"}
# The pods' securityContext: that uid and gid, no other group, no capability, no new privilege.
SETPRIV_ARGS = (
    f"--reuid={POD_UID} --regid={POD_GID} --clear-groups --no-new-privs --inh-caps=-all "
    "--bounding-set=-all"
)


class RehearsalError(RuntimeError):
    """The rehearsal cannot reproduce what a pod would see; the message says what is missing."""


# --- the image: ENV and WORKDIR of one variant, from the Dockerfile ------------------------
@dataclass
class ImageLayout:
    variant: str
    env: dict[str, str]
    workdir: str
    entrypoint: str | None = None  # of the Dockerfile's own stages (a base image's is unknown)


def _logical_lines(text: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", text)
    return [
        ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]


def _expand(value: str, known: Mapping[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: known.get(m.group(1), m.group(0)), value)


def image_layout(variant: str, dockerfile: Path = DOCKERFILE) -> ImageLayout:
    """The ENV, WORKDIR and ENTRYPOINT an ``EXTRA=variant`` build ends with: the stages from
    the last one (``FROM runtime-${EXTRA}``) down to an external base image (whose own ENV
    is not known here), applied base first."""
    global_args: dict[str, str] = {}
    stages: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    order: list[str] = []
    for line in _logical_lines(dockerfile.read_text(encoding="utf-8")):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            if not match:
                raise RehearsalError(f"{dockerfile}: cannot read {line!r}")
            name = match.group(2) or f"#{len(order)}"
            stages[name] = (match.group(1), [])
            order.append(name)
        elif not order and keyword == "ARG":
            key, _, default = rest.partition("=")
            global_args[key.strip()] = default.strip()
        elif order:
            stages[order[-1]][1].append((keyword, rest.strip()))
    args = {**global_args, "EXTRA": variant}
    chain, name = [], order[-1]
    while name in stages:
        chain.append(name)
        name = _expand(stages[name][0], args)
    env: dict[str, str] = {}
    workdir, entrypoint = "/", None
    for name in reversed(chain):
        for keyword, rest in stages[name][1]:
            if keyword == "ENV":
                for token in shlex.split(rest):
                    key, sep, value = token.partition("=")
                    if not sep:
                        raise RehearsalError(
                            f"{dockerfile}: stage {name}: ENV {rest!r} (use KEY=value)"
                        )
                    env[key] = _expand(value, {**args, **env})
            elif keyword == "WORKDIR":
                workdir = _expand(rest, {**args, **env})
            elif keyword == "ENTRYPOINT":
                entrypoint = rest
    return ImageLayout(variant, env, workdir, entrypoint)


# --- the node: a read-only copy of the code, fresh writable folders per pod -----------------
@dataclass
class Pod:
    """One pod's places: image path -> the folder that stands for it here."""

    name: str
    root: Path
    places: dict[str, Path] = field(default_factory=dict)

    def place(self, image_path: str) -> Path:
        return self.places[image_path]

    def translate(self, value: str, what: str) -> str:
        """An image path as the folder standing for it; a value that is no path as is."""
        if not value.startswith("/"):
            return value
        for prefix in sorted(self.places, key=len, reverse=True):
            if value == prefix or value.startswith(prefix.rstrip("/") + "/"):
                return str(self.places[prefix]) + value[len(prefix.rstrip("/")) :]
        raise RehearsalError(
            f"{what}={value!r}: an image path the rehearsal has no place for (known: "
            f"{', '.join(sorted(self.places))}); a pod would look for it in the image"
        )


class Node:
    """What the pods of one rehearsal share: the image (read-only code, the tool's
    environment) and nothing else but the object store."""

    def __init__(self, root: Path, venv: Path, layout: ImageLayout) -> None:
        self.root = root
        self.venv = venv
        self.layout = layout
        self.code = root / "image" / IMAGE_CODE_DIR.strip("/")
        for folder in CODE_FOLDERS:
            shutil.copytree(
                REPO_ROOT / folder,
                self.code / folder,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
        _make_read_only(self.code)
        self.user = unprivileged_user()
        self._pods = 0
        self.read_only = {IMAGE_CODE_DIR, self.layout.env.get("VIRTUAL_ENV")}
        if self.user is not None:
            _check_namespaces()

    def new_pod(self, name: str, writable: list[str]) -> Pod:
        """A pod with fresh folders, owned by the pod's user, for every writable image path
        (its home and ``/tmp`` always)."""
        self._pods += 1
        pod = Pod(name, self.root / "pods" / f"{self._pods:02d}-{name}")
        pod.places[IMAGE_CODE_DIR] = self.code
        virtual_env = self.layout.env.get("VIRTUAL_ENV")
        if virtual_env:
            pod.places[virtual_env] = self.venv
        wanted = {"/tmp", *writable}
        wanted |= {self.layout.env[k] for k in ("HOME", "ORCHBENCH_HOME") if k in self.layout.env}
        for image_path in sorted(wanted):
            folder = pod.root / "fs" / image_path.strip("/")
            folder.mkdir(parents=True)
            if self.user is not None:
                os.chown(folder, POD_UID, POD_GID)
            folder.chmod(0o770)
            pod.places[image_path] = folder
        return pod

    def hand_over(self, folder: Path) -> None:
        """Make what this process (playing a pod's launcher) put in ``folder`` the pod
        user's, as if that user had written it."""
        if self.user is not None:
            for path in [folder, *folder.rglob("*")]:
                os.chown(path, POD_UID, POD_GID, follow_symlinks=False)

    def close(self) -> None:
        """Give write permission back, so the folder can be removed."""
        for path in [self.code, *self.code.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _make_read_only(root: Path) -> None:
    for path in [*sorted(root.rglob("*"), reverse=True), root]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


# --- the container: environment, user, process ---------------------------------------------
def container_env(
    node: Node, pod: Pod, spec_env: Mapping[str, str], env_from: Mapping[str, str]
) -> dict[str, str]:
    """What the container's process gets, as Kubernetes builds it: the image's ENV, then
    ``envFrom`` (a Secret), then ``env`` (which wins). Image paths are translated. The
    search path is the tool's environment (the image's ``/opt/venv``, or the official
    Airflow image's venv) and the system's."""
    env: dict[str, str] = {}
    for source, values in (
        ("image ENV", node.layout.env),
        ("envFrom", env_from),
        ("env", spec_env),
    ):
        for key, value in values.items():
            if key != "PATH":
                env[key] = pod.translate(value, f"{source} {key}")
    env["PATH"] = f"{node.venv}/bin:/usr/local/bin:/usr/bin:/bin"
    # The container's /tmp is its own; here the pod's folder for it, through TMPDIR.
    env.setdefault("TMPDIR", str(pod.place("/tmp")))
    return env


def unprivileged_user() -> int | None:
    """The uid the pods run as here: ``POD_UID`` when this process may switch to it (root),
    else None (this process's own user, who is not root)."""
    return POD_UID if os.geteuid() == 0 else None


def _check_namespaces() -> None:
    missing = [tool for tool in TOOLS_BIN.values() if not os.access(tool, os.X_OK)]
    if missing:
        raise RehearsalError(f"running pods as uid {POD_UID} needs util-linux: {missing} missing")
    done = subprocess.run(
        [TOOLS_BIN["unshare"], "--mount", "true"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RehearsalError(
            f"running pods as uid {POD_UID} needs a private mount namespace (unshare --mount), "
            f"which this machine refuses: {done.stderr.strip()}"
        )


def _closed_to_pod_user(folder: Path) -> bool:
    info = folder.stat()
    if info.st_uid == POD_UID:
        return not info.st_mode & stat.S_IXUSR
    if info.st_gid == POD_GID:
        return not info.st_mode & stat.S_IXGRP
    return not info.st_mode & stat.S_IXOTH


def unmask_plan(paths: list[Path], hide: tuple[Path, ...] = (REPO_ROOT,)) -> dict[Path, set[str]]:
    """The folders to replace by an empty one in the pod's mount namespace, each with the
    children to bind back in: every folder the pod's user cannot pass on the way to
    ``paths`` (see the module's docstring), and the ``hide`` folders (the repository: the
    pod must find the code where the image has it, not here), keeping what ``paths`` need."""
    plan: dict[Path, set[str]] = {folder: set() for folder in hide}
    for path in paths:
        for target in {path, path.resolve()}:
            parts = target.parts
            for depth in range(1, len(parts) - 1):
                folder = Path(*parts[: depth + 1])
                if folder in plan or _closed_to_pod_user(folder):
                    child = folder / parts[depth + 1]
                    if not child.is_dir():
                        raise RehearsalError(f"{child}: must be bound in, not a folder")
                    plan.setdefault(folder, set()).add(child.name)
    return plan


def _as_pod_user_script(
    plan: dict[Path, set[str]], stage: Path, layout: ImageLayout, writable: list[Path] | None
) -> str:
    """Shell lines (run as root in the new mount namespace) that apply ``plan``, outer
    folders first, then become the pod's user. ``stage`` holds the children meanwhile: it
    must lie outside every folder of the plan. The image names its user in its
    ``/etc/passwd`` (Airflow's task runner refuses a uid without a name): when this machine
    has no user of that uid, a copy of its ``/etc/passwd`` with that line is bound over it.
    ``writable`` given (``readOnlyRootFilesystem``): every mount is made read-only, then
    only those folders are bound in writable."""
    lines = ["set -e"]
    mounts = [Path("/")]
    try:
        pwd.getpwuid(POD_UID)
    except KeyError:
        passwd = stage / "passwd"
        name = IMAGE_USERS.get(layout.variant, IMAGE_USERS["*"])
        home = layout.env.get("HOME", "/nonexistent")
        passwd.write_text(
            Path("/etc/passwd").read_text() + f"{name}:x:{POD_UID}:{POD_GID}::{home}:/bin/sh\n"
        )
        passwd.chmod(0o644)
        lines.append(f"mount --bind {shlex.quote(str(passwd))} /etc/passwd")
    for number, folder in enumerate(sorted(plan, key=lambda f: len(f.parts))):
        kept = []
        for child in sorted(plan[folder]):
            staged = stage / f"{number}-{child}"
            staged.mkdir(parents=True)
            lines.append(
                f"mount --bind {shlex.quote(str(folder / child))} {shlex.quote(str(staged))}"
            )
            kept.append((staged, folder / child))
        lines.append(f"mount -t tmpfs -o mode=0755,size=1m rehearsal {shlex.quote(str(folder))}")
        mounts.append(folder)
        for staged, target in kept:
            lines.append(f"mkdir {shlex.quote(str(target))}")
            lines.append(f"mount --bind {shlex.quote(str(staged))} {shlex.quote(str(target))}")
            mounts.append(target)
    if writable is not None:
        lines += [f"mount -o remount,bind,ro {shlex.quote(str(m))}" for m in mounts]
        for place in map(shlex.quote, map(str, writable)):  # a bind inherits read-only
            lines += [f"mount --bind {place} {place}", f"mount -o remount,bind,rw {place}"]
    lines.append(f'exec {TOOLS_BIN["setpriv"]} {SETPRIV_ARGS} -- "$@"')
    return "\n".join(lines)


@dataclass
class PodResult:
    returncode: int
    log: Path

    def output(self, tail: int = 6000) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-tail:]


def run_container(
    node: Node,
    pod: Pod,
    argv: list[str],
    env: dict[str, str],
    workdir: str,
    *,
    read_only_root: bool = False,
    timeout_s: float = 300,
) -> PodResult:
    """Start the container's process (``argv`` as the kubelet would exec it, after the
    image's entrypoint) as the pod's user, in its working directory, with exactly ``env``;
    with ``read_only_root`` (as root only) nothing but the pod's writable places can be
    written."""
    cwd = pod.translate(workdir, "workingDir")
    log = pod.root / "container.log"
    command = list(argv)
    stage = None
    if node.user is not None:
        needed = [Path(sys.executable), node.venv, node.code, pod.root, Path(cwd)]
        needed += [Path(v) for v in env.values() if v.startswith("/") and Path(v).exists()]
        stage = Path(tempfile.mkdtemp(prefix="orchbench-rehearsal-stage-"))
        writable = [
            place for image_path, place in pod.places.items() if image_path not in node.read_only
        ]
        script = _as_pod_user_script(
            unmask_plan(needed), stage, node.layout, writable if read_only_root else None
        )
        command = [TOOLS_BIN["unshare"], "--mount", "--propagation", "private", "--"]
        command += ["/bin/sh", "-c", script, "pod", *argv]
    try:
        with log.open("w", encoding="utf-8") as out:
            done = subprocess.run(
                command,
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
                check=False,
            )
    finally:
        if stage is not None:  # empty folders once the namespace is gone with its process
            shutil.rmtree(stage, ignore_errors=True)
    return PodResult(done.returncode, log)


def probe_identity(
    node: Node, pod: Pod, env: dict[str, str], workdir: str, read_only_root: bool = False
) -> dict[str, Any]:
    """Who the pod's process is and what it can write, asked from inside (a check that the
    rehearsal is what it claims to be); ``/var/tmp`` stands for the root filesystem."""
    script = (
        "import json, os, sys, shared_ml;"
        "print('IDENTITY ' + json.dumps({'uid': os.getuid(), 'gid': os.getgid(),"
        " 'groups': os.getgroups(), 'shared_ml': shared_ml.__file__,"
        " 'code_writable': os.access(os.path.dirname(shared_ml.__file__), os.W_OK),"
        " 'home_writable': os.access(os.environ['HOME'], os.W_OK), 'cwd': os.getcwd(),"
        " 'root_writable': os.access('/var/tmp', os.W_OK),"
        f" 'repository_visible': os.path.exists({str(REPO_ROOT / 'shared_ml')!r})}}))"
    )
    argv = ["python", "-c", script]
    result = run_container(node, pod, argv, env, workdir, read_only_root=read_only_root)
    lines = [ln for ln in result.output().splitlines() if ln.startswith("IDENTITY ")]
    if result.returncode != 0 or not lines:
        raise RehearsalError(f"the identity probe failed ({result.returncode}): {result.output()}")
    return json.loads(lines[-1].removeprefix("IDENTITY "))


# --- the object store and the config ------------------------------------------------------
def store_secret(endpoint: str, bucket: str, credentials: Mapping[str, str]) -> dict[str, str]:
    """The artifact store's Secret as a pod gets it through ``envFrom``: infra's keys,
    pointing at the S3 server on 127.0.0.1."""
    region = credentials.get("AWS_DEFAULT_REGION", "us-east-1")
    values = {
        "ORCHBENCH_ARTIFACT_ROOT": f"s3://{bucket}",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": credentials["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": credentials["AWS_SECRET_ACCESS_KEY"],
        "AWS_DEFAULT_REGION": region,
    }
    unknown = [key for key in STORE_SECRET_KEYS if key not in values]
    if unknown:
        raise RehearsalError(
            f"the artifact store's Secret has keys the rehearsal cannot fill: {unknown}"
        )
    return {key: values[key] for key in STORE_SECRET_KEYS}


def storage_left_in(node: Node, pod: Pod, roots: Any, base: str) -> list[str]:
    """The storage roots of a run (``roots``: its config's ``storage``, resolved under
    ``base``, the object store) that a pod wrote under its own home instead: a pod whose
    ``ORCHBENCH_ARTIFACT_ROOT`` did not reach its storage resolves them there."""
    home = pod.place(node.layout.env["ORCHBENCH_HOME"])
    left = []
    for name in ("artifact_root", "registry_root", "runs_root"):
        relative = getattr(roots, name).removeprefix(base.rstrip("/") + "/")
        if (home / relative).exists():
            left.append(f"{name}: {home / relative}")
    return left


def runner_paths_in(payload: Any, extra: tuple[Path, ...] = ()) -> list[str]:
    """The strings of a config (as sent to the cluster) that name a place on this machine:
    the repository, a home, a temporary folder, or any absolute path that exists here."""
    data = json.loads(payload) if isinstance(payload, str) else payload
    roots = [str(REPO_ROOT), str(Path.home()), "/tmp/", *map(str, extra)]
    strings = re.findall(r'"((?:[^"\\]|\\.)*)"', json.dumps(data))
    return [
        text
        for text in strings
        if any(root in text for root in roots) or (text.startswith("/") and os.path.exists(text))
    ]
