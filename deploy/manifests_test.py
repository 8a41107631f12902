"""Checks deploy/ against itself and against the code it deploys.

Parses the TF Serving configs with their protos and every Kubernetes
manifest, then checks what a typo or a renamed flag would break: model names
and base paths, Service selectors and ports, HPA targets, and the retrieval
server's command line against `serving.server`'s own argument parser.
"""

import ast
import inspect
import pathlib
import posixpath
import re
import urllib.parse

import pytest
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving import client as serving_client
from serving import history_store
from serving import request_metrics
from serving import server as serving_server
from tfx_pipeline.config import PipelineConfig

DEPLOY_DIR = pathlib.Path(__file__).resolve().parent
TF_SERVING_DIR = DEPLOY_DIR / "tf_serving"
K8S_DIR = DEPLOY_DIR / "k8s"
MODELS_CONFIG = TF_SERVING_DIR / "models.config"
BATCHING_PARAMETERS = TF_SERVING_DIR / "batching_parameters.txt"
TF_SERVING_IMAGE = "tensorflow/serving:2.16.1-gpu"
MODELS_PVC = "vrec-models"
HISTORY_PVC = "vrec-history"
HISTORY_REDIS = "vrec-history-redis"
MODEL_NAME = PipelineConfig().model_name

# tensorflow_serving/servables/tensorflow/session_bundle_config.proto,
# used when the pip package does not ship that proto (it does not today).
_BATCHING_FIELDS = {
    "max_batch_size": "wrapper", "batch_timeout_micros": "wrapper",
    "max_enqueued_batches": "wrapper", "num_batch_threads": "wrapper",
    "thread_pool_name": "wrapper", "allowed_batch_sizes": "repeated",
    "pad_variable_length_inputs": "bool",
    "enable_large_batch_splitting": "wrapper",
}


# ---------------------------------------------------------------- loading ---

def _load_docs() -> list[dict]:
  docs = []
  for path in sorted(K8S_DIR.glob("*.yaml")):
    with open(path, encoding="utf-8") as f:
      for doc in yaml.safe_load_all(f):
        if doc is not None:
          docs.append(doc)
  return docs


DOCS = _load_docs()


def _objects(kind: str) -> list[dict]:
  return [doc for doc in DOCS if doc["kind"] == kind]


def _one(kind: str, predicate) -> dict:
  found = [doc for doc in _objects(kind) if predicate(doc)]
  assert len(found) == 1, f"expected one matching {kind}, got {len(found)}"
  return found[0]


def _containers(deployment: dict) -> list[dict]:
  return deployment["spec"]["template"]["spec"]["containers"]


def _container(deployment: dict) -> dict:
  containers = _containers(deployment)
  assert len(containers) == 1, deployment["metadata"]["name"]
  return containers[0]


def _port(container: dict, name: str) -> int:
  ports = {port.get("name"): port["containerPort"]
           for port in container.get("ports", [])}
  assert name in ports, f"{container['name']} has no port named {name}"
  return ports[name]


def _flags(argv: list[str]) -> dict[str, str]:
  flags = {}
  for arg in argv:
    if arg.startswith("--"):
      name, _, value = arg[2:].partition("=")
      flags[name] = value
  return flags


def _mount(deployment: dict, claim: str) -> dict:
  """The container's mount of the volume backed by PVC `claim`."""
  volumes = [volume["name"]
             for volume in deployment["spec"]["template"]["spec"]["volumes"]
             if volume.get("persistentVolumeClaim", {}).get("claimName")
             == claim]
  assert len(volumes) == 1, f"{deployment['metadata']['name']}: {volumes}"
  mounts = [mount for mount in _container(deployment)["volumeMounts"]
            if mount["name"] == volumes[0]]
  assert len(mounts) == 1
  return mounts[0]


def _gpu_deployment() -> dict:
  return _one("Deployment",
              lambda d: _container(d)["image"].startswith("tensorflow/serving"))


def _redis_deployment() -> dict:
  return _one("Deployment", lambda d: d["metadata"]["name"] == HISTORY_REDIS)


