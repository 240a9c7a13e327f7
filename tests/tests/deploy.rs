//! The Kubernetes manifests (`deploy/kubernetes`), rendered and checked offline: every
//! kustomization under `overlays/` and `examples/` renders with `kubectl kustomize`
//! (through `scripts/deploy/render.py`) and each document passes `kubernetes-validate
//! --strict -k 1.33.0`, except the custom resource kinds named in [`CUSTOM_KINDS`]
//! (it has no schema for them). Then, on the rendered documents:
//!
//! - the autoscaler's Role grants exactly the scale subresource and pod list/patch;
//! - no Secret is in the manifests and no credential is a literal value;
//! - every container is hardened; workers have their probes and a termination grace
//!   above their drain time; the pools hold what their overlays promise;
//! - every `PROOFLINE_*` variable a container gets is a flag (`[env: NAME`) of the
//!   binary it runs (`proofline-<container name>`, its subcommand's `--help` too).
//!
//! Needs `bash scripts/services/kubectl.sh` (the `.venv-kubectl` venv) and the binaries
//! (`cargo build -p proofline-leader -p proofline-worker -p proofline-autoscaler`;
//! `cargo test --workspace` builds them).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use proofline_tests::prometheus::workspace_binary;
use serde_json::{Value, json};

/// Kinds that kubernetes-validate has no schema for (custom resources), skipped by name.
const CUSTOM_KINDS: &[(&str, &str)] = &[("rabbitmq.com/v1beta1", "RabbitmqCluster")];
/// What must render (more may exist: every kustomization in these folders is checked).
const EXPECTED: &[&str] =
    &["overlays/cpu", "overlays/gpu", "overlays/autoscaler", "examples/batch-job", "examples/with-rabbitmq"];
const NAMESPACE: &str = "proofline";
/// Variable names that carry credentials: only ever from a Secret.
const SECRET_LIKE: &[&str] = &["AMQP_URI", "API_TOKEN", "ACCESS_KEY", "SECRET", "PASSWORD", "TOKEN"];

/// One rendered kustomization.
struct Rendered {
    dir: String,
    docs: Vec<Value>,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// A tool of `.venv-kubectl`; panics with the install command when it is missing.
fn venv_tool(name: &str) -> PathBuf {
    let path = repo().join(".venv-kubectl/bin").join(name);
    if !path.is_file() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        panic!(
            "{} is missing: run `bash scripts/services/kubectl.sh`{}",
            path.display(),
            if ci { " before the tests (a missing tool is a CI failure, not a skip)" } else { "" }
        );
    }
    path
}

/// Every kustomization under `deploy/kubernetes/{overlays,examples}`, rendered once.
fn rendered() -> &'static [Rendered] {
    static RENDERED: OnceLock<Vec<Rendered>> = OnceLock::new();
    RENDERED.get_or_init(|| {
        let root = repo().join("deploy/kubernetes");
        let mut dirs = Vec::new();
        for group in ["overlays", "examples"] {
            for entry in std::fs::read_dir(root.join(group)).expect(group) {
                let path = entry.expect("dir entry").path();
                if path.join("kustomization.yaml").is_file() {
                    dirs.push(format!("{group}/{}", path.file_name().unwrap().to_string_lossy()));
                }
            }
        }
        dirs.sort();
        for dir in EXPECTED {
            assert!(dirs.iter().any(|d| d == dir), "deploy/kubernetes/{dir} is missing");
        }
        dirs.into_iter().map(|dir| Rendered { docs: render(&root.join(&dir)), dir }).collect()
    })
}

fn render(dir: &Path) -> Vec<Value> {
    let out = Command::new(venv_tool("python"))
        .arg(repo().join("scripts/deploy/render.py"))
        .arg(dir)
        .output()
        .expect("run render.py");
    assert!(out.status.success(), "{}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    let docs: Vec<Value> = serde_json::from_slice(&out.stdout).expect("render.py prints JSON");
    assert!(!docs.is_empty(), "{} renders nothing", dir.display());
    docs
}

fn all_docs() -> impl Iterator<Item = (&'static str, &'static Value)> {
    rendered().iter().flat_map(|r| r.docs.iter().map(move |d| (r.dir.as_str(), d)))
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// Workloads with their pod spec (Deployments and Jobs).
fn workloads(docs: &[Value]) -> impl Iterator<Item = (&Value, &Value)> {
    docs.iter()
        .filter(|d| matches!(kind(d), "Deployment" | "Job" | "StatefulSet" | "DaemonSet"))
        .map(|d| (d, &d["spec"]["template"]["spec"]))
}

fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers"].into_iter().flat_map(|k| pod[k].as_array().into_iter().flatten())
}

/// A container's variables: `env`, then each `envFrom` ConfigMap's keys (as `value`).
fn env_of(container: &Value, docs: &[Value]) -> Vec<Value> {
    let mut env: Vec<Value> = container["env"].as_array().cloned().unwrap_or_default();
    for source in container["envFrom"].as_array().into_iter().flatten() {
        let map = text(&source["configMapRef"]["name"]);
        assert!(source["secretRef"].is_null(), "envFrom secretRef hides which variables it sets");
        let config = docs.iter().find(|d| kind(d) == "ConfigMap" && name(d) == map);
        let data = config.unwrap_or_else(|| panic!("envFrom names ConfigMap {map}, not rendered"));
        for (key, value) in data["data"].as_object().into_iter().flatten() {
            env.push(json!({"name": key, "value": value}));
        }
    }
    env
}

/// Every container of every workload: its kustomization, workload, pod spec and itself.
fn all_containers()
-> impl Iterator<Item = (&'static Rendered, &'static Value, &'static Value, &'static Value)> {
    let in_pods = |r: &'static Rendered| {
        workloads(&r.docs).flat_map(move |(w, pod)| containers(pod).map(move |c| (r, w, pod, c)))
    };
    rendered().iter().flat_map(in_pods)
}

