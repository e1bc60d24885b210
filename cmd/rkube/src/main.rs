//! `rkube`: the one binary. Parses the command line and hands over to `rkube-server`.

use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use rkube_server::config::{self, Config, DatastoreEndpoint, DatastoreTls};

/// A lightweight Kubernetes in one binary.
#[derive(Debug, Parser)]
// A later occurrence of a flag overrides an earlier one (how `--kube-apiserver-arg` values win).
#[command(name = "rkube", version, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane: the datastore and the API endpoints.
    Server(ServerArgs),
}

/// `rkube server`'s flags, named as k3s names them (environment variables `RKUBE_*` where k3s
/// reads `K3S_*`).
#[derive(Debug, Args)]
struct ServerArgs {
    /// Folder to hold state.
    #[arg(
        long,
        short = 'd',
        env = "RKUBE_DATA_DIR",
        default_value = "/var/lib/rkube"
    )]
    data_dir: PathBuf,
    /// Datastore: sqlite:///abs/path, sqlite://:memory:, or http(s)://host:port[,host:port...]
    /// for etcd. Default: SQLite at <data-dir>/server/db/state.db.
    #[arg(long, env = "RKUBE_DATASTORE_ENDPOINT", value_parser = parse_endpoint)]
    datastore_endpoint: Option<DatastoreEndpoint>,
    /// CA file that verifies an etcd datastore's certificate.
    #[arg(long, env = "RKUBE_DATASTORE_CAFILE")]
    datastore_cafile: Option<PathBuf>,
    /// Client certificate for an etcd datastore.
    #[arg(long, env = "RKUBE_DATASTORE_CERTFILE")]
    datastore_certfile: Option<PathBuf>,
    /// Client key for an etcd datastore.
    #[arg(long, env = "RKUBE_DATASTORE_KEYFILE")]
    datastore_keyfile: Option<PathBuf>,
    /// Port the API listens on over HTTPS (0 picks a free port).
    #[arg(long, default_value_t = 6443)]
    https_listen_port: u16,
    /// Address the API listens on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// Write a kubeconfig for the admin client to this file.
    #[arg(long, short = 'o', env = "RKUBE_KUBECONFIG_OUTPUT")]
    write_kubeconfig: Option<PathBuf>,
    /// Do not run the node agent (there is none yet: the control plane runs alone either way).
    #[arg(long)]
    disable_agent: bool,
    /// This node's name. Default: the hostname, lowercased.
    #[arg(long, env = "RKUBE_NODE_NAME")]
    node_name: Option<String>,
    /// How often old revisions are compacted (Go duration, e.g. 5m; 0 disables).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    compaction_interval: Duration,
    /// Static bearer tokens for the API: a CSV file of token,user,uid,"group1,group2".
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// Admission plugins' configuration: an apiserver.config.k8s.io/v1 AdmissionConfiguration
    /// file (YAML or JSON), e.g. PodSecurity's defaults and exemptions.
    #[arg(long)]
    admission_control_config_file: Option<PathBuf>,
    #[command(flatten)]
    audit: AuditArgs,
    /// A kube-apiserver flag as k3s passes it through (`audit-log-path=/var/log/audit.log`),
    /// for the kube-apiserver flags rkube implements; it wins over the same flag given directly.
    #[arg(long, value_name = "FLAG=VALUE", allow_hyphen_values = true)]
    kube_apiserver_arg: Vec<String>,
}

/// The kube-apiserver flags `--kube-apiserver-arg` may set: those rkube implements, under the
/// same name and meaning.
const KUBE_APISERVER_FLAGS: &[&str] = &[
    "admission-control-config-file",
    "audit-log-format",
    "audit-log-maxage",
    "audit-log-maxbackup",
    "audit-log-maxsize",
    "audit-log-path",
    "audit-policy-file",
    "token-auth-file",
];

/// The command line with each `--kube-apiserver-arg flag=value` turned into `--flag=value`
/// at the end (so it overrides, as k3s lets it override its own settings); `None` when there
/// is none. An unknown flag is an error, never silently dropped.
fn expand_kube_apiserver_args(cli: &Cli, argv: &[String]) -> anyhow::Result<Option<Vec<String>>> {
    let Command::Server(args) = &cli.command;
    if args.kube_apiserver_arg.is_empty() {
        return Ok(None);
    }
    let mut expanded = argv.to_vec();
    for arg in &args.kube_apiserver_arg {
        let arg = arg.trim_start_matches('-');
        let (flag, value) = arg.split_once('=').unwrap_or((arg, ""));
        if !KUBE_APISERVER_FLAGS.contains(&flag) {
            anyhow::bail!(
                "--kube-apiserver-arg: rkube does not implement kube-apiserver's --{flag} \
                 (it implements --{})",
                KUBE_APISERVER_FLAGS.join(", --")
            );
        }
        expanded.push(format!("--{flag}={value}"));
    }
    Ok(Some(expanded))
}

/// kube-apiserver's audit flags, under their upstream names.
#[derive(Debug, Args)]
struct AuditArgs {
    /// The audit policy: an audit.k8s.io/v1 Policy file. Without it nothing is audited.
    #[arg(long)]
    audit_policy_file: Option<PathBuf>,
    /// Where audit events are written, one per line; '-' is standard output.
    #[arg(long)]
    audit_log_path: Option<PathBuf>,
    /// Days to keep rotated audit logs (0: no limit).
    #[arg(long, default_value_t = 366)]
    audit_log_maxage: u32,
    /// Rotated audit logs to keep (0: no limit).
    #[arg(long, default_value_t = 100)]
    audit_log_maxbackup: u32,
    /// Size in megabytes at which the audit log is rotated (0: never).
    #[arg(long, default_value_t = 100)]
    audit_log_maxsize: u32,
    /// Audit log format: json (one audit.k8s.io/v1 Event per line) or legacy (one line of text).
    #[arg(long, default_value = "json")]
    audit_log_format: rkube_server::audit::Format,
}