def _model_deployments() -> list[dict]:
  """The Deployments that serve models (all but the history store)."""
  return [d for d in _objects("Deployment")
          if d["metadata"]["name"] != HISTORY_REDIS]


def _retrieval_deployment() -> dict:
  return _one("Deployment",
              lambda d: "serving.server" in _container(d).get("command", []))


def _models_config() -> model_server_config_pb2.ModelServerConfig:
  return text_format.Parse(MODELS_CONFIG.read_text(encoding="utf-8"),
                           model_server_config_pb2.ModelServerConfig())


def _batching_parameters() -> dict:
  """The batching file as {field: value}, with the proto when importable."""
  text = BATCHING_PARAMETERS.read_text(encoding="utf-8")
  try:
    # pylint: disable=g-import-not-at-top
    from tensorflow_serving.servables.tensorflow import (
        session_bundle_config_pb2)
  except ImportError:
    session_bundle_config_pb2 = None
  if session_bundle_config_pb2 is not None:
    proto = text_format.Parse(text,
                              session_bundle_config_pb2.BatchingParameters())
    return {field.name: (value.value if hasattr(value, "value") else value)
            for field, value in proto.ListFields()}
  values = {}
  for line_number, raw in enumerate(text.splitlines(), start=1):
    line = raw.split("#", 1)[0].strip()
    if not line:
      continue
    wrapper = re.fullmatch(r"(\w+)\s*\{\s*value:\s*(\S+)\s*\}", line)
    scalar = re.fullmatch(r"(\w+)\s*:\s*(\S+)", line)
    match = wrapper or scalar
    assert match, f"line {line_number}: cannot parse {raw!r}"
    name, value = match.groups()
    assert name in _BATCHING_FIELDS, f"line {line_number}: unknown {name}"
    kind = _BATCHING_FIELDS[name]
    assert (kind == "wrapper") == bool(wrapper), (
        f"line {line_number}: {name} must be written as "
        + ("'name { value: N }'" if kind == "wrapper" else "'name: value'"))
    assert name not in values or kind == "repeated", f"{name} set twice"
    if kind == "bool":
      assert value in ("true", "false"), f"line {line_number}: {value}"
      values[name] = value == "true"
    elif name == "thread_pool_name":
      values[name] = value.strip('"')
    else:
      values[name] = int(value)
  return values


# ------------------------------------------------------------ TF Serving ---

def test_models_config_serves_pipeline_model_and_ranking():
  configs = {config.name: config for config in
             _models_config().model_config_list.config}
  assert MODEL_NAME in configs
  assert "ranking" in configs
  for config in configs.values():
    assert config.model_platform == "tensorflow", config.name
    assert config.model_version_policy.latest.num_versions == 1, config.name


def test_models_config_base_paths_are_on_the_models_volume():
  mount_path = _mount(_gpu_deployment(), MODELS_PVC)["mountPath"]
  for config in _models_config().model_config_list.config:
    # The Pusher's layout: <serving_dir>/<model_name>/<version>/.
    assert config.base_path == posixpath.join(mount_path, config.name), (
        config.name, config.base_path, mount_path)


def test_batching_parameters():
  values = _batching_parameters()
  for name in ("max_batch_size", "batch_timeout_micros",
               "max_enqueued_batches", "num_batch_threads",
               "pad_variable_length_inputs"):
    assert name in values, name
  for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
    assert values[name] > 0, name
  assert values["batch_timeout_micros"] >= 0
  # Padding would repeat each request's first history id (see the file).
  assert values["pad_variable_length_inputs"] is False
  # One batch thread per CPU the server is given.
  cpus = _container(_gpu_deployment())["resources"]["requests"]["cpu"]
  assert values["num_batch_threads"] <= float(cpus)