fn env_value<'a>(env: &'a [Value], var: &str) -> Option<&'a Value> {
    env.iter().find(|e| e["name"] == var)
}

#[test]
fn every_kustomization_renders_and_validates_against_kubernetes_1_33() {
    let validate = venv_tool("kubernetes-validate");
    for r in rendered() {
        let tmp = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for (i, doc) in r.docs.iter().enumerate() {
            let custom = CUSTOM_KINDS.iter().any(|(api, k)| doc["apiVersion"] == *api && kind(doc) == *k);
            if custom {
                eprintln!("{}: not validated (no schema for custom kind {})", r.dir, kind(doc));
                continue;
            }
            let path = tmp.path().join(format!("{i:02}-{}-{}.json", kind(doc), name(doc)));
            std::fs::write(&path, doc.to_string()).unwrap();
            files.push(path);
        }
        let out = Command::new(&validate).args(["--strict", "-k", "1.33.0"]).args(&files).output().unwrap();
        let report =
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        // An unknown kind is only a warning for kubernetes-validate: here it fails.
        let problems: Vec<&str> = report.lines().filter(|l| !l.starts_with("INFO")).collect();
        assert!(out.status.success() && problems.is_empty(), "{}:\n{report}", r.dir);
        assert_eq!(report.matches(" passed for resource ").count(), files.len(), "{}:\n{report}", r.dir);
    }
}

#[test]
fn every_object_is_named_proofline_and_in_its_namespace() {
    for (dir, doc) in all_docs() {
        let what = format!("{dir}: {} {}", kind(doc), name(doc));
        assert_eq!(doc["metadata"]["namespace"], NAMESPACE, "{what}");
        assert!(name(doc).starts_with("proofline-"), "{what}: name it proofline-*");
        assert!(!matches!(kind(doc), "ClusterRole" | "ClusterRoleBinding" | "Namespace"), "{what}");
    }
}

#[test]
fn the_autoscaler_role_grants_exactly_scale_and_pods() {
    let expected = json!([
        {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "patch"]},
    ]);
    let mut seen = 0;
    for (dir, doc) in all_docs().filter(|(_, d)| matches!(kind(d), "Role" | "RoleBinding")) {
        assert_eq!(name(doc), "proofline-autoscaler", "{dir}: unexpected {}", kind(doc));
        if kind(doc) == "Role" {
            assert_eq!(doc["rules"], expected, "{dir}: the autoscaler's Role");
            seen += 1;
        } else {
            assert_eq!(
                doc["roleRef"],
                json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "proofline-autoscaler"})
            );
            let subject =
                json!([{"kind": "ServiceAccount", "name": "proofline-autoscaler", "namespace": NAMESPACE}]);
            assert_eq!(doc["subjects"], subject, "{dir}");
        }
    }
    assert!(seen >= 2, "the autoscaler's Role is rendered in overlays/autoscaler and examples/with-rabbitmq");
}

/// Every string in `value`, with its JSON path.
fn strings<'a>(value: &'a Value, path: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::String(s) => out.push((path, s)),
        Value::Array(items) => {
            items.iter().enumerate().for_each(|(i, v)| strings(v, format!("{path}/{i}"), out))
        }
        Value::Object(map) => map.iter().for_each(|(k, v)| strings(v, format!("{path}/{k}"), out)),
        _ => {}
    }
}

/// Whether `text` holds a URI with a password (`scheme://user:password@`).
fn has_uri_password(text: &str) -> bool {
    text.match_indices("://").any(|(at, _)| {
        let rest = &text[at + 3..];
        let authority = &rest[..rest.find(['/', ' ', '"']).unwrap_or(rest.len())];
        authority.rsplit_once('@').is_some_and(|(user, _)| user.contains(':'))
    })
}

