"""Runs `vrec compile` output the way the Kubeflow Pipelines v2 backend would.

Test code, not a product runner. Each piece stands in for one part of a KFP
deployment:

- The image: the project as the wheel `pip wheel .` builds, installed the way
  the Dockerfile installs it (`pip install --no-deps --target <package root>`,
  that root on PYTHONPATH and the working directory), next to a venv that
  reuses this environment's installed dependencies through a `.pth` file and
  never sees the source tree. Missing package data, packages or entry points
  fail here as they would in the image.
- KFP's driver (`provisionOutputs`, `resolveInputs`): per task, an
  ExecutorInput whose input parameters are the spec's runtime constants,
  whose input artifacts are what the producer tasks recorded, and whose
  output artifacts live at
  `<pipeline root>/<pipeline name>/<run id>/<task>/<output key>`; the
  executor output file sits in the task's scratch directory (the pod's
  `/tmp/kfp_outputs`).
- KFP's launcher: the container's command and args from the spec, `{{$}}`
  replaced by the ExecutorInput JSON, one process per task, tasks in
  dependency order; the ExecutorOutput's artifacts become the task's outputs.
  Each task's process is a fork of a warm interpreter of the image
  (`TaskLauncher`) that runs the command's `python -m` module: a pod pays
  TFX's imports per task, this harness once per run.
- ML Metadata: `ArtifactStore`, a JSON file of every recorded artifact.

Two backends, as `vrec compile --target` has two:

- Vertex AI (`resolvers=True`): resolver tasks (TFX compiles
  `LatestBlessedModelStrategy` into two of them) run no container: their
  `outputArtifactQueries` filters are evaluated against the store and yield
  the newest matching artifact or, on a first run, nothing; an empty input
  then resolves the dependent query to nothing too, and the Evaluator runs
  without a baseline. Parameters come as schema 2.0.0 `constantValue`s and
  reach the executor as `inputs.parameters`.
- Open-source Kubeflow Pipelines (`resolvers=False`): a resolver task raises
  `UnsupportedSpec`, as the backend's compiler refuses one. Parameters come
  as schema 2.1.0 `constant`s and reach the executor as
  `inputs.parameterValues`, as that backend's driver passes them.
  `open_source_backend_problems` checks a spec against the rest of what that
  backend reads.

Neither spec has an importer task (the curated schema reaches TFX through
ImportSchemaGen, a container task that reads it from the package root); an
importer, or any other executor kind, raises `UnsupportedSpec` instead of
being guessed at.

KFP's cache, only as far as a rerun needs it: `run(cache=earlier_run)` gives
a task whose spec enables caching and whose inputs are those it had in
`earlier_run` that run's outputs instead of running it, as KFP's cache key
(the component and its resolved inputs) would; without `cache`, every task
runs.

Not reproduced: parallel branches (tasks run one at a time) and
pipeline-level parameters (the compiled spec has none; a
`componentInputParameter` raises `UnsupportedSpec`).
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import pathlib
import re
import shutil
import site
import subprocess
import sys
import tempfile
from typing import Any

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from tfx_pipeline import kubeflow_entrypoint

# What the Dockerfile's final stage sets for every task.
IMAGE_ENVIRONMENT = {"TF_USE_LEGACY_KERAS": "1"}
# How the Dockerfile installs the wheel: `pip install ... --target <root>`.
WHEEL_INSTALL_FLAGS = ("--no-deps", "--target")
# The spec's placeholder for the whole ExecutorInput.
EXECUTOR_INPUT_PLACEHOLDER = "{{$}}"
# `metadata[...]` placeholders of resolver queries, e.g.
# {{$.inputs.artifacts['input'].metadata['current_model_id']}}.
_METADATA_PLACEHOLDER = re.compile(
    r"\{\{\$\.inputs\.artifacts\['(\w+)'\]\.metadata\['(\w+)'\]\}\}")
_QUOTED_CLAUSE = re.compile(r'^(schema_title|name)="(.*)"$')
_STATE_CLAUSE = re.compile(r"^state=(\w+)$")
_NUMBER_CLAUSE = re.compile(r"^metadata\.(\w+)\.number_value=(-?[\d.]+)$")
LIVE = "LIVE"
_LOG_TAIL_CHARS = 4000
_LAUNCHER = pathlib.Path(__file__).with_name("task_launcher.py")
# What every task of this project's image imports, in the command's order:
# the command's module (its `main` runs only as `__main__`) and TFX's
# entrypoint, which it runs.
_TASK_PRELOAD = [kubeflow_entrypoint.__name__,
                 kubeflow_entrypoint.TFX_ENTRYPOINT]
_EXECUTOR_CLASS_FLAG = "--executor_class_path"
# (package root, environment) -> its running launcher.
_LAUNCHERS: dict[tuple, "TaskLauncher"] = {}


class UnsupportedSpec(ValueError):
  """The spec uses a KFP feature this harness does not reproduce."""


class TaskFailed(RuntimeError):
  """A task's container exited non-zero; the message ends with its log."""