def test_config_map_holds_the_tf_serving_files_verbatim():
  deployment = _gpu_deployment()
  container = _container(deployment)
  volumes = {volume["name"]: volume
             for volume in deployment["spec"]["template"]["spec"]["volumes"]}
  config_mounts = [mount for mount in container["volumeMounts"]
                   if "configMap" in volumes[mount["name"]]]
  assert len(config_mounts) == 1
  mount = config_mounts[0]
  config_map = _one("ConfigMap", lambda c: c["metadata"]["name"] ==
                    volumes[mount["name"]]["configMap"]["name"])
  assert config_map["data"]["models.config"] == MODELS_CONFIG.read_text(
      encoding="utf-8"), "models.config and the ConfigMap differ"
  assert config_map["data"]["batching_parameters.txt"] == (
      BATCHING_PARAMETERS.read_text(encoding="utf-8")), (
          "batching_parameters.txt and the ConfigMap differ")
  flags = _flags(container["args"])
  assert flags["model_config_file"] == posixpath.join(
      mount["mountPath"], "models.config")
  assert flags["batching_parameters_file"] == posixpath.join(
      mount["mountPath"], "batching_parameters.txt")
  assert "enable_batching" in flags


def test_gpu_deployment():
  deployment = _gpu_deployment()
  container = _container(deployment)
  assert container["image"] == TF_SERVING_IMAGE
  assert int(container["resources"]["limits"]["nvidia.com/gpu"]) == 1
  flags = _flags(container["args"])
  assert int(flags["port"]) == _port(container, "grpc")
  assert int(flags["rest_api_port"]) == _port(container, "http")
  assert _mount(deployment, MODELS_PVC).get("readOnly") is True
  # GetModelStatus over REST for the pipeline's model, on the REST port.
  probe = container["readinessProbe"]["httpGet"]
  assert probe["path"] == f"/v1/models/{MODEL_NAME}"
  assert probe["port"] in ("http", _port(container, "http"))


# ------------------------------------------------------ retrieval service ---

def test_retrieval_command_matches_the_server_flags():
  deployment = _retrieval_deployment()
  container = _container(deployment)
  command = container["command"]
  assert command[:3] == ["python", "-m", "serving.server"]
  # The server's own parser: an unknown or renamed flag fails here.
  try:
    config = serving_server.parse_flags(command[3:])
  except SystemExit as error:
    pytest.fail(f"serving.server rejects {command[3:]}: exit {error.code}")
  assert config.port == _port(container, "grpc")
  assert config.metrics_port == _port(container, "metrics")
  assert config.host == "0.0.0.0", "loopback is unreachable from the Service"
  assert config.model_name is None
  # Only the pipeline's model is mounted, as <model_base_path>/<model_name>.
  mount = _mount(deployment, MODELS_PVC)
  assert mount["mountPath"] == posixpath.join(config.model_base_path,
                                              MODEL_NAME)
  assert mount.get("subPath") == MODEL_NAME
  assert mount.get("readOnly") is True


def test_retrieval_reads_the_history_store_and_logs_on_its_volume():
  deployment = _retrieval_deployment()
  config = serving_server.parse_flags(_container(deployment)["command"][3:])
  store = urllib.parse.urlsplit(config.history_store)
  service = _one("Service", lambda s: s["metadata"]["name"] == HISTORY_REDIS)
  assert store.scheme == "redis"
  assert store.hostname == HISTORY_REDIS
  assert store.port == next(port["port"] for port in service["spec"]["ports"]
                            if port["name"] == "redis")
  # Every replica appends its event log there: written, not read-only.
  mount = _mount(deployment, HISTORY_PVC)
  assert mount["mountPath"] == config.history_dir
  assert not mount.get("readOnly", False)
  pvc = _one("PersistentVolumeClaim",
             lambda p: p["metadata"]["name"] == HISTORY_PVC)
  assert "ReadWriteMany" in pvc["spec"]["accessModes"]


def test_history_redis_is_one_store_that_keeps_nothing_on_disk():
  deployment = _redis_deployment()
  container = _container(deployment)
  command = container["command"]
  assert deployment["spec"]["replicas"] == 1
  assert deployment["spec"]["strategy"]["type"] == "Recreate"
  assert command[0] == "redis-server"
  # The store is rebuilt from the history volume, not from Redis's files.
  assert command[command.index("--save") + 1] == ""
  assert command[command.index("--appendonly") + 1] == "no"
  assert int(command[command.index("--port") + 1]) == _port(container,
                                                            "redis")