fn is_secret_like(var: &str) -> bool {
    SECRET_LIKE.iter().any(|s| var.contains(s))
}

#[test]
fn no_credential_is_a_literal() {
    assert!(has_uri_password("amqp://u:p@rabbit:5672/%2f") && !has_uri_password("amqp://rabbit:5672"));
    for (dir, doc) in all_docs() {
        let what = format!("{dir}: {} {}", kind(doc), name(doc));
        assert_ne!(kind(doc), "Secret", "{what}: Secrets are created by the operator, never shipped");
        let mut all = Vec::new();
        strings(doc, String::new(), &mut all);
        for (path, s) in all {
            assert!(!has_uri_password(s), "{what}: a password in {path}");
        }
        let mut keys = doc["data"].as_object().into_iter().flatten().map(|(k, _)| k);
        let secret_key = keys.find(|k| kind(doc) == "ConfigMap" && is_secret_like(k));
        assert!(secret_key.is_none(), "{what}: {secret_key:?} belongs in a Secret");
    }
    for (r, workload, _, c) in all_containers() {
        for var in env_of(c, &r.docs).iter().filter(|v| is_secret_like(text(&v["name"]))) {
            let from = &var["valueFrom"]["secretKeyRef"];
            let secret = var.get("value").is_none() && from["name"].is_string() && from["key"].is_string();
            assert!(secret, "{}: {} sets {var} without a secretKeyRef", r.dir, name(workload));
        }
    }
}

#[test]
fn every_container_is_hardened() {
    for (r, workload, pod, c) in all_containers() {
        let what = format!("{}: {}/{}", r.dir, name(workload), text(&c["name"]));
        let pod_sc = &pod["securityContext"];
        assert_eq!(pod_sc["runAsNonRoot"], true, "{what}");
        assert_eq!(pod_sc["runAsUser"], 65532, "{what}");
        assert_eq!(pod_sc["seccompProfile"]["type"], "RuntimeDefault", "{what}");
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{what}");
        let tmp = c["volumeMounts"].as_array().into_iter().flatten().any(|m| m["mountPath"] == "/tmp");
        assert!(tmp, "{what}: a writable /tmp (emptyDir)");
    }
}

/// The port of an `ADDR:PORT` variable that must bind every interface in a pod.
fn pod_port(env: &[Value], var: &str, what: &str) -> u64 {
    let addr = env_value(env, var).map(|v| text(&v["value"])).unwrap_or_default();
    let port = addr.strip_prefix("0.0.0.0:").and_then(|p| p.parse().ok());
    port.unwrap_or_else(|| panic!("{what}: {var} must be 0.0.0.0:PORT in a pod, not {addr:?}"))
}

/// The container port a probe's `httpGet.port` (a name or a number) means.
fn probe_port(container: &Value, probe: &str) -> u64 {
    let port = &container[probe]["httpGet"]["port"];
    let ports = container["ports"].as_array().into_iter().flatten();
    let named = ports.clone().find(|p| p["name"] == *port).map(|p| &p["containerPort"]);
    named.unwrap_or(port).as_u64().unwrap_or_else(|| panic!("{probe} port {port} is not a container port"))
}

fn check_worker(pod: &Value, env: &[Value], worker: &Value, what: &str) {
    let health = pod_port(env, "PROOFLINE_HEALTH_ADDR", what);
    assert_eq!(pod_port(env, "PROOFLINE_METRICS_ADDR", what), 9464, "{what}");
    for (probe, path) in [("livenessProbe", "/livez"), ("readinessProbe", "/readyz")] {
        assert_eq!(worker[probe]["httpGet"]["path"], path, "{what}: {probe}");
        assert_eq!(probe_port(worker, probe), health, "{what}: {probe} on PROOFLINE_HEALTH_ADDR");
    }
    let grace = env_value(env, "PROOFLINE_SHUTDOWN_GRACE_SECS").map(|v| text(&v["value"]).parse::<u64>());
    let grace =
        grace.and_then(Result::ok).unwrap_or_else(|| panic!("{what}: set PROOFLINE_SHUTDOWN_GRACE_SECS"));
    let termination = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    // The worker exits within its grace plus about 7 s (README): leave more than that.
    assert!(termination >= grace + 15, "{what}: terminationGracePeriodSeconds {termination}, grace {grace}");
}