# ------------------------------------------------------------------ image ---


def build_wheel(source_root: pathlib.Path, wheel_dir: pathlib.Path
                ) -> pathlib.Path:
  """Builds the project wheel with `pip wheel`, from a clean copy of the tree.

  The copy holds the files git tracks or would track (ignored ones such as
  `build/` and `.venv/` stay out), so stale build output cannot leak into
  the wheel. No build isolation: the build uses this environment's
  setuptools instead of downloading one.
  """
  listed = subprocess.run(
      ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
      cwd=source_root, check=True, capture_output=True, text=True).stdout
  tree = wheel_dir / "source"
  for relative in filter(None, listed.split("\0")):
    source = source_root / relative
    if source.is_file():
      (tree / relative).parent.mkdir(parents=True, exist_ok=True)
      shutil.copy2(source, tree / relative)
  subprocess.run(
      [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
       "--no-build-isolation", "--wheel-dir", str(wheel_dir), str(tree)],
      check=True, capture_output=True)
  wheels = sorted(wheel_dir.glob("vrec-*.whl"))
  if len(wheels) != 1:
    raise RuntimeError(f"expected one vrec wheel in {wheel_dir}: {wheels}")
  return wheels[0]


@dataclasses.dataclass(frozen=True)
class WheelInstall:
  """The project installed from its wheel, apart from the source tree.

  Attributes:
    wheel: the installed wheel.
    venv: a venv whose site-packages only point at this environment's
      dependencies.
    package_root: where the wheel is installed (`--target`), as the image's
      `kubeflow.package_root`.
    extra_environment: set in every process besides the image's own
      variables, as a pod's environment is (e.g. object store credentials).
  """
  wheel: pathlib.Path
  venv: pathlib.Path
  package_root: pathlib.Path
  extra_environment: dict[str, str] = dataclasses.field(default_factory=dict)

  @property
  def bin_dirs(self) -> list[pathlib.Path]:
    return [self.package_root / "bin", self.venv / "bin"]

  @property
  def vrec(self) -> pathlib.Path:
    return self.package_root / "bin" / "vrec"

  def environment(self) -> dict[str, str]:
    """The environment of every process that runs in the stand-in image.

    This environment's own venv (whose editable install maps the project
    packages back to the source tree) is left off PATH.
    """
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    own_bin = os.path.join(sys.prefix, "bin")
    inherited = [entry for entry in environment.get("PATH", "").split(
        os.pathsep) if entry and os.path.realpath(entry) != os.path.realpath(
            own_bin)]
    environment["PATH"] = os.pathsep.join(
        [str(path) for path in self.bin_dirs] + inherited)
    environment["PYTHONPATH"] = str(self.package_root)
    environment.update(IMAGE_ENVIRONMENT)
    environment.update(self.extra_environment)
    return environment

  def run(self, argv: list[str], cwd: pathlib.Path | None = None,
          **kwargs) -> subprocess.CompletedProcess:
    """Runs `argv` in the stand-in image (default cwd: the package root)."""
    return subprocess.run(argv, cwd=cwd or self.package_root,
                          env=self.environment(), **kwargs)

  def launcher(self) -> TaskLauncher:
    """The task launcher of this image and environment, started once."""
    key = (str(self.package_root), tuple(sorted(self.environment().items())))
    if key not in _LAUNCHERS:
      _LAUNCHERS[key] = TaskLauncher(self)
    return _LAUNCHERS[key]


