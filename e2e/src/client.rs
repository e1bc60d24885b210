//! [`Client`]: one stock kubectl against one [`Cluster`], for tests that drive the cluster the
//! way users do. Every helper fails the test with kubectl's own words when kubectl does not do
//! what the test expects.

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use crate::{Cluster, Kubectl, api_kubectls};

/// kubectl against one cluster.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// The cluster.
    pub cluster: &'a Cluster,
    /// The kubectl.
    pub kubectl: &'a Kubectl,
}

impl Client<'_> {
    /// Runs kubectl with `env` added to its environment.
    pub fn run_with(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        self.cluster
            .kubectl_with_env(self.kubectl, env, args)
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Runs kubectl.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(&[], args)
    }

    /// Runs kubectl with `env` set, asserts success, returns stdout.
    pub fn ok_with(&self, env: &[(&str, &str)], args: &[&str]) -> String {
        let out = self.run_with(env, args);
        assert!(
            out.status.success(),
            "kubectl {} {args:?} failed:\n{}",
            self.kubectl.version,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with(&[], args)
    }

    /// Runs kubectl, asserts failure, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "kubectl {} {args:?} should have failed; printed:\n{}",
            self.kubectl.version,
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Runs kubectl with `-o json`, asserts success, returns the parsed output.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        let out = self.ok(&args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("kubectl {args:?} printed no JSON ({e}):\n{out}"))
    }

    /// Creates a namespace of this client's own, so versions do not see each other's objects.
    pub fn namespace(&self, test: &str) -> String {
        let ns = format!("{test}-{}", self.kubectl.version.replace('.', "-"));
        self.ok(&["create", "namespace", &ns]);
        ns
    }

    /// `kubectl create -f` of `manifest` in `ns`.
    pub fn create_file(&self, ns: &str, manifest: &str) {
        let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
        file.write_all(manifest.as_bytes())
            .expect("writing a temporary file");
        let path = file.path().to_str().expect("a UTF-8 temp path").to_owned();
        self.ok(&["create", "-n", ns, "-f", &path]);
    }

    /// `kubectl apply -f` of `manifest` (written to `file`) in `ns`, with `extra` arguments.
    pub fn apply(&self, ns: &str, file: &Path, manifest: &str, extra: &[&str]) -> String {
        std::fs::write(file, manifest)
            .unwrap_or_else(|e| panic!("writing {}: {e}", file.display()));
        let path = file.to_str().expect("a UTF-8 path");
        let mut args = vec!["apply", "-n", ns, "-f", path];
        args.extend(extra);
        self.ok(&args)
    }

    /// Starts kubectl in the background with stdout piped.
    pub fn spawn(&self, args: &[&str]) -> Child {
        Command::new(&self.kubectl.path)
            .arg("--kubeconfig")
            .arg(self.cluster.kubeconfig())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.kubectl.path.display()))
    }
}

/// Runs `scenario` with every kubectl of 1.33 and newer against one fresh cluster.
pub fn with_each_kubectl(scenario: impl Fn(&Client<'_>)) {
    let cluster = Cluster::start(&[]).unwrap_or_else(|e| panic!("{e:#}"));
    for kubectl in &api_kubectls() {
        scenario(&Client {
            cluster: &cluster,
            kubectl,
        });
    }
}
