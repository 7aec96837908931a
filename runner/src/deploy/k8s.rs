//! `runbench k8s render`: plain manifests for `kubectl apply -f DIR`. The scenario goes in a
//! ConfigMap and the token in a Secret; the server agent is a Pod on `--server-node` with the
//! host's network and Guaranteed QoS in whole CPUs (so the kubelet's static CPU manager gives
//! it CPUs of its own); the load agents are an Indexed Job (completion index = shard, one per
//! node by anti-affinity, never retried); the controller is a Job behind a Service.

use super::q;
use crate::cluster::cidr::Cidr;
use std::fmt::Write;

/// What to render.
pub struct K8s<'a> {
    pub scenario_name: &'a str,
    pub scenario_text: &'a str,
    pub image: &'a str,
    pub server_node: &'a str,
    pub load_nodes: &'a [String],
    pub allow_target: Cidr,
    pub token_hex: &'a str,
    /// Whole CPUs for the server agent and for each load agent.
    pub server_cpus: usize,
    pub load_cpus: usize,
}

const SERVER_MEMORY: &str = "2Gi";
const LOAD_MEMORY: &str = "1Gi";
const CONTROLLER: &str = "runbench-controller";
/// The controller keeps its results this long for `kubectl cp` after the run.
const KEEP_RESULTS_S: u64 = 3600;

fn labels(role: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    format!("{pad}app.kubernetes.io/name: runbench\n{pad}runbench/role: {role}\n")
}

/// Every file of the deployment, name and contents, in apply order.
pub fn render(k: &K8s) -> Vec<(String, String)> {
    vec![
        ("00-scenario.yaml".into(), config_map(k)),
        ("01-token.yaml".into(), secret(k)),
        ("02-controller.yaml".into(), controller(k)),
        ("03-server-agent.yaml".into(), server_agent(k)),
        ("04-load-agents.yaml".into(), load_agents(k)),
        ("Dockerfile".into(), DOCKERFILE.to_string()),
    ]
}

/// The image: runbench and every plugin, built from this repository.
pub const DOCKERFILE: &str = include_str!("../../../Dockerfile");

fn config_map(k: &K8s) -> String {
    let mut body = String::new();
    for line in k.scenario_text.lines() {
        let _ = writeln!(body, "    {line}");
    }
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: runbench-scenario\n  labels:\n{}data:\n  {}: |\n{body}",
        labels("scenario", 4),
        q(&format!("{}.toml", k.scenario_name))
    )
}

fn secret(k: &K8s) -> String {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(format!("{}\n", k.token_hex));
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: runbench-token\n  labels:\n{}type: Opaque\ndata:\n  token: {data}\n",
        labels("token", 4)
    )
}

fn token_volume(indent: usize) -> String {
    let p = " ".repeat(indent);
    // 256 = 0400: runbench refuses a token others may read.
    format!("{p}- name: token\n{p}  secret:\n{p}    secretName: runbench-token\n{p}    defaultMode: 256\n")
}

fn token_mount(indent: usize) -> String {
    let p = " ".repeat(indent);
    format!("{p}- name: token\n{p}  mountPath: /etc/runbench/token\n{p}  readOnly: true\n")
}

fn resources(cpus: usize, memory: &str, indent: usize) -> String {
    let p = " ".repeat(indent);
    // Requests equal to limits, in whole CPUs: Guaranteed QoS, pinned by the static CPU manager.
    format!(
        "{p}resources:\n{p}  requests:\n{p}    cpu: \"{cpus}\"\n{p}    memory: {memory}\n{p}  limits:\n{p}    cpu: \"{cpus}\"\n{p}    memory: {memory}\n"
    )
}

fn args(list: &[&str], indent: usize) -> String {
    let p = " ".repeat(indent);
    list.iter().map(|a| format!("{p}- {}\n", q(a))).collect()
}

fn controller_addr() -> String {
    format!("{CONTROLLER}:{}", super::PORT)
}