class TaskLauncher:
  """Runs `python -m` container commands in the stand-in image, forked.

  One `tests/task_launcher.py` interpreter per environment imports each
  task's `preload` modules once and forks a process per task (see that
  module for why that is safe); a task's process runs the command's module
  as `python -m` would, so the spec's command is what runs, without paying
  TFX's imports again per task. A launcher holds about 1 GB: the tests end
  theirs with `close_launchers` (any left end with this process).
  """

  def __init__(self, install: WheelInstall):
    self._errors = tempfile.TemporaryFile(mode="w+")
    # `python` as the container command names it, found on the image's PATH.
    self._process = subprocess.Popen(
        ["python", "-c",
         "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')",
         str(_LAUNCHER)],
        cwd=install.package_root, env=install.environment(),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errors,
        text=True)
    atexit.register(self.close)

  def run(self, command: list[str], args: list[str], preload: list[str],
          log: pathlib.Path) -> int:
    """Runs `command + args` with its output in `log`; its exit status.

    Raises:
      UnsupportedSpec: `command` is not `python -m MODULE`.
    """
    if len(command) != 3 or command[:2] != ["python", "-m"]:
      raise UnsupportedSpec(f"container command {command} (only `python -m "
                            "MODULE` is reproduced)")
    request = {"module": command[2], "preload": preload,
               "args": args, "log": str(log)}
    self._process.stdin.write(json.dumps(request) + "\n")
    self._process.stdin.flush()
    answer = self._process.stdout.readline()
    if not answer:
      self._errors.seek(0)
      raise RuntimeError("the task launcher ended:\n"
                         + self._errors.read()[-_LOG_TAIL_CHARS:])
    return json.loads(answer)

  def close(self) -> None:
    if self._process.poll() is None:
      self._process.stdin.close()
      self._process.wait(timeout=60)


def close_launchers() -> None:
  """Ends every launcher started so far."""
  while _LAUNCHERS:
    _LAUNCHERS.popitem()[1].close()


def install_wheel(wheel: pathlib.Path, directory: pathlib.Path
                  ) -> WheelInstall:
  """Installs `wheel` under `directory` without its dependencies.

  The venv is made without pip; this environment's pip installs into it
  (`pip --python`), so entry points get the venv's interpreter.
  """
  venv = directory / "venv"
  subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)],
                 check=True)
  venv_site = next((venv / "lib").glob("python*/site-packages"))
  (venv_site / "vrec_dependencies.pth").write_text(
      "\n".join(site.getsitepackages()) + "\n")
  package_root = directory / "package_root"
  subprocess.run(
      [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
       "install", "--quiet", "--no-index", *WHEEL_INSTALL_FLAGS,
       str(package_root), str(wheel)],
      check=True, capture_output=True)
  return WheelInstall(wheel=wheel, venv=venv, package_root=package_root)


def compile_spec(install: WheelInstall, output: pathlib.Path,
                 argv: list[str]) -> dict[str, Any]:
  """Runs the installed `vrec compile --output OUTPUT ARGV`; the spec JSON."""
  result = install.run(
      [str(install.vrec), "compile", "--output", str(output), *argv],
      cwd=output.parent, capture_output=True, text=True)
  if result.returncode:
    raise RuntimeError(f"vrec compile failed:\n{result.stderr[-_LOG_TAIL_CHARS:]}")
  return json.loads(output.read_text())


# -------------------------------------------------------------- metadata ---


class ArtifactStore:
  """The ML Metadata stand-in: every artifact tasks recorded, oldest first.

  Each record is a RuntimeArtifact dict (`name`, `uri`, `type`, `metadata`)
  plus its `schema_title` and `state`, kept in one JSON file so that a later
  run (or a resolver query) sees the artifacts of earlier runs.
  """

  def __init__(self, path: pathlib.Path):
    self.path = path

  def artifacts(self) -> list[dict[str, Any]]:
    return json.loads(self.path.read_text()) if self.path.exists() else []

  def record(self, artifacts: list[dict[str, Any]]) -> None:
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self.path.write_text(json.dumps(self.artifacts() + artifacts, indent=1))

  def query(self, artifact_filter: str) -> list[dict[str, Any]]:
    """The newest artifact matching a KFP resolver filter, as a 0/1 list.

    Supports the clauses TFX's resolver queries use, joined by ` AND `:
    `schema_title="T"`, `name="N"`, `state=LIVE` and
    `metadata.KEY.number_value=X`.

    Raises:
      UnsupportedSpec: on any other clause.
    """
    predicates = [_clause_predicate(clause.strip())
                  for clause in artifact_filter.split(" AND ")]
    matches = [artifact for artifact in self.artifacts()
               if all(predicate(artifact) for predicate in predicates)]
    return matches[-1:]