def test_history_store_client_is_installed():
  # --history_store=redis://... makes the server import the redis client.
  assert history_store.redis is not None


def test_retrieval_metrics_dependency_is_installed():
  # --metrics_port makes the server fail at start without prometheus_client.
  assert request_metrics.prometheus_client is not None


def test_retrieval_readiness_probe_calls_wait_until_available():
  container = _container(_retrieval_deployment())
  command = container["readinessProbe"]["exec"]["command"]
  assert command[:2] == ["python", "-c"]
  tree = ast.parse(command[2])
  calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
           and isinstance(node.func, ast.Attribute)
           and node.func.attr == "wait_until_available"]
  assert len(calls) == 1, command[2]
  call = calls[0]
  args = [ast.literal_eval(arg) for arg in call.args]
  kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
  bound = inspect.signature(serving_client.wait_until_available).bind(
      *args, **kwargs)
  host, _, port = bound.arguments["address"].rpartition(":")
  assert host == "127.0.0.1"
  assert int(port) == _port(container, "grpc")
  assert bound.arguments["model_name"] == MODEL_NAME
  # The probe must give up before Kubernetes kills it.
  assert (bound.arguments["timeout_s"]
          < container["readinessProbe"]["timeoutSeconds"])


# ------------------------------------------------------------ Kubernetes ---

def test_every_manifest_is_a_named_kubernetes_object():
  assert DOCS
  seen = set()
  for doc in DOCS:
    assert doc.get("apiVersion") and doc.get("kind"), doc
    key = (doc["kind"], doc["metadata"]["name"])
    assert key not in seen, f"duplicate {key}"
    seen.add(key)
    for label in ("app.kubernetes.io/name", "app.kubernetes.io/component"):
      assert label in doc["metadata"].get("labels", {}), (key, label)


def test_deployment_selectors_match_their_pod_labels():
  for deployment in _objects("Deployment"):
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items(), deployment["metadata"]["name"]
    assert "app.kubernetes.io/component" in selector


def test_services_select_one_deployment_and_its_ports():
  services = _objects("Service")
  assert len(services) == 3
  for service in services:
    name = service["metadata"]["name"]
    selector = service["spec"]["selector"]
    selected = [
        d for d in _objects("Deployment")
        if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
    assert len(selected) == 1, f"Service {name} selects {len(selected)}"
    container_ports = [port for container in _containers(selected[0])
                       for port in container.get("ports", [])]
    by_name = {port["name"]: port["containerPort"]
               for port in container_ports if "name" in port}
    numbers = {port["containerPort"] for port in container_ports}
    for port in service["spec"]["ports"]:
      target = port.get("targetPort", port["port"])
      if isinstance(target, str):
        assert target in by_name, f"Service {name}: no port named {target}"
        target = by_name[target]
      assert target in numbers, f"Service {name}: no container port {target}"
      assert port["name"] in ("grpc", "http", "metrics", "redis")
      if port["name"] == "grpc":
        assert port["port"] == 8500


def test_hpas_target_existing_deployments():
  hpas = _objects("HorizontalPodAutoscaler")
  # The history store is one Redis, not scaled on CPU.
  deployments = {d["metadata"]["name"]: d for d in _model_deployments()}
  assert {hpa["spec"]["scaleTargetRef"]["name"] for hpa in hpas} == set(
      deployments)
  for hpa in hpas:
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert target["kind"] == "Deployment"
    assert target["apiVersion"] == "apps/v1"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # CPU utilisation is relative to the containers' CPU requests.
    for container in _containers(deployments[target["name"]]):
      assert "cpu" in container["resources"]["requests"], container["name"]


def test_models_pvc_is_shared():
  pvc = _one("PersistentVolumeClaim",
             lambda p: p["metadata"]["name"] == MODELS_PVC)
  assert "ReadWriteMany" in pvc["spec"]["accessModes"]
  for deployment in _model_deployments():
    _mount(deployment, MODELS_PVC)


def test_readme_names_the_manifests():
  readme = (DEPLOY_DIR / "README.md").read_text(encoding="utf-8")
  for path in K8S_DIR.glob("*.yaml"):
    assert path.name in readme, path.name