/// What each pool's workers need: CPU lanes from the CPU limit; a GPU, its taint, and
/// the driver's Vulkan files.
fn check_pool(pool: &str, pod: &Value, worker: &Value, env: &[Value], what: &str) {
    let var = |name: &str| env_value(env, name).unwrap_or_else(|| panic!("{what}: {name} is not set"));
    match pool {
        "cpu" => {
            let lanes = &var("PROOFLINE_LANES")["valueFrom"]["resourceFieldRef"];
            assert_eq!(*lanes, json!({"resource": "limits.cpu", "divisor": "1"}), "{what}");
        }
        "gpu" => {
            assert_eq!(worker["resources"]["limits"]["nvidia.com/gpu"], 1, "{what}");
            let mut tolerations = pod["tolerations"].as_array().into_iter().flatten();
            assert!(tolerations.any(|t| t["key"] == "nvidia.com/gpu"), "{what}: tolerate the GPU taint");
            let caps = text(&var("NVIDIA_DRIVER_CAPABILITIES")["value"]);
            assert!(caps.split(',').any(|c| c == "graphics"), "{what}: Vulkan needs `graphics`");
            assert_eq!(var("PROOFLINE_GPU")["value"], "required", "{what}");
        }
        other => panic!("{what}: unknown pool {other:?}"),
    }
}

#[test]
fn workers_have_probes_drain_in_time_and_pools_their_resources() {
    for (r, workload, pod, worker) in all_containers() {
        let labels = &workload["metadata"]["labels"];
        if labels["app.kubernetes.io/name"] != "proofline-worker" {
            continue;
        }
        let what = format!("{}: {}", r.dir, name(workload));
        assert_eq!(worker["name"], "worker", "{what}: one container, named worker");
        let env = env_of(worker, &r.docs);
        check_worker(pod, &env, worker, &what);
        let pool = text(&labels["proofline.dev/pool"]);
        assert_eq!(name(workload), format!("proofline-worker-{pool}"), "{what}");
        check_pool(pool, pod, worker, &env, &what);
        assert_eq!(pod["automountServiceAccountToken"], false, "{what}");
        let autoscaled = r.docs.iter().any(|d| name(d) == "proofline-autoscaler");
        let replicas = workload["spec"]["replicas"].as_u64().unwrap_or(1);
        assert_eq!(replicas == 0, autoscaled, "{what}: {replicas} replicas (0 iff the autoscaler owns them)");
    }
    let pools = |dir: &str| {
        let r = rendered().iter().find(|r| r.dir == dir).unwrap();
        r.docs.iter().filter(|d| name(d).starts_with("proofline-worker-") && kind(d) == "Deployment").count()
    };
    assert_eq!((pools("overlays/cpu"), pools("overlays/gpu"), pools("overlays/autoscaler")), (1, 1, 2));
}

#[test]
fn single_replica_controllers_are_recreated_not_rolled() {
    for (dir, doc) in
        all_docs().filter(|(_, d)| matches!(name(d), "proofline-leader" | "proofline-autoscaler"))
    {
        if kind(doc) == "Deployment" {
            assert_eq!(doc["spec"]["replicas"], 1, "{dir}: {}", name(doc));
            assert_eq!(doc["spec"]["strategy"]["type"], "Recreate", "{dir}: {}", name(doc));
        }
    }
}

/// The `PROOFLINE_*` variables `binary --help` (and `binary SUBCOMMAND --help`) documents.
fn accepted_env(binary: &Path, subcommand: Option<&str>) -> BTreeSet<String> {
    let mut help = String::new();
    let mut runs = vec![vec!["--help"]];
    runs.extend(subcommand.map(|s| vec![s, "--help"]));
    for args in runs {
        let out = Command::new(binary).args(&args).env_clear().output().expect("run --help");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{} {args:?}: {err}", binary.display());
        help.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    // A wrapped help line may break between `[env:` and the name: join the words.
    let words: Vec<&str> = help.split_whitespace().collect();
    let names = words.windows(2).filter(|w| w[0] == "[env:").map(|w| w[1].trim_end_matches(']'));
    let names: BTreeSet<String> = names.map(|n| n.split('=').next().unwrap_or(n).to_owned()).collect();
    assert!(names.len() >= 5, "{}: too few [env: ...] in its --help: {names:?}", binary.display());
    names
}

/// The built binary `proofline-<name>`, or `None` for the autoscaler until it is built.
fn binary_for(container: &str) -> PathBuf {
    workspace_binary(&format!("proofline-{container}"))
}

#[test]
fn every_proofline_variable_is_a_flag_of_its_binary() {
    let mut checked = 0;
    for (r, workload, _, c) in all_containers() {
        let binary = binary_for(text(&c["name"]));
        let accepted = accepted_env(&binary, c["args"][0].as_str());
        for var in env_of(c, &r.docs).iter().map(|v| text(&v["name"])).filter(|v| v.starts_with("PROOFLINE_"))
        {
            let what = format!("{}: {}/{}", r.dir, name(workload), text(&c["name"]));
            assert!(accepted.contains(var), "{what}: {} does not read {var}", binary.display());
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} variables checked");
}