def _clause_predicate(clause: str):
  if match := _QUOTED_CLAUSE.match(clause):
    field, wanted = match.groups()
    return lambda artifact: artifact[field] == wanted
  if match := _STATE_CLAUSE.match(clause):
    return lambda artifact: artifact["state"] == match.group(1)
  if match := _NUMBER_CLAUSE.match(clause):
    key, number = match.group(1), float(match.group(2))
    return lambda artifact: artifact["metadata"].get(key) == number
  raise UnsupportedSpec(f"resolver filter clause {clause!r}")


def schema_title(artifact_type: dict[str, Any]) -> str:
  """The title of a spec ArtifactTypeSchema (`schemaTitle` or the YAML's)."""
  if "schemaTitle" in artifact_type:
    return artifact_type["schemaTitle"]
  match = re.search(r"^title:\s*(\S+)\s*$", artifact_type["instanceSchema"],
                    re.MULTILINE)
  return match.group(1)


# ---------------------------------------- open-source backend's rules ---

# What the open-source backend accepts of each part of a task it reads
# (kubeflow/pipelines `backend/src/v2`; docs/kubeflow.md names the version):
# the compiler's visitor runs container and importer executors and nothing
# else, and the driver resolves these parameter and artifact sources only.
OPEN_SOURCE_EXECUTOR_KINDS = frozenset({"container", "importer"})
_OPEN_SOURCE_PARAMETER_SOURCES = frozenset({
    "componentInputParameter", "taskOutputParameter", "taskFinalStatus"})
_OPEN_SOURCE_ARTIFACT_SOURCES = frozenset({
    "componentInputArtifact", "taskOutputArtifact"})


def open_source_backend_problems(spec: dict[str, Any]) -> list[str]:
  """What in `spec` the open-source KFP backend would refuse; [] if nothing.

  The rules, each from the backend's Go sources:

  - `compiler.GetPipelineSpec` parses the spec strictly: no field its
    PipelineSpec proto lacks (checked with this environment's
    `kfp-pipeline-spec`, an older and so smaller proto).
  - `compiler.Accept` visits container and importer executors; anything
    else (a resolver) is refused, by the Argo compiler's `Resolver()` or the
    visitor itself.
  - The driver's `resolveInputParameter` takes a runtime value only as
    `constant` (schema 2.1.0), not the deprecated `constantValue`, and
    `resolveInputArtifact` takes task outputs and component inputs only.
  - Its type check reads each input's `parameterType` (the deprecated `type`
    fails it), and a required input with neither a value nor a default
    fails the task.
  """
  problems = []
  try:
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
  except json_format.ParseError as error:
    problems.append(f"not a PipelineSpec the backend parses: {error}")
  for label, executor in spec["deploymentSpec"]["executors"].items():
    if set(executor) - OPEN_SOURCE_EXECUTOR_KINDS:
      problems.append(f"executor {label} is a {sorted(executor)}: only "
                      f"{sorted(OPEN_SOURCE_EXECUTOR_KINDS)} are compiled")
  for task_name, task in spec["root"]["dag"]["tasks"].items():
    component = spec["components"][task["componentRef"]["name"]]
    parameters = task.get("inputs", {}).get("parameters", {})
    for name, source in parameters.items():
      if not (set(source) & _OPEN_SOURCE_PARAMETER_SOURCES
              or "constant" in source.get("runtimeValue", {})):
        problems.append(f"task {task_name} parameter {name}: {source} is no "
                        "source the driver resolves")
    for name, source in task.get("inputs", {}).get("artifacts", {}).items():
      if not set(source) & _OPEN_SOURCE_ARTIFACT_SOURCES:
        problems.append(f"task {task_name} artifact {name}: {source} is no "
                        "source the driver resolves")
    for name, definition in component.get("inputDefinitions", {}).get(
        "parameters", {}).items():
      if "parameterType" not in definition:
        problems.append(f"component {task['componentRef']['name']} input "
                        f"{name} has no parameterType")
      elif (name not in parameters and not definition.get("isOptional")
            and "defaultValue" not in definition):
        problems.append(f"task {task_name} gives required input {name} no "
                        "value")
  return problems


# ----------------------------------------------------------------- driver ---