impl From<AuditArgs> for rkube_server::audit::AuditOptions {
    fn from(args: AuditArgs) -> Self {
        rkube_server::audit::AuditOptions {
            policy_file: args.audit_policy_file,
            log_path: args.audit_log_path,
            log_max_age: args.audit_log_maxage,
            log_max_backup: args.audit_log_maxbackup,
            log_max_size: args.audit_log_maxsize,
            log_format: args.audit_log_format,
        }
    }
}

fn parse_endpoint(text: &str) -> Result<DatastoreEndpoint, config::ConfigError> {
    text.parse()
}

fn parse_duration(text: &str) -> Result<Duration, config::ConfigError> {
    config::parse_duration(text)
}

impl ServerArgs {
    fn into_config(self) -> anyhow::Result<Config> {
        let node_name = match self.node_name {
            Some(name) => name,
            None => config::hostname()?,
        };
        Ok(Config {
            datastore_endpoint: self.datastore_endpoint,
            datastore_tls: DatastoreTls {
                ca_file: self.datastore_cafile,
                cert_file: self.datastore_certfile,
                key_file: self.datastore_keyfile,
            },
            bind_address: self.bind_address,
            https_listen_port: self.https_listen_port,
            write_kubeconfig: self.write_kubeconfig,
            disable_agent: self.disable_agent,
            compaction_interval: self.compaction_interval,
            token_auth_file: self.token_auth_file,
            admission_control_config_file: self.admission_control_config_file,
            audit: self.audit.into(),
            ..Config::new(self.data_dir, node_name)
        })
    }
}

/// The command line, with `--kube-apiserver-arg` values applied.
fn parse(argv: Vec<String>) -> anyhow::Result<Cli> {
    let cli = Cli::try_parse_from(&argv)?;
    Ok(match expand_kube_apiserver_args(&cli, &argv)? {
        Some(expanded) => Cli::try_parse_from(expanded)?,
        None => cli,
    })
}

fn main() -> ExitCode {
    let cli = match parse(std::env::args().collect()) {
        Ok(cli) => cli,
        // Usage errors, --help and --version print as clap prints them.
        Err(e) => match e.downcast::<clap::Error>() {
            Ok(usage) => usage.exit(),
            Err(e) => {
                eprintln!("rkube: error: {e:#}");
                return ExitCode::from(2);
            }
        },
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rkube: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Server(args) => {
            let config = args.into_config()?;
            runtime.block_on(async {
                let shutdown = shutdown_signal()?;
                rkube_server::run(config, shutdown).await
            })
        }
    }
}

/// Completes on the first SIGINT or SIGTERM. The handlers are installed before the server
/// starts, so a signal during start-up is not lost.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("received SIGINT"),
            _ = terminate.recv() => tracing::info!("received SIGTERM"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_map_onto_config() {
        let cli = Cli::try_parse_from([
            "rkube",
            "server",
            "--data-dir",
            "/tmp/d",
            "--datastore-endpoint",
            "sqlite://:memory:",
            "--https-listen-port",
            "0",
            "--bind-address",
            "127.0.0.1",
            "-o",
            "/tmp/k.yaml",
            "--disable-agent",
            "--node-name",
            "n1",
            "--compaction-interval",
            "1h",
        ])
        .unwrap();
        let Command::Server(args) = cli.command;
        let config = args.into_config().unwrap();
        assert_eq!(config.datastore(), DatastoreEndpoint::SqliteInMemory);
        assert_eq!(config.https_listen_port, 0);
        assert_eq!(config.write_kubeconfig, Some(PathBuf::from("/tmp/k.yaml")));
        assert!(config.disable_agent);
        assert_eq!(config.node_name, "n1");
        assert_eq!(config.compaction_interval, Duration::from_secs(3600));
    }

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn kube_apiserver_args_set_the_flags_rkube_implements() {
        let cli = parse(argv(&[
            "rkube",
            "server",
            "--audit-log-maxage",
            "7",
            "--kube-apiserver-arg=audit-log-path=/var/log/audit.log",
            "--kube-apiserver-arg",
            "--audit-log-maxage=3",
        ]))
        .unwrap();
        let Command::Server(args) = cli.command;
        let config = args.into_config().unwrap();
        assert_eq!(
            config.audit.log_path,
            Some(PathBuf::from("/var/log/audit.log"))
        );
        assert_eq!(config.audit.log_max_age, 3, "the pass-through overrides");

        let err = parse(argv(&[
            "rkube",
            "server",
            "--kube-apiserver-arg=enable-admission-plugins=AlwaysPullImages",
        ]))
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--kube-apiserver-arg: rkube does not implement kube-apiserver's --enable-admission-plugins"),
            "{err}"
        );
    }

    #[test]
    fn bad_endpoint_is_a_usage_error_naming_the_scheme() {
        let err = Cli::try_parse_from(["rkube", "server", "--datastore-endpoint", "mysql://x"])
            .unwrap_err();
        assert!(err.to_string().contains("\"mysql\""), "{err}");
    }
}