fn controller(k: &K8s) -> String {
    let agents = k.load_nodes.len() + 1;
    let script = format!(
        "runbench run /etc/runbench/scenario/{name}.toml --agents {agents} --listen \"$POD_IP:{port}\" \
         --token-file /etc/runbench/token/token --out /results; code=$?; \
         echo \"results in /results; kubectl cp them within {KEEP_RESULTS_S}s\"; sleep {KEEP_RESULTS_S}; exit $code",
        name = k.scenario_name,
        port = super::PORT
    );
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {CONTROLLER}
  labels:
{l4}spec:
  selector:
    runbench/role: controller
  ports:
    - name: agents
      port: {port}
      targetPort: {port}
      protocol: TCP
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {CONTROLLER}
  labels:
{l4}spec:
  backoffLimit: 0
  template:
    metadata:
      labels:
{l8}    spec:
      restartPolicy: Never
      containers:
        - name: controller
          image: {image}
          command:
{cmd}          env:
            - name: POD_IP
              valueFrom:
                fieldRef:
                  fieldPath: status.podIP
          ports:
            - name: agents
              containerPort: {port}
          volumeMounts:
            - name: scenario
              mountPath: /etc/runbench/scenario
              readOnly: true
{tm}            - name: results
              mountPath: /results
      volumes:
        - name: scenario
          configMap:
            name: runbench-scenario
{tv}        - name: results
          emptyDir: {{}}
",
        l4 = labels("controller", 4),
        l8 = labels("controller", 8),
        port = super::PORT,
        image = q(k.image),
        cmd = args(&["sh", "-c", &script], 12),
        tm = token_mount(12),
        tv = token_volume(8),
    )
}

fn server_agent(k: &K8s) -> String {
    let a = args(
        &[
            "agent",
            "--role",
            "server",
            "--name",
            "server",
            "--controller",
            &controller_addr(),
            "--connect-timeout",
            "300s",
            "--token-file",
            "/etc/runbench/token/token",
        ],
        8,
    );
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: runbench-server
  labels:
{l4}spec:
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  restartPolicy: Never
  nodeSelector:
    kubernetes.io/hostname: {node}
  containers:
    - name: agent
      image: {image}
      args:
{a}{res}      volumeMounts:
{tm}  volumes:
{tv}",
        l4 = labels("server", 4),
        node = q(k.server_node),
        image = q(k.image),
        res = resources(k.server_cpus, SERVER_MEMORY, 6),
        tm = token_mount(8),
        tv = token_volume(4),
    )
}

fn load_agents(k: &K8s) -> String {
    let n = k.load_nodes.len();
    let nodes: String = k
        .load_nodes
        .iter()
        .map(|node| format!("                      - {}\n", q(node)))
        .collect();
    let allow = k.allow_target.to_string();
    let a = args(
        &[
            "agent",
            "--role",
            "load",
            "--shard",
            "$(SHARD)",
            "--name",
            "load-$(SHARD)",
            "--controller",
            &controller_addr(),
            "--connect-timeout",
            "300s",
            "--allow-target",
            &allow,
            "--token-file",
            "/etc/runbench/token/token",
        ],
        12,
    );
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: runbench-load
  labels:
{l4}spec:
  completionMode: Indexed
  completions: {n}
  parallelism: {n}
  backoffLimit: 0
  template:
    metadata:
      labels:
{l8}    spec:
      hostNetwork: true
      dnsPolicy: ClusterFirstWithHostNet
      restartPolicy: Never
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
              - matchExpressions:
                  - key: kubernetes.io/hostname
                    operator: In
                    values:
{nodes}        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            - labelSelector:
                matchExpressions:
                  - key: runbench/role
                    operator: In
                    values:
                      - load
                      - server
              topologyKey: kubernetes.io/hostname
      containers:
        - name: agent
          image: {image}
          args:
{a}          env:
            - name: SHARD
              valueFrom:
                fieldRef:
                  fieldPath: metadata.annotations['batch.kubernetes.io/job-completion-index']
{res}          volumeMounts:
{tm}      volumes:
{tv}",
        l4 = labels("load", 4),
        l8 = labels("load", 8),
        image = q(k.image),
        res = resources(k.load_cpus, LOAD_MEMORY, 10),
        tm = token_mount(12),
        tv = token_volume(8),
    )
}