def task_order(spec: dict[str, Any]) -> list[str]:
  """The root DAG's tasks, each after every task it depends on.

  A task depends on its `dependentTasks` and on the producers of its input
  artifacts (resolver tasks list only the latter). Ties run by name, so the
  order is the same every time.
  """
  tasks = spec["root"]["dag"]["tasks"]
  upstream = {}
  for name, task in tasks.items():
    producers = {source["taskOutputArtifact"]["producerTask"]
                 for source in task.get("inputs", {}).get("artifacts", {})
                 .values() if "taskOutputArtifact" in source}
    upstream[name] = set(task.get("dependentTasks", [])) | producers
  order = []
  while len(order) < len(tasks):
    ready = sorted(name for name in tasks if name not in order
                   and upstream[name] <= set(order))
    if not ready:
      raise UnsupportedSpec(f"dependency cycle among "
                            f"{sorted(set(tasks) - set(order))}")
    order.append(ready[0])
  return order


@dataclasses.dataclass
class SpecRun:
  """One run of a compiled spec.

  Attributes:
    spec: the `pipelineSpec` of the compiled PipelineJob.
    pipeline_root: the PipelineJob's `runtimeConfig.gcsOutputDirectory`.
    run_id: this run's id (a path segment of every output URI).
    install: the stand-in image.
    image: the image the spec must name for every container task.
    store: the metadata stand-in, shared with earlier runs.
    scratch: local per-task directories (the pods' /tmp): executor output
      files and task logs.
    outputs: task -> output key -> its recorded RuntimeArtifact dicts.
    inputs: task -> the ExecutorInput inputs it got.
    ran: the tasks that ran, in order; the others came from a cache.
    resolvers: whether resolver tasks run as Vertex AI runs them; False
      refuses them, as open-source Kubeflow Pipelines does.
  """
  spec: dict[str, Any]
  pipeline_root: str
  run_id: str
  install: WheelInstall
  image: str
  store: ArtifactStore
  scratch: pathlib.Path
  outputs: dict[str, dict[str, list[dict[str, Any]]]] = dataclasses.field(
      default_factory=dict)
  resolvers: bool = True
  # Per run, never shared by `dataclasses.replace` copies.
  inputs: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict,
                                                        init=False)
  ran: list[str] = dataclasses.field(default_factory=list, init=False)

  @classmethod
  def from_job(cls, job: dict[str, Any], **kwargs) -> "SpecRun":
    return cls(spec=job["pipelineSpec"],
               pipeline_root=job["runtimeConfig"]["gcsOutputDirectory"],
               **kwargs)

  @property
  def pipeline_name(self) -> str:
    return self.spec["pipelineInfo"]["name"]

  def run(self, cache: "SpecRun | None" = None) -> None:
    """Runs every task in dependency order; raises on the first failure.

    Args:
      cache: an earlier run of the same spec, whose outputs a cached task
        with the same inputs takes instead of running.
    """
    for task in task_order(self.spec):
      self.run_task(task, cache)

  def run_task(self, task_name: str, cache: "SpecRun | None" = None) -> None:
    task = self.spec["root"]["dag"]["tasks"][task_name]
    component = self.spec["components"][task["componentRef"]["name"]]
    executor = self.spec["deploymentSpec"]["executors"][
        component["executorLabel"]]
    inputs = self._inputs(task_name, task)
    self.inputs[task_name] = inputs
    if (cache is not None and task.get("cachingOptions", {}).get("enableCache")
        and cache.inputs.get(task_name) == inputs):
      self.outputs[task_name] = cache.outputs[task_name]
      return
    self.ran.append(task_name)
    if "container" in executor:
      outputs = self._run_container(task_name, component,
                                    executor["container"], inputs)
    elif "resolver" in executor and self.resolvers:
      outputs = self._resolve(executor["resolver"], inputs)
    else:
      kinds = "container and resolver" if self.resolvers else "container"
      raise UnsupportedSpec(f"task {task_name}: executor kind "
                            f"{sorted(executor)} (only {kinds} are "
                            "reproduced)")
    self.outputs[task_name] = outputs

  def _inputs(self, task_name: str, task: dict[str, Any]) -> dict[str, Any]:
    """ExecutorInput.inputs, resolved as KFP's driver resolves them."""
    parameters, parameter_values = {}, {}
    for name, source in task.get("inputs", {}).get("parameters", {}).items():
      runtime_value = source.get("runtimeValue", {})
      if "constant" in runtime_value:
        # Schema 2.1: a JSON value, passed on as `parameterValues`.
        parameter_values[name] = runtime_value["constant"]
      elif "constantValue" in runtime_value:
        # Schema 2.0: the typed pipeline Value, which TFX's entrypoint reads
        # from `inputs.parameters`.
        parameters[name] = runtime_value["constantValue"]
      else:
        raise UnsupportedSpec(f"task {task_name} parameter {name}: {source}")
    artifacts = {}
    for name, source in task.get("inputs", {}).get("artifacts", {}).items():
      if "taskOutputArtifact" not in source:
        raise UnsupportedSpec(f"task {task_name} artifact {name}: {source}")
      producer = source["taskOutputArtifact"]
      artifacts[name] = {"artifacts": [
          _runtime_artifact(artifact) for artifact in
          self.outputs[producer["producerTask"]][producer["outputArtifactKey"]]
      ]}
    return {"parameters": parameters, "parameterValues": parameter_values,
            "artifacts": artifacts}

  def output_uri(self, task_name: str, key: str) -> str:
    return "/".join([self.pipeline_root.rstrip("/"), self.pipeline_name,
                     self.run_id, task_name, key])

  def _run_container(self, task_name: str, component: dict[str, Any],
                     container: dict[str, Any], inputs: dict[str, Any]
                     ) -> dict[str, list[dict[str, Any]]]:
    if container["image"] != self.image:
      raise UnsupportedSpec(f"task {task_name} runs image "
                            f"{container['image']}, not {self.image}")
    task_scratch = self.scratch / self.run_id / task_name
    task_scratch.mkdir(parents=True)
    provisioned = {
        key: {"name": f"runs/{self.run_id}/tasks/{task_name}/{key}",
              "uri": self.output_uri(task_name, key),
              "type": definition["artifactType"], "metadata": {}}
        for key, definition in component.get("outputDefinitions", {})
        .get("artifacts", {}).items()}
    output_file = task_scratch / "kfp_outputs" / "output_metadata.json"
    executor_input = {
        "inputs": inputs,
        "outputs": {"artifacts": {key: {"artifacts": [artifact]}
                                  for key, artifact in provisioned.items()},
                    "outputFile": str(output_file)}}
    args = [_substitute(arg, executor_input) for arg in container["args"]]
    log_path = task_scratch / "log.txt"
    status = self.install.launcher().run(
        container["command"], args, [*_TASK_PRELOAD, *_executor_module(args)],
        log_path)
    if status:
      raise TaskFailed(f"task {task_name} exited {status}:\n"
                       f"{log_path.read_text()[-_LOG_TAIL_CHARS:]}")
    executor_output = json.loads(output_file.read_text())
    outputs = {}
    for key, artifact in provisioned.items():
      written = executor_output.get("artifacts", {}).get(key, {}).get(
          "artifacts", [{}])[0]
      recorded = {**artifact, "uri": written.get("uri", artifact["uri"]),
                  "metadata": written.get("metadata", {}),
                  "schema_title": schema_title(artifact["type"]),
                  "state": LIVE}
      outputs[key] = [recorded]
    self.store.record([artifact for artifacts in outputs.values()
                       for artifact in artifacts])
    return outputs

  def _resolve(self, resolver: dict[str, Any], inputs: dict[str, Any]
               ) -> dict[str, list[dict[str, Any]]]:
    return {key: self._query(query["filter"], inputs)
            for key, query in resolver["outputArtifactQueries"].items()}

  def _query(self, artifact_filter: str, inputs: dict[str, Any]
             ) -> list[dict[str, Any]]:
    """Runs one resolver query; nothing when it names an absent input."""
    for key, field in _METADATA_PLACEHOLDER.findall(artifact_filter):
      resolved = inputs["artifacts"].get(key, {}).get("artifacts", [])
      if not resolved:
        return []
      artifact_filter = artifact_filter.replace(
          f"{{{{$.inputs.artifacts['{key}'].metadata['{field}']}}}}",
          str(resolved[0]["metadata"][field]))
    return self.store.query(artifact_filter)


def _executor_module(args: list[str]) -> list[str]:
  """The module of the task's `--executor_class_path`, if it names one."""
  if _EXECUTOR_CLASS_FLAG not in args:
    return []
  class_path = args[args.index(_EXECUTOR_CLASS_FLAG) + 1]
  return [class_path.rsplit(".", 1)[0]]


def _runtime_artifact(recorded: dict[str, Any]) -> dict[str, Any]:
  return {key: recorded[key] for key in ("name", "uri", "type", "metadata")}


def _substitute(arg: str, executor_input: dict[str, Any]) -> str:
  if arg == EXECUTOR_INPUT_PLACEHOLDER:
    return json.dumps(executor_input)
  if "{{$" in arg:
    raise UnsupportedSpec(f"container placeholder {arg!r}")
  return arg
